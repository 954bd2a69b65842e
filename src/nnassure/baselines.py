"""Baseline classifiers of Sec. 2.1 (Table 1): LR, Gaussian NB, RBF SVM, gradient boosting."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.svm import SVC

from nnassure.metrics import classification_metrics

BASELINE_NAMES = ("LR", "NB", "SVM", "GB")


def _make(name: str, seed: int) -> object:
    if name == "LR":
        return LogisticRegression(max_iter=1000)
    if name == "NB":
        return GaussianNB()
    if name == "SVM":
        return SVC(kernel="rbf")
    if name == "GB":
        return GradientBoostingClassifier(random_state=seed)
    raise ValueError(f"unknown baseline {name!r}; expected one of {BASELINE_NAMES}")


def run_baselines(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, seed: int = 0
) -> pd.DataFrame:
    """Train each baseline; return accuracy and macro F1 per (model, split)."""
    rows = []
    for name in BASELINE_NAMES:
        model = _make(name, seed)
        model.fit(x_train, y_train)
        for split, x, y in (("train", x_train, y_train), ("val", x_val, y_val)):
            m = classification_metrics(y, model.predict(x), cost_fn=1.0)
            rows.append({"model": name, "split": split, "accuracy": m.accuracy, "f1_macro": m.f1_macro})
    return pd.DataFrame(rows)
