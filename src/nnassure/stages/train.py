"""Train stage: the cost-weighted MLP for one (data set, cost) pair, saved as safetensors + JSON.

The architecture comes from ``train.hparams_file`` (the search stage's winner) when given,
otherwise from ``model.*`` and ``train.*``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from omegaconf import DictConfig

from nnassure.data import load_dataset, split_arrays
from nnassure.errors import InputFileError
from nnassure.metrics import classification_metrics
from nnassure.models import save_model
from nnassure.paths import ExperimentPaths, format_cost
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run
from nnassure.training import Hyperparameters, predict_labels, train_mlp


def hyperparameters(cfg: DictConfig) -> Hyperparameters:
    t = cfg.train
    if t.hparams_file is None:
        m = cfg.model
        return Hyperparameters(m.depth, m.width, m.dropout, t.lr, t.weight_decay, t.batch_size,
                               t.max_epochs, t.patience)
    path = Path(t.hparams_file)
    try:
        found = json.loads(path.read_text())["hyperparameters"]
        return Hyperparameters(int(found["depth"]), int(found["width"]), float(found["dropout"]),
                               float(found["lr"]), float(found["weight_decay"]), t.batch_size,
                               t.max_epochs, t.patience)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputFileError(
            f"{path}: not a search result ({type(exc).__name__}: {exc}); expected the JSON of the search stage"
        ) from None


def main(cfg: DictConfig) -> None:
    paths = ExperimentPaths.from_config(cfg)
    name, cost = cfg.dataset.name, cfg.train.cost_fn
    frame = load_dataset(paths.dataset(name))
    hparams = hyperparameters(cfg)
    x_train, y_train = split_arrays(frame, "train")
    x_val, y_val = split_arrays(frame, "val")
    with tracked_run(cfg, "train", f"{name}_c{format_cost(cost)}") as tracker:
        result = train_mlp(x_train, y_train, x_val, y_val, hparams, cost, cfg.train.cost_fp,
                           seed=cfg.train.seed, description=f"train {name} c10={format_cost(cost)}")
        for record in result.history:
            tracker.log(record)
        metrics = {
            split: classification_metrics(y, predict_labels(result.model, x), cost, cfg.train.cost_fp).as_dict()
            for split, x, y in (("train", x_train, y_train), ("val", x_val, y_val))
        }
        save_model(
            result.model,
            paths.model_stem(name, cost),
            metadata={"dataset": name, "cost_fn": cost, "cost_fp": cfg.train.cost_fp,
                      "hyperparameters": asdict(hparams), "best_epoch": result.best_epoch,
                      "metrics": metrics},
        )
        tracker.summary({f"{split}/{k}": v for split, m in metrics.items() for k, v in m.items()})


if __name__ == "__main__":
    run_stage("train", main)
