"""Training: the cost-weighted MLP (Sec. 3.1, 4.2) and multi-class image classifiers."""

from nnassure.training.loss import class_balance_weight, weighted_bce
from nnassure.training.trainer import (
    Hyperparameters,
    TrainResult,
    predict_classes,
    predict_labels,
    predict_logits,
    train_classifier,
    train_mlp,
)

__all__ = [
    "Hyperparameters",
    "TrainResult",
    "class_balance_weight",
    "predict_classes",
    "predict_labels",
    "predict_logits",
    "train_classifier",
    "train_mlp",
    "weighted_bce",
]
