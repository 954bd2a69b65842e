"""Sweeps: a config file listing keys and values, each point its own set of jobs.

A sweep file (``conf/sweep/<name>.yaml``) is a W&B sweep configuration restricted to what runs
without W&B's server: ``method: grid`` and ``parameters: {<key>: {values: [...]}}``; the points
are the product of the value lists, in the file's order. The same file can be given to
``wandb sweep`` (its ``command`` runs ``python -m nnassure.sweep agent``, which maps the agent's
values onto the point of this file and runs that point's jobs), but nothing here needs W&B.

Which jobs a point runs itself follows from the keys each stage reads (nnassure.stage_keys): a
stage is the point's *own* when a key it reads has another value there, or when it reads the
artifacts of an own stage (``StageKeys.inputs``, downstream closure). Own stages write under
``results/<experiment>/sweeps/<sweep>/<point>/``; every other stage's artifacts are the
experiment's and are shared, so a sweep over ``certify.eps`` trains no model. A stage of a point
that is not its own but has jobs the experiment lacks (a new data set or cost) computes exactly
what the experiment would compute for them, so those jobs run once, where the experiment keeps
its artifacts, and every point that needs them shares them.

A key that a rule sets per job from a wildcard is swept through the list the wildcards come
from: ``train.cost_fn: {values: [5]}`` is the point ``grid.costs=[5]`` (the search, training and
certification at cost 5 and the reports of that one cost), and likewise ``dataset.name``,
``proven.model``, ``ensemble.row`` and ``kri.variant``. Keys that say where outputs go or how a job
runs (``results_dir``, ``grid.name``, ``tracking``, ``threads``, ``resources``, ``sweep``) cannot be
swept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from nnassure.errors import ConfigError
from nnassure.stage_keys import EXECUTION_KEYS, STAGES

# A per-job key and the list of the config its values come from.
JOB_KEY_LISTS = {
    "dataset.name": "grid.datasets",
    "train.cost_fn": "grid.costs",
    "proven.model": "proven.models",
    "ensemble.row": "ensemble.rows",
    "kri.variant": "kri.models",
}
# Keys a stage reads only to find its own job among those that exist: which benchmark rows run
# decides which ensemble instances are built, not how one is built, trained or solved. A point that
# selects a subset of the experiment's rows shares those stages' jobs; one with a row the experiment
# does not run owns them (the experiment's jobs refuse a row outside its selection).
JOB_SELECTION_KEYS = {"ensemble.rows": ("ensemble_data", "ensemble_train", "ensemble_row")}


def _selected_rows(cfg: DictConfig) -> set[int]:
    from nnassure.ensemble.benchmarks import selected_benchmarks

    return {b.id for b in selected_benchmarks(cfg.ensemble)}
# The stage that writes each family's tables and figures.
REPORT_STAGES = {"verified-classification": "report", "proven": "report_proven", "ensemble": "report_ensemble",
                 "video": "report_video", "kri": "report_kri"}
# What W&B's sweep configuration may hold besides method and parameters (ignored here).
_WANDB_KEYS = {"name", "description", "program", "command", "metric", "project", "entity", "early_terminate",
               "run_cap"}
_POINT_NAME = re.compile(r"[^A-Za-z0-9._,=+-]+")


@dataclass(frozen=True)
class SweepPoint:
    """One point: a value per sweep key, named after them (``certify.eps=0.01,0.025``)."""

    name: str
    values: dict[str, Any]

    def overrides(self) -> list[str]:
        """The Hydra overrides that make this point's config from the experiment's."""
        out = []
        for key, value in self.values.items():
            if key in JOB_KEY_LISTS:
                out.append(f"{JOB_KEY_LISTS[key]}={hydra_value([value])}")
            else:
                out.append(f"{key}={hydra_value(value)}")
        return out


@dataclass(frozen=True)
class Sweep:
    name: str
    path: Path
    keys: tuple[str, ...]
    points: tuple[SweepPoint, ...]

    def point(self, name: str) -> SweepPoint:
        for point in self.points:
            if point.name == name:
                return point
        raise ConfigError(f"sweep {self.name} has no point {name!r}: expected one of "
                          + ", ".join(p.name for p in self.points))


@dataclass
class PlannedPoint:
    """A point with its composed config, its per-data-set configs, the stages it runs itself, and
    the experiment's config of each of its data sets (those the experiment's grid lacks composed
    for it: the shared stages' jobs of those data sets run with them)."""

    point: SweepPoint
    cfg: DictConfig
    dataset_cfgs: dict[str, DictConfig]
    own: frozenset[str] = field(default_factory=frozenset)
    experiment_dataset_cfgs: dict[str, DictConfig] = field(default_factory=dict)


def hydra_value(value: Any) -> str:
    """``value`` in Hydra's override grammar (lists, mappings, numbers, booleans, null, strings)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    raise ConfigError(f"sweep value {value!r} is not a number, string, boolean, list or mapping")


def _name_part(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_name_part(v) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return _POINT_NAME.sub("-", text) or "-"


def _check_key(sweep: str, key: Any) -> str:
    if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
        raise ConfigError(f"sweep {sweep}: parameter {key!r} is not a config key: expected a dotted key such as "
                          "certify.eps")
    for execution in EXECUTION_KEYS:
        if key == execution or key.startswith(execution + "."):
            raise ConfigError(f"sweep {sweep}: {key} says where outputs go or how jobs run and cannot be swept; "
                              "sweep a key a stage reads, e.g. certify.eps")
    job_keys = {k for keys in STAGES.values() for k in keys.job}
    if key in job_keys and key not in JOB_KEY_LISTS:
        raise ConfigError(f"sweep {sweep}: {key} is set per job by the Snakefile and cannot be swept; sweep the "
                          "list its jobs come from (" + ", ".join(f"{k} via {v}" for k, v in JOB_KEY_LISTS.items())
                          + ")")
    return key


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file; raise :class:`ConfigError` naming the problem in one line."""
    path = Path(path)
    name = path.stem
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,40}", name):
        raise ConfigError(f"sweep file {path}: its name {name!r} names the sweep's directory, rule names and W&B "
                          "group: expected at most 40 letters, digits, '.', '_' or '-'")
    if not path.is_file():
        raise ConfigError(f"sweep file {path} does not exist: expected a YAML file such as conf/sweep/eps.yaml")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"sweep file {path} is not YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"sweep file {path}: expected a mapping with method: grid and parameters")
    unknown = sorted(set(document) - {"method", "parameters"} - _WANDB_KEYS)
    if unknown:
        raise ConfigError(f"sweep file {path}: unknown key {unknown[0]!r}: expected method, parameters "
                          "(and W&B's name, description, command, metric)")
    if document.get("method", "grid") != "grid":
        raise ConfigError(f"sweep {name}: method {document['method']!r} is not supported: expected grid "
                          "(random and bayes need W&B's sweep controller)")
    parameters = document.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise ConfigError(f"sweep {name}: parameters is empty: expected parameters: {{<key>: {{values: [...]}}}}")
    keys, value_lists = [], []
    for key, spec in parameters.items():
        keys.append(_check_key(name, key))
        if not isinstance(spec, dict) or set(spec) != {"values"}:
            raise ConfigError(f"sweep {name}: parameter {key} must be {{values: [...]}} (a grid sweep lists values)")
        values = spec["values"]
        if not isinstance(values, list):
            raise ConfigError(f"sweep {name}: parameter {key} has values {values!r}: expected a list of values")
        if not values:
            raise ConfigError(f"sweep {name}: parameter {key} has an empty value list: expected at least one value")
        value_lists.append(values)
    for key in keys:
        inner = [other for other in keys if other.startswith(key + ".")]
        if inner:
            raise ConfigError(f"sweep {name}: parameters {key} and {inner[0]} overlap: sweep one of them")
    points = []
    for combination in product(*value_lists):
        values = dict(zip(keys, combination, strict=True))
        point_name = "_".join(f"{key}={_name_part(value)}" for key, value in values.items())
        points.append(SweepPoint(point_name, values))
    names = [p.name for p in points]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"sweep {name}: two points share the name {duplicates[0]!r}: make the values distinct")
    return Sweep(name, path, tuple(keys), tuple(points))


def _base_key(key: str) -> str:
    """The part of a stage key before its first ``{reference}``: the whole mapping it indexes."""
    return key.split(".{", 1)[0].rstrip(".")


def _values(cfg: DictConfig, stage: str, selecting: frozenset[str] = frozenset()) -> dict[str, Any]:
    out = {}
    for key in STAGES[stage].reads:
        if key in selecting:
            continue
        value = OmegaConf.select(cfg, _base_key(key))
        out[key] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    return out


def stage_values(cfg: DictConfig, dataset_cfgs: Mapping[str, DictConfig], stage: str) -> dict[str, Any]:
    """The values of the keys ``stage`` reads: per data set for the stages of a data set's jobs."""
    if "dataset.name" in STAGES[stage].job:
        return {name: _values(dataset_cfg, stage) for name, dataset_cfg in dataset_cfgs.items()}
    return _values(cfg, stage)


def changed_stages(base: tuple[DictConfig, Mapping[str, DictConfig]],
                   point: tuple[DictConfig, Mapping[str, DictConfig]]) -> frozenset[str]:
    """The stages that read a key whose value differs between the two configs. The per-data-set
    stages are compared on every data set of the point, so ``base`` must hold the experiment's
    config of each of them (:func:`plan` composes those the experiment's grid lacks)."""
    missing = sorted(set(point[1]) - set(base[1]))
    if missing:
        raise ConfigError(f"no experiment config for the data set(s) {', '.join(missing)} of the point to compare with")
    changed = set()
    for stage in STAGES:
        if stage == "sweep_summary":
            continue
        if "dataset.name" in STAGES[stage].job:
            before = stage_values(base[0], {n: base[1][n] for n in point[1]}, stage)
            after = stage_values(point[0], point[1], stage)
        else:
            selecting = frozenset(key for key, stages in JOB_SELECTION_KEYS.items()
                                  if stage in stages and _selected_rows(point[0]) <= _selected_rows(base[0]))
            before, after = _values(base[0], stage, selecting), _values(point[0], stage, selecting)
        if before != after:
            changed.add(stage)
    return frozenset(changed)


def downstream(stages: frozenset[str]) -> frozenset[str]:
    """``stages`` and every stage that reads, directly or not, an artifact of one of them."""
    closed = set(stages)
    grew = True
    while grew:
        grew = False
        for name, keys in STAGES.items():
            if name not in closed and closed.intersection(keys.inputs):
                closed.add(name)
                grew = True
    return frozenset(closed)


def plan(sweep: Sweep, base_overrides: Sequence[str],
         base: tuple[DictConfig, Mapping[str, DictConfig]]) -> list[PlannedPoint]:
    """Every point composed on top of ``base_overrides`` and checked, with its own stages."""
    from nnassure.config import compose_pipeline

    planned = []
    for point in sweep.points:
        try:
            cfg, dataset_cfgs = compose_pipeline([*base_overrides, *point.overrides()])
            # The experiment's config of a data set only the point has: what its shared stages would run.
            new = sorted(set(dataset_cfgs) - set(base[1]))
            base_datasets = dict(base[1])
            if new:
                base_datasets.update(compose_pipeline([*base_overrides, f"grid.datasets=[{','.join(new)}]"])[1])
        except ConfigError as exc:
            raise ConfigError(f"sweep {sweep.name}, point {point.name}: {exc}") from None
        # A point no stage's keys tell apart from the experiment (its default value, say) is the
        # experiment: it runs nothing of its own and its numbers are the experiment's.
        own = downstream(changed_stages((base[0], base_datasets), (cfg, dataset_cfgs)))
        planned.append(PlannedPoint(point, cfg, dataset_cfgs, own, base_datasets))
    return planned
