"""Train stage of the ensemble benchmarks: classifier ``ensemble.classifier`` (1-based) of one
instance (``ensemble.instance``, e.g. ``mnist_0_1-8x8``), on the instance's data file (written by
ensemble_data). Odd classifiers use Adam, even ones SGD; seeds are tried in turn until the
classifier reaches the test-accuracy bar (ensemble.min_accuracy_digits or _signs)."""

from __future__ import annotations

from omegaconf import DictConfig

from nnassure.ensemble.benchmarks import instance_benchmark, selected_benchmarks
from nnassure.ensemble.data import data_source, load_instance_data
from nnassure.ensemble.experiment import instance_shape, instance_size
from nnassure.ensemble.instances import AccuracyBarError, train_to_bar
from nnassure.errors import ConfigError, NnassureError
from nnassure.models import save_model
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    e = cfg.ensemble
    if e.instance is None or e.classifier is None:
        raise ConfigError("ensemble.instance and ensemble.classifier name the classifier to train, e.g. "
                          "ensemble.instance=mnist_0_1-8x8 ensemble.classifier=1")
    benchmarks = selected_benchmarks(e)
    benchmark = instance_benchmark(benchmarks, e.instance)
    size = instance_size(benchmarks, e.instance)
    if e.classifier > size:
        raise ConfigError(f"ensemble.classifier={e.classifier}: the rows of {e.instance} use {size} classifiers")
    paths = ExperimentPaths.from_config(cfg)
    data = load_instance_data(paths.ensemble_instance_data(e.instance),
                              data_source(benchmark, e.signs_per_class, e.seed))
    shape = instance_shape(benchmark, e)
    bar = e.min_accuracy_digits if benchmark.dataset == "digits" else e.min_accuracy_signs
    index = int(e.classifier)
    with tracked_run(cfg, "ensemble_train", f"{e.instance}/c{index}") as tracker:
        try:
            trained = train_to_bar(data, shape, index, bar, e.training_attempts, seed=e.seed,
                                   max_epochs=e.max_epochs, progress=True, on_attempt=tracker.log)
        except AccuracyBarError as exc:
            raise NnassureError(f"{e.instance}: {exc}; raise ensemble.max_epochs or ensemble.training_attempts"
                                ) from None
        metadata = {"instance": e.instance, "index": index, "dataset": benchmark.dataset,
                    "digits": list(benchmark.digits) if benchmark.digits else None, "input_shape": list(data.shape),
                    "architecture": str(shape), "optimizer": trained.optimizer, "seed": trained.seed,
                    "test_accuracy": trained.accuracy}
        save_model(trained.model, paths.ensemble_classifier_stem(e.instance, index), metadata=metadata)
        tracker.summary({"test_accuracy": trained.accuracy, "seed": trained.seed})


if __name__ == "__main__":
    run_stage("ensemble_train", main)
