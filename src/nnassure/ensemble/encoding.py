"""MILP encoding of optimal randomized attacks on a classifier ensemble (Gross et al., Sec. 5).

Variables: delta_i^{j,k} (attack i, point j, input k), p_i (probability of attack i), the 0-1
loss l^c_{i,j} (binary), q^c_{i,j} = p_i * l^c_{i,j}, and one copy of every classifier per
(attack, point). Constraints (Sec. 5.1):

- Eq. (4): for every classifier c, sum_{i,j} q^c_{i,j} >= alpha |X|   (Val(A, P) >= alpha),
- Eq. (5): sum_k |delta_i^{j,k}| <= eps, through t >= |delta| (only an upper bound is needed),
- Eqs. (6)-(7): sum_i p_i = 1, p_i >= 0,
- the product q = p l by q <= p, q <= l, q >= 0: Eq. (4) and the objectives only push q up, so
  these upper bounds are exact (the paper's big-M product with M = 1 adds q >= p - (1 - l)),
- the loss (Def. 4, a tie counts as a misclassification): l = 1 only if some other class o has
  y_o - y_t >= margin, by binaries z_o with l <= sum_o z_o and big-M rows. One direction is
  enough: a feasible l is at most the true loss, so every solution is a genuine attack, and every
  genuine attack is a solution with l set to its true loss,
- dense (and unrolled convolution) layers as equality rows, ReLU y = max(0, z) by big-M from
  pre-activation bounds L <= z <= U over the attack's input set (stable ReLUs need no binary),
  max-pooling y = max_r z_r by y >= z_r and one binary per candidate r selecting the maximum,
  y <= z_r + (U_max - L_r)(1 - s_r) (inputs that can never be the maximum are dropped, and a
  window whose maximum is known needs no binary).

Objectives: ``feasibility`` (the MILP of Sec. 5), ``max-sum`` (MaxMILP of Sec. 6.1: maximise
sum_{c,i,j} q, Eq. (4) kept) and ``max-val`` (maximise v <= (1/|X|) sum_{i,j} q^c for every c,
i.e. Val itself, which the paper's footnote 6 notes max-sum need not reach).

Written by hand (no library encodes ensembles of networks with a randomized attacker); layer
encodings follow Tjeng et al.'s standard big-M form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nnassure.ensemble.layers import DenseLayer, Layer, MaxPoolLayer, input_dim, interval_bounds
from nnassure.ensemble.milp import LinearModel

OBJECTIVES = ("feasibility", "max-sum", "max-val")
# Big-M constants from interval arithmetic over the ball's Linf box, or from CROWN over the L1
# ball intersected with it (nnassure.ensemble.bounds).
BOUNDS = ("interval", "lirpa")


@dataclass
class AttackProblem:
    """Is there an eps-bounded randomized attack of at most ``attacks`` attacks with Val >= alpha?"""

    classifiers: list[list[Layer]]
    points: np.ndarray  # (n, d)
    labels: np.ndarray  # (n,)
    attacks: int
    eps: float  # L1 bound per point (Def. 2)
    alpha: float

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=np.float64)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.points.ndim != 2 or len(self.points) != len(self.labels) or not len(self.points):
            raise ValueError("points must be (n, d) with one label per point, n >= 1")
        dims = {input_dim(layers) for layers in self.classifiers}
        if dims and dims != {self.points.shape[1]}:
            raise ValueError(f"points have {self.points.shape[1]} inputs but the classifiers take {sorted(dims)}")
        if self.attacks < 1 or self.eps < 0 or not 0.0 <= self.alpha <= 1.0 or not self.classifiers:
            raise ValueError(f"need attacks >= 1, eps >= 0, alpha in [0, 1] and a classifier; got "
                             f"attacks={self.attacks}, eps={self.eps}, alpha={self.alpha}")


@dataclass
class Encoding:
    model: LinearModel
    delta: np.ndarray  # variable indices, (attacks, n, d)
    probability: np.ndarray  # (attacks,)
    loss: np.ndarray  # (classifiers, attacks, n)
    weighted_loss: np.ndarray  # (classifiers, attacks, n)
    unstable_relus: int
    stable_relus: int
    pool_binaries: int = 0


def _point_bounds(problem: AttackProblem, bounds: str) -> list[list[list[tuple[np.ndarray, np.ndarray]]]]:
    """Pre-activation bounds per classifier, point and layer over the L1 ball (inside its Linf box)."""
    if bounds not in BOUNDS:
        raise ValueError(f"unknown bounds {bounds!r}; expected one of {', '.join(BOUNDS)}")
    if bounds == "lirpa":
        from nnassure.ensemble.bounds import L1BoundEngine

        engines = [L1BoundEngine(layers) for layers in problem.classifiers]
        raw = [[engine.bounds(x, problem.eps) for x in problem.points] for engine in engines]
    else:
        raw = [[interval_bounds(layers, x - problem.eps, x + problem.eps) for x in problem.points]
               for layers in problem.classifiers]
    return [[[_widened(lower, upper) for lower, upper in point] for point in classifier] for classifier in raw]


# Bounds are computed in floating point; widening them by far more than its rounding keeps every
# big-M constant valid (a bound a hair too tight would cut off genuine attacks).
BOUND_SLACK = 1e-9


def _widened(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return lower - BOUND_SLACK * (1 + np.abs(lower)), upper + BOUND_SLACK * (1 + np.abs(upper))


Expression = tuple[np.ndarray, np.ndarray, float]  # variable indices, coefficients, constant


def _variable(index: int) -> Expression:
    return (np.array([index]), np.array([1.0]), 0.0)


def _encode_dense(model: LinearModel, layer: DenseLayer, current: list[Expression]) -> np.ndarray:
    z = model.add_variables(len(layer.bias), -np.inf, np.inf, name="z")
    for unit in range(len(layer.bias)):
        # z_unit - sum_k W[unit, k] * input_k = b[unit] + sum_k W[unit, k] * constant_k
        indices, coefficients, constant = [np.array([z[unit]])], [np.array([1.0])], layer.bias[unit]
        for k in np.flatnonzero(layer.weight[unit]):
            idx, coef, const = current[k]
            w = layer.weight[unit, k]
            indices.append(idx)
            coefficients.append(-w * coef)
            constant += w * const
        model.add_row(np.concatenate(indices), np.concatenate(coefficients), constant, constant)
    return z


def _encode_relu(model: LinearModel, z: np.ndarray, lower: np.ndarray, upper: np.ndarray
                 ) -> tuple[list[Expression], int, int]:
    outputs: list[Expression] = []
    unstable = stable = 0
    for unit in range(len(z)):
        lo, hi = lower[unit], upper[unit]
        if hi <= 0:
            stable += 1
            outputs.append((np.zeros(0, np.int64), np.zeros(0), 0.0))
        elif lo >= 0:
            stable += 1
            outputs.append(_variable(z[unit]))
        else:
            unstable += 1
            y = model.add_variables(1, 0.0, hi, name="relu")[0]
            s = model.add_binaries(1, name="active")[0]
            model.add_row([y, z[unit]], [1.0, -1.0], lower=0.0)  # y >= z
            model.add_row([y, z[unit], s], [1.0, -1.0, -lo], upper=-lo)  # y <= z - lo (1 - s)
            model.add_row([y, s], [1.0, -hi], upper=0.0)  # y <= hi s
            outputs.append(_variable(y))
    return outputs, unstable, stable


def _encode_max_pool(model: LinearModel, layer: MaxPoolLayer, current: list[Expression], lower: np.ndarray,
                     upper: np.ndarray) -> tuple[list[Expression], int]:
    """y = max over each group, exactly (Tjeng et al.'s max encoding with input bounds)."""
    outputs: list[Expression] = []
    binaries = 0
    for group in layer.groups:
        best_lower = lower[group].max()
        # an input whose upper bound is below another's lower bound is never the maximum
        candidates = [r for r in group if upper[r] >= best_lower]
        if len(candidates) == 1:
            outputs.append(current[candidates[0]])
            continue
        top = max(upper[r] for r in candidates)
        if top <= best_lower:
            # every input lies below best_lower and one lies above it: the maximum is that constant
            # (e.g. a window of ReLUs that are all inactive)
            outputs.append((np.zeros(0, np.int64), np.zeros(0), float(best_lower)))
            continue
        y = model.add_variables(1, best_lower, top, name="pool")[0]
        chosen = model.add_binaries(len(candidates), name="argmax")
        binaries += len(candidates)
        model.add_row(chosen, np.ones(len(candidates)), 1.0, 1.0)
        for r, s in zip(candidates, chosen, strict=True):
            idx, coef, const = current[r]
            # y >= z_r;  y <= z_r + (top - lower_r)(1 - s_r)
            model.add_row(np.append(idx, y), np.append(-coef, 1.0), lower=const)
            big_m = top - lower[r]
            model.add_row(np.concatenate([idx, [y, s]]), np.concatenate([-coef, [1.0, big_m]]),
                          upper=const + big_m)
        outputs.append(_variable(y))
    return outputs, binaries


def encode_network(model: LinearModel, layers: Sequence[Layer], inputs: list[Expression],
                    input_bounds: tuple[np.ndarray, np.ndarray], layer_bounds: list[tuple[np.ndarray, np.ndarray]]
                    ) -> tuple[np.ndarray, dict[str, int]]:
    """Encode one copy of a network. ``inputs[k]`` is the k-th input as an affine expression;
    ``layer_bounds`` are the bounds of every layer's output before its ReLU. Returns the logit
    variables and the counts of unstable and stable ReLUs and of max-pooling binaries."""
    current = inputs
    lower, upper = input_bounds
    counts = {"unstable": 0, "stable": 0, "pool": 0}
    for position, (layer, (out_lower, out_upper)) in enumerate(zip(layers, layer_bounds, strict=True)):
        if isinstance(layer, MaxPoolLayer):
            current, binaries = _encode_max_pool(model, layer, current, lower, upper)
            counts["pool"] += binaries
            lower, upper = out_lower, out_upper
            continue
        z = _encode_dense(model, layer, current)
        if position == len(layers) - 1:
            return z, counts
        if layer.relu:
            current, unstable, stable = _encode_relu(model, z, out_lower, out_upper)
            counts["unstable"] += unstable
            counts["stable"] += stable
            lower, upper = np.maximum(out_lower, 0.0), np.maximum(out_upper, 0.0)
        else:
            current = [_variable(v) for v in z]
            lower, upper = out_lower, out_upper
    raise AssertionError("unreachable: the last layer gives the logits")


def encode(problem: AttackProblem, objective: str = "feasibility", bounds: str = "interval",
           margin: float = 0.0) -> Encoding:
    """Build the MILP of ``problem``. ``margin`` > 0 asks y_o - y_t >= margin for a counted
    misclassification (robust against solver tolerances, but then infeasible is no proof)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; expected one of {', '.join(OBJECTIVES)}")
    n_attacks, (n_points, dim) = problem.attacks, problem.points.shape
    n_classifiers = len(problem.classifiers)
    model = LinearModel(maximize=objective != "feasibility")
    delta = model.add_variables(n_attacks * n_points * dim, -problem.eps, problem.eps, name="delta")
    delta = delta.reshape(n_attacks, n_points, dim)
    magnitude = model.add_variables(n_attacks * n_points * dim, 0.0, problem.eps, name="abs_delta")
    magnitude = magnitude.reshape(n_attacks, n_points, dim)
    for i in range(n_attacks):
        for j in range(n_points):
            for k in range(dim):
                model.add_row([magnitude[i, j, k], delta[i, j, k]], [1.0, -1.0], lower=0.0)
                model.add_row([magnitude[i, j, k], delta[i, j, k]], [1.0, 1.0], lower=0.0)
            model.add_row(magnitude[i, j], np.ones(dim), upper=problem.eps)  # Eq. (5)
    probability = model.add_variables(n_attacks, 0.0, 1.0, name="p")  # Eq. (7)
    model.add_row(probability, np.ones(n_attacks), 1.0, 1.0)  # Eq. (6)
    loss = model.add_binaries(n_classifiers * n_attacks * n_points, name="loss").reshape(n_classifiers, n_attacks,
                                                                                           n_points)
    weighted = model.add_variables(n_classifiers * n_attacks * n_points, 0.0, 1.0, name="q")
    weighted = weighted.reshape(n_classifiers, n_attacks, n_points)
    all_bounds = _point_bounds(problem, bounds)
    counts = {"unstable": 0, "stable": 0, "pool": 0}
    for c, layers in enumerate(problem.classifiers):
        for i in range(n_attacks):
            for j in range(n_points):
                x = problem.points[j]
                inputs = [(np.array([delta[i, j, k]]), np.array([1.0]), float(x[k])) for k in range(dim)]
                logits, network_counts = encode_network(model, layers, inputs, (x - problem.eps, x + problem.eps),
                                                         all_bounds[c][j])
                for key, value in network_counts.items():
                    counts[key] += value
                _encode_loss(model, logits, int(problem.labels[j]), loss[c, i, j], all_bounds[c][j][-1], margin)
                model.add_row([weighted[c, i, j], probability[i]], [1.0, -1.0], upper=0.0)  # q <= p
                model.add_row([weighted[c, i, j], loss[c, i, j]], [1.0, -1.0], upper=0.0)  # q <= l
        model.add_row(weighted[c].ravel(), np.ones(n_attacks * n_points), lower=problem.alpha * n_points)  # Eq. (4)
    if objective == "max-sum":
        model.objective = {int(v): 1.0 for v in weighted.ravel()}
    elif objective == "max-val":
        value = model.add_variables(1, 0.0, 1.0, name="val")[0]
        for c in range(n_classifiers):
            model.add_row(np.append(weighted[c].ravel(), value),
                          np.append(np.full(n_attacks * n_points, -1.0 / n_points), 1.0), upper=0.0)
        model.objective = {int(value): 1.0}
    return Encoding(model, delta, probability, loss, weighted, counts["unstable"], counts["stable"], counts["pool"])


def _encode_loss(model: LinearModel, logits: np.ndarray, label: int, loss: int,
                 logit_bounds: tuple[np.ndarray, np.ndarray], margin: float) -> None:
    """loss = 1 only if y_o - y_t >= margin for some o != t (Def. 4: ties are misclassifications)."""
    lower, upper = logit_bounds
    others = [o for o in range(len(logits)) if o != label]
    chosen = model.add_binaries(len(others), name="wrong_class")
    model.add_row(np.append(chosen, loss), np.append(-np.ones(len(others)), 1.0), upper=0.0)  # l <= sum z
    for z, o in zip(chosen, others, strict=True):
        # z = 1 => y_o - y_t >= margin; big-M from the logit bounds: y_o - y_t >= lower_o - upper_t.
        big_m = max(margin - (lower[o] - upper[label]), 0.0)
        model.add_row([logits[o], logits[label], z], [1.0, -1.0, -big_m], lower=margin - big_m)


def attack_from_solution(encoding: Encoding, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The attack (deltas (attacks, n, d)) and its probabilities from a solver's point.

    The solver meets ||delta||_1 <= eps only up to its feasibility tolerance (about 1e-6 per
    row, summed over the inputs); rows beyond eps are scaled back onto the ball, so the attack
    checked and reported is eps-bounded exactly (the margin keeps its misclassifications).
    """
    deltas = values[encoding.delta]
    eps = float(encoding.model.upper[int(encoding.delta.flat[0])])
    norms = np.abs(deltas).sum(axis=-1, keepdims=True)
    deltas = np.where(norms > eps, deltas * (eps / np.maximum(norms, 1e-300)), deltas)
    probabilities = np.clip(values[encoding.probability], 0.0, 1.0)
    return deltas, probabilities / probabilities.sum()


def complete_assignment(encoding: Encoding, deltas: np.ndarray, probabilities: np.ndarray,
                        time_limit: float = 30.0) -> np.ndarray | None:
    """A full assignment of ``encoding``'s variables extending the attack (deltas, probabilities),
    for use as a MIP start, or None if the attack does not satisfy the encoding. The model with
    delta and p fixed is solved: every network variable is then determined by its rows, and the
    loss binaries by the misclassifications, so HiGHS settles it in presolve."""
    from nnassure.ensemble.milp import solve

    model = encoding.model
    fixed = LinearModel(list(model.lower), list(model.upper), model.integer, model.names, model.rows,
                        model.objective, model.maximize)
    # a hair inside the ball, so that sum |delta| <= eps holds despite rounding
    for index, value in zip(encoding.delta.ravel(), (np.asarray(deltas) * (1 - 1e-9)).ravel(), strict=True):
        fixed.lower[index] = fixed.upper[index] = float(value)
    for index, value in zip(encoding.probability, probabilities, strict=True):
        fixed.lower[index] = fixed.upper[index] = float(value)
    solution = solve(fixed, "highs", time_limit)
    return solution.values if solution.feasible else None
