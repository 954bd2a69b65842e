"""Search stage: architecture search for one (data set, cost) pair (Sec. 4.2).

The trials are weighted by ``train.cost_fn``/``train.cost_fp`` and train with
``train.batch_size``; depth, width, dropout, lr and weight decay are drawn from ``search.*``, so
``model.*``, ``train.lr`` and ``train.weight_decay`` at anything but their defaults are refused
here rather than silently ignored (:func:`nnassure.config.check_searched_keys`).
"""

from __future__ import annotations

from dataclasses import asdict

from omegaconf import DictConfig

from nnassure.config import check_searched_keys
from nnassure.data import load_dataset, split_arrays
from nnassure.io import write_csv, write_json
from nnassure.paths import ExperimentPaths, format_cost
from nnassure.search import SearchSpace, run_search
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    check_searched_keys(cfg, "in the search stage")
    paths = ExperimentPaths.from_config(cfg)
    name, cost = cfg.dataset.name, cfg.train.cost_fn
    frame = load_dataset(paths.dataset(name))
    x_train, y_train = split_arrays(frame, "train")
    x_val, y_val = split_arrays(frame, "val")
    s = cfg.search
    space = SearchSpace(list(s.depths), list(s.widths), list(s.lrs), list(s.weight_decays), list(s.dropouts))
    with tracked_run(cfg, "search", f"{name}_c{format_cost(cost)}") as tracker:
        result = run_search(
            x_train, y_train, x_val, y_val, space, s.n_trials, cost, cfg.train.cost_fp,
            max_epochs=s.max_epochs, patience=s.patience, seed=s.seed, batch_size=cfg.train.batch_size,
            on_trial=tracker.log,
        )
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
