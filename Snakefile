# nnassure: one DAG from data to the papers' tables and figures.
#   snakemake --cores 2 --config experiment=quick            (make run)
#   snakemake --cores 2 --config experiment=paper            (make paper)
#   snakemake --cores 2 --config experiment=smoke overrides="tracking=disabled certify.eps=[0.01]"
#   snakemake --report results/quick/report.html --config experiment=quick   (make report)
# The grid (data sets, costs, eps, models, benchmark rows) comes from the Hydra config in conf/,
# composed by workflow/rules/common.smk exactly as the stage entry points compose it. Local
# defaults (rerun-incomplete, which changes trigger reruns) live in workflow/profiles/default,
# which Snakemake finds through the `profiles` link at the top level.
from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/verified.smk"
include: "workflow/rules/proven.smk"
include: "workflow/rules/ensemble.smk"
include: "workflow/rules/video.smk"
include: "workflow/rules/kri.smk"
include: "workflow/rules/assess.smk"
include: "workflow/rules/sweep.smk"


# The endpoints: each paper's report, or with --config sweep=<file> the sweep's summary (and
# through it every point's reports). Everything else is reached through their inputs, so
# deleting any artifact (a model file, say) reruns the job that makes it and what depends on it.
# (With point=<name>, only that point's reports: W&B's agent runs one point at a time. With
# assess.model set, the assessed model's dependability report and nothing else.)
rule all:
    input:
        SITES[0].assess_report_files() if ASSESSMENT else
        [f for family in SWEEP_FAMILIES for f in SITES[1].report_files(family)] if config.get("point") else
        [str(PATHS.sweep_summary(SWEEP.name))] if SWEEP else
        [f for family in catalog.FAMILIES for f in SITES[0].report_files(family)],
    default_target: True
