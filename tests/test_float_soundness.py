"""Verdicts that stay sound in floating point: bounds hold for the float64 network the model file
defines (the stored float32 weights cast exactly to float64, evaluated in float64).

1. A network whose exact margin on a ball is known (between 1e-6 and 1e-4, positive or
   negative): "verified" is reported exactly when the margin is positive for CROWN and
   alpha-CROWN (which are exact on it), never the reverse for IBP; the certified radius never
   exceeds the exact one, also when the bisection tests a radius whose margin is -2e-6.
2. Trained models of every family (a verified-classification MLP saved and loaded through
   nnassure.models, PROVEN digits MLPs with ReLU, tanh and sigmoid, ensemble classifiers dense and
   convolutional): float64 logits at many points of the ball (uniform, vertices or sphere, and
   PGD's worst points) never leave the reported bounds, with no tolerance beyond the stated
   rounding bound; PROVEN's g^L(x) = A x + d - slack stays below the float64 margins.
3. The rounding bound is a real bound: scaled to float32's unit roundoff it covers the measured
   difference between the float32 and the float64 computation.
"""

from __future__ import annotations

import copy
from decimal import Decimal, getcontext

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from nnassure.certify import BoundEngine, certified_radius, certify_dataset, is_verified
from nnassure.certify.attacks import pgd_worst_logits, sample_ball
from nnassure.data import split_arrays
from nnassure.ensemble.bounds import L1BoundEngine
from nnassure.ensemble.encoding import _widened
from nnassure.ensemble.layers import MaxPoolLayer, network_layers
from nnassure.models import MLP, ConvSpec, MLPSpec, load_model, save_model
from nnassure.models.mlp import Arctan
from nnassure.proven.bisection import BisectionSettings, RiskEvaluator, margin_specification
from nnassure.training import Hyperparameters, predict_classes, train_classifier, train_mlp

getcontext().prec = 60
EPS = 2.0**-10  # a dyadic radius: the exact margins below are exact binary fractions (Linf)
# ... and radii a float32 cast would move (float32(0.001) > 0.001, float32(0.03) < 0.03).
RADII = [EPS, 0.001, 0.03]
CENTRE = np.array([[0.25, 0.5]], np.float32)
F0 = 7.8125  # logit at CENTRE without the output bias: 0.75 * 0.25 + 0.25 * 0.5 + 7.5
DUAL_NORM = {"linf": Decimal(1), "l2": Decimal("0.625").sqrt()}  # ||(0.75, 0.25)||_1 and ||.||_2
TARGET_MARGINS = [5e-5, 3e-6, 1.6e-6, -1.6e-6, -3e-6, -5e-5]
METHODS = ["ibp", "crown", "alpha-crown"]
NORMS = ["linf", "l2"]


def margin_network(bias: float, sign: float = 1.0) -> torch.nn.Module:
    """sign * (0.5 relu(x1 + x2 + 10) + 0.25 relu(x1 - x2 + 10) + 3 relu(-x1 - x2 - 10)) + bias.

    Near CENTRE the first two ReLUs are active and the third inactive, so the logit is the affine
    sign * (0.75 x1 + 0.25 x2 + 7.5) + bias and its extremes over a ball are exact: CROWN is exact
    on it. Saved and loaded through nnassure.models, like a trained model (float32 weights).
    """
    model = MLP(MLPSpec(depth=1, width=3))
    with torch.no_grad():
        model.net[0].weight.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]]))
        model.net[0].bias.copy_(torch.tensor([10.0, 10.0, -10.0]))
        model.net[2].weight.copy_(sign * torch.tensor([[0.5, 0.25, 3.0]]))
        model.net[2].bias.copy_(torch.tensor([bias]))
    return model.verification_network()


def bias_for(margin: float, norm: str, eps: float) -> tuple[float, Decimal]:
    """A float32 output bias giving about ``margin`` as the minimum over the ball of radius ``eps``
    (the float64 number) of the logit (sign +1), and the exact minimum it gives."""
    bias = float(np.float32(margin - (F0 - eps * float(DUAL_NORM[norm]))))
    exact = Decimal(F0) + Decimal(bias) - Decimal(eps) * DUAL_NORM[norm]
    return bias, exact


@pytest.mark.parametrize("eps", RADII)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("target", TARGET_MARGINS)
def test_verified_exactly_when_the_exact_margin_is_positive(target, norm, method, eps):
    bias, exact = bias_for(target, norm, eps)
    assert Decimal("1e-6") < abs(exact) < Decimal("1e-4")
    for label, sign, network_bias in ((1, 1.0, bias), (0, -1.0, -bias)):
        # label 1: min of the logit is `exact`; label 0 (negated network): its max is -exact.
        engine = BoundEngine(margin_network(network_bias, sign), 2)
        lower, upper = engine.bounds(CENTRE, eps, norm, method)
        verified = bool(is_verified(lower[:, 0].numpy(), upper[:, 0].numpy(), np.array([label]))[0])
        if exact <= 0:
            assert not verified, f"label {label}: verified with exact margin {exact}"
        elif method != "ibp":
            # CROWN is exact on this network, so only the rounding slack (~1e-11) is lost.
            assert verified, f"label {label}: not verified with exact margin {exact}"
        bound = Decimal(float(lower[0, 0])) if label == 1 else -Decimal(float(upper[0, 0]))
        assert bound <= exact  # the reported bound is sound...
        if method != "ibp":
            # ...and loses only the stated slack (plus the rounding it covers, at most as much).
            slack = Decimal(float(engine.rounding_slack(CENTRE, eps)[0, 0]))
            assert slack < Decimal("1e-10") and exact - bound <= 2 * slack


@pytest.mark.parametrize("norm", NORMS)
def test_certified_radius_never_exceeds_the_exact_radius(norm):
    radius_max, steps = 2.0**-6, 12
    grid = radius_max / 2**steps
    point = 655 * grid  # a radius the bisection tests (its path to r* passes through it)
    # Output bias: the exact radius r* lies 2e-6 / ||g|| below `point`, where the margin is -2e-6.
    bias = float(np.float32(float(DUAL_NORM[norm]) * point - 2e-6 - F0))
    exact_radius = (Decimal(F0) + Decimal(bias)) / DUAL_NORM[norm]
    margin_at_point = Decimal(F0) + Decimal(bias) - Decimal(point) * DUAL_NORM[norm]
    assert Decimal("-1e-5") < margin_at_point < Decimal("-1e-6")
    for method in ("crown", "alpha-crown"):
        engine = BoundEngine(margin_network(bias), 2)
        radius = certified_radius(engine, CENTRE, np.array([1]), norm, method, radius_max, steps)
        assert radius.dtype == np.float64
        assert Decimal(float(radius[0])) <= exact_radius
        assert Decimal(float(radius[0])) > exact_radius - Decimal(grid)  # only the bisection's resolution lost


# ----------------------------------------------------------------------------------------------------
# Sampled float64 outputs never leave the reported bounds
# ----------------------------------------------------------------------------------------------------

def float64_logits(network: torch.nn.Module, points: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return network(torch.as_tensor(np.asarray(points, np.float64))).numpy()


def ball_points(centre: np.ndarray, eps: float, norm: str, rng: np.random.Generator, n: int = 2000) -> np.ndarray:
    """Uniform points of the ball, and its corners (Linf) or points of its sphere (L2), float64."""
    d = len(centre)
    inside = sample_ball(centre, eps, norm, n, rng)
    if norm == "linf":
        edge = centre + eps * rng.choice(np.array([-1.0, 1.0]), size=(min(n, 2**d), d))
    else:
        direction = rng.normal(size=(n // 4, d))
        edge = centre + eps * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    return np.concatenate([inside, edge])


@pytest.fixture(scope="module")
def classification_model(small_frame, tmp_path_factory):
    """A tiny trained verified-classification MLP, saved and loaded as the train stage does."""
    x_train, y_train = split_arrays(small_frame, "train")
    x_val, y_val = split_arrays(small_frame, "val")
    hparams = Hyperparameters(depth=2, width=16, dropout=0.0, lr=1e-2, weight_decay=0.0, max_epochs=10, patience=10)
    model = train_mlp(x_train, y_train, x_val, y_val, hparams, cost_fn=1.0, seed=0, progress=False).model
    stem = tmp_path_factory.mktemp("model") / "c_c1"
    save_model(model, stem)
    return load_model(stem).model


def test_certified_bounds_hold_for_the_float64_network(classification_model, small_frame):
    frame = small_frame.iloc[:60]
    result = certify_dataset(classification_model.verification_network(), frame, NORMS, [0.01, 0.08], METHODS,
                             alpha_batch_size=60, alpha_iterations=5, radius_steps=6, progress=False)
    samples = result.samples
    for column in ("lower", "upper", "certified_radius"):
        assert samples[column].dtype == np.float64
    # A copy: verification_network() shares its layers with the model, which must stay float32.
    network64 = copy.deepcopy(classification_model.verification_network()).double()
    x = frame[["x1", "x2"]].to_numpy(np.float64)  # the stored points are the balls' centres
    rng = np.random.default_rng(0)
    for (norm, eps, _method), rows in samples.groupby(["norm", "eps", "method"]):
        lower, upper = rows["lower"].to_numpy(), rows["upper"].to_numpy()
        labels = rows["label"].to_numpy()
        worst_low = pgd_worst_logits(network64, x, np.ones(len(x), np.int64), eps, norm, steps=20, restarts=2)
        worst_high = -pgd_worst_logits(network64, x, np.zeros(len(x), np.int64), eps, norm, steps=20, restarts=2)
        assert (worst_low >= lower).all() and (worst_high <= upper).all()
        for i, centre in enumerate(x.astype(np.float64)):
            logits = float64_logits(network64, ball_points(centre, eps, norm, rng, 500))[:, 0]
            assert logits.min() >= lower[i] and logits.max() <= upper[i]
            if rows["verified"].iloc[i]:
                assert ((logits >= 0) == bool(labels[i])).all()
    # The certified radius is a radius at which the float64 network keeps the label.
    crown = samples[(samples["method"] == "crown") & (samples["eps"] == 0.01)]
    for norm, rows in crown.groupby("norm"):
        radius = rows["certified_radius"].to_numpy()
        for i, centre in enumerate(x.astype(np.float64)):
            if radius[i] > 0:
                logits = float64_logits(network64, ball_points(centre, radius[i], norm, rng, 300))[:, 0]
                assert ((logits >= 0) == bool(rows["label"].iloc[i])).all()


@pytest.fixture(scope="module")
def digits_data():
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    return x, data.target.astype(np.int64)


@pytest.fixture(scope="module")
def proven_models(digits_data):
    x, y = digits_data
    models = {}
    for activation in ("relu", "tanh", "sigmoid"):
        spec = MLPSpec(depth=2, width=24, input_dim=64, activation=activation, outputs=10)
        models[activation] = train_classifier(x[:1200], y[:1200], x[1200:], y[1200:], spec, lr=1e-2, max_epochs=8,
                                              seed=0, progress=False).model.verification_network()
    return models


def margin_pgd(network: torch.nn.Module, centre: np.ndarray, C: np.ndarray, eps: float, steps: int = 30) -> np.ndarray:
    """Points of the Linf ball where PGD (float64) found each margin C_t f small, (targets, d)."""
    x0 = torch.as_tensor(np.repeat(centre[None].astype(np.float64), len(C), axis=0))
    C_t = torch.as_tensor(C)
    delta = torch.zeros_like(x0)
    for _ in range(steps):
        delta.requires_grad_(True)
        margins = (network(x0 + delta) * C_t).sum(1)
        (grad,) = torch.autograd.grad(margins.sum(), delta)
        with torch.no_grad():
            delta = (delta - 2.5 * eps / steps * grad.sign()).clamp(-eps, eps)
    return (x0 + delta).detach().numpy()


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_proven_linear_bounds_stay_below_float64_margins(proven_models, digits_data, activation):
    network = proven_models[activation]
    network64 = copy.deepcopy(network).double()
    x_all, _ = digits_data
    x = x_all[1200:1206]
    labels = predict_classes(network, x)
    rng = np.random.default_rng(1)
    relaxations = ["crown", "fast-lin"] if activation == "relu" else ["crown"]
    for relaxation in relaxations:
        engine = BoundEngine(network, 64, relu_relaxation=relaxation)
        for eps in (0.005, 0.03):
            C = margin_specification(labels, 10)
            lA, lbias, _ = engine.linear_lower_bounds(x, np.full(len(x), eps), C)
            slack = engine.rounding_slack(x, np.full(len(x), eps), C).numpy()
            lower, _ = engine.bounds(x, eps, "linf", "crown", C=C)
            lA, lbias, C64 = lA.numpy(), lbias.numpy(), C.numpy()
            evaluator = RiskEvaluator(engine, x, labels, 10, BisectionSettings())
            worst = evaluator(np.arange(len(x)), np.full(len(x), eps), ["worst-case"] * len(x))
            for i, centre in enumerate(x.astype(np.float64)):
                points = np.concatenate([ball_points(centre, eps, "linf", rng, 1000),
                                         margin_pgd(network64, centre, C64[i], eps)])
                margins = float64_logits(network64, points) @ C64[i].T  # (points, targets)
                linear = points @ lA[i].T + lbias[i] - slack[i]  # g^L(x) - slack, float64
                assert (linear <= margins).all(), f"{relaxation} eps {eps}: g^L above a margin"
                if relaxation == "crown":
                    assert (margins >= lower[i].numpy()).all()
                if worst[i] == 0.0:  # certified in the worst case: every margin positive
                    assert (margins > 0).all()


def ensemble_networks(digits_data) -> dict[str, torch.nn.Module]:
    """Binary (0 vs 1) digits classifiers as the ensemble stage trains them: dense and conv + pool."""
    x, y = digits_data
    keep = y < 2
    x, y = x[keep], y[keep]
    specs = {"dense": MLPSpec(depth=2, width=12, input_dim=64, outputs=2),
             "conv": ConvSpec(8, 8, 1, 1, filters=2, kernel=3, pool=2, hidden=6, outputs=2)}
    return {name: train_classifier(x[:250], y[:250], x[250:], y[250:], spec, lr=1e-2, max_epochs=5, seed=0,
                                   progress=False).model.eval() for name, spec in specs.items()}


def test_ensemble_big_m_bounds_hold_for_the_float64_network(digits_data):
    """Every layer's float64 pre-activation at points of the L1 ball stays within the LiRPA
    big-M bounds as the encoding widens them (BOUND_SLACK, 1e-9 (1 + |bound|))."""
    x_all, y_all = digits_data
    rng = np.random.default_rng(2)
    for name, model in ensemble_networks(digits_data).items():
        layers = network_layers(model)
        engine = L1BoundEngine(layers)
        for x in x_all[y_all < 2][300:304].astype(np.float64):
            for eps in (0.1, 1.0):
                bounds = [_widened(lo, hi) for lo, hi in engine.bounds(x, eps)]
                d = len(x)
                directions = rng.standard_normal((2000, d))
                ball = x + directions / np.abs(directions).sum(1, keepdims=True) * eps * rng.uniform(0, 1, (2000, 1))
                a = np.concatenate([x + eps * np.concatenate([np.eye(d), -np.eye(d)]), ball])
                for layer, (lo, hi) in zip(layers, bounds, strict=True):
                    if isinstance(layer, MaxPoolLayer):
                        z = a[:, layer.groups].max(axis=2)
                        a = z
                    else:
                        z = a @ layer.weight.T + layer.bias
                        a = np.maximum(z, 0.0) if layer.relu else z
                    assert (z >= lo).all() and (z <= hi).all(), f"{name}: a pre-activation left its big-M bounds"
                # The rounding bound is what the encoding's widening must cover.
                for (lo, hi), error in zip(engine.bounds(x, eps), engine.crown_rounding_error(x, eps), strict=True):
                    if error is not None and name == "dense":
                        assert (error <= 1e-9 * (1 + np.minimum(np.abs(lo), np.abs(hi)))).all()


# ----------------------------------------------------------------------------------------------------
# The rounding bound is a bound
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["ibp", "crown"])
@pytest.mark.parametrize("norm", NORMS)
def test_the_rounding_bound_covers_float32_errors_at_float32_precision(classification_model, proven_models,
                                                                      small_frame, digits_data, norm, method):
    """The same a-priori analysis with float32's unit roundoff (2**-24 instead of 2**-53) must
    cover the measured float32 error, which is large enough to see; the float64 slack is that
    bound scaled by 2**-29."""
    x_c, _ = split_arrays(small_frame)
    cases = [(classification_model.verification_network(), x_c[:200], 0.05)]
    cases += [(proven_models[a], digits_data[0][:20], 0.02) for a in ("relu", "tanh")]
    for network, x, eps in cases:
        engine64, engine32 = BoundEngine(network, x.shape[1]), BoundEngine(network, x.shape[1], dtype=torch.float32)
        lower64, upper64 = engine64.bounds(x, eps, norm, method)
        lower32, upper32 = engine32.bounds(x, eps, norm, method)
        slack64 = engine64.rounding_slack(x, eps).numpy()
        bound32 = slack64 * 2.0**29
        assert (np.abs(lower32.double().numpy() - lower64.numpy()) <= bound32).all()
        assert (np.abs(upper32.double().numpy() - upper64.numpy()) <= bound32).all()
        assert (slack64 < 1e-8).all()


# ---------------------------------------------------------------------------------------------
# S-shaped activations beyond auto_LiRPA 0.3's relaxation range (found by an independent attack)
# ---------------------------------------------------------------------------------------------

def _steep_network(activation: torch.nn.Module, out_weight: float, bias: float) -> torch.nn.Sequential:
    """A first pre-activation 1000 * x1 reaches 1000 on the ball around (0.5, 0.5) of radius 0.5,
    far beyond the [-500, 500] auto_LiRPA clamps it to before drawing the activation's lines."""
    first, last = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1000.0, 0.0], [-1.0, 0.0]]))
        first.bias.zero_()
        last.weight.copy_(torch.tensor([[1.0, out_weight]]))
        last.bias.fill_(bias)
    return torch.nn.Sequential(first, activation, last)


@pytest.mark.parametrize(("activation", "out_weight", "bias"), [
    (torch.nn.Tanh(), 1.5, 0.12286558747291565), (torch.nn.Sigmoid(), 2.5, -0.2), (Arctan(), 2.5, 0.1)])
def test_bounds_stay_sound_where_an_s_shaped_pre_activation_leaves_the_relaxation_range(
        activation: torch.nn.Module, out_weight: float, bias: float) -> None:
    network = _steep_network(activation, out_weight, bias)
    engine = BoundEngine(network, 2)
    center = np.array([[0.5, 0.5]])
    grid = np.stack([np.linspace(0.0, 1.0, 200_001), np.full(200_001, 0.5)], axis=1)
    with torch.no_grad():
        true = engine.network(torch.as_tensor(grid))[:, 0].numpy()
    for method in ("ibp", "crown"):
        lower, upper = engine.bounds(center, 0.5, "linf", method)
        assert lower.item() <= true.min() and upper.item() >= true.max(), method
    # PROVEN's linear lower bounds of the margin (label 0 against 1 here) stay below it too.
    spec = torch.tensor([[[1.0]]], dtype=torch.float64)
    lA, lbias, _ = engine.linear_lower_bounds(center, np.array([0.5]), spec)
    linear = grid @ lA[0, 0].numpy() + lbias[0, 0].item()
    slack = engine.rounding_slack(center, 0.5, spec)[0, 0].item()
    assert (linear - slack <= true).all()
