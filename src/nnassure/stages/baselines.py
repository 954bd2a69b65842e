"""Baselines stage: LR, NB, SVM, GB on one data set (Sec. 2.1, Table 1)."""

from __future__ import annotations

from omegaconf import DictConfig

from nnassure.baselines import run_baselines
from nnassure.data import load_dataset, split_arrays
from nnassure.io import write_csv
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    paths = ExperimentPaths.from_config(cfg)
    frame = load_dataset(paths.dataset(cfg.dataset.name))
    with tracked_run(cfg, "baselines", cfg.dataset.name) as tracker:
        x_train, y_train = split_arrays(frame, "train")
        x_val, y_val = split_arrays(frame, "val")
        table = run_baselines(x_train, y_train, x_val, y_val, seed=cfg.dataset.seed)
        write_csv(table, paths.baselines(cfg.dataset.name), float_format="%.6f")
        tracker.log_table("baselines", table)


if __name__ == "__main__":
    run_stage("baselines", main)
