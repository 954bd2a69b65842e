"""PROVEN's certified class-change bounds of the KRI family (nnassure.kri.certified) against Monte
Carlo: a certified bound below the lower end of its estimate's Clopper-Pearson interval is a bug.

The models are small KriCNNs trained for a few steps on coloured images whose class is the
dominant channel; some images sit near the boundary, so noise changes their class often (the
check has teeth: a bound scaled down by 10 fails it) and others far from it (certificates below 1).
The noise is drawn by the scenarios themselves (nnassure.kri.scenarios.corrupt: the stored float32
perturbed images), float32 inference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import binomtest

from nnassure.kri.certified import ClippedKriCNN, KriCertifier, NoiseModel, certify_samples
from nnassure.kri.model import KriCNN, KriCNNSpec

LEVEL = 1e-4  # per-sample two-sided level of the CP interval: strict, so a failure is a bug
DRAWS = 1000


def coloured_images(n: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, 3, n)
    strength = rng.uniform(0.02, 0.5, n)  # small: near the boundary
    base = rng.uniform(0.2, 0.5, (n, 3, 1, 1))
    base[np.arange(n), labels, 0, 0] += strength
    images = base + rng.normal(0, 0.03, (n, 3, size, size))
    return np.clip(images, 0, 1).astype(np.float32), labels


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = KriCNN(KriCNNSpec(image_size=8, channels=(4, 8), hidden=16, classes=3))
    x, y = coloured_images(160, 8, rng)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(40):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(torch.as_tensor(x)), torch.as_tensor(y))
        loss.backward()
        optimiser.step()
    model.eval()
    test, _ = coloured_images(24, 8, np.random.default_rng(1))
    return model, test


def monte_carlo(model: KriCNN, images: np.ndarray, noise: NoiseModel, draws: int, seed: int) -> np.ndarray:
    """Class changes per sample out of ``draws``, the noise drawn by the scenario itself
    (:func:`nnassure.kri.scenarios.corrupt`, float32 NHWC images), float32 inference."""
    from nnassure.kri.model import to_model_input
    from nnassure.kri.scenarios import corrupt

    name = f"mc_{noise.kind}"
    params = {"sigma": noise.scale} if noise.kind == "gaussian" else {"amplitude": noise.scale}
    scenario = {"family": "random_noise", "kind": noise.kind, "params": params, "draws": draws}
    nhwc = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    with torch.no_grad():
        clean = model(torch.as_tensor(images)).argmax(1).numpy()
        changes = np.zeros(len(images), np.int64)
        for i in range(len(images)):
            perturbed = corrupt(name, scenario, nhwc[i:i + 1], draws, seed, sample_ids=np.array([i]),
                                progress=False).images[0]
            logits = model(torch.as_tensor(to_model_input(perturbed)))
            changes[i] = int((logits.argmax(1).numpy() != clean[i]).sum())
    return changes


def violations(bounds: np.ndarray, changes: np.ndarray, draws: int) -> tuple[list[int], bool]:
    """Samples whose bound is below the CP interval's lower end, and whether the pooled one is."""
    bad = [i for i, (b, k) in enumerate(zip(bounds, changes, strict=True))
           if b < binomtest(int(k), draws).proportion_ci(1 - LEVEL, "exact").low]
    pooled_low = binomtest(int(changes.sum()), draws * len(changes)).proportion_ci(1 - LEVEL, "exact").low
    return bad, bool(bounds.mean() < pooled_low)


def test_clip_layers_are_clip01(trained):
    model, _ = trained
    g = ClippedKriCNN(model).eval()
    z = torch.as_tensor(np.random.default_rng(2).uniform(-0.5, 1.5, (5, 3, 8, 8)).astype(np.float32))
    with torch.no_grad():
        assert torch.allclose(g(z), model(z.clamp(0, 1)), atol=1e-6)


def test_crown_bounds_of_g_hold_on_sampled_points(trained):
    """The linear lower bounds minus the level hold at random points of the (wider) ball, in float64."""
    model, images = trained
    certifier = KriCertifier(model, batch_size=4)
    x = torch.as_tensor(images[:4].astype(np.float64))
    eps = 0.2
    from nnassure.proven.bisection import margin_specification

    with torch.no_grad():
        predicted = model(torch.as_tensor(images[:4])).argmax(1).numpy()
    C = margin_specification(predicted, 3)
    lA, lbias, _ = certifier.engine.linear_lower_bounds(x, torch.full((4,), eps, dtype=torch.float64), C)
    slack = certifier.engine.rounding_slack(x, torch.full((4,), eps, dtype=torch.float64), C)
    assert bool((slack > 0).all()) and float(slack.max()) < 1e-4
    g64 = certifier.engine.network
    rng = np.random.default_rng(3)
    for _ in range(20):
        point = x + torch.as_tensor(rng.choice([-eps, eps], size=x.shape) * rng.uniform(0.5, 1, x.shape))
        with torch.no_grad():
            margins = torch.einsum("bto,bo->bt", C, g64(point))
        linear = torch.einsum("bti,bi->bt", lA, point.reshape(4, -1)) + lbias
        assert bool((margins >= linear - slack).all())


@pytest.mark.parametrize(("noise", "teeth"), [(NoiseModel("gaussian", 0.05), False),
                                            (NoiseModel("gaussian", 0.2), True),
                                            (NoiseModel("uniform", 0.1), False), (NoiseModel("uniform", 0.4), True)],
                         ids=["gaussian-0.05", "gaussian-0.2", "uniform-0.1", "uniform-0.4"])
def test_certified_bound_never_below_monte_carlo_interval(trained, noise, teeth):
    model, images = trained
    certifier = KriCertifier(model, batch_size=12)
    frame = certify_samples(certifier, images, noise, [3.0, 4.0, 5.0])
    changes = monte_carlo(model, images, noise, DRAWS, seed=7)
    bounds = frame["bound"].to_numpy()
    assert ((bounds >= 0) & (bounds <= 1)).all()
    bad, pooled_bad = violations(bounds, changes, DRAWS)
    assert not bad, f"certified bound below the MC interval for samples {bad}: {bounds[bad]} vs {changes[bad] / DRAWS}"
    assert not pooled_bad
    if teeth:
        # the check has teeth: a bound 10 times smaller is caught where noise changes classes often
        broken_bad, _ = violations(bounds / 10, changes, DRAWS)
        assert broken_bad, (bounds, changes / DRAWS)
        hot = changes > 0.1 * DRAWS  # pooled over the samples near the boundary
        assert violations(bounds[hot] / 10, changes[hot], DRAWS)[1]
    else:
        # and it is not vacuous: PROVEN certifies something on some samples
        assert (bounds < 0.5).any(), bounds


def test_smallest_gaussian_box_is_reported(trained):
    model, images = trained
    certifier = KriCertifier(model, batch_size=12)
    noise = NoiseModel("gaussian", 0.05)
    each = {k: certify_samples(certifier, images[:6], noise, [k])["bound"].to_numpy() for k in (3.0, 5.0)}
    both = certify_samples(certifier, images[:6], noise, [3.0, 5.0])
    np.testing.assert_array_equal(both["bound"].to_numpy(), np.minimum(each[3.0], each[5.0]))
    assert set(np.round(both["eps_box"], 12)) <= {0.15, 0.25}
    assert set(both["certificate"]) == {"gaussian-rigorous"}


def _store(root, test_images: int):
    """Sign-like images (the test split first in stored order) and a tiny model for experiment=smoke."""
    from nnassure.config import compose
    from nnassure.data.images import save_image_dataset
    from nnassure.kri.model import save_kri_model
    from nnassure.paths import ExperimentPaths

    cfg = compose(["experiment=smoke", f"results_dir={root}", "tracking=disabled"])
    paths = ExperimentPaths.from_config(cfg)
    size = int(cfg.kri.data.image_size)
    n = test_images + 10
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (n, size, size, 3)).astype(np.float32)
    split = np.array(["train"] * 5 + ["val"] * 5 + ["test"] * test_images)
    save_image_dataset(paths.kri_images, images, np.arange(n) % 3, split, ["a", "b", "c"])
    torch.manual_seed(0)
    save_kri_model(KriCNN(KriCNNSpec(size, (4,), 8, 3)), paths.kri_model_stem("NNet"), {"seconds": 1.0})
    return cfg, paths, images[10:]


def _run_stage(root, scenario, capsys):
    from nnassure.stages import kri_certify

    with pytest.raises(SystemExit) as info:
        kri_certify.run_stage("kri_certify", kri_certify.main,
                              ["experiment=smoke", f"results_dir={root}", "tracking=disabled", "kri.variant=NNet",
                               f"kri.scenario={scenario}", "kri.certify.samples=3", "kri.certify.batch_size=3",
                               "kri.certify.mc_draws=200"])
        raise SystemExit(0)
    return info.value.code, capsys.readouterr().err


def test_stage_writes_the_certificate_of_the_first_test_images(tmp_path, capsys):
    import pandas as pd

    from nnassure.kri.certified import COLUMNS
    from nnassure.kri.model import load_kri_model, predict_logits, to_model_input

    _, paths, test = _store(tmp_path, compose_samples())
    code, err = _run_stage(tmp_path, "gaussian", capsys)
    assert code == 0, err
    frame = pd.read_parquet(paths.kri_certificate("NNet", "gaussian"))
    assert tuple(frame.columns) == COLUMNS and list(frame["sample"]) == [0, 1, 2]
    model = load_kri_model(paths.kri_model_stem("NNet")).model
    np.testing.assert_array_equal(frame["predicted"], predict_logits(model, to_model_input(test[:3])).argmax(1))
    assert ((frame["bound"] >= 0) & (frame["bound"] <= 1)).all()
    # its own Monte Carlo: 200 fresh draws per image through the scenario, recomputed here
    import json

    from nnassure.config import compose
    from nnassure.kri.certified import MC_SEED_OFFSET, certify_settings, model_digest, monte_carlo_changes
    from nnassure.kri.infer import plain, scenario_json

    cfg = compose(["experiment=smoke", f"results_dir={tmp_path}", "tracking=disabled", "kri.certify.samples=3",
                   "kri.certify.batch_size=3", "kri.certify.mc_draws=200"])
    entry = plain(cfg.kri.scenarios["gaussian"])
    seed = int(cfg.kri.seed) + MC_SEED_OFFSET
    changes, _ = monte_carlo_changes(model, "gaussian", entry, test[:3], frame["predicted"].to_numpy(), 200, seed)
    np.testing.assert_array_equal(frame["mc_changes"], changes)
    assert list(frame["mc_draws"]) == [200] * 3 and list(frame["mc_seed"]) == [seed] * 3
    # provenance the report checks
    assert set(frame["scenario_config"]) == {scenario_json(cfg.kri.scenarios["gaussian"])}
    assert json.loads(frame["certify_settings"].iloc[0])["mc_draws"] == 200
    assert set(frame["certify_settings"]) == {certify_settings(plain(cfg.kri.certify))}
    assert set(frame["model_sha256"]) == {model_digest(paths.kri_model_stem("NNet"))}


def test_monte_carlo_draws_are_fresh_and_count_class_changes(trained):
    """The certificate's Monte Carlo is seeded apart from the risk tensor (other noise in every cell)
    and counts argmax != the clean prediction."""
    from nnassure.kri.certified import MC_SEED_OFFSET, monte_carlo_changes
    from nnassure.kri.scenarios import corrupt

    model, images = trained
    nhwc = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    entry = {"family": "random_noise", "kind": "gaussian", "params": {"sigma": 0.2}, "draws": None}
    tensor_cells = corrupt("g", entry, nhwc, 30, 0, progress=False).images
    fresh_cells = corrupt("g", entry, nhwc, 30, MC_SEED_OFFSET, progress=False).images
    assert not np.isclose(tensor_cells, fresh_cells).all(axis=(2, 3, 4)).any()
    with torch.no_grad():
        predicted = model(torch.as_tensor(images)).argmax(1).numpy()
    changes, seconds = monte_carlo_changes(model, "g", entry, nhwc, predicted, 30, MC_SEED_OFFSET)
    with torch.no_grad():
        by_hand = [int((model(torch.as_tensor(fresh_cells[i].transpose(0, 3, 1, 2))).argmax(1).numpy()
                        != predicted[i]).sum()) for i in range(len(images))]
    assert list(changes) == by_hand and (seconds > 0).all()
    assert changes.sum() > 0  # sigma 0.2 on images near the boundary: the count is not trivially 0


def compose_samples() -> int:
    from nnassure.config import compose

    return int(compose(["experiment=smoke"]).kri.samples)


@pytest.mark.parametrize(("scenario", "test_images", "message"), [
    ("fog", 30, "a fog scenario is not certifiable"),
    ("gaussian", 5, "5 test images, fewer than kri.samples"),
])
def test_stage_refuses_in_one_line(tmp_path, capsys, scenario, test_images, message):
    _, paths, _ = _store(tmp_path, test_images)
    code, err = _run_stage(tmp_path, scenario, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert not paths.kri_certificate("NNet", scenario).exists()


def test_a_priori_rounding_bound_covers_the_graph_bound(trained):
    """The engine uses ClippedKriCNN.rounding_slack (a-priori); the bounds module's graph analysis of
    the same call (a-posteriori slopes) must not need more."""
    from nnassure.certify.bounds import graph_rounding_slack
    from nnassure.proven.bisection import margin_specification

    model, images = trained
    certifier = KriCertifier(model)
    x = torch.as_tensor(images[:3].astype(np.float64))
    eps = torch.full((3, 1), 0.05, dtype=torch.float64)
    C = margin_specification(np.zeros(3, np.int64), 3)
    certifier.engine.linear_lower_bounds(x, eps.reshape(-1), C)
    graph = graph_rounding_slack(certifier.engine, x, eps, C)
    a_priori = certifier.engine.rounding_slack(x, eps.reshape(-1), C)
    assert bool((graph > 0).all()) and bool((a_priori >= graph).all()), (a_priori, graph)
