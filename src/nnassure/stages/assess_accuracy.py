"""Clean accuracy and cost of an assessed model on the user's data
(``results/<experiment>/assess/<name>/accuracy.json`` and ``accuracy.parquet``)."""

from __future__ import annotations

from omegaconf import DictConfig

from nnassure.io import write_json, write_parquet
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    from nnassure.assess.experiment import clean_accuracy, imported

    paths = ExperimentPaths.from_config(cfg)
    name, model, data = imported(cfg)
    costs = None if cfg.assess.costs is None else [list(map(float, row)) for row in cfg.assess.costs]
    summary, frame = clean_accuracy(model, data, costs)
    with tracked_run(cfg, "assess_accuracy", name) as tracker:
        target = paths.assess_accuracy(name)
        write_parquet(frame, target.with_suffix(".parquet"))
        write_json(summary, target)
        tracker.summary({"accuracy": summary["accuracy"], "mean_cost": summary["mean_cost"]})
    print(f"assess_accuracy {name}: accuracy {summary['accuracy']:.4f}, mean cost {summary['mean_cost']:.4f}")


if __name__ == "__main__":
    run_stage("assess_accuracy", main)
