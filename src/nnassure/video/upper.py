r"""Upper bounds of the maximum safe radius w.r.t. the optical flow (Wu & Kwiatkowska, Sec. 5.1).

Any adversarial flow sequence x' (Def. 2: another class wins) bounds the MSR of Def. 3 from
above by ||x' - x||_p. :func:`gradient_search` finds one by the gradient-based search of Eq. (8)
and then makes it smaller; :func:`pgd_within` is a strong attack inside a given ball, which the
soundness tests and the report run against the lower bounds.

The loss. Eq. (8) follows the gradient of the network's loss l on the clip. We use the margin
losses l_c(x) = logit_c(x) - logit_y(x) of the other classes c and l = max_c l_c, which is
positive exactly when the class has changed: the first-order model of each l_c tells how far to
step towards that class, and the sign of l is the success test.

The gradient. Our network reads the flow sequence itself (:mod:`nnassure.video.model`), so the
paper's chain ``d l / d eta (.) d eta / d p_t`` through the spatial features eta_t = N_C(p_t)
(Def. 9) is exactly what backpropagation through the network computes (``autograd``). The
paper's own estimate (``finite-difference``, Eqs. 9-10) manipulates one input entry at a time:
Eq. (9) is ||eta_{m,n} - eta|| / ||delta p_{m,n}|| and Eq. (10) is
(l(v_{F[m,n]}) - l(v)) / ||eta_{m,n} - eta||, so their product is the difference quotient
(l(after) - l(before)) / ||delta p_{m,n}||. With the flow as input we manipulate the flow entry
p[i] by h directly, the flow change is delta p = h e_i, the frame-to-flow factor of Eq. (9)
disappears, and the product becomes the one-sided difference (l(p + h e_i) - l(p)) / h, one per
flow dimension: D + 1 float64 forward passes, batched.

Every loss and class decision here is float64 (:mod:`nnassure.video._checks`): an adversarial flow
is accepted only if another class beats the clip's class by at least ``margin`` there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from nnassure.errors import ConfigError
from nnassure.video._checks import (
    as_float64,
    check_norm,
    class_margins,
    classify64,
    dual_exponent,
    is_adversarial,
    lp_norm,
)

GRADIENTS = ("autograd", "finite-difference")
FD_BATCH = 512  # flows per forward pass of the finite-difference gradient
GROW_STEPS = 40  # Eq. (8) steps before giving up (the step doubles each time, so 2^40 x the first)
PROBES = 8  # points per batched forward pass of the search along the ray
PROBE_ROUNDS = 3  # the ray search narrows the boundary to 1 / (PROBES + 1)^PROBE_ROUNDS of the ray


@dataclass(frozen=True)
class UpperTracePoint:
    """The best (smallest) adversarial distance after ``iteration`` (0: after the Eq. 8 phase)."""

    iteration: int
    seconds: float
    distance: float  # inf while no adversarial flow is known


@dataclass
class UpperResult:
    """Result of :func:`gradient_search`: an adversarial flow and its distance, an upper bound of the MSR.

    ``adversarial`` is None (and ``distance`` inf) if no class change was found. With a
    ``dims_mask`` the bound is one of the MSR of perturbations within that subspace (and, as
    such a perturbation is also a perturbation of the whole flow, of the unrestricted MSR).
    """

    label: int
    norm: str
    gradient: str
    adversarial: np.ndarray | None  # (T, 2, g, g) float64
    distance: float
    adversarial_class: int | None
    adversarial_margin: float | None  # float64 logit of that class minus the label's (>= margin)
    evaluations: int  # flows passed through the float64 network
    seconds: float
    trace: list[UpperTracePoint] = field(default_factory=list)


class _Loss:
    """The float64 class losses of one clip (module docstring), counting the flows evaluated."""

    def __init__(self, model: nn.Module, label: int, mask: np.ndarray) -> None:
        self.model = as_float64(model)
        self.label = label
        self.mask = mask
        self.evaluations = 0

    def class_losses(self, flows: torch.Tensor) -> torch.Tensor:
        """l_c = logit_c - logit_label per flow and class ``(n, classes)``, -inf for the label."""
        self.evaluations += len(flows)
        logits = self.model(flows)
        losses = logits - logits[:, self.label : self.label + 1]
        return torch.where(torch.arange(logits.shape[1]) == self.label, -torch.inf, losses)

    def values(self, flows: torch.Tensor) -> torch.Tensor:
        """The loss l = max_c l_c per flow of a batch ``(n, T, 2, g, g)`` (differentiable)."""
        return self.class_losses(flows).max(dim=1).values

    def value(self, x: np.ndarray) -> float:
        with torch.no_grad():
            return float(self.values(torch.as_tensor(x[None]))[0])

    def jacobian(self, x: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
        """(l_c(x) per class, d l_c / d x restricted to the mask, zero for the label) at one flow x.

        ``autograd``: one backward pass per class; ``finite-difference``: Eqs. (9)-(10) with the
        flow as input, (l_c(x + h e_i) - l_c(x)) / h per masked dimension i, all classes from the
        same D + 1 forward passes.
        """
        if method == "autograd":
            xt = torch.as_tensor(x[None]).clone().requires_grad_(True)
            losses = self.class_losses(xt)[0]
            grads = np.zeros((len(losses), *x.shape))
            for c in range(len(losses)):
                if c != self.label:
                    (grad,) = torch.autograd.grad(losses[c], xt, retain_graph=True)
                    grads[c] = grad[0].numpy() * self.mask
            return losses.detach().numpy(), grads
        # h ~ 1e-6 of the flow's scale balances truncation (~h) against float64 rounding (~1e-16/h)
        h = 1e-6 * max(1.0, float(np.abs(x).max()))
        index = np.flatnonzero(self.mask)
        with torch.no_grad():
            base = self.class_losses(torch.as_tensor(x[None])).numpy()[0]
            grads = np.zeros((len(base), x.size))
            for start in range(0, len(index), FD_BATCH):
                chunk = index[start : start + FD_BATCH]
                rows = np.arange(len(chunk))
                shifted = np.repeat(x.reshape(1, -1), len(chunk), axis=0)
                shifted[rows, chunk] += h
                steps = shifted[rows, chunk] - x.ravel()[chunk]  # the h really added, after rounding
                losses = self.class_losses(torch.as_tensor(shifted.reshape(-1, *x.shape))).numpy()
                losses[:, self.label] = base[self.label] = 0.0  # the label's -inf column: no gradient
                grads[:, chunk] = ((losses - base) / steps[:, None]).T
        base[self.label] = -np.inf
        return base, grads.reshape(len(base), *x.shape)


def loss_gradient(model: nn.Module, flow: np.ndarray, label: int, method: str = "autograd",
                  dims_mask: np.ndarray | None = None) -> np.ndarray:
    """d l / d x of the margin loss at ``flow`` (the runner-up class's l_c) by ``method``, within the mask."""
    if method not in GRADIENTS:
        raise ConfigError(f"unknown gradient {method!r}: expected one of {', '.join(GRADIENTS)}")
    x = np.array(flow, np.float64)
    losses, grads = _Loss(model, label, _mask(dims_mask, x.shape)).jacobian(x, method)
    return grads[int(np.argmax(losses))]


def ascent_direction(grad: np.ndarray, norm: str) -> np.ndarray:
    """The unit-``norm`` direction u maximising grad . u (= ||grad||_q, Hoelder's equality case).

    L2: grad / ||grad||_2 (Eq. 8's p + eps * grad); Linf: sign(grad); L1: the signed unit vector of
    the largest |grad_i| (ties by index). Zero if the gradient is zero.
    """
    if norm == "l2":
        size = np.linalg.norm(grad)
        return grad / size if size > 0 else np.zeros_like(grad)
    if norm == "linf":
        return np.sign(grad)
    direction = np.zeros(grad.size)
    i = int(np.argmax(np.abs(grad).ravel()))
    direction[i] = np.sign(grad.ravel()[i])
    return direction.reshape(grad.shape)


def _mask(dims_mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if dims_mask is None:
        return np.ones(shape)
    dims_mask = np.asarray(dims_mask, bool)
    if dims_mask.shape != shape:
        raise ValueError(f"dims_mask has shape {dims_mask.shape}; the flow has shape {shape}")
    if not dims_mask.any():
        raise ValueError("dims_mask selects no flow dimension")
    return dims_mask.astype(np.float64)


def _check_clip(loss: _Loss, x0: np.ndarray, label: int) -> None:
    if loss.value(x0) >= 0:
        raise ValueError(f"the clip's flow is not classified as its label {label} (float64): no safe radius")


def gradient_search(
    model: nn.Module,
    flow: np.ndarray,
    label: int,
    norm: str = "l2",
    iterations: int = 20,
    step: float = 0.05,
    gradient: str = "autograd",
    dims_mask: np.ndarray | None = None,
    margin: float = 1e-6,
) -> UpperResult:
    """An upper bound of the MSR w.r.t. the flow: the gradient-based search of Sec. 5.1 (Eq. 8).

    Phase 1 (Eq. 8): from the clip's flow x0, steps x <- x + eps * u along the ascent direction u
    of the gradient of l_c (:func:`ascent_direction`) for the class c whose first-order boundary
    is nearest, eps = (1 + step * 2^k) times that first-order distance to a loss of ``margin``;
    the overshoot grows (2^k at the k-th step) until the class changes. Phase 2, ``iterations``
    times: (a) the smallest adversarial point on the ray from x0 to the current one (batched
    probes, PROBE_ROUNDS refinements); (b) a gradient step that lowers the norm and keeps the
    misclassification (:func:`_shrink_step`), accepted only if the norm is smaller and the float64
    check holds; its shrink factor s starts at ``step``, doubles on success (up to 1/2) and halves
    on failure. For a linear network phase 1 lands on the nearest boundary point of the closest
    class (Hoelder's equality case) and (b) is a convex combination with it, so the distance is
    the exact MSR up to the margin and the ray search's resolution.

    ``dims_mask`` (bool, the flow's shape) restricts the perturbation to a subspace. The trace's
    distance never increases (only improvements are kept).
    """
    check_norm(norm)
    if gradient not in GRADIENTS:
        raise ConfigError(f"unknown gradient {gradient!r}: expected one of {', '.join(GRADIENTS)}")
    start = time.perf_counter()
    x0 = np.array(flow, np.float64)
    mask = _mask(dims_mask, x0.shape)
    loss = _Loss(model, label, mask)
    _check_clip(loss, x0, label)
    q = dual_exponent(norm)
    logit_scale = float(np.abs(classify64(model, x0[None])).max())
    # the first-order steps aim a little above ``margin`` so that rounding cannot undo a success
    target = margin + 1e-9 * (1.0 + logit_scale)

    best: np.ndarray | None = None
    x = x0.copy()
    for k in range(GROW_STEPS):
        moved = _boundary_step(loss, x, gradient, norm, q, target, margin, 1 + step * 2**k)
        if moved is None:
            break  # a flat loss (e.g. all ReLUs dead) gives no direction to follow
        if moved is x:
            best = x
            break
        x = moved
    else:
        if loss.value(x) >= margin:
            best = x
    trace = [UpperTracePoint(0, time.perf_counter() - start,
                             float(lp_norm(best - x0, norm)) if best is not None else np.inf)]

    shrink = step
    for iteration in range(1, iterations + 1):
        if best is not None:
            best = _ray_search(loss, x0, best, margin)
            candidate = _shrink_step(loss, x0, best, shrink, gradient, norm, q, target, margin)
            if candidate is None:
                shrink /= 2
            else:
                best = candidate
                shrink = min(2 * shrink, 0.5)
        # every accepted point is strictly closer (or the same x), so this min only guards the trace
        distance = float(lp_norm(best - x0, norm)) if best is not None else np.inf
        trace.append(UpperTracePoint(iteration, time.perf_counter() - start, min(distance, trace[-1].distance)))

    adversarial_class = adversarial_margin = None
    if best is not None:
        # the fresh float64 re-check of what is reported (the search's own checks are float64 too)
        logits = classify64(model, best[None])
        if not is_adversarial(logits, label, margin)[0]:
            raise AssertionError("the reported adversarial flow failed its float64 re-check")
        margins = class_margins(logits, label)[0]
        adversarial_class = int(np.argmin(margins))
        adversarial_margin = float(-margins[adversarial_class])
    distance = float(lp_norm(best - x0, norm)) if best is not None else np.inf
    return UpperResult(label=label, norm=norm, gradient=gradient, adversarial=best,
                       distance=distance, adversarial_class=adversarial_class,
                       adversarial_margin=adversarial_margin, evaluations=loss.evaluations,
                       seconds=time.perf_counter() - start, trace=trace)


def _dual_norms(grads: np.ndarray, q: float) -> np.ndarray:
    return np.linalg.norm(grads.reshape(len(grads), -1), q, axis=1)


def _boundary_step(loss: _Loss, x: np.ndarray, gradient: str, norm: str, q: float, target: float,
                   margin: float, overshoot: float) -> np.ndarray | None:
    """One step of Eq. (8) towards the class whose first-order boundary is nearest (the multi-class
    form of the step): x + overshoot * (target - l_c) / ||grad_c||_q * u_c. Returns x itself if
    it is already adversarial, None if every gradient is zero."""
    losses, grads = loss.jacobian(x, gradient)
    if losses.max() >= margin:
        return x
    sizes = _dual_norms(grads, q)
    if not (sizes > 0).any():
        return None
    need = np.where(sizes > 0, (target - losses) / np.where(sizes > 0, sizes, 1.0), np.inf)
    c = int(np.argmin(need))
    return x + overshoot * need[c] * ascent_direction(grads[c], norm)


def _shrink_step(loss: _Loss, x0: np.ndarray, x: np.ndarray, shrink: float, gradient: str, norm: str,
                 q: float, target: float, margin: float) -> np.ndarray | None:
    """A point closer to x0 than the adversarial x that is still adversarial (float64), or None.

    Per class c: delta' = (1 - s) delta + a_c u_c with u_c the ascent direction of l_c and
    a_c = (target - l_c + s grad_c . delta) / ||grad_c||_q the first-order amount that brings
    l_c((1 - s) delta) back to ``target``; the candidates are evaluated in one batch and the
    adversarial one of smallest norm is kept if it is smaller than ||delta||. At a point of the
    boundary where delta is parallel to the ascent direction (a local minimum of the distance)
    no candidate is smaller: the search is local, like Eq. (8) itself.
    """
    delta = x - x0
    size = lp_norm(delta, norm)
    losses, grads = loss.jacobian(x, gradient)
    sizes = _dual_norms(grads, q)
    candidates = []
    for c in np.flatnonzero(sizes > 0):
        amount = max(0.0, (target - losses[c] + shrink * float(np.sum(grads[c] * delta))) / sizes[c])
        candidates.append(x0 + (1 - shrink) * delta + amount * ascent_direction(grads[c], norm))
    if not candidates:
        return None
    stacked = np.stack(candidates)
    with torch.no_grad():
        values = loss.values(torch.as_tensor(stacked)).numpy()
    distances = np.where(values >= margin, lp_norm(stacked - x0, norm), np.inf)
    i = int(np.argmin(distances))
    return stacked[i] if distances[i] < size else None


def _ray_search(loss: _Loss, x0: np.ndarray, x: np.ndarray, margin: float) -> np.ndarray:
    """The adversarial point x0 + t (x - x0) with the smallest t found by batched probes in (0, 1]."""
    lo, hi = 0.0, 1.0  # x0 + hi * (x - x0) is adversarial
    delta = x - x0
    for _ in range(PROBE_ROUNDS):
        ts = np.linspace(lo, hi, PROBES + 2)[1:-1]
        with torch.no_grad():
            values = loss.values(torch.as_tensor(x0[None] + ts[:, None, None, None, None] * delta[None])).numpy()
        hits = np.flatnonzero(values >= margin)
        if len(hits):
            first = hits[0]
            hi = float(ts[first])
            lo = float(ts[first - 1]) if first > 0 else lo
        else:
            lo = float(ts[-1])
    return x if hi == 1.0 else x0 + hi * delta  # x itself, not a rounded copy, when nothing is closer


def project_ball(delta: torch.Tensor, radius: float, norm: str) -> torch.Tensor:
    """Euclidean projection of each row of ``delta`` (n, D) onto the ``norm`` ball of ``radius``.

    L2: scaling; Linf: clipping; L1: soft thresholding at the theta found by sorting the
    magnitudes (Duchi et al. 2008), applied only to rows outside the ball.
    """
    if norm == "linf":
        return delta.clamp(-radius, radius)
    if norm == "l2":
        size = delta.norm(dim=1, keepdim=True).clamp_min(1e-300)
        return delta * torch.clamp(radius / size, max=1.0)
    magnitude = delta.abs()
    outside = magnitude.sum(dim=1) > radius
    if not outside.any():
        return delta
    u = magnitude.sort(dim=1, descending=True).values
    cumulative = u.cumsum(dim=1)
    j = torch.arange(1, delta.shape[1] + 1, dtype=delta.dtype)
    rho = ((u - (cumulative - radius) / j) > 0).sum(dim=1, keepdim=True)  # >= 1 for a row outside
    theta = (cumulative.gather(1, (rho - 1).clamp_min(0)) - radius) / rho.clamp_min(1)
    projected = delta.sign() * (magnitude - theta).clamp_min(0)
    return torch.where(outside[:, None], projected, delta)


def pgd_within(
    model: nn.Module,
    flow: np.ndarray,
    label: int,
    norm: str,
    radius: float,
    restarts: int = 32,
    steps: int = 50,
    dims_mask: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    margin: float = 1e-6,
) -> np.ndarray | None:
    """An adversarial flow within ``radius`` of ``flow`` (``norm``), or None: projected gradient ascent.

    ``restarts`` runs in one batch from random points of the ball (within ``dims_mask``), each
    ``steps`` steps of length 2.5 radius / steps along the ascent direction of the float64 margin
    loss (L2: normalised gradient; Linf: its sign; L1: the signs of the top-k |grad|, k = 1 or 5 %
    of the subspace on alternate restarts), projected back onto the ball. A point is returned
    only if it is adversarial by ``margin`` and its distance, recomputed in float64 from the point
    itself, is at most ``radius``.
    """
    check_norm(norm)
    rng = rng if rng is not None else np.random.default_rng(0)
    x0 = np.array(flow, np.float64)
    mask = torch.as_tensor(_mask(dims_mask, x0.shape).reshape(1, -1))
    loss = _Loss(model, label, mask.numpy().reshape(x0.shape))
    dim = x0.size
    x0_t = torch.as_tensor(x0.reshape(1, -1))
    inner = radius * (1 - 1e-12)  # so that the float64 sum x0 + delta stays within ``radius``
    # random starts: a random direction in the subspace, scaled to a uniform fraction of the radius
    delta = torch.as_tensor(rng.normal(size=(restarts, dim))) * mask
    scale = {"l1": 1, "l2": 2, "linf": np.inf}[norm]
    fraction = torch.as_tensor(rng.uniform(0, 1, size=(restarts, 1)))
    delta = project_ball(delta / delta.norm(p=scale, dim=1, keepdim=True).clamp_min(1e-300) * inner * fraction,
                         inner, norm)
    alpha = 2.5 * radius / steps
    # L1 steps move the top-k coordinates: k = 1 (the L1 steepest ascent, which finds the sparse
    # optima of a near-linear margin) on even restarts, 5 % of the subspace on odd ones
    tops = torch.where(torch.arange(restarts) % 2 == 0, 1, max(1, int(0.05 * int(mask.sum()))))[:, None]
    for _ in range(steps + 1):
        delta.requires_grad_(True)
        values = loss.values((x0_t + delta).reshape(-1, *x0.shape))
        for r in torch.nonzero(values.detach() >= margin).flatten().tolist():
            candidate = (x0_t + delta.detach())[r].numpy().reshape(x0.shape)
            if (lp_norm(candidate - x0, norm) <= radius
                    and is_adversarial(classify64(model, candidate[None]), label, margin)[0]):
                return candidate
        (grad,) = torch.autograd.grad(values.sum(), delta)
        with torch.no_grad():
            grad = grad * mask
            if norm == "l2":
                update = grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-300)
            elif norm == "linf":
                update = grad.sign()
            else:
                magnitude = grad.abs()
                threshold = magnitude.sort(dim=1, descending=True).values.gather(1, tops - 1)
                keep = (magnitude >= threshold) & (magnitude > 0)
                update = grad.sign() * keep / keep.sum(dim=1, keepdim=True).clamp_min(1)
            delta = project_ball(delta + alpha * update, inner, norm) * mask
    return None

