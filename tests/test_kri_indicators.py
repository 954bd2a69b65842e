"""KRIs from the risk tensor (nnassure.kri.indicators): hand-computed aggregations on tiny tensors
(Eq. 1, Eq. 2, Sec. 5), deployment weights checked at use, the bootstrap's coverage in a
simulation, and the Clopper-Pearson interval against scipy."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.stats import binomtest

from nnassure.errors import ConfigError, InputFileError
from nnassure.kri.indicators import (
    bootstrap_counts,
    clopper_pearson,
    components,
    deployment_frame,
    kri_frame,
    pooled_draws,
    replicates,
)


def tensor_of(risk: np.ndarray, risk_adv: np.ndarray, scenarios: dict, attacks: dict,
              models=("A", "B"), losses=("class_change",)) -> xr.Dataset:
    """A risk tensor in the brief's format (only the variables the KRIs read)."""
    samples = risk.shape[3]
    return xr.Dataset(
        {"risk": (("loss", "model", "scenario", "sample", "draw"), risk),
         "risk_adv": (("loss", "model", "attack", "sample"), risk_adv)},
        coords={"loss": list(losses), "model": list(models), "scenario": list(scenarios),
                "scenario_family": ("scenario", [f for f, _ in scenarios.values()]),
                "scenario_kind": ("scenario", [k for _, k in scenarios.values()]),
                "attack": list(attacks), "attack_family": ("attack", [f for f, _ in attacks.values()]),
                "attack_kind": ("attack", [k for _, k in attacks.values()]),
                "sample": np.arange(samples), "draw": np.arange(risk.shape[4])},
        attrs={"format": "nnassure-kri-tensor-1"})


@pytest.fixture
def tiny():
    """One loss, one model, 2 samples; brightness (2 draws, NaN beyond), gaussian (4 draws), fog
    (3 draws) and one attack."""
    nan = np.nan
    risk = np.array([[[  # loss, model
        [[1, 0, nan, nan], [1, 1, nan, nan]],  # brightness: per sample 0.5, 1.0 -> 0.75
        [[0, 0, 0, 1], [1, 1, 1, 1]],  # gaussian: 0.25, 1.0 -> 0.625
        [[1, 1, 1, nan], [0, 0, 0, nan]],  # fog: 1, 0 -> 0.5
    ]]], dtype=float)
    adv = np.array([[[[1, 0]]]], dtype=float)  # fgsm: 0.5
    scenarios = {"brightness": ("sensor", "brightness"), "gaussian": ("random_noise", "gaussian"),
                 "fog": ("weather", "fog")}
    return tensor_of(risk, adv, scenarios, {"fgsm": ("adversarial", "fgsm")}, models=("A",))


def test_component_family_and_final_kris_by_hand(tiny):
    comps = components(tiny)
    assert comps.names == ("brightness", "gaussian", "fog", "fgsm")
    np.testing.assert_allclose(comps.values[0, 0], [[0.5, 1.0], [0.25, 1.0], [1.0, 0.0], [1.0, 0.0]])
    frame = kri_frame(replicates(comps, 200, 0.95, seed=1)).set_index(["level", "name"])["kri"]
    assert frame[("component", "brightness")] == pytest.approx(0.75)
    assert frame[("component", "gaussian")] == pytest.approx(0.625)
    assert frame[("component", "fog")] == pytest.approx(0.5)
    assert frame[("component", "fgsm")] == pytest.approx(0.5)
    # each family has one component here
    assert frame[("family", "random_noise")] == pytest.approx(0.625)
    # final = mean of the 4 family KRIs
    assert frame[("final", "final")] == pytest.approx((0.75 + 0.625 + 0.5 + 0.5) / 4)


def test_family_weights_each_component_alike_and_final_is_a_convex_combination():
    rng = np.random.default_rng(0)
    risk = rng.integers(0, 2, (1, 1, 3, 5, 2)).astype(float)
    risk[0, 0, 2, :, 1] = np.nan  # contrast: 1 draw
    scenarios = {"brightness": ("sensor", "brightness"), "gaussian": ("random_noise", "gaussian"),
                 "contrast": ("sensor", "contrast")}
    adv = rng.integers(0, 2, (1, 1, 1, 5)).astype(float)
    comps = components(tensor_of(risk, adv, scenarios, {"pgd": ("adversarial", "pgd")}, models=("A",)))
    frame = kri_frame(replicates(comps, 100, 0.9)).set_index(["level", "name"])["kri"]
    sensor = (np.nanmean(risk[0, 0, 0], -1).mean() + risk[0, 0, 2, :, 0].mean()) / 2
    assert frame[("family", "sensor")] == pytest.approx(sensor)
    alpha = comps.weights("final")
    assert alpha.sum() == pytest.approx(1.0) and (alpha >= 0).all()
    np.testing.assert_allclose(alpha, [1 / 6, 1 / 3, 1 / 6, 1 / 3])
    assert frame[("final", "final")] == pytest.approx((sensor + frame[("family", "random_noise")]
                                                       + frame[("family", "adversarial")]) / 3)


def test_deployment_risk_is_the_weighted_sum_and_weights_are_checked_at_use(tiny):
    reps = replicates(components(tiny), 200, 0.95)
    frame = deployment_frame(reps, {"city": {"fog": 0.5, "brightness": 0.3, "fgsm": 0.2}})
    assert frame["risk"].iloc[0] == pytest.approx(0.5 * 0.5 + 0.3 * 0.75 + 0.2 * 0.5)
    assert frame["ci_low"].iloc[0] <= frame["risk"].iloc[0] <= frame["ci_high"].iloc[0]
    with pytest.raises(ConfigError, match="rain: not a scenario of the risk tensor"):
        deployment_frame(reps, {"city": {"rain": 1.0}})
    with pytest.raises(ConfigError, match="sum to 0.9"):
        deployment_frame(reps, {"city": {"fog": 0.9}})
    with pytest.raises(ConfigError, match="expected a weight >= 0"):
        deployment_frame(reps, {"city": {"fog": 1.5, "brightness": -0.5}})


def test_unknown_family_and_model_are_refused(tiny):
    comps = components(tiny)
    with pytest.raises(ConfigError, match="unknown noise family 'snow'"):
        comps.weights("family", "snow")
    with pytest.raises(InputFileError, match="no model 'Z'"):
        components(tiny, models=["Z"])


def test_bootstrap_uses_one_resample_for_every_component():
    counts = bootstrap_counts(7, 50, seed=3)
    assert counts.shape == (50, 7) and (counts.sum(1) == 7).all()
    np.testing.assert_array_equal(counts, bootstrap_counts(7, 50, seed=3))
    # two identical components: identical replicates, so their difference has a zero-width CI
    risk = np.random.default_rng(0).integers(0, 2, (1, 1, 2, 20, 1)).astype(float)
    risk[0, 0, 1] = risk[0, 0, 0]
    scenarios = {"a": ("sensor", "brightness"), "b": ("weather", "fog")}
    reps = replicates(components(tensor_of(risk, np.zeros((1, 1, 0, 20)), scenarios, {}, models=("A",))), 300, 0.95)
    _, low, high = reps.combine(np.array([1.0, -1.0]))
    assert low[0, 0] == high[0, 0] == 0.0


def test_bootstrap_interval_covers_the_true_risk_at_about_the_nominal_rate():
    """Per-image rates drawn from a known law; the CI of the component KRI covers its mean."""
    rng = np.random.default_rng(11)
    trials, samples, draws, confidence = 300, 60, 5, 0.9
    covered = 0
    for t in range(trials):
        p = rng.beta(1, 3, samples)  # images with different class-change rates; E p = 0.25
        risk = (rng.random((1, 1, 1, samples, draws)) < p[None, None, None, :, None]).astype(float)
        comps = components(tensor_of(risk, np.zeros((1, 1, 0, samples)), {"g": ("random_noise", "gaussian")}, {},
                                     models=("A",)))
        _, low, high = replicates(comps, 200, confidence, seed=t).combine(np.array([1.0]))
        covered += int(low[0, 0] <= 0.25 <= high[0, 0])
    rate = covered / trials
    # percentile bootstrap at n = 60 undercovers a little; 300 trials: standard error ~ 0.017
    assert 0.84 <= rate <= 0.96, rate


def test_clopper_pearson_matches_scipy_and_pooled_draws():
    for k, n in ((0, 10), (3, 10), (10, 10), (17, 400)):
        ci = binomtest(k, n).proportion_ci(0.95, "exact")
        assert clopper_pearson(k, n, 0.95) == pytest.approx((ci.low, ci.high))
    risk = np.array([[[[[1, 0, np.nan], [1, 1, np.nan], [0, 0, np.nan]]]]])
    tensor = tensor_of(risk, np.zeros((1, 1, 0, 3)), {"g": ("random_noise", "gaussian")}, {}, models=("A",))
    assert pooled_draws(tensor, "A", "g", [0, 1]) == (3, 4)
