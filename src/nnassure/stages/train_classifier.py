"""Train stage for the image classifiers of PROVEN: one multi-class MLP, named by ``proven.model``
(``<dataset>_<activation>_<depth>x<width>``), saved as safetensors + JSON."""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from nnassure.config import parse_model_id
from nnassure.data import load_image_dataset
from nnassure.errors import ConfigError
from nnassure.models import MLPSpec, save_model
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run
from nnassure.training import predict_classes, train_classifier


def main(cfg: DictConfig) -> None:
    if cfg.proven.model is None:
        raise ConfigError("proven.model is not set: name the model to train, e.g. proven.model=digits_relu_2x20")
    model_id = parse_model_id(cfg.proven.model, "proven.model")
    paths = ExperimentPaths.from_config(cfg)
    data = load_image_dataset(paths.image_dataset(model_id.dataset))
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (data.arrays(s) for s in ("train", "val", "test"))
    spec = MLPSpec(depth=model_id.depth, width=model_id.width, input_dim=x_train.shape[1],
                   activation=model_id.activation, outputs=len(data.classes))
    c = cfg.images
    with tracked_run(cfg, "train_classifier", model_id.name) as tracker:
        result = train_classifier(x_train, y_train, x_val, y_val, spec, c.lr, c.weight_decay, c.batch_size,
                                  c.max_epochs, c.patience, seed=c.seed, description=f"train {model_id.name}")
        for record in result.history:
            tracker.log(record)
        accuracy = {split: float(np.mean(predict_classes(result.model, x) == y))
                    for split, x, y in (("train", x_train, y_train), ("val", x_val, y_val), ("test", x_test, y_test))}
        save_model(result.model, paths.classifier_stem(model_id.name),
                   metadata={"dataset": model_id.dataset, "classes": list(data.classes),
                             "input_shape": list(data.images.shape[1:]), "best_epoch": result.best_epoch,
                             "accuracy": accuracy, "optimizer": "adam", "lr": c.lr, "seed": c.seed})
        tracker.summary({f"accuracy/{k}": v for k, v in accuracy.items()})


if __name__ == "__main__":
    run_stage("train_classifier", main)
