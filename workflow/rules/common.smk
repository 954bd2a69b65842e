# Composes the Hydra config of the chosen experiment (the one source of parameters) and provides
# the path patterns, parameter digests and input functions the rule files share.
import os
import shlex
import sys
from pathlib import Path

from nnassure.config import compose_pipeline
from nnassure.errors import NnassureError
from nnassure.paths import ExperimentPaths, format_cost
from nnassure.config import parse_model_id
from nnassure import stage_keys
from nnassure.run_lock import hold_run_lock
from nnassure.ensemble.benchmarks import selected_benchmarks
from nnassure.report import catalog
from nnassure.kri.kinds import certified_scenarios

# `--config` takes exactly these keys; everything else is a Hydra key, passed in `overrides`.
CONFIG_KEYS = {
    "experiment": "the name of a file in conf/experiment/ (smoke, quick, paper)",
    "overrides": 'Hydra overrides for every job, e.g. overrides="certify.eps=[0.01] tracking=disabled"',
}
for _key in sorted(set(config) - set(CONFIG_KEYS)):
    sys.exit(f"nnassure: unknown --config key {_key!r}: expected "
             + "; ".join(f"{k}=<{v}>" for k, v in CONFIG_KEYS.items()))

# A run killed by SIGKILL leaves Snakemake's directory locks behind; the next run removes them when
# no other run of this workflow is alive here (nnassure.run_lock), so the same command resumes.
if workflow.is_main_process:
    RUN_LOCK = hold_run_lock()

EXPERIMENT = str(config.get("experiment", "quick"))
OVERRIDES = [f"experiment={EXPERIMENT}"] + shlex.split(str(config.get("overrides", "")))
try:
    # The experiment's config and, per data set, the config with its conf/dataset/<d>.yaml merged
    # in: the jobs of one data set read those values. Keys the pipeline would ignore are refused.
    CFG, DATASET_CFGS = compose_pipeline(OVERRIDES)
    DATASETS = sorted(CFG.grid.datasets)
    PROVEN_MODELS = [parse_model_id(m).name for m in CFG.proven.models]
except NnassureError as exc:
    sys.exit(f"nnassure: {exc}")

PATHS = ExperimentPaths.from_config(CFG)
COSTS = [format_cost(c) for c in CFG.grid.costs]
ENSEMBLE_ROWS = {b.id: b for b in selected_benchmarks(CFG.ensemble)}
ENSEMBLE_INSTANCES = sorted({b.instance for b in ENSEMBLE_ROWS.values()})
VIDEO_CLIPS = list(range(CFG.video.clips))
KRI_MODELS = list(CFG.kri.models)
KRI_SCENARIOS = list(CFG.kri.scenarios)
# The scenarios PROVEN certifies (Gaussian and uniform noise): one kri_certify job per model each.
KRI_CERTIFIED = certified_scenarios(CFG.kri)
ENV = "../../envs/nnassure.yaml"
# envs/nnassure.post-deploy.sh installs this repository into the --use-conda environment; Snakemake
# runs a copy of it from .snakemake/conda/, so it learns the repository from here.
# (Set here, not read: the variable is not the user's to supply.)
os.environ.update(NNASSURE_REPO=str(Path(workflow.main_snakefile).resolve().parent))

# Every stage command carries the same overrides, so a job equals a hand-run of the stage. The
# command text is therefore not a rerun trigger (workflow/profiles/default drops "code"): the
# parameter digests below decide reruns, key by key.
# Braces are doubled: the command is a Snakemake format string, and an override may hold a mapping
# (+kri.scenarios.fog2={family:weather,...}).
STAGE_ARGS = " ".join(shlex.quote(o) for o in OVERRIDES).replace("{", "{{").replace("}", "}}")


def config_digest(stage):
    """Params for a rule: a hash of the values of the config keys `stage` reads (declared in
    nnassure.stage_keys), taken from the job's own data set config where it has one. Snakemake
    reruns a job exactly when this hash changes (rerun trigger "params")."""
    if "dataset.name" in stage_keys.stage_keys(stage).job:
        return lambda wildcards: stage_keys.digest(DATASET_CFGS[wildcards.dataset], stage)
    return stage_keys.digest(CFG, stage)


def stage(name):
    return f"python -m nnassure.stages.{name} {STAGE_ARGS}"


def log_file(stage_name, job="{dataset}"):
    return str(PATHS.logs / stage_name / f"{job}.log")


def benchmark_file(stage_name, job="{dataset}_c{cost}"):
    return str(PATHS.benchmarks / stage_name / f"{job}.tsv")


def model_files(dataset, cost):
    stem = PATHS.model_stem(dataset, cost)
    return [str(stem.with_suffix(".safetensors")), str(stem.with_suffix(".json"))]


def classifier_files(model):
    stem = PATHS.classifier_stem(model)
    return [str(stem.with_suffix(".safetensors")), str(stem.with_suffix(".json"))]


def model_dataset(model):
    return parse_model_id(model).dataset


def ensemble_classifier_stem_files(instance, index):
    stem = PATHS.ensemble_classifier_stem(instance, index)
    return [str(stem) + ".safetensors", str(stem) + ".json"]


def ensemble_classifier_files(row):
    benchmark = ENSEMBLE_ROWS[row]
    return [f for c in range(1, benchmark.classifiers + 1)
            for f in ensemble_classifier_stem_files(benchmark.instance, c)]


def video_model_files():
    stem = PATHS.video_model_stem
    return [str(stem) + ".safetensors", str(stem) + ".json"]


def kri_digest(stage):
    """Params of a KRI job: the digest of the keys it reads, with the entries of its own variant and
    scenario (``kri.variants.{kri.variant}``) resolved from its wildcards, so adding or editing
    another scenario leaves it alone."""
    def params(wildcards):
        job = {f"kri.{name}": getattr(wildcards, name) for name in ("variant", "scenario") if hasattr(wildcards, name)}
        return stage_keys.digest(CFG, stage, job)
    return params


def kri_model_files(variant):
    stem = PATHS.kri_model_stem(variant)
    return [str(stem) + ".safetensors", str(stem) + ".json"]


def kri_inference_files():
    return [str(PATHS.kri_inference(v, s)) for v in KRI_MODELS for s in KRI_SCENARIOS]


def kri_certificate_files():
    return [str(PATHS.kri_certificate(v, s)) for v in KRI_MODELS for s in KRI_CERTIFIED]


def paper_numbers_file(family):
    """The paper's printed numbers a report compares with: an input, so a corrected transcription
    reruns the report."""
    return str(Path(catalog.__file__).parent / "paper" / f"{catalog.PAPER_OF_FAMILY[family]}.yaml")


def report_files(family):
    """Every file the report stage of `family` writes, as the catalog lists them."""
    return [str(p) for p in catalog.family_files(CFG, family)]


def ensemble_row_instance_data(wildcards):
    return str(PATHS.ensemble_instance_data(ENSEMBLE_ROWS[int(wildcards.row)].instance))


# What `snakemake --report` shows of each table and figure: the CSV source and the comparison
# with the paper, and the PNG; the Markdown, LaTeX and PDF renderings stay on disk only.
REPORTED_SUFFIXES = (".csv", ".compare.md", ".png")
# Snakemake reads a caption from a file; the captions live in nnassure.report.catalog, so each is
# written (when it changed) to a file of its own beside Snakemake's metadata.
CAPTIONS = Path(".snakemake", "nnassure", "captions").resolve()


def caption_file(entry):
    path = CAPTIONS / f"{entry.id}.rst"
    text = f"{entry.caption}\n\nReproduces: {entry.reproduces}.\n"
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_suffix(f".{os.getpid()}.tmp")
        staged.write_text(text)
        staged.replace(path)
    return str(path)


def reported(paths, family):
    """Report outputs: each file of a table or figure <id> (vc_table1.compare.md belongs to
    vc_table1) captioned by the catalog and filed under its paper."""
    items = []
    for path in map(str, paths):
        name = Path(path).name
        if name.endswith(REPORTED_SUFFIXES):
            entry = catalog.entry(name.split(".")[0])
            items.append(report(path, caption=caption_file(entry), category=entry.paper, subcategory=entry.id,
                                labels={"id": entry.id, "file": name}))
        else:
            items.append(path)
    return items


wildcard_constraints:
    dataset="|".join(DATASETS),
    cost="|".join(c.replace(".", r"\.") for c in COSTS),
    model="|".join(PROVEN_MODELS),
    instance="|".join(ENSEMBLE_INSTANCES),
    index=r"[0-9]+",
    row=r"[0-9]+",
    clip=r"[0-9]+",
    variant="|".join(KRI_MODELS),
    scenario="|".join(KRI_SCENARIOS),
