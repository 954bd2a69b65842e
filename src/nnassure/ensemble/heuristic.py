"""A primal heuristic for the ensemble attack problem: randomized attacks found by gradient
search, so that the MILP is left to prove robustness or to improve on an attack.

The loss of Def. 4 depends on each point's perturbation alone, so an attack is assembled from
per-point pieces. For every point and every non-empty set S of classifiers, projected gradient
ascent over the L1 ball (Eq. 5) looks for a perturbation that every classifier of S misclassifies
by the encoding's margin, from several starts (the point itself, random points of the ball); the
ball's vertices +-eps e_k are tried as well (a piecewise-linear network's margin is maximised at
a vertex whenever it is linear on the ball). Each perturbation met on the way is kept with the
set of classifiers it fools; per point only the maximal sets matter (fooling more never lowers
Val). An attack i then picks one set per point, its count vector is M(delta_i) of Sec. 4.1, and
the probabilities come from the LP of Eq. (3) (``check.best_probabilities``) over the best
choice of at most |A| attacks. Every result is re-evaluated by ``check.check_attack`` in float64,
exactly as a solver's attack is.

Written by hand: the attack libraries (ART, Foolbox) attack one model towards one
misclassification; here one perturbation must fool a chosen set of classifiers at once, on the
exact float64 layer lists the MILP encodes, and the pieces are combined by the paper's LP.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from nnassure.ensemble.check import AttackCheckError, best_probabilities, check_attack, loss_counts
from nnassure.ensemble.encoding import AttackProblem
from nnassure.ensemble.layers import DenseLayer, Layer

# Enumerating the per-point choices of one attack stays below this many; beyond it, each point
# keeps only its largest sets.
MAX_CHOICES = 4096
# Subsets of the ensemble's columns tried when fewer attacks than classifiers are allowed.
MAX_COMBINATIONS = 20000


@dataclass(frozen=True)
class HeuristicSettings:
    starts: int = 8  # per point and target set: the point itself and starts - 1 random points of the ball
    steps: int = 40  # projected-gradient steps per start
    seed: int = 0


@dataclass
class HeuristicAttack:
    deltas: np.ndarray  # (|A|, n, d), every row of a point within the L1 ball
    probabilities: np.ndarray  # (|A|,)
    value: float  # Val(A, P), recomputed in float64 (check.attack_value)
    seconds: float
    # per classifier c: a perturbation per point that fools c on as many points as found, and
    # among those the fewest other classifiers (the uniform and best deterministic attackers'
    # delta_c, which attack c alone), and on how many points it fools c
    single: np.ndarray  # (|C|, n, d)
    single_fooled: np.ndarray  # (|C|,)


def project_l1_ball(v: torch.Tensor, eps: float) -> torch.Tensor:
    """Euclidean projection of each row of ``v`` onto {x : ||x||_1 <= eps} (Duchi et al. 2008,
    by sorting); rows already inside are returned unchanged."""
    magnitude = v.abs()
    inside = magnitude.sum(dim=1) <= eps
    if bool(inside.all()) or eps == 0:
        return v if eps > 0 else torch.zeros_like(v)
    ordered, _ = torch.sort(magnitude, dim=1, descending=True)
    cumulative = ordered.cumsum(dim=1) - eps
    ranks = torch.arange(1, v.shape[1] + 1, dtype=v.dtype)
    rho = (ordered - cumulative / ranks > 0).sum(dim=1, keepdim=True).clamp(min=1)
    theta = cumulative.gather(1, rho - 1) / rho.to(v.dtype)
    projected = torch.sign(v) * torch.clamp(magnitude - theta, min=0.0)
    return torch.where(inside[:, None], v, projected)


def _onto_ball(deltas: np.ndarray, eps: float) -> np.ndarray:
    """Scale rows whose L1 norm rounding left above eps back inside, so the float64 check's
    ``||delta||_1 <= eps`` holds exactly."""
    norms = np.abs(deltas).sum(axis=-1, keepdims=True)
    return np.where(norms > eps, deltas * (eps / np.maximum(norms, 1e-300) * (1 - 1e-12)), deltas)


def _torch_layers(layers: Sequence[Layer]) -> list[tuple[str, torch.Tensor, torch.Tensor | None, bool]]:
    converted = []
    for layer in layers:
        if isinstance(layer, DenseLayer):
            converted.append(("dense", torch.as_tensor(layer.weight), torch.as_tensor(layer.bias), layer.relu))
        else:
            converted.append(("pool", torch.as_tensor(layer.groups, dtype=torch.long), None, False))
    return converted


def _logits(network: list[tuple[str, torch.Tensor, torch.Tensor | None, bool]], inputs: torch.Tensor
            ) -> torch.Tensor:
    out = inputs
    for kind, weight, bias, relu in network:
        if kind == "pool":
            out = out[:, weight].max(dim=2).values
        else:
            out = out @ weight.T + bias
            if relu:
                out = torch.relu(out)
    return out


def _margins(networks: list, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """max_{o != t} y_o - y_t per classifier and input, (|C|, m): >= 0 is a misclassification (Def. 4)."""
    margins = []
    for network in networks:
        y = _logits(network, inputs)
        true = y.gather(1, labels[:, None])[:, 0]
        others = y.scatter(1, labels[:, None], float("-inf"))
        margins.append(others.max(dim=1).values - true)
    return torch.stack(margins)


class _Pieces:
    """What the search met: per point, the first perturbation fooling each set of classifiers;
    per (classifier, point), a perturbation fooling that classifier and as few others as found."""

    def __init__(self, n_classifiers: int, n_points: int, dim: int) -> None:
        self.n_classifiers = n_classifiers
        self.by_set: list[dict[tuple[bool, ...], np.ndarray]] = [{} for _ in range(n_points)]
        self.single = np.zeros((n_classifiers, n_points, dim))
        self.single_others = np.full((n_classifiers, n_points), n_classifiers + 1)  # others fooled, best so far
        self._weights = 1 << np.arange(n_classifiers)

    def record(self, deltas: np.ndarray, fooled: np.ndarray, points: np.ndarray) -> None:
        """``fooled`` (|C|, m) for the perturbations ``deltas`` (m, d) of the points ``points`` (m,)."""
        codes = self._weights @ fooled
        _, first = np.unique(points * (1 << self.n_classifiers) + codes, return_index=True)
        for row in first:
            if codes[row]:
                key = tuple(bool(v) for v in fooled[:, row])
                self.by_set[points[row]].setdefault(key, deltas[row].copy())
        count = fooled.sum(axis=0)
        for c in range(self.n_classifiers):
            for j in np.unique(points):
                rows = np.flatnonzero(fooled[c] & (points == j))
                if len(rows):
                    best = rows[np.argmin(count[rows])]
                    if count[best] - 1 < self.single_others[c, j]:
                        self.single[c, j], self.single_others[c, j] = deltas[best], count[best] - 1

    def settled(self) -> bool:
        """Nothing left to find: every point has a perturbation fooling every classifier, and every
        (classifier, point) one that fools that classifier alone."""
        full = tuple([True] * self.n_classifiers)
        return all(full in pieces for pieces in self.by_set) and bool((self.single_others == 0).all())


def _point_pieces(problem: AttackProblem, settings: HeuristicSettings, margin: float) -> _Pieces:
    """Projected gradient ascent from every start towards every target set, then the ball's vertices."""
    n_points, dim = problem.points.shape
    n_classifiers = len(problem.classifiers)
    eps = float(problem.eps)
    networks = [_torch_layers(layers) for layers in problem.classifiers]
    pieces = _Pieces(n_classifiers, n_points, dim)
    # The ball's vertices first: cheap, and at a large eps often all that is needed.
    vertices = torch.cat([torch.eye(dim, dtype=torch.float64), -torch.eye(dim, dtype=torch.float64)]) * eps
    vertex_points = torch.arange(n_points).repeat_interleave(2 * dim)
    vertex_deltas = vertices.repeat(n_points, 1)
    with torch.no_grad():
        margins = _margins(networks, torch.as_tensor(problem.points)[vertex_points] + vertex_deltas,
                           torch.as_tensor(problem.labels)[vertex_points])
    pieces.record(vertex_deltas.numpy(), (margins >= margin).numpy(), vertex_points.numpy())
    targets = [mask for mask in itertools.product((False, True), repeat=n_classifiers) if any(mask)]
    generator = torch.Generator().manual_seed(settings.seed)
    # one batch row per (point, target set, start)
    point_of = torch.arange(n_points).repeat_interleave(len(targets) * settings.starts)
    target_of = torch.arange(len(targets)).repeat_interleave(settings.starts).repeat(n_points)
    start_of = torch.arange(settings.starts).repeat(n_points * len(targets))
    wanted = torch.as_tensor(np.array(targets))[target_of].T  # (|C|, batch)
    x = torch.as_tensor(problem.points)[point_of]
    labels = torch.as_tensor(problem.labels)[point_of]
    # random starts: a Laplace direction scaled to a uniform L1 radius; start 0 is the point itself
    noise = -torch.log(torch.rand((len(x), dim), generator=generator, dtype=torch.float64))
    noise = noise * torch.where(torch.rand((len(x), dim), generator=generator) < 0.5, -1.0, 1.0)
    radius = eps * torch.rand((len(x), 1), generator=generator, dtype=torch.float64)
    delta = noise / noise.abs().sum(dim=1, keepdim=True) * radius
    delta = torch.where((start_of == 0)[:, None], torch.zeros_like(delta), delta)
    # Keep pushing a target until it is fooled with room to spare.
    target_margin = max(10 * margin, 1e-3)
    top = max(1, dim // 10)  # coordinates moved per step: a sparse steepest ascent in L1 (its dual norm is Linf)
    points_np = point_of.numpy()
    for step in range(settings.steps + 1):
        if pieces.settled():
            break
        delta = delta.detach().requires_grad_(True)
        margins = _margins(networks, x + delta, labels)
        pieces.record(delta.detach().numpy(), (margins >= margin).numpy(), points_np)
        if step == settings.steps:
            break
        objective = torch.where(wanted, torch.clamp(margins - target_margin, max=0.0), 0.0).sum()
        (gradient,) = torch.autograd.grad(objective, delta)
        threshold = gradient.abs().topk(top, dim=1).values[:, -1:]
        move = torch.where(gradient.abs() >= threshold, torch.sign(gradient), 0.0)
        move = move / move.abs().sum(dim=1, keepdim=True).clamp(min=1.0)
        rate = 0.5 * (1.0 - step / settings.steps) + 0.02
        delta = project_l1_ball(delta.detach() + rate * eps * move, eps)
    return pieces


def _maximal(pieces: dict[tuple[bool, ...], np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (fooled set, perturbation) pairs whose set no other found set strictly contains."""
    masks = [np.array(key) for key in pieces]
    kept = []
    for key, mask in zip(pieces, masks, strict=True):
        if not any((other >= mask).all() and (other > mask).any() for other in masks):
            kept.append((mask, pieces[key]))
    kept.sort(key=lambda item: -int(item[0].sum()))
    return kept


def _choose(columns: np.ndarray, attacks: int, n_points: int) -> tuple[list[int], np.ndarray, float]:
    """At most ``attacks`` of the count vectors ``columns`` (|C|, m) and their probabilities with
    the largest Val (Eq. 3)."""
    # a column another dominates (at least as many losses for every classifier) is never needed
    keep = [k for k in range(columns.shape[1])
            if not any((columns[:, o] >= columns[:, k]).all() and (columns[:, o] > columns[:, k]).any()
                       for o in range(columns.shape[1]))]
    index = np.array(keep)
    chosen, probabilities, value = _choose_among(columns[:, index], attacks, n_points)
    return [int(index[k]) for k in chosen], probabilities, value


def _choose_among(columns: np.ndarray, attacks: int, n_points: int) -> tuple[list[int], np.ndarray, float]:
    m = columns.shape[1]
    if m <= attacks:
        probabilities, value = best_probabilities(columns, n_points)
        return list(range(m)), probabilities, value
    probabilities, value = best_probabilities(columns, n_points)
    support = list(np.argsort(-probabilities, kind="stable")[:attacks])
    best = (support, *best_probabilities(columns[:, support], n_points))
    if best[2] >= value - 1e-12:
        return best
    # fewer attacks than the optimum's support: the best subset of size |A|
    for count, subset in enumerate(itertools.combinations(range(m), attacks)):
        if count >= MAX_COMBINATIONS:
            break
        chosen = list(subset)
        probabilities, subset_value = best_probabilities(columns[:, chosen], n_points)
        if subset_value > best[2] + 1e-12:
            best = (chosen, probabilities, subset_value)
    return best


def heuristic_attack(problem: AttackProblem, margin: float = 1e-4,
                     settings: HeuristicSettings = HeuristicSettings()) -> HeuristicAttack:
    """The best randomized attack the search finds (Val may be 0: no piece fooled anything), and the
    per-classifier attacks of the baselines; every value recomputed in float64."""
    started = time.perf_counter()
    n_points, dim = problem.points.shape
    n_classifiers = len(problem.classifiers)
    pieces = _point_pieces(problem, settings, margin)
    single = np.where((pieces.single_others <= n_classifiers)[..., None], pieces.single, 0.0)
    choices = [_maximal(found) or [(np.zeros(n_classifiers, dtype=bool), np.zeros(dim))] for found in pieces.by_set]
    while int(np.prod([len(c) for c in choices])) > MAX_CHOICES:
        widest = int(np.argmax([len(c) for c in choices]))
        choices[widest] = choices[widest][:-1]
    combos = list(itertools.product(*[range(len(c)) for c in choices]))
    counts = np.array([[sum(choices[j][pick[j]][0][c] for j in range(n_points)) for pick in combos]
                       for c in range(n_classifiers)], dtype=np.float64)
    # one column per distinct count vector, its first choice of pieces
    _, first = np.unique(counts.T, axis=0, return_index=True)
    first = np.sort(first)
    chosen, _, _ = _choose(counts[:, first], problem.attacks, n_points)
    picks = [combos[first[k]] for k in chosen]
    deltas = np.array([[choices[j][pick[j]][1] for j in range(n_points)] for pick in picks])
    deltas = _onto_ball(deltas, float(problem.eps))
    # the probabilities again from the float64 re-evaluation of exactly these perturbations
    real_counts = loss_counts(problem.classifiers, problem.points, problem.labels, deltas)
    probabilities, value = best_probabilities(real_counts, n_points)
    padding = problem.attacks - len(deltas)
    deltas = np.concatenate([deltas, np.zeros((padding, n_points, dim))])
    probabilities = np.concatenate([probabilities, np.zeros(padding)])
    single = _onto_ball(single, float(problem.eps))
    single_fooled = np.array([loss_counts([layers], problem.points, problem.labels, single[c:c + 1])[0, 0]
                              for c, layers in enumerate(problem.classifiers)])
    return HeuristicAttack(deltas, probabilities, value, time.perf_counter() - started, single, single_fooled)


def checked(problem: AttackProblem, attack: HeuristicAttack) -> HeuristicAttack | None:
    """``attack`` if it reaches alpha (and is not the empty attack) and passes
    ``check.check_attack`` (eps-bounded, a distribution, Val >= alpha in float64), else None."""
    if attack.value < problem.alpha or attack.value <= 0:
        return None
    try:
        check_attack(problem.classifiers, problem.points, problem.labels, attack.deltas, attack.probabilities,
                     problem.eps, problem.alpha)
    except AttackCheckError:
        return None
    return attack
