"""The scenario components of the KRI family (nnassure.kri.scenarios): corruptions seeded per cell
and recomputable one by one, the certifiable noises exactly i.i.d. N(0, s^2) / U[-a, a] then
clipped, and attacks within their budget when re-checked in float64."""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest
import torch
from scipy import stats

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from nnassure.data.signs import render_signs  # noqa: E402
from nnassure.kri import scenarios as S  # noqa: E402
from nnassure.kri.kinds import KINDS, check_params  # noqa: E402
from nnassure.kri.model import KriCNN, KriCNNSpec, to_model_input  # noqa: E402

CORRUPTIONS = [k for k, spec in KINDS.items() if not spec.adversarial]
ATTACKS = [k for k, spec in KINDS.items() if spec.adversarial]


def entry(kind: str, **params) -> dict:
    return {"family": KINDS[kind].family, "kind": kind, "params": check_params(kind, params, f"kri.scenarios.{kind}"),
            "draws": None}


@pytest.fixture(scope="module")
def signs() -> tuple[np.ndarray, np.ndarray]:
    images, labels = render_signs(96, 16, 3)
    return images.astype(np.float32) / np.float32(255), labels


@pytest.fixture(scope="module")
def trained(signs) -> KriCNN:
    """A small CNN trained for a few epochs, so that attacks have a decision boundary to cross."""
    images, labels = signs
    torch.manual_seed(0)
    model = KriCNN(KriCNNSpec(16, (8, 16), 32, 6))
    x, y = torch.as_tensor(to_model_input(images)), torch.as_tensor(labels)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(15):
        for b in range(0, len(x), 32):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[b:b + 32]), y[b:b + 32]).backward()
            opt.step()
    return model.eval()


# --- corruptions --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corruption_cells_are_seeded_alone_and_in_range(kind, signs):
    images = signs[0][:4]
    scenario = entry(kind)
    pert = S.corrupt(kind, scenario, images, 3, seed=7, progress=False)
    assert pert.images.shape == (4, 3, 16, 16, 3) and pert.images.dtype == np.float32
    assert pert.images.min() >= 0.0 and pert.images.max() <= 1.0
    # each draw is a different perturbation, and changes the image
    assert not np.array_equal(pert.images[:, 0], pert.images[:, 1])
    assert np.abs(pert.images - images[:, None]).max() > 0
    for i, d in ((0, 0), (3, 2), (2, 1)):
        cell = S.perturb_cell(kind, scenario, images[i], i, d, seed=7)
        assert np.array_equal(cell.images[0, 0], pert.images[i, d])
        for p, values in pert.values.items():
            assert cell.values[p][0, 0] == values[i, d]
    # a cell depends on its own (seed, name, sample, draw) only: other samples and draws do not matter
    alone = S.corrupt(kind, scenario, images[2:3], 2, seed=7, sample_ids=np.array([2]), progress=False)
    assert np.array_equal(alone.images[0], pert.images[2, :2])
    other_seed = S.corrupt(kind, scenario, images[:1], 1, seed=8, progress=False)
    assert not np.array_equal(other_seed.images[0, 0], pert.images[0, 0])
    # drawn values lie in their ranges; fixed ones are constant
    for p, spec in KINDS[kind].params.items():
        v = pert.values[p]
        if spec.type in ("range", "int_range"):
            lo, hi = scenario["params"][p]
            assert v.min() >= lo and v.max() <= hi
        else:
            assert np.all(v == scenario["params"][p])


def test_drawn_values_come_first_from_the_cell_generator():
    scenario = entry("brightness", limit=[-0.4, 0.4])
    pert = S.corrupt("brightness", scenario, np.full((2, 16, 16, 3), 0.5, np.float32), 2, seed=3, progress=False)
    for i in range(2):
        for d in range(2):
            rng = np.random.default_rng([3, zlib.crc32(b"brightness"), i, d])
            assert pert.values["limit"][i, d] == rng.uniform(-0.4, 0.4)


def test_brightness_applies_exactly_the_drawn_shift():
    x = np.random.default_rng(0).uniform(0, 1, (3, 16, 16, 3)).astype(np.float32)
    pert = S.corrupt("brightness", entry("brightness", limit=[-0.4, 0.4]), x, 2, seed=0, progress=False)
    for i in range(3):
        for d in range(2):
            b = np.float32(pert.values["limit"][i, d])
            np.testing.assert_allclose(pert.images[i, d], np.clip(x[i] + b, 0, 1), atol=1e-6)


def test_rotation_by_zero_degrees_is_the_identity(signs):
    pert = S.corrupt("rotation", entry("rotation", degrees=[0.0, 0.0]), signs[0][:2], 1, seed=0, progress=False)
    np.testing.assert_allclose(pert.images[:, 0], signs[0][:2], atol=1e-6)


# --- the certifiable noises ---------------------------------------------------------------------


def noise_on_grey(kind: str, **params) -> np.ndarray:
    """The additive noise of 400 cells on a mid-grey image (no clipping can occur at these levels)."""
    grey = np.full((100, 16, 16, 3), 0.5, np.float32)
    pert = S.corrupt(kind, entry(kind, **params), grey, 4, seed=11, progress=False)
    return pert.images.astype(np.float64) - 0.5


def test_gaussian_noise_is_iid_normal():
    sigma = 0.08
    n = noise_on_grey("gaussian", sigma=sigma)
    flat = n.ravel()  # 307,200 values
    se = sigma / np.sqrt(flat.size)
    assert abs(flat.mean()) < 5 * se
    assert abs(flat.std() / sigma - 1) < 5 / np.sqrt(2 * flat.size)
    assert stats.kstest(flat / sigma, "norm").pvalue > 1e-3
    # the tails of a normal, not of a bounded or heavier law
    assert 2 * stats.norm.sf(3) * 0.8 < np.mean(np.abs(flat) > 3 * sigma) < 2 * stats.norm.sf(3) * 1.2
    # independent across neighbouring pixels, channels, draws and samples
    pairs = [(n[..., :-1, :, :], n[..., 1:, :, :]), (n[..., 0], n[..., 1]), (n[:, 0], n[:, 1]), (n[0::2], n[1::2])]
    for a, b in pairs:
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.02
    # per channel the same law
    for c in range(3):
        assert abs(n[..., c].std() / sigma - 1) < 0.02


def test_uniform_noise_is_iid_uniform_and_bounded():
    a = 0.1
    n = noise_on_grey("uniform", amplitude=a)
    flat = n.ravel()
    # bounded by a up to float32 rounding of the noise and of the sum
    assert flat.min() >= -a - 1e-7 and flat.max() <= a + 1e-7
    assert flat.min() < -0.99 * a and flat.max() > 0.99 * a
    assert abs(flat.mean()) < 5 * a / np.sqrt(3 * flat.size)
    assert abs(flat.var() / (a * a / 3) - 1) < 0.01
    assert stats.kstest(flat, "uniform", args=(-a, 2 * a)).pvalue > 1e-3
    for x, y in [(n[..., :-1, :, :], n[..., 1:, :, :]), (n[..., 0], n[..., 2]), (n[:, 0], n[:, 3])]:
        assert abs(np.corrcoef(x.ravel(), y.ravel())[0, 1]) < 0.02


@pytest.mark.parametrize("kind,params", [("gaussian", {"sigma": 0.01}), ("uniform", {"amplitude": 0.01})])
def test_distinct_cells_give_distinct_noise_maps(kind, params):
    """albumentations' GaussNoise drew one of 2^16 cv2 noise maps per cell (~190 repeats among 5000
    cells by the birthday bound): the certificate's i.i.d. law repeats none."""
    import hashlib

    x = np.full((8, 8, 3), 0.5, np.float32)
    scenario = entry(kind, **params)
    seen: dict[str, tuple[int, int]] = {}
    repeats = []
    for cell in range(5000):
        j, d = cell % 50, cell // 50
        noise = S.perturb_cell(kind, scenario, x, j, d, seed=0).images[0, 0] - x
        key = hashlib.sha1(noise.tobytes()).hexdigest()
        if key in seen:
            repeats.append((seen[key], (j, d)))
        seen[key] = (j, d)
    assert not repeats, repeats[:5]


def test_certifiable_noise_is_the_cell_generators_own_draw():
    """The exact law: n = rng.normal(0, sigma) / u = rng.uniform(-a, a) from the cell's generator, in float64,
    added to the float64 image, one rounding to float32, clipped."""
    x = np.random.default_rng(5).uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
    for kind, params, draw in [("gaussian", {"sigma": 0.2}, lambda r: r.normal(0.0, 0.2, x.shape[1:])),
                               ("uniform", {"amplitude": 0.3}, lambda r: r.uniform(-0.3, 0.3, x.shape[1:]))]:
        pert = S.corrupt(kind, entry(kind, **params), x, 3, seed=4, progress=False)
        for i in range(2):
            for d in range(3):
                noise = draw(S.cell_rng(4, kind, i, d))
                expected = np.clip((x[i].astype(np.float64) + noise).astype(np.float32), 0, 1)
                assert np.array_equal(pert.images[i, d], expected), (kind, i, d)


@pytest.mark.parametrize("kind,params,scale", [("gaussian", {"sigma": 0.1}, 0.1), ("uniform", {"amplitude": 0.1}, 0.1)])
def test_noise_is_clipped_to_the_unit_interval(kind, params, scale):
    bright = np.full((50, 16, 16, 3), 0.95, np.float32)
    out = S.corrupt(kind, entry(kind, **params), bright, 2, seed=0, progress=False).images
    assert out.min() >= 0 and out.max() <= 1
    at_one = np.mean(out == 1.0)
    expected = stats.norm.sf(0.05 / scale) if kind == "gaussian" else 0.25  # P(noise > 0.05)
    assert abs(at_one - expected) < 0.01
    below = out[out < 1.0].astype(np.float64) - 0.95
    assert below.min() >= (-0.1 - 1e-7 if kind == "uniform" else -1)


# --- attacks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,params", [
    ("fgsm", {"eps": 0.03}),
    ("pgd", {"eps": 0.02, "step": 0.01, "iterations": 5}),
    # ART's Carlini-L2 starts at c = 0.01 and needs a few binary-search steps to succeed (and is slow)
    ("carlini_l2", {"eps": 0.4, "iterations": 5, "binary_search_steps": 5}),
    ("deepfool", {"eps": 0.4, "iterations": 10}),
])
def test_every_adversarial_sample_respects_its_budget(kind, params, signs, trained):
    n = 4 if kind == "carlini_l2" else 16
    images = signs[0][:n]
    scenario = entry(kind, **params)
    pert = S.attack(kind, scenario, trained, images, seed=0, classes=6, progress=False)
    eps, norm = params["eps"], KINDS[kind].norm
    x = images.astype(np.float64)[:, None]
    delta = pert.images.astype(np.float64) - x
    lengths = np.abs(delta).reshape(n, -1).max(1) if norm == "linf" else np.sqrt((delta ** 2).reshape(n, -1).sum(1))
    assert np.all(lengths <= eps), lengths.max() - eps
    np.testing.assert_array_equal(lengths, pert.norm[:, 0])
    assert pert.images.min() >= 0 and pert.images.max() <= 1
    # the attack does attack: some perturbations reach the budget (Linf) or are scaled onto it (L2)
    assert np.any(lengths > 0.9 * eps)
    if norm == "linf":
        clean = trained(torch.as_tensor(to_model_input(images))).argmax(1).numpy()
        adv = trained(torch.as_tensor(to_model_input(pert.images[:, 0]))).argmax(1).numpy()
        assert (adv != clean).any()
    # each sample alone reproduces its adversarial example exactly
    cell = S.perturb_cell(kind, scenario, images[n - 1], n - 1, 0, seed=0, model=trained, classes=6)
    assert np.array_equal(cell.images[0, 0], pert.images[n - 1, 0])


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_budget_projection_holds_in_float64_on_adversarial_rounding(norm):
    """Hunt for counterexamples: float32 points just past the ball, near 0 and 1 and the ball's edge."""
    rng = np.random.default_rng(0)
    for trial in range(300):
        x = rng.uniform(0, 1, (4, 4, 3)).astype(np.float32)
        x[0, 0] = [0.0, 1.0, 0.5]
        eps = float(rng.choice([0.03, 1 / 255, 0.1, 1e-4, 0.5]))
        if norm == "linf":
            adv = (x.astype(np.float64) + eps * rng.choice([-1, 1], x.shape)).astype(np.float32)
        else:
            d = rng.normal(size=x.shape)
            adv = (x.astype(np.float64) + d / np.linalg.norm(d) * eps * rng.uniform(0.99, 3)).astype(np.float32)
        out = S.within_budget(adv, x, norm, eps)
        assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
        assert S.perturbation_norm(out, x, norm) <= eps, trial
