"""PROVEN beside verified accuracy on a binary model: at each eps (Linf), which points are
verified in the worst case and which are certified with confidence gamma under bounded noise
(Case (i), Hoeffding)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from torch import nn

from nnassure.certify.bounds import BoundEngine
from nnassure.proven.bisection import BisectionSettings, RiskEvaluator

COLUMNS = ["sample_id", "eps", "label", "prediction", "correct", "verified", "proven_risk", "proven_certified",
           "gamma"]


def proven_versus_verified(network: nn.Module, x: np.ndarray, labels: np.ndarray, predicted: np.ndarray,
                           sample_ids: np.ndarray, eps: Sequence[float], gamma: float,
                           batch_size: int) -> pd.DataFrame:
    """One row per (eps, point), eps in the given order: ``verified`` if the worst-case risk is 0,
    ``proven_certified`` if the Hoeffding risk is at most 1 - gamma. ``network`` has one logit
    (class 1 iff it is >= 0); ``predicted`` are its classes, the ones the certificates speak of.

    The risks are evaluated at the given eps, not bisected, so of the bisection settings only the
    batch size (points per auto_LiRPA call) matters; the noise's sigma ratio is for Gaussian
    certificates, which are not used here."""
    settings = BisectionSettings(batch_size=int(batch_size))
    evaluator = RiskEvaluator(BoundEngine(network, x.shape[1]), x, predicted, 1, settings)
    rows = np.arange(len(x))
    parts = []
    for value in eps:
        radius = np.full(len(x), float(value))
        worst = evaluator(rows, radius, np.full(len(x), "worst-case"))
        risk = evaluator(rows, radius, np.full(len(x), "hoeffding"))
        parts.append(pd.DataFrame({
            "sample_id": sample_ids, "eps": float(value), "label": labels, "prediction": predicted,
            "correct": predicted == labels, "verified": worst == 0.0, "proven_risk": risk,
            "proven_certified": risk <= 1.0 - gamma, "gamma": gamma,
        }))
    return pd.concat(parts, ignore_index=True)


def accuracy_by_eps(result: pd.DataFrame) -> pd.DataFrame:
    """Per eps: the clean accuracy and the fraction of points correct and verified / certified."""
    return result.assign(verified=result.verified & result.correct,
                         proven=result.proven_certified & result.correct).groupby("eps")[
        ["correct", "verified", "proven"]].mean().reset_index()
