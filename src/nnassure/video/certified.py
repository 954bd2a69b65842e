"""A certified lower bound of the maximum safe radius w.r.t. optical flow, by CROWN.

Wu & Kwiatkowska (Sec. 5.2) bound MSR(N, P(v), L^p, d) from below with an admissible A* over a
discretised flow space, whose guarantee rests on a Lipschitz constant (Thm. 1). This module adds
a bound that the paper does not have: the largest eps at which auto_LiRPA's CROWN over the
unrolled CNN + LSTM (nnassure.video.model) proves that every flow sequence p' with
``||p' - P(v)||_p <= eps`` (L2 or Linf, optionally only on the flows or dimensions of a mask: the
paper's manipulated flows, Fig. 10, or Player II's dimensions, Def. 7) keeps the clip's class.

The claim: for the float64 network of the model file (its float32 weights cast exactly), every
margin logit_y - logit_c (c != y) is bounded below over the whole ball by CROWN's bound minus the
engine's float64 rounding slack (nnassure.certify.bounds.graph_rounding_slack), and that number
is > 0 (compared with 0 exactly). The radius reported is the largest eps of the bisection for
which that held; it is a proof over the set, not a sample.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from nnassure.certify.bounds import NORM_VALUES, BoundEngine
from nnassure.video.model import FlowLSTM

# Radii tested per auto_LiRPA call (one row each). Measured on 2 cores with the default FlowLSTM
# (see tests/test_video_lirpa.py and the report of this stage's introduction): a call costs about
# the same for 1-4 rows, so 4 radii per call cut the bisection's calls by log2(5) ~ 2.3.
DEFAULT_BATCH = 4
GROWTH = 4.0  # the factor of the search for an upper end when none is given
MIN_RADIUS = 1e-9  # below this nothing is reported certified (radius 0)


@dataclass
class CertifiedResult:
    """A certified radius: every flow of the (masked) ball of this radius keeps the class.

    ``trace`` has one row per auto_LiRPA call: (iteration, seconds since the start, lower end,
    upper end); the lower end (largest certified eps so far) never decreases, the upper end (the
    smallest eps known not to be certified, or an adversarial's distance; inf while growing)
    never increases.
    """

    radius: float
    seconds: float
    bound_calls: int
    trace: list[tuple[int, float, float, float]] = field(default_factory=list)
    norm: str = "l2"
    method: str = "crown"
    upper: float = math.inf  # the final upper end of the bisection
    dimensions: int = 0  # flow dimensions the ball may move
    slack: float = 0.0  # the largest rounding slack subtracted at the certified radius


class FlowCertifier:
    """One auto_LiRPA BoundedModule of a FlowLSTM, built once and reused for every clip, norm,
    radius and mask: masks live in the perturbation (nnassure.certify.bounds.MaskedL2Norm and a
    zero-width Linf box off the mask), not in the graph."""

    def __init__(self, model: FlowLSTM, flow_shape: tuple[int, ...] | None = None) -> None:
        expected = tuple(model.spec.input_shape)
        if flow_shape is not None and tuple(flow_shape) != expected:
            raise ValueError(f"flow shape {tuple(flow_shape)} does not match the model's {expected}")
        self.flow_shape = expected
        self.classes = model.spec.classes
        start = time.perf_counter()
        # conv_mode matrix: auto_LiRPA 0.3's patches mode fails on the per-flow Gather.
        self.engine = BoundEngine(model, expected, bound_opts={"conv_mode": "matrix"})
        self.build_seconds = time.perf_counter() - start

    def network64(self) -> torch.nn.Module:
        """The float64 network the bounds hold for."""
        return self.engine.network

    def margin_spec(self, label: int) -> torch.Tensor:
        """C (1, classes - 1, classes): rows e_label - e_c for c != label."""
        others = [c for c in range(self.classes) if c != label]
        C = torch.zeros(1, len(others), self.classes, dtype=torch.float64)
        C[0, :, label] = 1.0
        C[0, torch.arange(len(others)), others] = -1.0
        return C

    def certified(self, flow: np.ndarray, label: int, radii: np.ndarray, norm: str, mask: np.ndarray | None,
                  method: str = "crown") -> tuple[np.ndarray, np.ndarray]:
        """Per radius: is every margin's lower bound minus the slack > 0? And the largest slack.
        One auto_LiRPA call (plus its IBP fallback where needed) for all radii."""
        radii = np.asarray(radii, np.float64)
        x = np.repeat(np.asarray(flow, np.float64)[None], len(radii), axis=0)
        C = self.margin_spec(label).expand(len(radii), -1, -1)
        lower, _, slack = self.engine.bounds_and_slack(x, radii, norm, method, C=C, mask=mask)
        return (lower > 0).all(dim=1).numpy(), slack.max(dim=1).values.numpy()


def flows_mask(flow_shape: tuple[int, ...], flows: list[int] | np.ndarray) -> np.ndarray:
    """The mask of the manipulated flows (Fig. 10): all dimensions of the listed time steps."""
    mask = np.zeros(flow_shape, bool)
    mask[np.asarray(flows, np.int64)] = True
    return mask


def _full_mask(mask: np.ndarray | None, flow_shape: tuple[int, ...]) -> np.ndarray | None:
    """A boolean mask over time steps (T,) or over all flow dimensions (T, 2, g, g)."""
    if mask is None:
        return None
    mask = np.asarray(mask, bool)
    if mask.shape == flow_shape[:1]:
        mask = np.broadcast_to(mask.reshape(-1, *([1] * (len(flow_shape) - 1))), flow_shape)
    if mask.shape != flow_shape:
        raise ValueError(f"mask of shape {mask.shape}: expected ({flow_shape[0]},) over flows or {flow_shape}")
    if not mask.any():
        raise ValueError("empty mask: no flow dimension may move")
    return np.ascontiguousarray(mask)


def _between(lo: float, hi: float, count: int, ratio: float) -> np.ndarray:
    """``count`` radii splitting (lo, hi) geometrically; from hi downwards by ``ratio`` if lo is 0."""
    if lo <= 0.0:
        return hi / ratio ** np.arange(1, count + 1)[::-1]
    return np.exp(np.linspace(math.log(lo), math.log(hi), count + 2)[1:-1])


def certified_radius(
    certifier: FlowCertifier,
    flow: np.ndarray,
    label: int,
    norm: str,
    mask: np.ndarray | None = None,
    method: str = "crown",
    tolerance: float = 0.01,
    eps_max: float | None = None,
    batch: int = DEFAULT_BATCH,
    start: float | None = None,
) -> CertifiedResult:
    """The largest eps (within relative ``tolerance``) at which ``method`` proves ``label`` on the
    (masked) ``norm`` ball around ``flow`` (T, 2, g, g), by geometric bisection with ``batch``
    radii per bound call.

    ``eps_max``: an upper end known not to be certifiable, e.g. the distance of a float64-checked
    adversarial flow inside the mask's subspace (the gradient search's upper bound of Sec. 5.1);
    without it the upper end is found by growing ``start`` (default 1% of the flow's norm) by
    GROWTH until a radius fails. Errors of auto_LiRPA propagate (never a radius)."""
    if norm not in NORM_VALUES:
        raise ValueError(f"unknown norm {norm!r}; expected one of {sorted(NORM_VALUES)}")
    if not tolerance > 0:
        raise ValueError(f"invalid tolerance {tolerance!r}: expected > 0")
    if batch < 1:
        raise ValueError(f"invalid batch {batch!r}: expected >= 1")
    flow = np.asarray(flow, np.float64).reshape(certifier.flow_shape)
    full = _full_mask(mask, certifier.flow_shape)
    dims = int(full.sum()) if full is not None else flow.size
    t0 = time.perf_counter()
    lo, hi = 0.0, math.inf if eps_max is None else float(eps_max)
    lo_slack = 0.0
    trace: list[tuple[int, float, float, float]] = []
    calls = 0
    if start is None:
        start = max(0.01 * float(np.linalg.norm(flow.ravel(), NORM_VALUES[norm])), 1e-3)

    def record() -> None:
        trace.append((calls, time.perf_counter() - t0, lo, hi))

    while not (lo > 0 and hi <= lo * (1 + tolerance)):
        if math.isinf(hi):
            # Growing: start, start * GROWTH, ... (from the largest certified radius on).
            base = start if lo == 0 else lo * GROWTH
            radii = base * GROWTH ** np.arange(batch)
        else:
            if lo == 0 and hi <= MIN_RADIUS:
                break
            # With lo = 0 step down from hi by GROWTH per radius, else split (lo, hi) evenly in log.
            radii = _between(lo, hi, batch, GROWTH)
        ok, slack = certifier.certified(flow, label, radii, norm, full, method)
        calls += 1
        # Monotone in eps in exact arithmetic (nested balls), but a relaxation is not: keep the
        # largest certified radius below the smallest failing one, so both ends stay consistent.
        failed = radii[~ok]
        if len(failed):
            hi = min(hi, float(failed.min()))
        good = (radii < hi) & ok
        if good.any():
            best = int(np.argmax(np.where(good, radii, -np.inf)))
            if radii[best] > lo:
                lo, lo_slack = float(radii[best]), float(slack[best])
        record()
        if lo == 0 and hi <= MIN_RADIUS:
            break
    return CertifiedResult(radius=lo, seconds=time.perf_counter() - t0, bound_calls=calls, trace=trace,
                           norm=norm, method=method, upper=hi, dimensions=dims, slack=lo_slack)
