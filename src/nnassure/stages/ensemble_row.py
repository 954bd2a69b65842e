"""Ensemble stage: one benchmark row (``ensemble.row``) with every method of the paper's tables
(MILP on each backend, MaxMILP, SMT, uniform and best deterministic attackers), on the instance's
data file (ensemble_data) and classifiers (ensemble_train). Writes ``ensemble/rows/<id>.json``
(parameters, classifier files, verdicts, values, times) and ``<id>.npz`` (the points, labels and
every attack: deltas per attack and point, probabilities)."""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from nnassure.ensemble.benchmarks import row_benchmark, selected_benchmarks
from nnassure.ensemble.data import data_source
from nnassure.ensemble.experiment import SolveSettings, row_document, run_row
from nnassure.ensemble.rows import load_row_inputs
from nnassure.errors import ConfigError
from nnassure.io import atomic_path, write_json
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def settings_from(cfg: DictConfig) -> SolveSettings:
    e = cfg.ensemble
    return SolveSettings(backends=tuple(e.backends), table_backend=e.table_backend, smt=e.smt,
                         time_limit=float(e.time_limit), smt_time_limit=float(e.smt_time_limit), bounds=e.bounds,
                         margin=float(e.margin), threads=int(cfg.threads), heuristic=bool(e.heuristic),
                         heuristic_starts=int(e.heuristic_starts), heuristic_steps=int(e.heuristic_steps),
                         precheck=bool(e.precheck), seed=int(e.seed))


def main(cfg: DictConfig) -> None:
    e = cfg.ensemble
    if e.row is None:
        raise ConfigError("ensemble.row is not set: name the benchmark id to run, e.g. ensemble.row=3")
    benchmark = row_benchmark(selected_benchmarks(e), int(e.row))
    paths = ExperimentPaths.from_config(cfg)
    stems = [paths.ensemble_classifier_stem(benchmark.instance, c + 1) for c in range(benchmark.classifiers)]
    inputs = load_row_inputs(benchmark, paths.ensemble_instance_data(benchmark.instance),
                             data_source(benchmark, e.signs_per_class, e.seed), stems, e.seed)
    problem = inputs.problem
    settings = settings_from(cfg)
    with tracked_run(cfg, "ensemble_row", f"row{e.row}") as tracker:
        steps = len(settings.backends) + 2 + int(settings.smt)
        with tqdm(total=steps, desc=f"benchmark {e.row}") as progress:
            methods, arrays = run_row(problem, settings, progress)
        attacks_path = paths.ensemble_attacks(e.row)
        with atomic_path(attacks_path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, points=problem.points, labels=problem.labels, **arrays)
        document = row_document(benchmark, problem, inputs.points, inputs.classifier_files, settings, methods,
                                attacks_path.name)
        write_json(document, paths.ensemble_row(e.row))
        for name, record in methods.items():
            if record.get("seconds") is not None:
                tracker.summary({f"{name}/seconds": record["seconds"], f"{name}/verdict": record["verdict"]})


if __name__ == "__main__":
    run_stage("ensemble_row", main)
