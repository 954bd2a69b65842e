# Composes the Hydra config of the chosen experiment (the one source of parameters) and provides
# the path patterns, parameter digests and input functions the rule files share.
import json
import math
import os
import re
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
from nnassure.sweep import REPORT_STAGES, hydra_value, load_sweep, plan
from nnassure.assess.paths import resolve_assessment

# `--config` takes exactly these keys; everything else is a Hydra key, passed in `overrides`.
CONFIG_KEYS = {
    "experiment": "the name of a file in conf/experiment/ (smoke, quick, paper)",
    "overrides": 'Hydra overrides for every job, e.g. overrides="certify.eps=[0.01] tracking=disabled"',
    "sweep": "a sweep file, e.g. sweep=conf/sweep/eps.yaml: every point's jobs and the sweep's summary",
    "point": "with sweep=<file>: only this point's jobs, e.g. point=certify.eps=0.01,0.025 (W&B's agent)",
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
    SWEEP = load_sweep(config["sweep"]) if config.get("sweep") else None
    if config.get("point") and not SWEEP:
        raise NnassureError("--config point=<name> needs sweep=<file>, the sweep the point belongs to")
    # With point=<name> only that point's jobs (and rule names, so they match a whole-sweep run's).
    ONLY_POINT = SWEEP.point(str(config["point"])).name if config.get("point") else None
    POINTS = plan(SWEEP, OVERRIDES, (CFG, DATASET_CFGS)) if SWEEP else []
    # A point may add data sets (new jobs of shared stages, which the experiment's rules run).
    for _point in POINTS:
        DATASET_CFGS = {**_point.experiment_dataset_cfgs, **DATASET_CFGS}
except NnassureError as exc:
    sys.exit(f"nnassure: {exc}")

PATHS = ExperimentPaths.from_config(CFG)

# With assess.model set, the run assesses that model (nnassure.assess) and its report is the target.
try:
    ASSESSMENT = resolve_assessment(CFG.assess) if CFG.assess.model is not None else None
except NnassureError as exc:
    sys.exit(f"nnassure: {exc}")


# Under SLURM, refuse before any sbatch a run whose jobs would fail for want of a partition or run
# in another one than asked (nnassure.slurm). In onstart: the executor is chosen after the
# Snakefile is read, and onstart runs before the first submission (not on dry runs).
#
# Local jobs start warm (nnassure.warmstart: each runs in a fork of a server that imported the
# stages once) and share one wandb-core service; jobs elsewhere (SLURM) start on their own.
onstart:
    if workflow.executor_plugin.name == "slurm":
        from nnassure.slurm import slurm_partition_problem

        if problem := slurm_partition_problem(workflow.resource_settings.default_resources):
            sys.exit(f"nnassure: {problem}")
    if workflow.local_exec:
        from nnassure.warmstart import start_local_services

        # Under --use-conda (or any deployment method) the jobs' Python is another environment's:
        # a server of this one would run them in the wrong one.
        LOCAL_SERVICES.append(start_local_services(CFG, warm=not workflow.deployment_settings.deployment_method))


LOCAL_SERVICES = []


onsuccess:
    from nnassure.warmstart import stop_local_services

    for services in LOCAL_SERVICES:
        stop_local_services(services)


onerror:
    from nnassure.warmstart import stop_local_services

    for services in LOCAL_SERVICES:
        stop_local_services(services)
ENV = "../../envs/nnassure.yaml"
# envs/nnassure.post-deploy.sh installs this repository into the --use-conda environment; Snakemake
# runs a copy of it from .snakemake/conda/, so it learns the repository from here.
# (Set here, not read: the variable is not the user's to supply.)
os.environ.update(NNASSURE_REPO=str(Path(workflow.main_snakefile).resolve().parent))


def _escaped(text):
    # A stage command is a Snakemake format string, and an override may hold a mapping
    # (+kri.scenarios.fog2={family:weather,...}).
    return text.replace("{", "{{").replace("}", "}}")


class Site:
    """Where a set of jobs runs: the experiment itself, or one point of the sweep with the stages
    it runs itself (nnassure.sweep). Each rule is defined once per site that runs its stage, through the input functions and paths of that site, inside a function of the site
    (`_define_<stage>(SITE)`): Snakemake evaluates a rule's shell command again when the job runs,
    so a loop variable would be read at its last value there, while a function's argument stays
    bound to the site it was called with."""

    def __init__(self, cfg, dataset_cfgs, point=None, own=(), index=None):
        self.cfg, self.dataset_cfgs, self.point = cfg, dataset_cfgs, point
        self.own = frozenset(own)
        sweep_args = []
        if point is not None:
            # quoted for Hydra: a point's name holds "=" and ","
            sweep_args = point.overrides() + [f"sweep.name={hydra_value(SWEEP.name)}",
                                              f"sweep.point={hydra_value(point.name)}",
                                              "sweep.own=[" + ",".join(sorted(self.own)) + "]"]
            self.paths = ExperimentPaths(cfg.results_dir, cfg.grid.name, SWEEP.name, point.name, self.own)
            self.suffix = f"__{re.sub(r'[^A-Za-z0-9_]', '_', SWEEP.name)}_{index}"
        else:
            self.paths, self.suffix = ExperimentPaths.from_config(cfg), ""
        # Every stage command carries the same overrides, so a job equals a hand-run of the stage.
        # The command text is therefore not a rerun trigger (workflow/profiles/default drops
        # "code"): the parameter digests decide reruns, key by key.
        self.args = _escaped(" ".join(shlex.quote(o) for o in OVERRIDES + sweep_args))
        self.datasets = sorted(cfg.grid.datasets)
        self.costs = [format_cost(c) for c in cfg.grid.costs]
        self.proven_models = [parse_model_id(m).name for m in cfg.proven.models]
        self.ensemble_rows = {b.id: b for b in selected_benchmarks(cfg.ensemble)}
        self.ensemble_instances = sorted({b.instance for b in self.ensemble_rows.values()})
        self.video_clips = list(range(cfg.video.clips))
        self.kri_models = list(cfg.kri.models)
        self.kri_scenarios = list(cfg.kri.scenarios)
        # The scenarios PROVEN certifies (Gaussian and uniform noise): one kri_certify job per model each.
        self.kri_certified = certified_scenarios(cfg.kri)
        self.assessment = ASSESSMENT

    def runs(self, stage_name):
        return self.point is None or stage_name in self.own

    def rule_name(self, stage_name):
        return stage_name + self.suffix

    def resources(self, stage_name):
        """The rule's resources from the config's `resources` section (conf/resources/)."""
        spec = self.cfg.resources[stage_name]
        return {"mem_mb": spec.mem_mb, "runtime": spec.runtime}

    def threads(self, stage_name):
        return self.cfg.resources[stage_name].threads

    def stage(self, name):
        # {log}.usage.json: the job's CPU time and RSS when it runs warm (nnassure.launch)
        return f"NNASSURE_JOB_USAGE={{log}}.usage.json python -m nnassure.launch {name} {self.args}"

    def config_digest(self, stage_name):
        """Params for a rule: a hash of the values of the config keys the stage reads (declared in
        nnassure.stage_keys), taken from the job's own data set config where it has one. Snakemake
        reruns a job exactly when this hash changes (rerun trigger "params")."""
        if "dataset.name" in stage_keys.stage_keys(stage_name).job:
            # the experiment's site also runs the jobs of data sets only a point adds
            dataset_cfgs = DATASET_CFGS if self.point is None else self.dataset_cfgs
            return lambda wildcards: stage_keys.digest(dataset_cfgs[wildcards.dataset], stage_name)
        return stage_keys.digest(self.cfg, stage_name)

    def kri_digest(self, stage_name):
        """Params of a KRI job: the digest of the keys it reads, with the entries of its own variant
        and scenario (``kri.variants.{kri.variant}``) resolved from its wildcards, so adding or
        editing another scenario leaves it alone."""
        cfg = self.cfg

        def params(wildcards):
            job = {f"kri.{name}": getattr(wildcards, name) for name in ("variant", "scenario")
                   if hasattr(wildcards, name)}
            return stage_keys.digest(cfg, stage_name, job)
        return params

    def log_file(self, stage_name, job="{dataset}"):
        return str(self.paths.logs / stage_name / f"{job}.log")

    def benchmark_file(self, stage_name, job="{dataset}_c{cost}"):
        return str(self.paths.benchmarks / stage_name / f"{job}.tsv")

    def search_trial_files(self):
        """The trials of one search (wildcards dataset and cost): search.n_trials, at most one per
        configuration of the search space (nnassure.search draws without replacement)."""
        search = self.cfg.search
        size = math.prod(len(search[k]) for k in ("depths", "widths", "lrs", "weight_decays", "dropouts"))
        return [str(self.paths.search_trial("{dataset}", "{cost}", t)) for t in range(min(search.n_trials, size))]

    def model_files(self, dataset, cost):
        stem = self.paths.model_stem(dataset, cost)
        return [str(stem.with_suffix(".safetensors")), str(stem.with_suffix(".json"))]

    def classifier_files(self, model):
        stem = self.paths.classifier_stem(model)
        return [str(stem.with_suffix(".safetensors")), str(stem.with_suffix(".json"))]

    def image_data_of_model(self):
        paths = self.paths
        return lambda wildcards: str(paths.image_dataset(parse_model_id(wildcards.model).dataset))

    def ensemble_classifier_stem_files(self, instance, index):
        stem = self.paths.ensemble_classifier_stem(instance, index)
        return [str(stem) + ".safetensors", str(stem) + ".json"]

    def ensemble_classifier_files(self):
        def files(wildcards):
            benchmark = self.ensemble_rows[int(wildcards.row)]
            return [f for c in range(1, benchmark.classifiers + 1)
                    for f in self.ensemble_classifier_stem_files(benchmark.instance, c)]
        return files

    def ensemble_row_instance_data(self):
        return lambda wildcards: str(self.paths.ensemble_instance_data(self.ensemble_rows[int(wildcards.row)].instance))

    def video_model_files(self):
        stem = self.paths.video_model_stem
        return [str(stem) + ".safetensors", str(stem) + ".json"]

    def kri_model_files(self, variant):
        stem = self.paths.kri_model_stem(variant)
        return [str(stem) + ".safetensors", str(stem) + ".json"]

    def kri_inference_files(self):
        return [str(self.paths.kri_inference(v, s)) for v in self.kri_models for s in self.kri_scenarios]

    def kri_certificate_files(self):
        return [str(self.paths.kri_certificate(v, s)) for v in self.kri_models for s in self.kri_certified]

    def assess_input_files(self):
        """The user's model file(s) and data file: inputs, so that replacing one reruns the assessment."""
        model = self.assessment.model
        if model.suffix == ".onnx":
            files = [str(model)]
        else:
            stem = str(model.with_suffix("")) if model.suffix in (".safetensors", ".json") else str(model)
            files = [f"{stem}.safetensors", f"{stem}.json"]
        return files + [str(self.assessment.data)]

    def assess_report_files(self):
        page = self.paths.assess_report(self.assessment.name)
        return [str(page), str(page.with_name("vnnlib.parquet")), str(page.with_name("results.csv"))]

    def report_files(self, family):
        """Every file the report stage of `family` writes at this site, as the catalog lists them."""
        root = self.paths.of(REPORT_STAGES[family])
        return [str(root / p.relative_to(self.paths.experiment_root)) for p in catalog.family_files(self.cfg, family)]


SITES = [Site(CFG, DATASET_CFGS)] + [Site(p.cfg, p.dataset_cfgs, p.point, p.own, i) for i, p in enumerate(POINTS)
                                     if ONLY_POINT in (None, p.point.name)]


def sites_running(stage_name):
    """The sites a stage's rules are defined for (the experiment always, a point when the stage is
    its own)."""
    return [site for site in SITES if site.runs(stage_name)]


def paper_numbers_file(family):
    """The paper's printed numbers a report compares with: an input, so a corrected transcription
    reruns the report."""
    return str(Path(catalog.__file__).parent / "paper" / f"{catalog.PAPER_OF_FAMILY[family]}.yaml")


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


# The families whose report some point of the sweep runs itself; the others are the experiment's.
SWEEP_FAMILIES = [f for f in catalog.FAMILIES if any(REPORT_STAGES[f] in p.own for p in POINTS)]


def sweep_report_files():
    """Per point, the report files of every family the sweep changes (at the point's root where it
    runs the report itself, else the experiment's)."""
    return {site.point.name: {family: site.report_files(family) for family in SWEEP_FAMILIES}
            for site in SITES if site.point is not None}


def sweep_plan_file():
    """The sweep's plan, what its summary stage reads: written when it changed, atomically (like the
    caption files, it is a source of the summary job, so a changed plan reruns it)."""
    path = PATHS.sweep_plan(SWEEP.name)
    reports = sweep_report_files()
    document = {
        "sweep": SWEEP.name, "file": str(SWEEP.path), "keys": list(SWEEP.keys),
        "families": SWEEP_FAMILIES,
        "points": [{"name": p.point.name, "values": p.point.values, "overrides": p.point.overrides(),
                    "own": sorted(p.own), "reports": reports[p.point.name]} for p in POINTS],
    }
    text = json.dumps(document, indent=1, sort_keys=True) + "\n"
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_suffix(f".{os.getpid()}.tmp")
        staged.write_text(text)
        staged.replace(path)
    return str(path)


def _any_of(values):
    return "|".join(re.escape(v) for v in sorted(set(values)))


# Over every site: a point's rules and the experiment's rules of its shared stages both match them.
wildcard_constraints:
    dataset=_any_of(d for site in SITES for d in site.datasets),
    cost=_any_of(c for site in SITES for c in site.costs),
    model=_any_of(m for site in SITES for m in site.proven_models),
    instance=_any_of(i for site in SITES for i in site.ensemble_instances),
    index=r"[0-9]+",
    row=r"[0-9]+",
    clip=r"[0-9]+",
    trial=r"[0-9]+",
    variant=_any_of(v for site in SITES for v in site.kri_models),
    scenario=_any_of(s for site in SITES for s in site.kri_scenarios),
    property=_any_of(ASSESSMENT.properties) if ASSESSMENT and ASSESSMENT.properties else r"[^/]+",
