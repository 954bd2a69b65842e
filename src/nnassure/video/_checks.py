"""Float64 helpers shared by the MSR bounds of the video classifier (upper and lower bounds).

Everything the bounds report is judged by the float64 network: a deep copy of the model with its
float32 weights cast to float64 (exactly: every float32 is a float64), applied to float64 flows.
An adversarial flow counts only if some other class beats the clip's class by at least
``margin`` in these float64 logits, so a reported class change is not a float32 rounding artefact.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from nnassure.errors import ConfigError

NORMS = ("l1", "l2", "linf")


def check_norm(norm: str) -> str:
    """``norm`` if it is one of l1, l2, linf; otherwise a one-line :class:`ConfigError`."""
    if norm not in NORMS:
        raise ConfigError(f"unknown norm {norm!r}: expected one of {', '.join(NORMS)}")
    return norm


def dual_exponent(norm: str) -> float:
    """q with 1/p + 1/q = 1: the norm of a gradient that bounds a first-order change (Hoelder)."""
    return {"l1": np.inf, "l2": 2.0, "linf": 1.0}[check_norm(norm)]


def lp_norm(delta: np.ndarray, norm: str) -> np.ndarray:
    """The ``norm`` of each ``delta[k]`` over all its trailing dimensions (a scalar for one flow)."""
    p = {"l1": 1, "l2": 2, "linf": np.inf}[check_norm(norm)]
    delta = np.asarray(delta, np.float64)
    if delta.ndim == 4:  # one flow sequence (T, 2, g, g)
        return np.linalg.norm(delta.ravel(), p)
    return np.linalg.norm(delta.reshape(len(delta), -1), p, axis=1)


def as_float64(model: nn.Module) -> nn.Module:
    """The model itself if its parameters are float64, else a float64 deep copy in eval mode."""
    if all(param.dtype == torch.float64 for param in model.parameters()):
        return model.eval()
    return copy.deepcopy(model).to(torch.float64).eval()


def classify64(model: nn.Module, flows: np.ndarray) -> np.ndarray:
    """Float64 logits ``(n, classes)`` of flows ``(n, T, 2, g, g)`` (module docstring)."""
    model64 = as_float64(model)
    with torch.no_grad():
        return model64(torch.as_tensor(np.asarray(flows, np.float64))).numpy()


def class_margins(logits: np.ndarray, label: int) -> np.ndarray:
    """m_c = logit_label - logit_c per row and class ``(n, classes)``; +inf in the label's column."""
    margins = logits[:, [label]] - logits
    margins[:, label] = np.inf
    return margins


def is_adversarial(logits: np.ndarray, label: int, margin: float) -> np.ndarray:
    """Per row: another class is ahead of ``label`` by at least ``margin`` (float64 logits)."""
    return class_margins(logits, label).min(axis=1) <= -margin


def rounding_allowance(logits: np.ndarray) -> np.ndarray:
    """Per row, a float64 error allowance for the logits: 1e-9 of (1 + their largest magnitude).

    Why it suffices (an engineering argument, not a proof): a float64 dot product of n terms is
    off by at most gamma_n ~ n * 1.1e-16 times the sum of the terms' magnitudes; the flow network
    has fan-ins below 10^3 and a handful of layers, so each layer adds ~1e-13 of the magnitudes
    of its inputs, and sigmoid/tanh/ReLU do not amplify an error. The allowance therefore covers
    the rounding as long as the intermediate magnitudes stay below ~10^4 times the logit scale,
    which holds for pooled flows of a few pixels per frame and trained weights of order one (the
    LSTM state is bounded by 1 in magnitude, so only the CNN's pre-activations can grow).
    """
    return 1e-9 * (1.0 + np.abs(logits).max(axis=1))
