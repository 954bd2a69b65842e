"""CROWN over the unrolled CNN + LSTM flow classifier (nnassure.video.model): the certified lower
bound of the maximum safe radius w.r.t. optical flow (Wu & Kwiatkowska, Sec. 5.2's lower bound by
LiRPA instead of A*) and the brightness check of Sec. 6.3.

1. Bounds of the LSTM loop contain the float64 network's outputs at sampled points of the ball
   (Linf vertices, L2 sphere points, interior points), with and without masks.
2. At the certified radius neither PGD (many restarts, inside the mask) nor random points of the
   ball change the class; the bisection trace is monotone; fewer manipulated flows give a radius
   at least as large (checked, not assumed).
3. The graph rounding bound is a bound: scaled to float32's unit roundoff it covers the measured
   float32 - float64 difference of the bounds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnassure.certify.bounds import BoundEngine
from nnassure.video.certified import FlowCertifier, certified_radius, flows_mask
from nnassure.video.model import FlowLSTM, FlowLSTMSpec

SPEC = FlowLSTMSpec(flows=3, grid=4, classes=3, conv_channels=4, features=8, hidden=8)
NORMS = ["l2", "linf"]


def _data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Flows whose class is the dominant direction of the mean motion (right, up, none)."""
    x = rng.normal(0.0, 0.3, (n, *SPEC.input_shape)).astype(np.float32)
    y = rng.integers(0, 3, n)
    x[y == 0, :, 0] += 1.0
    x[y == 1, :, 1] += 1.0
    return x, y


@pytest.fixture(scope="module")
def model() -> FlowLSTM:
    torch.manual_seed(0)
    net = FlowLSTM(SPEC)
    x, y = _data(300, np.random.default_rng(0))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net.eval()


@pytest.fixture(scope="module")
def certifier(model: FlowLSTM) -> FlowCertifier:
    return FlowCertifier(model, SPEC.input_shape)


@pytest.fixture(scope="module")
def clips(model: FlowLSTM) -> tuple[np.ndarray, np.ndarray]:
    """Two correctly classified clips (float32 flows, float64 labels by the float64 network)."""
    x, y = _data(40, np.random.default_rng(1))
    with torch.no_grad():
        pred = torch.nn.Module.double(__import__("copy").deepcopy(model))(torch.as_tensor(x, dtype=torch.float64))
    keep = np.flatnonzero(pred.argmax(1).numpy() == y)[:2]
    return x[keep], y[keep]


def logits64(certifier: FlowCertifier, points: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return certifier.network64()(torch.as_tensor(points, dtype=torch.float64)).numpy()


def ball_points(centre: np.ndarray, eps: float, norm: str, mask: np.ndarray | None, rng: np.random.Generator,
                n: int = 600) -> np.ndarray:
    """Interior points and vertices (Linf) or sphere points (L2) of the (masked) ball, float64."""
    m = np.ones(centre.shape, bool) if mask is None else np.broadcast_to(mask, centre.shape)
    d = centre.size
    if norm == "linf":
        inside = rng.uniform(-1, 1, (n, d))
        edge = rng.choice(np.array([-1.0, 1.0]), (n, d))
        delta = eps * np.concatenate([inside, edge])
    else:
        g = rng.normal(size=(2 * n, d)) * m.ravel()
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        r = np.concatenate([rng.uniform(0, 1, n) ** (1 / m.sum()), np.ones(n)])
        delta = eps * g * r[:, None]
    delta = delta * m.ravel()
    return centre.astype(np.float64)[None] + delta.reshape(-1, *centre.shape)


def pgd_worst_margin(certifier: FlowCertifier, centre: np.ndarray, label: int, eps: float, norm: str,
                     mask: np.ndarray | None, restarts: int = 16, steps: int = 40, seed: int = 0) -> np.ndarray:
    """Points found by projected gradient descent on the smallest margin logit_y - logit_c, inside
    the (masked) ball; random starts, float64."""
    gen = torch.Generator().manual_seed(seed)
    net = certifier.network64()
    m = torch.ones(centre.shape, dtype=torch.float64) if mask is None else torch.as_tensor(
        np.broadcast_to(mask, centre.shape).astype(np.float64))
    x0 = torch.as_tensor(centre, dtype=torch.float64)[None].expand(restarts, *centre.shape)

    def project(delta: torch.Tensor) -> torch.Tensor:
        delta = delta * m
        if norm == "linf":
            return delta.clamp(-eps, eps)
        norms = delta.flatten(1).norm(dim=1).clamp(min=1e-30).reshape(-1, *([1] * len(centre.shape)))
        return delta * torch.clamp(eps / norms, max=1.0)

    delta = project((torch.rand(x0.shape, generator=gen, dtype=torch.float64) * 2 - 1) * eps)
    step = 2.5 * eps / steps
    for _ in range(steps):
        delta.requires_grad_(True)
        out = net(x0 + delta)
        others = torch.cat([out[:, :label], out[:, label + 1:]], dim=1)
        margin = out[:, label] - others.max(dim=1).values
        (grad,) = torch.autograd.grad(margin.sum(), delta)
        with torch.no_grad():
            grad = grad * m
            if norm == "linf":
                direction = grad.sign()
            else:
                direction = grad / grad.flatten(1).norm(dim=1).clamp(min=1e-30).reshape(-1, *([1] * len(centre.shape)))
            delta = project(delta - step * direction)
    return (x0 + delta).detach().numpy()


MASKS = {"all": None, "flow 1": flows_mask(SPEC.input_shape, [1]),
         "dims": (np.random.default_rng(5).uniform(size=SPEC.input_shape) < 0.3)}


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("mask_name", list(MASKS))
def test_crown_bounds_contain_the_float64_outputs(certifier, clips, norm, mask_name):
    mask = MASKS[mask_name]
    x, _ = clips
    rng = np.random.default_rng(2)
    eps = 0.1
    lower, upper, slack = certifier.engine.bounds_and_slack(x[:1], eps, norm, "crown", mask=mask)
    assert (slack > 0).all() and (slack < 1e-3).all()  # small against margins of order 1
    points = ball_points(x[0], eps, norm, mask, rng)
    worst = np.concatenate([pgd_worst_margin(certifier, x[0], c, eps, norm, mask, restarts=4, steps=20)
                            for c in range(SPEC.classes)])
    out = logits64(certifier, np.concatenate([points, worst]))
    assert (out >= lower.numpy()).all() and (out <= upper.numpy()).all()
    if mask is not None:
        # The masked ball is smaller, and its bounds are no looser than the full ball's here.
        full_lower, full_upper = certifier.engine.bounds(x[:1], eps, norm, "crown")
        assert (lower >= full_lower - 1e-9).all() and (upper <= full_upper + 1e-9).all()


@pytest.mark.parametrize("norm", NORMS)
def test_certified_radius_is_safe_and_masks_give_larger_radii(certifier, clips, norm):
    x, y = clips
    rng = np.random.default_rng(3)
    for i in range(len(x)):
        label = int(y[i])
        full = certified_radius(certifier, x[i], label, norm, tolerance=0.05)
        one = certified_radius(certifier, x[i], label, norm, mask=MASKS["flow 1"], tolerance=0.05)
        assert full.radius > 0 and one.radius > 0
        assert one.radius >= full.radius / 1.05  # a smaller ball: not smaller, up to the resolution
        for result, mask in ((full, None), (one, MASKS["flow 1"])):
            lows = [lo for _, _, lo, _ in result.trace]
            highs = [hi for _, _, _, hi in result.trace]
            assert lows == sorted(lows) and highs == sorted(highs, reverse=True)
            assert result.upper <= result.radius * 1.05 + 1e-12 and result.bound_calls == len(result.trace)
            assert result.radius == lows[-1]
            points = np.concatenate([ball_points(x[i], result.radius, norm, mask, rng, 400),
                                     pgd_worst_margin(certifier, x[i], label, result.radius, norm, mask)])
            assert (logits64(certifier, points).argmax(1) == label).all()


def test_an_adversarial_distance_caps_the_bisection(certifier, clips):
    x, y = clips
    free = certified_radius(certifier, x[0], int(y[0]), "linf", tolerance=0.05)
    capped = certified_radius(certifier, x[0], int(y[0]), "linf", tolerance=0.05, eps_max=free.radius * 0.8)
    assert capped.radius <= free.radius * 0.8 and capped.radius > 0


def test_the_rounding_bound_covers_float32_errors_at_float32_precision(model, certifier, clips):
    """As tests/test_float_soundness.py for MLPs: the graph bound at float32's unit roundoff (the
    float64 slack times 2**29) covers the measured float32 - float64 difference."""
    x, y = clips
    engine32 = BoundEngine(model, SPEC.input_shape, dtype=torch.float32, bound_opts={"conv_mode": "matrix"})
    C = certifier.margin_spec(int(y[0])).expand(len(x), -1, -1)
    for norm in NORMS:
        for eps in (0.02, 0.1):
            lower64, upper64, slack64 = certifier.engine.bounds_and_slack(x, eps, norm, "crown", C=C)
            lower32, upper32 = engine32.bounds(x, eps, norm, "crown", C=C)
            bound32 = slack64.numpy() * 2.0**29
            assert (np.abs(lower32.double().numpy() - lower64.numpy()) <= bound32).all()
            assert (np.abs(upper32.double().numpy() - upper64.numpy()) <= bound32).all()


def test_unknown_norm_is_one_clear_error(certifier, clips):
    x, y = clips
    with pytest.raises(ValueError, match=r"^unknown norm 'l3'; expected one of \['l2', 'linf'\]$"):
        certified_radius(certifier, x[0], int(y[0]), "l3")


def test_brightness_cases_against_the_certified_ball(model, certifier):
    """Sec. 6.3: brightened clips whose flow lies in the certified ball keep the class (checked
    here by the float64 forward pass, a consequence of the proof), with r - ||dP|| reported."""
    from nnassure.config import FarnebackConfig
    from nnassure.video.brightness import brightness_check, clip_flows

    rng = np.random.default_rng(4)
    frames = np.clip(rng.normal(0.3, 0.03, (4, 16, 16)), 0, 1).astype(np.float32)
    for t in range(4):  # a bright square moving right by 1 pixel per frame
        frames[t, 5:10, 3 + t:8 + t] = 0.9
    params = FarnebackConfig().model_dump()
    flow = clip_flows(frames, params, 4)
    assert flow.shape == SPEC.input_shape
    with torch.no_grad():
        label = int(certifier.network64()(torch.as_tensor(flow[None], dtype=torch.float64)).argmax())
    radius = certified_radius(certifier, flow, label, "l2", tolerance=0.05).radius
    assert radius > 0
    deltas = [0.0, 0.02, 0.1, 0.3]
    result = brightness_check(frames, params, 4, model, label, radius, deltas)
    assert len(result.cases) == 4 * len(deltas)
    for case in result.cases:
        if case.delta == 0.0:
            assert case.flow_distance == 0.0 and case.inside and case.lower_bound == radius
        if case.inside:
            assert case.predicted == label
            assert 0.0 <= case.lower_bound <= radius - case.flow_distance
        else:
            assert case.lower_bound == 0.0
        assert case.pixel_distance <= abs(case.delta) * 16 + 1e-6
    worst = result.worst()
    assert set(worst) == set(deltas)
    assert all(worst[d].flow_distance == max(c.flow_distance for c in result.cases if c.delta == d) for d in deltas)
