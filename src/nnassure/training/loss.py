"""The double-weighted binary cross-entropy of Eqs. (1)-(2) of the verified-classification paper."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def class_balance_weight(labels: np.ndarray | torch.Tensor) -> float:
    """Eq. (2): the weight n0 / n1 of class-1 samples (class 0 samples have weight 1)."""
    labels = torch.as_tensor(np.array(labels))
    n1 = int((labels == 1).sum())
    n0 = int((labels == 0).sum())
    if n1 == 0 or n0 == 0:
        raise ValueError(f"both classes are needed to weight the loss; got n0={n0}, n1={n1}")
    return n0 / n1


def weighted_bce(
    logits: torch.Tensor, labels: torch.Tensor, balance_weight: float, cost_fn: float, cost_fp: float = 1.0
) -> torch.Tensor:
    """Mean over samples of Eq. (1).

    l_i = -w_i [p y_i log sigma(a_i) + (1 - y_i) log(1 - sigma(a_i))], with w_i = ``balance_weight``
    for y_i = 1 and 1 otherwise (Eq. 2), and p = c10 / c01 = ``cost_fn / cost_fp``.
    """
    labels = labels.to(logits.dtype).reshape(logits.shape)
    p = cost_fn / cost_fp
    # log sigma(a) and log(1 - sigma(a)) = log sigma(-a), computed stably.
    per_sample = -(p * labels * F.logsigmoid(logits) + (1 - labels) * F.logsigmoid(-logits))
    weights = torch.where(labels == 1, torch.as_tensor(balance_weight, dtype=logits.dtype), 1.0)
    return (weights * per_sample).mean()
