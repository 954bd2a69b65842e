# nnassure: one DAG from data to the paper's tables.
#   snakemake --cores 2 --config experiment=quick            (make run)
#   snakemake --cores 2 --config experiment=paper            (make paper)
#   snakemake --config experiment=smoke overrides="tracking=disabled certify.eps=[0.01]"
# The grid (data sets, costs, eps, ...) comes from the Hydra config in conf/, composed by
# workflow/rules/common.smk exactly as the stage entry points compose it.
from snakemake.utils import min_version

min_version("9.0")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/certify.smk"
include: "workflow/rules/proven.smk"
include: "workflow/rules/ensemble.smk"
include: "workflow/rules/report.smk"


# Every artifact is a target, so that deleting any of them (a model file, say) reruns the job
# that makes it and everything downstream of it, and nothing else.
rule all:
    input:
        [model_files(d, c) for d in DATASETS for c in COSTS],
        expand(str(PATHS.certification("{dataset}", "{cost}")), dataset=DATASETS, cost=COSTS),
        report_files(),
        [classifier_files(m) for m in PROVEN_MODELS],
        expand(str(PATHS.proven("{model}")), model=PROVEN_MODELS),
        expand(str(PATHS.proven_verified("{dataset}", "{cost}")), dataset=DATASETS, cost=COSTS),
        proven_report_files(),
        ensemble_all_classifier_files(),
        expand(str(PATHS.ensemble_row("{row}")), row=sorted(ENSEMBLE_ROWS)),
        expand(str(PATHS.ensemble_attacks("{row}")), row=sorted(ENSEMBLE_ROWS)),
        ensemble_report_files(),
    default_target: True
