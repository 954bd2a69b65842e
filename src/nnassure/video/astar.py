r"""Lower bound of the maximum safe radius w.r.t. the optical flow by admissible A* (Sec. 5.2, Alg. 1).

The game (Def. 7). Player I picks a manipulated flow p_t, Player II a dimension i of it and a sign:
the atomic manipulation p_t[i] +- tau of Def. 5. Its states are the tau-grid points
g = x0 + tau n (n an integer vector) of Def. 6 / Thm. 1, x0 the clip's flow sequence.

The subspace S. A uniform grid cannot be explored in hundreds of dimensions, and the paper's
Player II chooses the dimensions, so the grid spans a subspace S: the ``per_flow`` dimensions of
each manipulated flow with the largest |d margin / d x| at x0 (:func:`salient_dims`). **The bound
holds for perturbations within S only** (every other flow entry equal to x0's): it is a lower
bound of the MSR of Def. 3 restricted to S, not of the unrestricted MSR -- except the root radius
r0 below, which holds for every perturbation the Lipschitz constant covers (with
``margin_lipschitz(model, norm, flows_mask)``: any change of the manipulated flows).

Grid width and tau (Thm. 1, Eq. 5). With |D| = |S| dimensions the grid width is
d~(L1, tau) = |D| tau, d~(L2, tau) = sqrt(|D|) tau, d~(Linf, tau) = tau (:func:`grid_width`):
rounding each coordinate of x in S to the nearest grid value moves it by at most tau / 2, so
every x is within d~ / 2 of a grid point (its cell). With L_{y,c} a proven global Lipschitz
constant of the margin m_c = logit_y - logit_c w.r.t. the p-norm (:mod:`nnassure.video.lipschitz`;
L_{y,c} <= Lip_y + Lip_c, so Eq. 5 holds with it) and the float64 margins m_c(x0),

    d~ = tau_fraction * r0,    r0 = min_c m_c(x0) / L_{y,c}   (Eq. 5),

and r0 is itself a lower bound of the MSR wherever the constant holds: ||x - x0|| < r0 gives
m_c(x) >= m_c(x0) - L_{y,c} ||x - x0|| > 0 for every c.

A cell is proven safe iff min_c (m_c(g) - L_{y,c} d~ / 2) > 0 at its grid point g: then every x in
the closed ball of radius d~ / 2 around g keeps every margin positive. The float64 margins are
first lowered by :func:`nnassure.video._checks.rounding_allowance` (1e-9 of the logit scale,
well above the float64 error of this network's forward pass; its docstring says when); the same
allowance covers
the rounding of the evaluated point x0 + tau n (a few ulps away from the exact grid point, which
moves the margins by L times a few ulps).

A*. Best-first over grid points, priority ||g - x0||_p = tau ||n||_p, the exact reward so far
(Def. 8), with the zero heuristic, which never overestimates the remaining reward, so it is
admissible. Priorities compare the exact integers sum|n_i|, sum n_i^2 or max|n_i| (ties first in,
first out). An expansion pops one point and evaluates its unseen children (the 2|S| atomic
manipulations) in float64, ``batch`` flows per forward pass.

Soundness of the bound. Let D_min be the smallest priority in the frontier and D_fail the
smallest distance of a popped point whose cell was not proven (inf while there is none).
(i) Every grid point g with ||g - x0|| < min(D_min, D_fail) has been popped: g has a parent one
atomic step closer to x0 (decrease one non-zero |n_i| by one), whose distance is <= g's for L1,
L2 and Linf, and so on down to x0, which was popped first. On this chain the first point not
popped has a popped parent; that parent was proven (its distance is < D_fail), so it was
expanded and the point is in the frontier with distance <= ||g - x0|| < D_min: impossible.
(ii) All those points were proven, as their distance is < D_fail. (iii) Any x in S with
||x - x0|| < min(D_min, D_fail) - d~ / 2 has its nearest grid point g* within d~ / 2, so
||g* - x0|| < min(D_min, D_fail), g*'s cell is proven and contains x: x is safe. Hence

    lower = max(previous, min(D_min, D_fail) - d~ / 2, r0),

which never decreases. A popped misclassified point (float64, by ``margin``) is an adversarial
grid point: by (i) no grid point closer to x0 is adversarial, so its distance is the exact FMSR
of Def. 6 on the grid in S, an upper bound of the MSR restricted to S (Thm. 1, Eq. 4). After a
popped cell fails the bound cannot grow (min(D_min, D_fail) <= D_fail from then on), so the
search stops.

Stop reasons: 'iterations' and 'seconds' (the budget, whichever first), 'adversarial grid point',
'cell not proven', and 'exhausted' (nothing to search: every margin has Lipschitz constant 0, so
no class can overtake the label and the lower bound is infinite).
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from nnassure.video._checks import (
    as_float64,
    check_norm,
    class_margins,
    classify64,
    dual_exponent,
    is_adversarial,
    rounding_allowance,
)

STOP_REASONS = ("iterations", "seconds", "adversarial grid point", "cell not proven", "exhausted")


def grid_width(norm: str, dims: int, tau: float) -> float:
    """d~(L^p, tau) of Thm. 1 for a grid over ``dims`` dimensions: |D| tau, sqrt(|D|) tau or tau."""
    check_norm(norm)
    if dims < 1:
        raise ValueError(f"a grid needs at least one dimension, got {dims}")
    return {"l1": dims * tau, "l2": math.sqrt(dims) * tau, "linf": tau}[norm]


def _tau_for_width(norm: str, dims: int, width: float) -> float:
    """The tau whose :func:`grid_width` is ``width``."""
    return width / grid_width(norm, dims, 1.0)


def _margin_gradient(model64: nn.Module, x0: np.ndarray, label: int) -> np.ndarray:
    """d (logit_label - logit_runner-up) / d x at x0, float64 autograd."""
    xt = torch.as_tensor(x0[None]).clone().requires_grad_(True)
    logits = model64(xt)[0]
    others = logits.detach().clone()
    others[label] = -torch.inf
    (grad,) = torch.autograd.grad(logits[label] - logits[int(others.argmax())], xt)
    return grad[0].numpy()


def _flows_mask(flows_mask: np.ndarray | None, flows: int) -> np.ndarray:
    if flows_mask is None:
        return np.ones(flows, bool)
    flows_mask = np.asarray(flows_mask, bool)
    if flows_mask.shape != (flows,) or not flows_mask.any():
        raise ValueError(f"flows_mask must be {flows} booleans with at least one True, got {flows_mask.tolist()}")
    return flows_mask


def salient_dims(model: nn.Module, flow: np.ndarray, label: int, flows_mask: np.ndarray | None = None,
                 per_flow: int = 2) -> np.ndarray:
    """Player II's dimensions, the subspace S: a bool mask of the flow's shape ``(T, 2, g, g)``.

    For each manipulated flow (``flows_mask``, all by default) the ``per_flow`` entries with the
    largest |d m / d x| at the clip's flow, m the float64 margin of the label over the runner-up
    class; deterministic, ties broken by the lower index. ``per_flow`` is capped at a flow's size.
    """
    x0 = np.array(flow, np.float64)
    flows_mask = _flows_mask(flows_mask, x0.shape[0])
    saliency = np.abs(_margin_gradient(as_float64(model), x0, label)).reshape(x0.shape[0], -1)
    mask = np.zeros_like(saliency, dtype=bool)
    for t in np.flatnonzero(flows_mask):
        mask[t, np.argsort(-saliency[t], kind="stable")[:per_flow]] = True
    return mask.reshape(x0.shape)


def salient_flows(model: nn.Module, flow: np.ndarray, label: int, norm: str, k: int) -> np.ndarray:
    """Player I's choice of k manipulated flows (Fig. 10): bool ``(T,)``, the k flows whose margin
    gradient has the largest dual norm at the clip's flow (the most first-order influence per unit
    of ``norm``), ties broken by the earlier flow."""
    x0 = np.array(flow, np.float64)
    if not 1 <= k <= x0.shape[0]:
        raise ValueError(f"k={k} manipulated flows: expected 1..{x0.shape[0]}")
    grad = _margin_gradient(as_float64(model), x0, label).reshape(x0.shape[0], -1)
    influence = np.linalg.norm(grad, dual_exponent(norm), axis=1)
    mask = np.zeros(x0.shape[0], bool)
    mask[np.argsort(-influence, kind="stable")[:k]] = True
    return mask


@dataclass(frozen=True)
class AStarTracePoint:
    """The state after ``iteration`` expansions (0: the root, lower = r0)."""

    iteration: int
    seconds: float
    lower: float
    frontier: int
    popped: int


@dataclass
class AStarResult:
    """Result of :func:`astar_lower`.

    ``lower`` bounds the MSR of perturbations within the subspace ``dims`` (flat indices into the
    flow) from below; ``root_radius`` (r0) bounds the MSR of every perturbation the Lipschitz
    constant covers. ``fmsr`` (with ``fmsr_flow``) is the distance of the adversarial grid point
    that stopped the search, if any: the exact grid FMSR in the subspace, an upper bound of its MSR.
    """

    label: int
    norm: str
    lower: float
    root_radius: float
    tau: float
    grid_width: float
    lipschitz: np.ndarray  # L_{label,c} per class c (the label's own entry unused)
    dims: np.ndarray  # flat indices of the subspace S
    stop: str
    fmsr: float | None
    fmsr_flow: np.ndarray | None
    iterations: int
    popped: int
    evaluations: int
    seconds: float
    trace: list[AStarTracePoint] = field(default_factory=list)


class _Grid:
    """Float64 evaluation of grid points x0 + tau n (n on the subspace's dims)."""

    def __init__(self, model: nn.Module, x0: np.ndarray, label: int, dims: np.ndarray, tau: float,
                 batch: int, margin: float) -> None:
        self.model = as_float64(model)
        self.x0 = x0
        self.label = label
        self.dims = dims
        self.tau = tau
        self.batch = batch
        self.margin = margin
        self.evaluations = 0

    def flows(self, steps: np.ndarray) -> np.ndarray:
        """The flows of integer step vectors ``(k, |S|)``."""
        points = np.repeat(self.x0.reshape(1, -1), len(steps), axis=0)
        points[:, self.dims] += self.tau * steps
        return points.reshape(len(steps), *self.x0.shape)

    def margins(self, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(margins m_c minus the rounding allowance ``(k, classes)``, adversarial by ``margin``)."""
        lowered, adversarial = [], []
        with torch.no_grad():
            for start in range(0, len(steps), self.batch):
                logits = self.model(torch.as_tensor(self.flows(steps[start : start + self.batch]))).numpy()
                self.evaluations += len(logits)
                lowered.append(class_margins(logits, self.label) - rounding_allowance(logits)[:, None])
                adversarial.append(is_adversarial(logits, self.label, self.margin))
        return np.concatenate(lowered), np.concatenate(adversarial)


def _priority(norm: str, steps: np.ndarray) -> np.ndarray:
    """Exact integer priorities of step vectors ``(k, |S|)``: ||n||_1, ||n||_2^2 or ||n||_inf."""
    if norm == "l1":
        return np.abs(steps).sum(axis=1)
    if norm == "l2":
        return (steps * steps).sum(axis=1)
    return np.abs(steps).max(axis=1)


def _distance(norm: str, priority: int, tau: float) -> float:
    return tau * math.sqrt(priority) if norm == "l2" else tau * priority


def astar_lower(
    model: nn.Module,
    flow: np.ndarray,
    label: int,
    norm: str,
    lipschitz: np.ndarray,
    dims_mask: np.ndarray,
    iterations: int = 1000,
    seconds: float = 30.0,
    batch: int = 256,
    tau_fraction: float = 1.0,
    margin: float = 1e-6,
) -> AStarResult:
    """A lower bound of the MSR w.r.t. the flow within the subspace ``dims_mask`` (module docstring).

    ``lipschitz`` is the ``(classes, classes)`` matrix of :func:`nnassure.video.lipschitz.margin_lipschitz`
    for ``norm``, for a set of perturbed flows containing every flow ``dims_mask`` touches (a
    constant for more perturbed flows is larger, so still valid). The budget is ``iterations``
    expansions and ``seconds`` seconds, whichever ends first.
    """
    check_norm(norm)
    start = time.perf_counter()
    x0 = np.array(flow, np.float64)
    dims_mask = np.asarray(dims_mask, bool)
    if dims_mask.shape != x0.shape or not dims_mask.any():
        raise ValueError(f"dims_mask must be a non-empty bool mask of the flow's shape {x0.shape}")
    if not 0.0 < tau_fraction <= 1.0:
        raise ValueError(f"tau_fraction={tau_fraction}: expected a number in (0, 1]")
    dims = np.flatnonzero(dims_mask)
    row = np.array(np.asarray(lipschitz, np.float64)[label], np.float64)
    row[label] = np.inf  # the label's own margin is +inf; an infinite constant keeps it out of every min
    if not (np.isfinite(np.delete(row, label)).all() and (row >= 0).all()):
        raise ValueError(f"lipschitz[{label}] = {np.delete(row, label).tolist()}: expected finite constants >= 0")

    grid = _Grid(model, x0, label, dims, 1.0, batch, margin)
    root_margins, root_adversarial = grid.margins(np.zeros((1, len(dims)), np.int64))
    if root_adversarial[0] or root_margins.min() <= 0:
        raise ValueError(f"the clip's flow is not classified as its label {label} (float64): no safe radius")
    finite = np.isfinite(row)
    competing = finite & (row > 0)  # a class with L = 0 has a constant positive margin: it never wins
    r0 = float((root_margins[0, competing] / row[competing]).min()) if competing.any() else math.inf
    result = dict(label=label, norm=norm, root_radius=r0, lipschitz=np.where(np.isinf(row), 0.0, row), dims=dims)
    if math.isinf(r0):
        return AStarResult(lower=np.inf, tau=np.inf, grid_width=np.inf, stop="exhausted", fmsr=None,
                           fmsr_flow=None, iterations=0, popped=0, evaluations=grid.evaluations,
                           seconds=time.perf_counter() - start,
                           trace=[AStarTracePoint(0, time.perf_counter() - start, np.inf, 0, 0)], **result)

    width = tau_fraction * r0
    tau = _tau_for_width(norm, len(dims), width)
    grid.tau = tau
    half = width / 2

    def slack(margins: np.ndarray) -> np.ndarray:
        """min_c (m_c - L_c d~ / 2) per point: > 0 iff the cell is proven safe."""
        return (margins[:, finite] - row[finite] * half).min(axis=1)

    counter = itertools.count()
    root = (0,) * len(dims)
    frontier = [(0, next(counter), root, float(slack(root_margins)[0]), False)]
    seen = {root}
    lower, d_fail, popped, expansions = r0, math.inf, 0, 0
    fmsr = fmsr_flow = None
    trace = [AStarTracePoint(0, time.perf_counter() - start, lower, len(frontier), popped)]
    unit = np.concatenate([np.eye(len(dims), dtype=np.int64), -np.eye(len(dims), dtype=np.int64)])
    while True:  # the grid is unbounded and a proven point pushes its children: the frontier never empties
        if expansions >= iterations:
            stop = "iterations"
            break
        if time.perf_counter() - start >= seconds:
            stop = "seconds"
            break
        priority, _, steps, point_slack, adversarial = heapq.heappop(frontier)
        popped += 1
        expansions += 1
        distance = _distance(norm, priority, tau)
        if adversarial or point_slack <= 0:
            d_fail = distance
            stop = "adversarial grid point" if adversarial else "cell not proven"
            if adversarial:
                fmsr, fmsr_flow = distance, grid.flows(np.array([steps]))[0]
                # the fresh float64 re-check of what is reported
                if not is_adversarial(classify64(model, fmsr_flow[None]), label, margin)[0]:
                    raise AssertionError("the adversarial grid point failed its float64 re-check")
        else:
            children = [child for child in map(tuple, np.array(steps) + unit) if child not in seen]
            if children:
                seen.update(children)
                child_steps = np.array(children, np.int64)
                child_margins, child_adversarial = grid.margins(child_steps)
                for child, key, s, a in zip(children, _priority(norm, child_steps), slack(child_margins),
                                            child_adversarial, strict=True):
                    heapq.heappush(frontier, (int(key), next(counter), child, float(s), bool(a)))
        d_min = _distance(norm, frontier[0][0], tau) if frontier else math.inf  # empty only after a failure
        lower = max(lower, min(d_min, d_fail) - half)
        trace.append(AStarTracePoint(expansions, time.perf_counter() - start, lower, len(frontier), popped))
        if math.isfinite(d_fail):
            break
    return AStarResult(lower=lower, tau=tau, grid_width=width, stop=stop, fmsr=fmsr, fmsr_flow=fmsr_flow,
                       iterations=expansions, popped=popped, evaluations=grid.evaluations,
                       seconds=time.perf_counter() - start, trace=trace, **result)
