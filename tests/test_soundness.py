"""Soundness of the certificates of Sec. 3.2: a verified sample has no counterexample in its ball.

Every bound is checked against points of the ball found by PGD and by uniform sampling (plus the
ball's corners / boundary), for seeded random MLPs and a small trained model, for Linf and L2.
The random networks get their last bias shifted so that the median logit on the data is 0: the
decision boundary then crosses the data, and verified and non-verified samples both occur.
"""

import numpy as np
import pandas as pd
import pytest
import torch

from nnassure.certify import BoundEngine, certified_radius, certify_dataset, is_verified
from nnassure.certify.attacks import pgd_worst_logits, sample_ball
from nnassure.certify.verify import INPUT_DOMAIN
from nnassure.data import split_arrays
from nnassure.training import Hyperparameters, predict_labels, train_mlp

NORMS = ["linf", "l2"]
EPS = [0.01, 0.05, 0.1]
N_RANDOM = 1000  # uniform points per ball
N_POINTS = 100  # samples certified per random network
RADIUS_MAX, RADIUS_STEPS = 0.25, 8
# Slack for float32 bound computations: |a(x')| is O(1) here and rounding errors are ~1e-6.
ATOL = 2e-5

RANDOM_CASES = {  # name -> (hidden widths, seed)
    "d1w8": ([8], 4),
    "d1w32": ([32], 0),
    "d2w16": ([16, 16], 1),
    "d2w32": ([32, 32], 2),
    "d3w8-16-8": ([8, 16, 8], 3),
    "d3w32": ([32, 32, 32], 5),
}
CASES = [*RANDOM_CASES, "trained"]


class Case:
    """A network, its bound engine, sample points and labels (a few of them deliberately wrong)."""

    def __init__(self, network, x, labels):
        self.network = network.eval()
        self.x = np.ascontiguousarray(x, dtype=np.float32)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.engine = BoundEngine(self.network, 2, alpha_iterations=10)
        self.prediction = (self.logits(self.x) >= 0).astype(np.int64)

    def logits(self, points):
        with torch.no_grad():
            return self.network(torch.as_tensor(points, dtype=torch.float32))[:, 0].numpy()


@pytest.fixture(scope="module")
def trained_network(small_frame):
    x_train, y_train = split_arrays(small_frame, "train")
    x_val, y_val = split_arrays(small_frame, "val")
    hparams = Hyperparameters(depth=2, width=32, dropout=0.0, lr=1e-2, weight_decay=0.0,
                              max_epochs=15, patience=15)
    result = train_mlp(x_train, y_train, x_val, y_val, hparams, cost_fn=1.0, seed=0, progress=False)
    return result.model


@pytest.fixture(scope="module")
def cases(small_frame, random_mlp, trained_network):
    x_all, y_all = (a.copy() for a in split_arrays(small_frame))
    built = {}
    for name, (widths, seed) in RANDOM_CASES.items():
        network = random_mlp(widths, seed)
        x = x_all[:N_POINTS].copy()
        with torch.no_grad():
            network[-1].bias -= network(torch.as_tensor(x))[:, 0].median()
        labels = (network(torch.as_tensor(x)).detach()[:, 0].numpy() >= 0).astype(np.int64)
        labels[::10] = 1 - labels[::10]  # 10 misclassified samples
        built[name] = Case(network, x, labels)
    built["trained"] = Case(trained_network.verification_network(), x_all, y_all)
    return built


def ball_points(center, eps, norm, rng, n=N_RANDOM):
    """``n`` uniform points of the ball plus its corners (Linf) or 16 points of its sphere (L2), (n+k, 2)."""
    points = [sample_ball(center, eps, norm, n, rng)]
    if norm == "linf":
        points.append(center + eps * np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], np.float32))
    else:
        angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        points.append(center + eps * np.stack([np.cos(angles), np.sin(angles)], 1))
    return np.concatenate(points).astype(np.float32)


def all_ball_points(case, eps, norm, seed=0, domain=None):
    """Points of every sample's ball, shape (samples, points, 2); eps is a scalar or one per sample."""
    rng = np.random.default_rng(seed)
    eps = np.broadcast_to(np.asarray(eps, np.float32), (len(case.x),))
    points = np.stack([ball_points(c, float(e), norm, rng) for c, e in zip(case.x, eps, strict=True)])
    if domain is not None:
        points = np.clip(points, *domain)  # coordinate-wise clipping keeps each point in the ball
    return points


def signed_lower(lower, upper, labels):
    """Lower bound of s * a(x') over the ball (s = +1 for label 1, -1 for label 0)."""
    return np.where(labels == 1, lower, -upper)


def no_counterexample(signed, labels):
    """pgd_worst_logits convention: signed = s * a(x'); class 1 iff a >= 0, so label 0 needs a < 0."""
    return np.where(labels == 1, signed >= 0, signed > 0)


def bounds(case, eps, norm, method="crown", domain=None):
    lower, upper = case.engine.bounds(case.x, eps, norm, method, domain)
    assert lower.shape == upper.shape == (len(case.x), 1)
    return lower[:, 0].numpy(), upper[:, 0].numpy()


@pytest.mark.parametrize("eps", EPS)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", CASES)
def test_verified_samples_have_no_counterexample(cases, name, norm, eps):
    case = cases[name]
    lower, upper = bounds(case, eps, norm)
    assert (lower <= upper).all()
    verified = is_verified(lower, upper, case.labels)
    assert (case.prediction[verified] == case.labels[verified]).all()

    # (a) PGD, run on every sample: it never beats the bound, and never flips a verified sample.
    worst = pgd_worst_logits(case.network, case.x, case.labels, eps, norm, steps=30, restarts=2, seed=1)
    assert (worst >= signed_lower(lower, upper, case.labels) - ATOL).all()
    assert no_counterexample(worst[verified], case.labels[verified]).all()

    # (a) + (b) 1,000 uniform points per ball and its corners / sphere.
    points = all_ball_points(case, eps, norm, seed=2)
    logits = case.logits(points.reshape(-1, 2)).reshape(len(case.x), -1)
    assert (logits >= lower[:, None] - ATOL).all(), "a sampled output is below the lower bound"
    assert (logits <= upper[:, None] + ATOL).all(), "a sampled output is above the upper bound"
    predicted = (logits[verified] >= 0).astype(np.int64)
    assert (predicted == case.labels[verified, None]).all(), "a verified sample changes label in its ball"

    # The checks have teeth: at the largest eps some samples are not verified and PGD flips some.
    if eps == max(EPS):
        assert not verified.all()
        assert not no_counterexample(worst, case.labels).all()
    if eps == min(EPS):
        assert verified.mean() > 0.3


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", CASES)
def test_ibp_bounds_are_sound(cases, name, norm):
    case = cases[name]
    eps = 0.05
    lower, upper = bounds(case, eps, norm, "ibp")
    logits = case.logits(all_ball_points(case, eps, norm, seed=3).reshape(-1, 2)).reshape(len(case.x), -1)
    assert (logits >= lower[:, None] - ATOL).all()
    assert (logits <= upper[:, None] + ATOL).all()


def crown_ibp_violations(case, norm):
    """(eps, samples, worst excess) where CROWN is not inside IBP."""
    found = []
    for eps in EPS:
        lower_ibp, upper_ibp = bounds(case, eps, norm, "ibp")
        lower, upper = bounds(case, eps, norm, "crown")
        excess = np.maximum(lower_ibp - lower, upper - upper_ibp)
        if (excess > 1e-5).any():
            found.append((eps, int((excess > 1e-5).sum()), float(excess.max())))
    return found


# CROWN inside IBP is not a theorem: the adaptive lower ReLU slope (0 or 1) can give a looser output
# bound than interval arithmetic, by up to ~0.58 for the trained network at eps = 0.1. These
# (network, norm) pairs are known counterexamples (found by this test; see crown_ibp_violations).
CROWN_LOOSER_THAN_IBP = {("d1w8", "linf"), ("trained", "linf"), ("trained", "l2")}


@pytest.mark.parametrize(
    ("name", "norm"),
    [
        pytest.param(n, p, marks=pytest.mark.xfail(strict=True, reason="CROWN looser than IBP (not a theorem)"))
        if (n, p) in CROWN_LOOSER_THAN_IBP else (n, p)
        for n in CASES for p in NORMS
    ],
)
def test_crown_inside_ibp(cases, name, norm):
    assert crown_ibp_violations(cases[name], norm) == []


ALPHA_CASES = ["d2w16", "d3w32", "trained"]
N_ALPHA = 24  # alpha-CROWN optimises per sample: a subset keeps it fast


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", ALPHA_CASES)
def test_alpha_crown_inside_crown_and_sound(cases, name, norm):
    case = cases[name]
    eps = 0.05
    lower, upper = bounds(case, eps, norm, "crown")
    x, labels = case.x[:N_ALPHA], case.labels[:N_ALPHA]
    lower, upper = lower[:N_ALPHA], upper[:N_ALPHA]
    lower_alpha, upper_alpha = (b[:, 0].numpy() for b in case.engine.bounds(x, eps, norm, "alpha-crown"))
    assert (lower_alpha >= lower - 1e-5).all()
    assert (upper_alpha <= upper + 1e-5).all()
    assert (lower_alpha > lower + 1e-4).any() or (upper_alpha < upper - 1e-4).any(), "alpha-CROWN changed nothing"
    points = np.stack([ball_points(c, eps, norm, np.random.default_rng(4)) for c in x])
    logits = case.logits(points.reshape(-1, 2)).reshape(len(x), -1)
    assert (logits >= lower_alpha[:, None] - ATOL).all()
    assert (logits <= upper_alpha[:, None] + ATOL).all()
    verified = is_verified(lower_alpha, upper_alpha, labels)
    assert ((logits[verified] >= 0) == labels[verified, None].astype(bool)).all()


@pytest.fixture(scope="module")
def radii(cases):
    return {
        (name, norm): certified_radius(cases[name].engine, cases[name].x, cases[name].labels, norm, "crown",
                                       radius_max=RADIUS_MAX, steps=RADIUS_STEPS)
        for name in CASES for norm in NORMS
    }


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", CASES)
def test_certified_radius_is_a_sound_certificate(cases, radii, name, norm):
    case = cases[name]
    radius = radii[name, norm]
    assert radius.shape == (len(case.x),) and radius.dtype == np.float64  # float64: the radius bounded
    assert ((radius >= 0) & (radius <= RADIUS_MAX)).all()
    wrong = case.prediction != case.labels
    assert (radius[wrong] == 0).all(), "a misclassified sample got a positive radius"
    positive = radius > 0
    assert positive.sum() > len(case.x) // 3

    # Re-running the bounds at each sample's own radius verifies it.
    lower, upper = bounds(case, radius, norm)
    assert is_verified(lower, upper, case.labels)[positive].all()
    # No PGD or random counterexample at that radius.
    worst = pgd_worst_logits(case.network, case.x[positive], case.labels[positive], radius[positive], norm,
                             steps=30, restarts=2, seed=5)
    assert no_counterexample(worst, case.labels[positive]).all()
    logits = case.logits(all_ball_points(case, radius, norm, seed=6).reshape(-1, 2)).reshape(len(case.x), -1)
    assert ((logits[positive] >= 0) == case.labels[positive, None].astype(bool)).all()

    # The radius is the bisection's: one step further the sample is not verified.
    step = RADIUS_MAX / 2**RADIUS_STEPS
    open_ = ~wrong & (radius < RADIUS_MAX)
    lower, upper = bounds(case, radius + step, norm)
    assert not is_verified(lower, upper, case.labels)[open_].any()


def test_certified_radius_zero_for_all_misclassified(cases):
    case = cases["d2w16"]
    flipped = 1 - case.prediction
    radius = certified_radius(case.engine, case.x, flipped, "linf", radius_max=0.1, steps=4)
    assert (radius == 0).all()


@pytest.mark.parametrize("eps", EPS)
@pytest.mark.parametrize("name", CASES)
def test_clip_to_domain_is_sound(cases, name, eps):
    case = cases[name]
    lower, upper = bounds(case, eps, "linf", domain=INPUT_DOMAIN)
    points = all_ball_points(case, eps, "linf", seed=7, domain=INPUT_DOMAIN)
    logits = case.logits(points.reshape(-1, 2)).reshape(len(case.x), -1)
    assert (logits >= lower[:, None] - ATOL).all()
    assert (logits <= upper[:, None] + ATOL).all()
    verified = is_verified(lower, upper, case.labels)
    assert ((logits[verified] >= 0) == case.labels[verified, None].astype(bool)).all()


@pytest.mark.parametrize("name", CASES)
def test_clip_to_domain_tightens_ibp(cases, name):
    case = cases[name]
    for eps in EPS:
        lower, upper = bounds(case, eps, "linf", "ibp")
        lower_clip, upper_clip = bounds(case, eps, "linf", "ibp", domain=INPUT_DOMAIN)
        assert (lower_clip >= lower - 1e-5).all() and (upper_clip <= upper + 1e-5).all()
        inside = ((case.x - eps >= 0) & (case.x + eps <= 1)).all(1)
        np.testing.assert_allclose(lower_clip[inside], lower[inside], atol=1e-6)
        assert (~inside).any()


def test_clip_to_domain_is_ignored_for_l2(cases):
    case = cases["d2w32"]
    for method in ("ibp", "crown"):
        lower, upper = bounds(case, 0.1, "l2", method)
        lower_clip, upper_clip = bounds(case, 0.1, "l2", method, domain=INPUT_DOMAIN)
        np.testing.assert_array_equal(lower_clip, lower)
        np.testing.assert_array_equal(upper_clip, upper)


def clip_loosenings(cases):
    found = []
    for name in CASES:
        for eps in EPS:
            lower, upper = bounds(cases[name], eps, "linf")
            lower_clip, upper_clip = bounds(cases[name], eps, "linf", domain=INPUT_DOMAIN)
            excess = np.maximum(lower - lower_clip, upper_clip - upper)
            if (excess > 1e-5).any():
                found.append((name, eps, int((excess > 1e-5).sum()), float(excess.max())))
    return found


def test_clip_to_domain_never_loosens_crown(cases):
    assert clip_loosenings(cases) == []


@pytest.fixture(scope="module")
def certification(trained_network, small_frame):
    return certify_dataset(trained_network.verification_network(), small_frame, norms=NORMS,
                           eps_values=[0.001, 0.01, 0.05], methods=["ibp", "crown"], radius_method="crown",
                           radius_max=RADIUS_MAX, radius_steps=RADIUS_STEPS, progress=False)


SAMPLE_COLUMNS = ["sample_id", "split", "x1", "x2", "label", "prediction", "norm", "eps", "method", "lower",
                  "upper", "verified", "certified_radius"]


def test_certify_dataset_samples_frame(certification, small_frame, trained_network):
    samples = certification.samples
    assert list(samples.columns) == SAMPLE_COLUMNS
    assert len(samples) == len(small_frame) * 2 * 3 * 2
    assert samples.groupby(["norm", "eps", "method"]).size().eq(len(small_frame)).all()
    prediction = predict_labels(trained_network, small_frame[["x1", "x2"]].to_numpy(np.float32))
    for _, rows in samples.groupby(["norm", "eps", "method"]):
        np.testing.assert_array_equal(rows["sample_id"].to_numpy(), small_frame["sample_id"].to_numpy())
        np.testing.assert_array_equal(rows["split"].to_numpy(), small_frame["split"].to_numpy())
        np.testing.assert_array_equal(rows["prediction"].to_numpy(), prediction)
        np.testing.assert_array_equal(rows["label"].to_numpy(), small_frame["label"].to_numpy())
    np.testing.assert_array_equal(samples["verified"], is_verified(samples["lower"], samples["upper"],
                                                                   samples["label"]))
    assert (samples.loc[samples["verified"], "prediction"] == samples.loc[samples["verified"], "label"]).all()
    assert (samples["lower"] <= samples["upper"]).all()
    # Radii on the radius method's rows only, identical for every eps of a norm.
    assert samples.loc[samples["method"] == "ibp", "certified_radius"].isna().all()
    crown = samples[samples["method"] == "crown"]
    assert crown["certified_radius"].notna().all()
    assert (crown.groupby(["norm", "sample_id"])["certified_radius"].nunique() == 1).all()
    assert (crown.loc[crown["prediction"] != crown["label"], "certified_radius"] == 0).all()


def test_certify_dataset_matches_bound_engine(certification, small_frame, cases):
    case = cases["trained"]
    samples = certification.samples
    rows = samples[(samples["norm"] == "l2") & (samples["eps"] == 0.01) & (samples["method"] == "crown")]
    lower, upper = bounds(case, 0.01, "l2")
    np.testing.assert_allclose(rows["lower"].to_numpy(), lower, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(rows["upper"].to_numpy(), upper, rtol=1e-6, atol=1e-6)
    radius = certified_radius(case.engine, case.x, case.labels, "l2", radius_max=RADIUS_MAX, steps=RADIUS_STEPS)
    np.testing.assert_allclose(rows["certified_radius"].to_numpy(), radius, atol=1e-6)


def test_verified_accuracy_below_accuracy_and_decreasing(certification, small_frame):
    samples, summary = certification.samples, certification.summary
    accuracy = float((samples["prediction"] == samples["label"]).groupby(
        [samples["norm"], samples["eps"], samples["method"]]).mean().iloc[0])
    assert accuracy > 0.8
    assert list(summary.columns) == ["norm", "method", "eps", "verified_accuracy", "misclassification_error"]
    assert len(summary) == 12
    for (norm, method), part in summary.groupby(["norm", "method"]):
        part = part.sort_values("eps")
        va = part["verified_accuracy"].to_numpy()
        assert (va <= accuracy + 1e-12).all()
        assert (np.diff(va) <= 0).all(), f"verified accuracy grows with eps for {norm}/{method}"
        np.testing.assert_allclose(part["misclassification_error"], 1 - va)
        for eps, value in zip(part["eps"], va, strict=True):
            rows = samples[(samples["norm"] == norm) & (samples["method"] == method) & (samples["eps"] == eps)]
            assert value == pytest.approx(rows["verified"].mean())
    at_small = summary[summary["eps"] == 0.001]
    assert (at_small["verified_accuracy"] > accuracy - 0.1).all()  # eps -> 0: verified acc -> acc
    by_key = summary.set_index(["norm", "method", "eps"])["verified_accuracy"]
    for norm in NORMS:
        for eps in (0.001, 0.01, 0.05):
            assert by_key[norm, "crown", eps] >= by_key[norm, "ibp", eps] - 0.02


def test_certify_dataset_alpha_crown_subset(trained_network, small_frame):
    subset = small_frame.iloc[:20]
    result = certify_dataset(trained_network.verification_network(), subset, norms=["linf"], eps_values=[0.05],
                             methods=["crown", "alpha-crown"], alpha_iterations=5, radius_steps=4, progress=False)
    rows = result.samples
    assert set(rows["method"]) == {"crown", "alpha-crown"}
    crown = rows[rows["method"] == "crown"].reset_index(drop=True)
    alpha = rows[rows["method"] == "alpha-crown"].reset_index(drop=True)
    assert alpha["certified_radius"].isna().all()
    assert (alpha["lower"] >= crown["lower"] - 1e-5).all() and (alpha["upper"] <= crown["upper"] + 1e-5).all()
    assert (alpha["verified"] | ~crown["verified"]).all()
    pd.testing.assert_frame_equal(crown[["sample_id", "label", "prediction"]], alpha[["sample_id", "label",
                                                                                        "prediction"]])


def test_certify_dataset_without_radius_leaves_the_verdicts_alone(trained_network, small_frame):
    subset = small_frame.iloc[:30]
    kwargs = {"norms": ["linf", "l2"], "eps_values": [0.01, 0.05], "methods": ["crown"], "radius_steps": 3,
              "progress": False}
    with_radius = certify_dataset(trained_network.verification_network(), subset, **kwargs)
    without = certify_dataset(trained_network.verification_network(), subset, radius=False, **kwargs)
    assert without.samples["certified_radius"].isna().all()
    assert with_radius.samples["certified_radius"].notna().all()
    columns = ["sample_id", "norm", "eps", "lower", "upper", "verified"]
    pd.testing.assert_frame_equal(with_radius.samples[columns], without.samples[columns])
    pd.testing.assert_frame_equal(with_radius.summary, without.summary)
