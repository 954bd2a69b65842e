"""Data stage of the ensemble benchmarks: the binary data set of one instance
(``ensemble.instance``, e.g. ``mnist_0_1-8x8``), made once for the ensemble_train and
ensemble_row jobs of that instance, as ``ensemble/data/<instance>.npz``."""

from __future__ import annotations

from omegaconf import DictConfig

from nnassure.ensemble.benchmarks import instance_benchmark, selected_benchmarks
from nnassure.ensemble.data import data_source, save_instance_data
from nnassure.ensemble.experiment import instance_data
from nnassure.errors import ConfigError
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    e = cfg.ensemble
    if e.instance is None:
        raise ConfigError("ensemble.instance is not set: name the instance whose data to make, e.g. "
                          "ensemble.instance=mnist_0_1-8x8")
    benchmark = instance_benchmark(selected_benchmarks(e), e.instance)
    with tracked_run(cfg, "ensemble_data", e.instance) as tracker:
        data = instance_data(benchmark, e.signs_per_class, e.seed)
        save_instance_data(data, data_source(benchmark, e.signs_per_class, e.seed),
                           ExperimentPaths.from_config(cfg).ensemble_instance_data(e.instance))
        tracker.summary({"n": len(data.x), "inputs": data.x.shape[1]}
                        | {f"{split}/n": int((data.split == split).sum()) for split in ("train", "val", "test")})


if __name__ == "__main__":
    run_stage("ensemble_data", main)
