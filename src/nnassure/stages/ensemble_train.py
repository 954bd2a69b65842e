"""Train stage of the ensemble benchmarks: classifier ``ensemble.classifier`` (1-based) of one
instance (``ensemble.instance``, e.g. ``mnist_0_1-8x8``). Odd classifiers use Adam, even ones SGD;
seeds are tried in turn until the classifier reaches the issue's test-accuracy bar."""

from __future__ import annotations

from omegaconf import DictConfig

from nnassure.ensemble.benchmarks import selected_benchmarks
from nnassure.ensemble.experiment import instance_data, instance_shape, instance_size
from nnassure.ensemble.instances import train_ensemble
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
    if e.instance not in {b.instance for b in benchmarks}:
        raise ConfigError(f"ensemble.instance={e.instance}: no row of this experiment (ensemble.rows) uses it")
    size = instance_size(benchmarks, e.instance)
    if e.classifier > size:
        raise ConfigError(f"ensemble.classifier={e.classifier}: the rows of {e.instance} use {size} classifiers")
    benchmark = next(b for b in benchmarks if b.instance == e.instance)
    data = instance_data(benchmark, e.signs_per_class, e.seed)
    shape = instance_shape(benchmark, e)
    bar = e.min_accuracy_digits if benchmark.dataset == "digits" else e.min_accuracy_signs
    index = int(e.classifier)
    with tracked_run(cfg, "ensemble_train", f"{e.instance}/c{index}") as tracker:
        best = None
        for attempt in range(e.training_attempts):
            seed = e.seed + index + 1000 * attempt
            models, accuracies, optimizers = train_ensemble(data, 1, shape, seed=seed, max_epochs=e.max_epochs,
                                                            progress=True, first_optimizer=(index - 1) % 2)
            tracker.log({"attempt": attempt, "seed": seed, "test_accuracy": accuracies[0]})
            if best is None or accuracies[0] > best[1]:
                best = (models[0], accuracies[0], optimizers[0], seed)
            if accuracies[0] >= bar:
                break
        assert best is not None
        model, accuracy, optimizer, seed = best
        if accuracy < bar:
            raise NnassureError(f"{e.instance}: classifier {index} reached {accuracy:.3f} test accuracy with "
                                f"{e.training_attempts} seeds, below the bar {bar}; raise ensemble.max_epochs or "
                                "ensemble.training_attempts")
        metadata = {"instance": e.instance, "index": index, "dataset": benchmark.dataset,
                    "digits": list(benchmark.digits) if benchmark.digits else None, "input_shape": list(data.shape),
                    "architecture": str(shape), "optimizer": optimizer, "seed": seed, "test_accuracy": accuracy}
        save_model(model, ExperimentPaths.from_config(cfg).ensemble_classifier_stem(e.instance, index),
                   metadata=metadata)
        tracker.summary({"test_accuracy": accuracy, "seed": seed})


if __name__ == "__main__":
    run_stage("ensemble_train", main)
