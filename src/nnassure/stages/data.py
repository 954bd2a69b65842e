"""Data stage: generate data set ``dataset.name`` with its stratified validation split."""

from __future__ import annotations

from omegaconf import DictConfig

from nnassure.data import generate_dataset, stratified_split
from nnassure.io import write_parquet
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    ds = cfg.dataset
    with tracked_run(cfg, "data", ds.name) as tracker:
        frame = generate_dataset(ds.name, ds.n_samples, ds.minority_fraction, ds.margin, ds.seed)
        frame = stratified_split(frame, ds.val_fraction, ds.seed)
        write_parquet(frame, ExperimentPaths.from_config(cfg).dataset(ds.name))
        counts = frame.groupby(["split", "label"]).size()
        tracker.summary({f"n_{split}_class{label}": int(n) for (split, label), n in counts.items()})


if __name__ == "__main__":
    run_stage("data", main)
