"""Ensemble stage: one benchmark row (``ensemble.row``) with every method of the paper's tables
(MILP on each backend, MaxMILP, SMT, uniform and best deterministic attackers). Writes
``ensemble/rows/<id>.json`` (parameters, classifier files, verdicts, values, times) and
``<id>.npz`` (the points, labels and every attack: deltas per attack and point, probabilities)."""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from nnassure.ensemble.benchmarks import selected_benchmarks
from nnassure.ensemble.encoding import AttackProblem
from nnassure.ensemble.experiment import SolveSettings, instance_data, row_document, run_row
from nnassure.ensemble.instances import attack_points, attack_problem
from nnassure.errors import ConfigError, InputFileError
from nnassure.io import atomic_path, write_json
from nnassure.models import load_model
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def settings_from(cfg: DictConfig) -> SolveSettings:
    e = cfg.ensemble
    return SolveSettings(backends=tuple(e.backends), table_backend=e.table_backend, smt=e.smt,
                         time_limit=float(e.time_limit), smt_time_limit=float(e.smt_time_limit), bounds=e.bounds,
                         margin=float(e.margin), threads=int(cfg.threads))


def load_problem(cfg: DictConfig, row: int) -> tuple[object, AttackProblem, np.ndarray, list[str]]:
    """The row's benchmark, its attack problem, the chosen point indices and the classifier files
    (shared by this stage and ``make bench``)."""
    e = cfg.ensemble
    benchmarks = {b.id: b for b in selected_benchmarks(e)}
    if row not in benchmarks:
        raise ConfigError(f"ensemble.row={row} is not among the experiment's rows {sorted(benchmarks)}")
    benchmark = benchmarks[row]
    paths = ExperimentPaths.from_config(cfg)
    stems = [paths.ensemble_classifier_stem(benchmark.instance, c + 1) for c in range(benchmark.classifiers)]
    models = [load_model(stem).model for stem in stems]
    data = instance_data(benchmark, e.signs_per_class, e.seed)
    for stem, model in zip(stems, models, strict=True):
        if model.spec.input_dim != data.x.shape[1] or model.spec.outputs != 2:
            raise InputFileError(f"benchmark {row}: {stem} takes {model.spec.input_dim} inputs and gives "
                                 f"{model.spec.outputs} logits, the row needs {data.x.shape[1]} and 2: the classifiers "
                                 "do not fit the row; retrain them (ensemble_train)")
    try:
        points = attack_points(models, data, benchmark.points, e.seed)
    except ValueError as exc:
        raise InputFileError(f"benchmark {row}: {exc}; the classifiers in {stems[0].parent} do not fit the data "
                             "(retrain them)") from None
    try:
        problem = attack_problem(models, data, points, benchmark.attacks, benchmark.eps, benchmark.alpha)
    except ValueError as exc:
        raise InputFileError(f"benchmark {row}: the classifiers in {stems[0].parent} do not fit the row ({exc}); "
                             "retrain them (ensemble_train)") from None
    return benchmark, problem, points, [str(stem.with_suffix(".safetensors")) for stem in stems]


def main(cfg: DictConfig) -> None:
    e = cfg.ensemble
    if e.row is None:
        raise ConfigError("ensemble.row is not set: name the benchmark id to run, e.g. ensemble.row=3")
    benchmark, problem, points, files = load_problem(cfg, int(e.row))
    settings = settings_from(cfg)
    paths = ExperimentPaths.from_config(cfg)
    with tracked_run(cfg, "ensemble_row", f"row{e.row}") as tracker:
        steps = len(settings.backends) + 2 + int(settings.smt)
        with tqdm(total=steps, desc=f"benchmark {e.row}") as progress:
            methods, arrays = run_row(problem, settings, progress)
        attacks_path = paths.ensemble_attacks(e.row)
        with atomic_path(attacks_path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, points=problem.points, labels=problem.labels, **arrays)
        document = row_document(benchmark, problem, points, files, settings, methods, attacks_path.name)
        write_json(document, paths.ensemble_row(e.row))
        for name, record in methods.items():
            if record.get("seconds") is not None:
                tracker.summary({f"{name}/seconds": record["seconds"], f"{name}/verdict": record["verdict"]})


if __name__ == "__main__":
    run_stage("ensemble_row", main)
