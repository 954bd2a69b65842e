"""Metrics of Sec. 4.1: accuracy, macro and per-class F1, classification cost (Table 2)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import accuracy_score, f1_score


@dataclass(frozen=True)
class ClassificationMetrics:
    accuracy: float
    f1_macro: float
    f1_class0: float
    f1_class1: float
    false_negatives: int
    false_positives: int
    total_cost: float
    cost_per_sample: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def classification_cost(y_true: np.ndarray, y_pred: np.ndarray, cost_fn: float, cost_fp: float) -> float:
    """Total cost of Table 2: c10 per true-1-predicted-0 plus c01 per true-0-predicted-1."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    false_negatives = int(((y_true == 1) & (y_pred == 0)).sum())
    false_positives = int(((y_true == 0) & (y_pred == 1)).sum())
    return cost_fn * false_negatives + cost_fp * false_positives


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, cost_fn: float, cost_fp: float = 1.0
) -> ClassificationMetrics:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal, non-empty shapes")
    per_class = f1_score(y_true, y_pred, labels=[0, 1], average=None, zero_division=0.0)
    total = classification_cost(y_true, y_pred, cost_fn, cost_fp)
    return ClassificationMetrics(
        accuracy=float(accuracy_score(y_true, y_pred)),
        f1_macro=float(per_class.mean()),
        f1_class0=float(per_class[0]),
        f1_class1=float(per_class[1]),
        false_negatives=int(((y_true == 1) & (y_pred == 0)).sum()),
        false_positives=int(((y_true == 0) & (y_pred == 1)).sum()),
        total_cost=float(total),
        cost_per_sample=float(total / y_true.size),
    )


def verified_accuracy(verified: np.ndarray) -> float:
    """Eqs. (3)-(4): verified (hence correctly classified) samples over all samples."""
    verified = np.asarray(verified, dtype=bool)
    if verified.size == 0:
        raise ValueError("verified accuracy of an empty set is undefined")
    return float(verified.mean())
