"""Attacks are checked, not trusted: every attack a solver returns is re-evaluated here by running
the classifiers in float64 on x + delta, and its value recomputed from Eq. (1)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnassure.ensemble.layers import Layer, forward
from nnassure.errors import NnassureError

# Attacks are scaled onto the L1 ball before they are checked (encoding.attack_from_solution);
# what remains is float64 rounding of that scaling, relative to eps.
L1_RELATIVE_TOLERANCE = 1e-12


class AttackCheckError(NnassureError):
    """A solver returned an attack that does not do what it claims."""


def logits(layers: Sequence[Layer], inputs: np.ndarray) -> np.ndarray:
    """The network's logits in float64 for inputs (m, d)."""
    return forward(layers, inputs)


def zero_one_loss(layers: Sequence[Layer], inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Def. 4: 0 iff the true label's logit is strictly the largest (a tie is a misclassification)."""
    y = logits(layers, inputs)
    true = y[np.arange(len(y)), labels]
    others = y.copy()
    others[np.arange(len(y)), labels] = -np.inf
    return (others.max(axis=1) >= true).astype(np.float64)


def attack_value(classifiers: Sequence[Sequence[Layer]], points: np.ndarray, labels: np.ndarray,
                 deltas: np.ndarray, probabilities: np.ndarray) -> float:
    """Eq. (1): Val(A, P) = min_c (1/|X|) sum_x E_{delta ~ P} [loss(c, x, delta(x))]."""
    per_classifier = []
    for layers in classifiers:
        expected = sum(p * zero_one_loss(layers, points + d, labels).sum() for d, p in zip(deltas, probabilities,
                                                                                          strict=True))
        per_classifier.append(expected / len(points))
    return float(min(per_classifier))


def check_attack(classifiers: Sequence[Sequence[Layer]], points: np.ndarray, labels: np.ndarray,
                 deltas: np.ndarray, probabilities: np.ndarray, eps: float, alpha: float) -> float:
    """Recompute the attack's value; raise :class:`AttackCheckError` unless it is eps-bounded, a
    distribution, and reaches alpha. Returns the value."""
    norms = np.abs(deltas).sum(axis=-1)
    if norms.max(initial=0.0) > eps * (1.0 + L1_RELATIVE_TOLERANCE):
        raise AttackCheckError(f"attack exceeds the L1 bound: max ||delta||_1 = {norms.max():.6g} > eps = {eps:g}")
    if np.any(probabilities < 0) or abs(probabilities.sum() - 1.0) > 1e-9:
        raise AttackCheckError(f"attack probabilities are not a distribution: {probabilities}")
    value = attack_value(classifiers, points, labels, deltas, probabilities)
    if value < alpha - 1e-9:
        raise AttackCheckError(f"attack re-evaluated in float64 has Val = {value:.6f} < alpha = {alpha:g}")
    return value


def loss_counts(classifiers: Sequence[Sequence[Layer]], points: np.ndarray, labels: np.ndarray,
                deltas: np.ndarray) -> np.ndarray:
    """M_c(delta_i) of Sec. 4.1: how many points classifier c gets wrong under attack i, (|C|, |A|)."""
    return np.array([[zero_one_loss(layers, points + d, labels).sum() for d in deltas] for layers in classifiers])


def best_probabilities(counts: np.ndarray, n_points: int) -> tuple[np.ndarray, float]:
    """The distribution over fixed attacks that maximises Val (Eq. 3): max v subject to
    v <= sum_i p_i M_c(delta_i) / |X| for every c, p a distribution. A small LP, solved again in
    float64 after the MILP so that the reported probabilities are not blurred by its tolerances."""
    from scipy.optimize import linprog

    n_classifiers, n_attacks = counts.shape
    # variables: p_1..p_A, v; minimise -v
    cost = np.append(np.zeros(n_attacks), -1.0)
    rows = np.hstack([-counts / n_points, np.ones((n_classifiers, 1))])
    result = linprog(cost, A_ub=rows, b_ub=np.zeros(n_classifiers), A_eq=[np.append(np.ones(n_attacks), 0.0)],
                     b_eq=[1.0], bounds=[(0, 1)] * n_attacks + [(0, 1)], method="highs")
    if result.status != 0:
        raise AttackCheckError(f"the probability LP failed: {result.message}")
    probabilities = np.clip(result.x[:n_attacks], 0.0, None)
    probabilities /= probabilities.sum()
    return probabilities, float((counts @ probabilities).min() / n_points)
