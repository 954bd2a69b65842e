# Composes the Hydra config of the chosen experiment (the one source of parameters) and
# provides the path patterns and input functions the rules share.
import hashlib
import shlex

from omegaconf import OmegaConf

from nnassure.config import compose
from nnassure.paths import ExperimentPaths, format_cost
from nnassure.config import parse_model_id
from nnassure.report.outputs import report_outputs
from nnassure.stages.report_proven import proven_outputs
from nnassure.ensemble.benchmarks import selected_benchmarks
from nnassure.report.ensemble import ensemble_outputs

EXPERIMENT = str(config.get("experiment", "quick"))
OVERRIDES = [f"experiment={EXPERIMENT}"] + shlex.split(str(config.get("overrides", "")))
CFG = compose(OVERRIDES)
PATHS = ExperimentPaths.from_config(CFG)
DATASETS = sorted(CFG.grid.datasets)
COSTS = [format_cost(c) for c in CFG.grid.costs]
PROVEN_MODELS = list(CFG.proven.models)
ENSEMBLE_ROWS = {b.id: b for b in selected_benchmarks(CFG.ensemble)}
ENSEMBLE_INSTANCES = sorted({b.instance for b in ENSEMBLE_ROWS.values()})
ENV = "../../envs/nnassure.yaml"

# Every stage command carries the same overrides, so a job equals a hand-run of the stage.
STAGE_ARGS = " ".join(shlex.quote(o) for o in OVERRIDES)


# Per-dataset configs (conf/dataset/<d>.yaml merged with the experiment) for the data rule.
DATASET_CFGS = {d: compose(OVERRIDES + [f"dataset={d}"]).dataset for d in DATASETS}


def digest(*groups):
    """A short hash of config groups, given to rules as params: Snakemake reruns a job when the
    parameters it depends on change in conf/ (rerun trigger "params"), and only those jobs."""
    text = OmegaConf.to_yaml({g: CFG[g] for g in groups})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def dataset_digest(wildcards):
    return hashlib.sha256(OmegaConf.to_yaml(DATASET_CFGS[wildcards.dataset]).encode()).hexdigest()[:16]


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


def ensemble_all_classifier_files():
    return sorted({f for row in ENSEMBLE_ROWS for f in ensemble_classifier_files(row)})


def ensemble_report_files():
    return [str(p) for p in ensemble_outputs(CFG)]


def proven_report_files():
    return [str(p) for p in proven_outputs(CFG)]


def report_files():
    return [str(p) for files in report_outputs(CFG).values() for p in files]


wildcard_constraints:
    dataset="|".join(DATASETS),
    cost="|".join(c.replace(".", r"\.") for c in COSTS),
    model="|".join(PROVEN_MODELS),
    instance="|".join(ENSEMBLE_INSTANCES),
    index=r"[0-9]+",
    row=r"[0-9]+",
