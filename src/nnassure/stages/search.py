"""Search stage: the selection of the architecture search for one (data set, cost) pair (Sec. 4.2).

The trials ran as search_trial jobs, one per trial ``0..min(search.n_trials, size of the space) - 1``;
this job reads their records, checks that they are exactly the trials of the configured search
(same draw, costs and data; none missing or repeated; every one trained with ``train.batch_size``,
``search.max_epochs`` and ``search.patience``) and writes the winner (lowest validation cost per
sample, ties by validation loss then trial) and the trials table.

The trials are weighted by ``train.cost_fn``/``train.cost_fp`` and train with
``train.batch_size``; depth, width, dropout, lr and weight decay are drawn from ``search.*``, so
``model.*``, ``train.lr`` and ``train.weight_decay`` at anything but their defaults are refused
here rather than silently ignored (:func:`nnassure.config.check_searched_keys`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from omegaconf import DictConfig

from nnassure.config import check_searched_keys
from nnassure.data import load_dataset, split_arrays
from nnassure.errors import InputFileError
from nnassure.io import write_csv, write_json
from nnassure.paths import ExperimentPaths, format_cost
from nnassure.search import SearchSpace, search_identity, select_best
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def read_trials(paths: ExperimentPaths, name: str, cost: float, n_trials: int) -> list[dict[str, Any]]:
    """The records of trials ``0..n_trials - 1``, each checked to be the trial its file is named for."""
    records = []
    for trial in range(n_trials):
        path = paths.search_trial(name, cost, trial)
        remedy = f"expected the record of trial {trial} of {n_trials}, written by search_trial search.trial={trial}"
        if not path.is_file():
            raise InputFileError(f"{path}: file not found; {remedy}")
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputFileError(f"{path}: not a trial record ({type(exc).__name__}: {exc}); {remedy}") from None
        found = record.get("trial") if isinstance(record, dict) else None
        if found != trial:
            raise InputFileError(f"{path}: holds trial {found!r}; {remedy}")
        records.append(record)
    return records


def main(cfg: DictConfig) -> None:
    check_searched_keys(cfg, "in the search stage")
    paths = ExperimentPaths.from_config(cfg)
    name, cost = cfg.dataset.name, cfg.train.cost_fn
    frame = load_dataset(paths.dataset(name))
    x_train, y_train = split_arrays(frame, "train")
    x_val, y_val = split_arrays(frame, "val")
    s = cfg.search
    space = SearchSpace.from_section(s)
    identity = search_identity(x_train, y_train, x_val, y_val, space, s.n_trials, s.seed, cost, cfg.train.cost_fp)
    records = read_trials(paths, name, cost, identity["n_trials"])
    try:
        result = select_best(records, cfg.train.batch_size, s.max_epochs, s.patience, search=identity)
    except InputFileError as exc:
        # the records are files: name their directory, and what remakes them
        trials_dir = paths.search_trial(name, cost, 0).parent
        raise InputFileError(f"{trials_dir}: {exc}; rerun search_trial for this search") from None
    with tracked_run(cfg, "search", f"{name}_c{format_cost(cost)}") as tracker:
        for row in result.trials.to_dict("records"):
            tracker.log(row)
        write_csv(result.trials, paths.search_trials(name, cost), float_format="%.6g")
        write_json(
            {"dataset": name, "cost_fn": cost, "cost_fp": cfg.train.cost_fp, "best_trial": result.best_trial,
             "hyperparameters": asdict(result.best)},
            paths.search(name, cost),
        )
        tracker.log_table("trials", result.trials)
        tracker.summary({"best_trial": result.best_trial, **asdict(result.best)})


if __name__ == "__main__":
    run_stage("search", main)
