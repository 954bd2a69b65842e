"""The MSR bounds of the video classifier: gradient-search upper bound and admissible A* lower bound.

Soundness is checked against attacks that do not share the bounds' code paths: PGD with many
restarts and uniform random points inside the A* ball (within its subspace), each judged by a
fresh float64 copy of the network. Hand cases use a linear network, whose margin Lipschitz
constants ||w_y - w_c||_q are exact, so its MSR is known in closed form.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from nnassure.errors import ConfigError
from nnassure.video.astar import STOP_REASONS, astar_lower, grid_width, salient_dims, salient_flows
from nnassure.video.lipschitz import margin_lipschitz
from nnassure.video.model import FlowLSTM, FlowLSTMSpec
from nnassure.video.upper import gradient_search, loss_gradient, pgd_within

T, G, CLASSES = 3, 4, 3
SHAPE = (T, 2, G, G)
D = int(np.prod(SHAPE))
NORMS = ("l1", "l2", "linf")
Q = {"l1": np.inf, "l2": 2, "linf": 1}  # dual exponents
P = {"l1": 1, "l2": 2, "linf": np.inf}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny batches are much faster on one thread when the machine is shared; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fresh_logits(model: nn.Module, flows: np.ndarray) -> np.ndarray:
    """An independent float64 forward pass (its own deep copy, not the bounds' helper)."""
    model64 = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        return model64(torch.as_tensor(np.asarray(flows, np.float64))).numpy()


def keeps_class(model: nn.Module, flows: np.ndarray, label: int) -> np.ndarray:
    """Per flow: the label is strictly ahead of every other class (float64)."""
    logits = fresh_logits(model, flows)
    others = np.delete(logits, label, axis=1)
    return logits[:, label] > others.max(axis=1)


def sample_subspace_ball(x0: np.ndarray, mask: np.ndarray, radius: float, norm: str, n: int,
                         rng: np.random.Generator) -> np.ndarray:
    """n points uniform in the ``norm`` ball of ``radius`` within the masked dims, half of them on
    (just inside) its surface, where a counterexample would most likely be."""
    k = int(mask.sum())
    if norm == "linf":
        offsets = rng.uniform(-1, 1, size=(n, k))
        offsets[: n // 2, 0] = np.sign(offsets[: n // 2, 0])
    elif norm == "l2":
        offsets = rng.normal(size=(n, k))
        offsets /= np.linalg.norm(offsets, axis=1, keepdims=True)
        offsets[n // 2 :] *= rng.uniform(0, 1, size=(n - n // 2, 1)) ** (1 / k)
    else:  # uniform in the L1 ball: signed Dirichlet weights scaled by U^(1/k)
        e = rng.exponential(size=(n, k))
        offsets = e / e.sum(axis=1, keepdims=True) * rng.choice([-1, 1], size=(n, k))
        offsets[n // 2 :] *= rng.uniform(0, 1, size=(n - n // 2, 1)) ** (1 / k)
    points = np.repeat(x0.reshape(1, -1), n, axis=0)
    points[:, np.flatnonzero(mask)] += radius * (1 - 1e-9) * offsets
    return points.reshape(n, *x0.shape)


def linear_model(seed: int = 0, classes: int = CLASSES) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(D, classes)).eval()


def linear_lipschitz(model: nn.Sequential, norm: str, dims: np.ndarray | None = None) -> np.ndarray:
    """Exact L_{y,c} = ||w_y - w_c||_q of a linear model (over ``dims`` only, if given)."""
    w = model[1].weight.detach().double().numpy()
    w = w if dims is None else w[:, np.asarray(dims).reshape(-1)]
    return np.array([[np.linalg.norm(w[i] - w[j], Q[norm]) for j in range(len(w))] for i in range(len(w))])


def linear_msr(model: nn.Sequential, x0: np.ndarray, label: int, norm: str, dims: np.ndarray | None = None) -> float:
    """The exact MSR of a linear model: min_c m_c / ||w_y - w_c||_q (within ``dims`` if given)."""
    logits = fresh_logits(model, x0[None])[0]
    lip = linear_lipschitz(model, norm, dims)
    return min((logits[label] - logits[c]) / lip[label, c] for c in range(len(logits)) if c != label)


def mlp_model(seed: int = 0, hidden: int = 16) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(D, hidden), nn.ReLU(), nn.Linear(hidden, CLASSES)).eval()


def mlp_lipschitz(model: nn.Sequential, norm: str, dims_mask: np.ndarray) -> np.ndarray:
    """A sound L_{y,c} of a one-hidden-layer ReLU net for perturbations within ``dims_mask``:
    |dm| <= ||w2_y - w2_c||_2 ||relu(a') - relu(a)||_2 <= ||w2_y - w2_c||_2 ||W1_S||_{p->2} ||dx||_p,
    with ||.||_{p->2} the spectral norm (p = 2), the largest column norm (p = 1) or the bound
    sqrt(sum_i ||row_i||_1^2) (p = inf); times (1 + 1e-9) for the float64 rounding."""
    w1 = model[1].weight.detach().double().numpy()[:, dims_mask.reshape(-1)]
    w2 = model[3].weight.detach().double().numpy()
    op = {"l2": np.linalg.norm(w1, 2), "l1": np.linalg.norm(w1, axis=0).max(),
          "linf": np.sqrt((np.abs(w1).sum(axis=1) ** 2).sum())}[norm]
    return np.array([[np.linalg.norm(w2[i] - w2[j]) * op for j in range(CLASSES)]
                     for i in range(CLASSES)]) * (1 + 1e-9)


def flow_lstm(seed: int = 0) -> FlowLSTM:
    torch.manual_seed(seed)
    return FlowLSTM(FlowLSTMSpec(flows=T, grid=G, classes=CLASSES, conv_channels=4, features=8, hidden=8)).eval()


def clips(model: nn.Module, n: int, seed: int = 0) -> list[tuple[np.ndarray, int]]:
    """n random flows with the class the model gives them (the bounds analyse correct clips)."""
    x = np.random.default_rng(seed).normal(scale=0.5, size=(n, *SHAPE))
    return list(zip(x, fresh_logits(model, x).argmax(axis=1).tolist(), strict=True))


# -- Thm. 1 and the inputs -------------------------------------------------------------------


def test_grid_width_by_hand():
    assert grid_width("l1", 4, 0.5) == 2.0  # |D| tau
    assert grid_width("l2", 4, 0.5) == 1.0  # sqrt(|D| tau^2)
    assert grid_width("l2", 9, 0.1) == pytest.approx(0.3, rel=1e-15)
    assert grid_width("linf", 4, 0.5) == 0.5  # tau
    with pytest.raises(ValueError, match="at least one dimension"):
        grid_width("l2", 0, 0.5)


def test_unknown_norm_or_gradient_is_one_clear_line():
    model = linear_model()
    x0, label = clips(model, 1)[0]
    calls = [lambda: gradient_search(model, x0, label, "l3"),
             lambda: pgd_within(model, x0, label, "l3", 0.1),
             lambda: astar_lower(model, x0, label, "l3", linear_lipschitz(model, "l2"), np.ones(SHAPE, bool)),
             lambda: grid_width("L2", 3, 0.1)]
    for call in calls:
        with pytest.raises(ConfigError) as info:
            call()
        assert "\n" not in str(info.value) and "expected one of l1, l2, linf" in str(info.value)
    with pytest.raises(ConfigError, match="unknown gradient 'numeric'"):
        gradient_search(model, x0, label, "l2", gradient="numeric")


def test_salient_dims_per_flow_and_ties_by_index():
    model = flow_lstm()
    x0, label = clips(model, 1)[0]
    flows = np.array([True, False, True])
    mask = salient_dims(model, x0, label, flows, per_flow=3)
    assert mask.shape == SHAPE and mask.reshape(T, -1).sum(axis=1).tolist() == [3, 0, 3]
    assert (salient_dims(model, x0, label, flows, per_flow=3) == mask).all()
    # equal saliency everywhere: the lowest indices win
    flat = nn.Sequential(nn.Flatten(), nn.Linear(D, 2)).eval()
    with torch.no_grad():
        flat[1].weight.zero_()
        flat[1].weight[0] = 1.0
    tied = salient_dims(flat, np.zeros(SHAPE), 0, None, per_flow=2).reshape(T, -1)
    assert all(np.flatnonzero(tied[t]).tolist() == [0, 1] for t in range(T))
    k_flows = salient_flows(model, x0, label, "l2", 2)
    assert k_flows.shape == (T,) and k_flows.sum() == 2


# -- upper bound -----------------------------------------------------------------------------


@pytest.mark.parametrize("norm", NORMS)
def test_linear_hand_case(norm):
    """Linear net: A* lower <= exact MSR <= upper, and the upper bound is within 1 % of it."""
    model = linear_model(seed=1)
    for x0, label in clips(model, 3, seed=1):
        exact = linear_msr(model, x0, label, norm)
        upper = gradient_search(model, x0, label, norm, iterations=20, step=0.05)
        assert exact <= upper.distance <= exact * 1.01
        mask = salient_dims(model, x0, label, None, per_flow=2)
        lower = astar_lower(model, x0, label, norm, linear_lipschitz(model, norm), mask, iterations=300)
        assert lower.lower <= exact
        # the constants are exact, so the root ball r0 is the exact MSR (up to the rounding allowance)
        assert lower.root_radius == pytest.approx(exact, rel=1e-6)
        # within the subspace: exact restricted constants, lower <= MSR_S <= the subspace upper bound
        dims = np.flatnonzero(mask)
        exact_s = linear_msr(model, x0, label, norm, dims)
        lower_s = astar_lower(model, x0, label, norm, linear_lipschitz(model, norm, dims), mask, iterations=300)
        upper_s = gradient_search(model, x0, label, norm, dims_mask=mask)
        assert lower_s.lower <= exact_s <= upper_s.distance <= exact_s * 1.01


@pytest.mark.parametrize("norm", NORMS)
def test_pgd_is_strong_enough_to_test_with(norm):
    """On the linear net PGD finds a class change 2 % beyond the exact MSR, and none 2 % inside."""
    model = linear_model(seed=1)
    for x0, label in clips(model, 3, seed=1):
        exact = linear_msr(model, x0, label, norm)
        found = pgd_within(model, x0, label, norm, 1.02 * exact, restarts=16, steps=40)
        assert found is not None and not keeps_class(model, found[None], label)[0]
        assert np.linalg.norm((found - x0).ravel(), P[norm]) <= 1.02 * exact
        assert pgd_within(model, x0, label, norm, 0.98 * exact, restarts=16, steps=40) is None


@pytest.mark.parametrize("gradient", ["autograd", "finite-difference"])
@pytest.mark.parametrize("norm", NORMS)
def test_upper_bound_reproduces_and_never_increases(norm, gradient):
    model = flow_lstm()
    found = 0
    for x0, label in clips(model, 3):
        result = gradient_search(model, x0, label, norm, iterations=10, step=0.05, gradient=gradient)
        distances = [point.distance for point in result.trace]
        assert all(b <= a for a, b in zip(distances, distances[1:], strict=False))
        assert [point.iteration for point in result.trace] == list(range(11))
        if result.adversarial is None:
            assert result.distance == np.inf
            continue
        found += 1
        logits = fresh_logits(model, result.adversarial[None])[0]
        assert logits[result.adversarial_class] - logits[label] >= 1e-6
        assert logits.argmax() != label
        distance = np.linalg.norm((result.adversarial - x0).ravel(), P[norm])
        assert distance == pytest.approx(result.distance, rel=1e-12)
        assert result.trace[-1].distance == result.distance
    assert found == 3


def test_finite_differences_agree_with_autograd():
    model = flow_lstm()
    for x0, label in clips(model, 3):
        auto = loss_gradient(model, x0, label, "autograd").ravel()
        fd = loss_gradient(model, x0, label, "finite-difference").ravel()
        assert auto @ fd / (np.linalg.norm(auto) * np.linalg.norm(fd)) > 0.99
    mask = salient_dims(model, x0, label, None, per_flow=4)
    assert not loss_gradient(model, x0, label, "finite-difference", mask)[~mask].any()


# -- lower bound -----------------------------------------------------------------------------


def check_lower_bound(model: nn.Module, x0: np.ndarray, label: int, norm: str, result, mask: np.ndarray,
                      covered: np.ndarray, seed: int) -> None:
    """Nothing inside the A* bound (within its subspace ``mask``) or the root ball r0 (within the
    dims ``covered`` by the Lipschitz constant) changes the class."""
    rng = np.random.default_rng(seed)
    lowers = [point.lower for point in result.trace]
    assert all(b >= a for a, b in zip(lowers, lowers[1:], strict=False))
    assert lowers[-1] == result.lower >= result.root_radius > 0
    assert pgd_within(model, x0, label, norm, result.lower, restarts=32, steps=40, dims_mask=mask, rng=rng) is None
    assert pgd_within(model, x0, label, norm, result.root_radius, restarts=16, steps=40, dims_mask=covered,
                      rng=rng) is None
    assert keeps_class(model, sample_subspace_ball(x0, mask, result.lower, norm, 2000, rng), label).all()
    if mask.sum() == 2:  # a 2-D subspace: every point of a dense grid over the ball, exhaustively
        axis = np.linspace(-result.lower, result.lower, 301)
        offsets = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
        offsets = offsets[np.linalg.norm(offsets, P[norm], axis=1) <= result.lower * (1 - 1e-9)]
        points = np.repeat(x0.reshape(1, -1), len(offsets), axis=0)
        points[:, np.flatnonzero(mask)] += offsets
        assert keeps_class(model, points.reshape(-1, *SHAPE), label).all()
    upper = gradient_search(model, x0, label, norm, iterations=10, dims_mask=mask)
    assert result.lower <= upper.distance
    if result.fmsr is not None:
        assert result.fmsr >= result.lower
        assert not keeps_class(model, result.fmsr_flow[None], label)[0]


@pytest.mark.parametrize("norm", NORMS)
def test_astar_sound_on_relu_net(norm):
    """A one-hidden-layer ReLU net with a sound, fairly tight constant: A* climbs above r0."""
    model = mlp_model(seed=2)
    climbed = 0
    for i, (x0, label) in enumerate(clips(model, 3, seed=2)):
        flows = np.zeros(T, bool)
        flows[i % T] = True
        mask = salient_dims(model, x0, label, flows, per_flow=2)
        result = astar_lower(model, x0, label, norm, mlp_lipschitz(model, norm, mask), mask,
                             iterations=400, seconds=20)
        assert result.dims.tolist() == np.flatnonzero(mask).tolist()
        assert result.grid_width == pytest.approx(grid_width(norm, 2, result.tau), rel=1e-12)
        check_lower_bound(model, x0, label, norm, result, mask, mask, seed=i)
        climbed += result.lower > result.root_radius
    assert climbed >= 1


@pytest.mark.parametrize("norm", NORMS)
def test_astar_sound_on_flow_lstm(norm):
    """The real network and the proven constants of nnassure.video.lipschitz, all or one flow."""
    model = flow_lstm()
    for i, (x0, label) in enumerate(clips(model, 2)):
        flows = np.ones(T, bool) if i == 0 else salient_flows(model, x0, label, norm, 1)
        mask = salient_dims(model, x0, label, flows, per_flow=2)
        result = astar_lower(model, x0, label, norm, margin_lipschitz(model, norm, flows), mask,
                             iterations=200, seconds=20)
        covered = np.broadcast_to(flows[:, None, None, None], SHAPE)
        check_lower_bound(model, x0, label, norm, result, mask, covered, seed=i)


@pytest.mark.parametrize("fraction, stop, failed_at", [(0.55, "adversarial grid point", 2),
                                                      (0.3, "cell not proven", 3)])
def test_astar_one_dimension_by_hand(fraction, stop, failed_at):
    """One dimension, exact constant L: the boundary is at D = r0 and the grid points at
    j d~ = j f D. Cell j is proven iff its margin L (D - j d~) exceeds L d~ / 2, i.e. j < 1/f - 1/2.
    f = 0.55: j = 0, 1 proven, j = 2 (1.1 D) adversarial, the FMSR; f = 0.3: j = 0..2 proven and
    j = 3 (0.9 D, still the label's) is not, so the bound stays at r0 = D (an A* that skipped the
    cell test would reach the adversarial j = 4 and report 1.2 D - d~/2 > D)."""
    model = linear_model(seed=3, classes=2)
    x0, label = clips(model, 1, seed=3)[0]
    mask = salient_dims(model, x0, label, np.array([True, False, False]), per_flow=1)
    dims = np.flatnonzero(mask)
    exact = linear_msr(model, x0, label, "l2", dims)
    result = astar_lower(model, x0, label, "l2", linear_lipschitz(model, "l2", dims), mask, tau_fraction=fraction)
    assert result.stop == stop
    assert result.grid_width == pytest.approx(fraction * exact, rel=1e-6)
    assert result.lower == pytest.approx(exact, rel=1e-6) and result.lower <= exact
    assert result.trace[-1].popped == 2 * failed_at  # both signs of j = 0 .. failed_at - 1, then j = failed_at
    if stop == "adversarial grid point":
        assert result.fmsr == pytest.approx(failed_at * fraction * exact, rel=1e-6)
        assert not keeps_class(model, result.fmsr_flow[None], label)[0]
        assert np.linalg.norm(result.fmsr_flow - x0) == pytest.approx(result.fmsr, rel=1e-9)
    else:
        assert result.fmsr is None and result.fmsr_flow is None


@pytest.mark.parametrize("norm", NORMS)
def test_astar_matches_brute_force_on_a_2d_grid(norm):
    """A* run to its first unproven cell reports max(r0, D* - d~/2), D* the smallest distance of
    an unproven grid point found by enumerating a box of the 2-D grid (independent of the
    search order; the box reaches past D*)."""
    model = mlp_model(seed=2)
    for i, (x0, label) in enumerate(clips(model, 3, seed=2)):
        flows = np.zeros(T, bool)
        flows[i % T] = True
        mask = salient_dims(model, x0, label, flows, per_flow=2)
        lip = mlp_lipschitz(model, norm, mask)
        result = astar_lower(model, x0, label, norm, lip, mask, iterations=10**5, seconds=60)
        assert result.stop in ("cell not proven", "adversarial grid point")
        k = 40
        n = np.stack(np.meshgrid(np.arange(-k, k + 1), np.arange(-k, k + 1)), axis=-1).reshape(-1, 2)
        points = np.repeat(x0.reshape(1, -1), len(n), axis=0)
        points[:, np.flatnonzero(mask)] += result.tau * n
        logits = fresh_logits(model, points.reshape(-1, *SHAPE))
        margins = np.delete(logits[:, [label]] - logits - 1e-9 * (1 + np.abs(logits).max(axis=1, keepdims=True)),
                            label, axis=1)
        proven = (margins - np.delete(lip[label], label) * result.grid_width / 2).min(axis=1) > 0
        distances = result.tau * np.linalg.norm(n, P[norm], axis=1)
        d_star = distances[~proven].min()
        assert d_star < result.tau * k  # the box holds every point closer than D*
        assert result.lower == pytest.approx(max(result.root_radius, d_star - result.grid_width / 2), rel=1e-12)
        # popped: every point closer than D*, then some of those at D* (FIFO ties), the last unproven
        closer, at_most = int((distances < d_star * (1 - 1e-12)).sum()), int((distances <= d_star * (1 + 1e-12)).sum())
        assert closer + 1 <= result.popped <= at_most


def test_astar_budget_and_trace():
    model = mlp_model(seed=2)
    x0, label = clips(model, 1, seed=2)[0]
    mask = salient_dims(model, x0, label, None, per_flow=2)
    lip = mlp_lipschitz(model, "l2", mask)
    result = astar_lower(model, x0, label, "l2", lip, mask, iterations=25, seconds=60)
    assert result.stop == "iterations" and result.iterations == 25
    assert [point.iteration for point in result.trace] == list(range(26))
    assert [point.popped for point in result.trace] == list(range(26))
    assert result.trace[-1].frontier > 0 and result.evaluations > 25
    assert astar_lower(model, x0, label, "l2", lip, mask, iterations=10**6, seconds=0.05).stop == "seconds"
    # constant margins (all L = 0): no class can overtake the label, nothing to search
    flat = astar_lower(model, x0, label, "l2", np.zeros_like(lip), mask)
    assert flat.stop == "exhausted" and flat.lower == np.inf and flat.iterations == 0
    assert {result.stop, flat.stop} <= set(STOP_REASONS)
    with pytest.raises(ValueError, match="not classified as its label"):
        astar_lower(model, x0, (label + 1) % CLASSES, "l2", lip, mask)
