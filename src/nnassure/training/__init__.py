"""Cost-weighted training of the MLP (Sec. 3.1, 4.2)."""

from nnassure.training.loss import class_balance_weight, weighted_bce
from nnassure.training.trainer import Hyperparameters, TrainResult, predict_labels, predict_logits, train_mlp

__all__ = [
    "Hyperparameters",
    "TrainResult",
    "class_balance_weight",
    "predict_labels",
    "predict_logits",
    "train_mlp",
    "weighted_bce",
]
