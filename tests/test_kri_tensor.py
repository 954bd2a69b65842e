"""The inference files and the risk tensor of the KRI family (nnassure.kri.infer, nnassure.kri.tensor,
stages kri_infer / kri_tensor): cells equal a direct recomputation from model + sample + draw seed,
adding a scenario evaluates the model on the new scenario only and leaves every other cell
byte-identical, the losses and the severity matrix on hand-computed cases, and bad input (corrupt,
half-written or stale files, a model not matching the images, an unknown scenario) ends in one line,
exit 2, nothing half-written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from nnassure.config import compose  # noqa: E402
from nnassure.data.images import load_image_dataset, save_image_dataset, split_indices  # noqa: E402
from nnassure.data.signs import SIGN_CLASSES, render_signs  # noqa: E402
from nnassure.errors import ConfigError, InputFileError  # noqa: E402
from nnassure.io import file_sha256  # noqa: E402
from nnassure.kri.infer import infer_scenario, read_inference, write_inference  # noqa: E402
from nnassure.kri.model import KriCNN, KriCNNSpec, load_kri_model, save_kri_model, to_model_input  # noqa: E402
from nnassure.kri.scenarios import perturb, perturb_cell  # noqa: E402
from nnassure.kri.tensor import apply_losses, merge_tensor, open_tensor, severity_matrix, write_tensor  # noqa: E402
from nnassure.paths import ExperimentPaths  # noqa: E402
from nnassure.stage_keys import digest  # noqa: E402

BASE = ["experiment=smoke", "tracking=disabled"]
SIZE = 16
ADDED = "+kri.scenarios.contrast={family: sensor, kind: contrast, params: {limit: [-0.5, 0.5]}}"


def config(root: Path, *extra: str):
    return compose([*BASE, f"results_dir={root}", *extra])


def run(stage: str, root: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    return subprocess.run([sys.executable, "-m", f"nnassure.stages.{stage}", *BASE, f"results_dir={root}", "threads=1",
                           *extra], capture_output=True, text=True, env=env, timeout=300)


def one_error_line(result: subprocess.CompletedProcess, stage: str, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nnassure {stage}: error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def no_temporary_files(directory: Path) -> None:
    assert not [p for p in directory.rglob("*.tmp")]


def inferences_of(cfg, models, scenarios, images, labels, classes):
    paths = ExperimentPaths.from_config(cfg)
    out = {}
    data_sha256 = file_sha256(paths.kri_images)
    for variant in models:
        model = load_kri_model(paths.kri_model_stem(variant)).model
        model_sha256 = file_sha256(f"{paths.kri_model_stem(variant)}.safetensors")
        for name in scenarios:
            ds = infer_scenario(model, images, labels, name, cfg.kri.scenarios[name], int(cfg.kri.draws),
                                int(cfg.kri.seed), classes, variant=variant, progress=False,
                                model_sha256=model_sha256, data_sha256=data_sha256)
            write_inference(ds, paths.kri_inference(variant, name))
            out[(variant, name)] = ds
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A smoke store: 16-pixel signs, three random-init CNNs, every inference file (library calls, as
    kri_infer makes them) and the tensor made by the kri_tensor stage."""
    root = tmp_path_factory.mktemp("kri")
    cfg = config(root)
    paths = ExperimentPaths.from_config(cfg)
    images, labels = render_signs(90, SIZE, 1)
    save_image_dataset(paths.kri_images, images, labels, split_indices(labels, (0.4, 0.2, 0.4), 0), SIGN_CLASSES)
    for i, variant in enumerate(cfg.kri.models):
        torch.manual_seed(i)
        save_kri_model(KriCNN(KriCNNSpec(SIZE, (8, 16), 16, 6)), paths.kri_model_stem(variant),
                       {"classes": list(SIGN_CLASSES)})
    data = load_image_dataset(paths.kri_images)
    x, y = data.arrays("test", flatten=False)
    x, y = x[: cfg.kri.samples], y[: cfg.kri.samples]
    inferences = inferences_of(cfg, cfg.kri.models, cfg.kri.scenarios, x, y, data.classes)
    result = run("kri_tensor", root)
    assert result.returncode == 0, result.stderr
    return {"root": root, "cfg": cfg, "paths": paths, "images": x, "labels": y, "classes": data.classes,
            "inferences": inferences}


# --- (a) cells equal a direct recomputation ------------------------------------------------------


def test_the_stage_writes_what_the_library_computes(store, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(store["root"], root)
    out = ExperimentPaths.from_config(config(root)).kri_inference("GCE", "fog")
    out.unlink()
    result = run("kri_infer", root, "kri.variant=GCE", "kri.scenario=fog")
    assert result.returncode == 0, result.stderr
    staged = read_inference(out, variant="GCE", scenario="fog")
    mine = store["inferences"][("GCE", "fog")]
    np.testing.assert_array_equal(staged["param_coefficient"].values, mine["param_coefficient"].values)
    np.testing.assert_allclose(staged["logits"].values, mine["logits"].values, rtol=1e-5, atol=1e-5)
    assert staged.attrs["scenario_config"] == mine.attrs["scenario_config"]
    # the stage records the digests of the files it read
    model_file = f"{ExperimentPaths.from_config(config(root)).kri_model_stem('GCE')}.safetensors"
    assert staged.attrs["model_sha256"] == file_sha256(model_file) == mine.attrs["model_sha256"]
    assert staged.attrs["data_sha256"] == file_sha256(store["paths"].kri_images) == mine.attrs["data_sha256"]


LOGIT_RTOL = 1e-5  # batch size / thread count rounding of float32 inference: ~3e-7 of the logits' magnitude observed


@pytest.mark.parametrize("scenario", ["brightness", "gaussian", "fgsm"])
def test_every_cell_equals_a_direct_recomputation(store, scenario):
    """A corruption, a certifiable noise and an attack: every cell from the model, the sample and the seed.

    The perturbation and its parameters recompute exactly; the logits of a cell evaluated alone differ
    from the batch-computed ones by float32 rounding, so a loss is compared exactly except where the
    recomputed top-2 gap (perturbed or clean) is within the observed logit difference (a near tie): those
    cells are skipped, and must be rare."""
    tensor = open_tensor(store["paths"].kri_tensor)
    cfg = store["cfg"]
    entry = cfg.kri.scenarios[scenario]
    adversarial = scenario in tensor["attack"].values
    cost = tensor["severity_cost"].values
    n, seed = int(cfg.kri.samples), int(cfg.kri.seed)
    draws = 1 if adversarial else int(cfg.kri.draws)
    checked, ties, worst = 0, 0, 0.0
    for variant in cfg.kri.models:
        model = load_kri_model(store["paths"].kri_model_stem(variant)).model
        batch = perturb(scenario, entry, store["images"], draws, seed, model=model, classes=6, progress=False)
        inference = store["inferences"][(variant, scenario)]
        for j in range(n):
            with torch.no_grad():
                clean = model(torch.as_tensor(to_model_input(store["images"][j:j + 1]))).numpy()[0]
            stored_clean = tensor["clean_logits"].sel(model=variant, sample=j).values
            for d in range(draws):
                cell = perturb_cell(scenario, entry, store["images"][j], j, d, seed, model=model, classes=6)
                assert np.array_equal(cell.images[0, 0], batch.images[j, d]), (variant, j, d)
                for p, values in cell.values.items():
                    assert inference[f"param_{p}"].values[j, d] == values[0, 0]
                with torch.no_grad():
                    logits = model(torch.as_tensor(to_model_input(cell.images[0]))).numpy()[0]
                if adversarial:
                    stored = tensor["logits_adv"].sel(model=variant, attack=scenario, sample=j).values
                    risk = tensor["risk_adv"].sel(model=variant, attack=scenario, sample=j)
                    assert tensor["perturbation_norm_adv"].sel(model=variant, attack=scenario, sample=j) == \
                        float(np.abs(cell.images[0, 0].astype(np.float64) - store["images"][j]).max()) == \
                        cell.norm[0, 0]
                else:
                    stored = tensor["logits"].sel(model=variant, scenario=scenario, sample=j, draw=d).values
                    risk = tensor["risk"].sel(model=variant, scenario=scenario, sample=j, draw=d)
                difference = float(np.abs(stored - logits).max())
                clean_difference = float(np.abs(stored_clean - clean).max())
                worst = max(worst, difference, clean_difference)
                tolerance = LOGIT_RTOL * max(1.0, float(np.abs(stored).max()), float(np.abs(stored_clean).max()))
                assert difference <= tolerance and clean_difference <= tolerance, (variant, j, d, difference)
                checked += 1
                top = np.sort(logits)[-2:]
                clean_top = np.sort(clean)[-2:]
                if top[1] - top[0] <= difference or clean_top[1] - clean_top[0] <= clean_difference:
                    ties += 1
                    continue
                predicted, label = int(np.argmax(logits)), int(store["labels"][j])
                expected = {"class_change": float(predicted != int(np.argmax(clean))),
                            "misclassification": float(predicted != label), "severity": cost[label, predicted]}
                for loss, value in expected.items():
                    assert float(risk.sel(loss=loss)) == value, (variant, scenario, j, d, loss)
    tensor.close()
    assert checked == len(cfg.kri.models) * n * draws
    assert ties <= 0.02 * checked, (ties, checked, worst)


def test_the_tensor_is_lazy_and_sliced_by_name(store):
    tensor = open_tensor(store["paths"].kri_tensor)
    assert tensor["risk"].variable._in_memory is False
    assert list(tensor["scenario"].values) == ["brightness", "gaussian", "fog"]
    assert list(tensor["attack"].values) == ["fgsm"]
    assert list(tensor["scenario_family"].values) == ["sensor", "random_noise", "weather"]
    part = tensor["risk"].sel(loss="class_change", model="GCE", scenario="fog")
    assert part.shape == (store["cfg"].kri.samples, store["cfg"].kri.draws)
    tensor.close()


# --- (b) adding a scenario ------------------------------------------------------------------------


class Counting(nn.Module):
    """The model under test, counting the images it evaluates."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.images = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images += len(x)
        return self.model(x)


def test_adding_a_scenario_evaluates_only_the_new_one_and_keeps_every_other_cell(store, tmp_path):
    root = store["root"]
    before_cfg, after_cfg = store["cfg"], config(root, ADDED)
    models, n, d = list(before_cfg.kri.models), int(before_cfg.kri.samples), int(before_cfg.kri.draws)
    before = merge_tensor(store["inferences"], dict(before_cfg.kri.scenarios), list(before_cfg.kri.losses),
                          before_cfg.kri.severity, store["classes"], models=models)
    write_tensor(before, tmp_path / "before.nc")
    # the jobs to run: a missing file or a changed digest of the keys kri_infer reads
    jobs = [(m, s) for m in models for s in after_cfg.kri.scenarios
            if (m, s) not in store["inferences"]
            or digest(before_cfg, "kri_infer", {"kri.variant": m, "kri.scenario": s})
            != digest(after_cfg, "kri_infer", {"kri.variant": m, "kri.scenario": s})]
    assert jobs == [(m, "contrast") for m in models]
    inferences = dict(store["inferences"])
    counts = {}
    for m, s in jobs:
        model = Counting(load_kri_model(store["paths"].kri_model_stem(m)).model)
        inferences[(m, s)] = infer_scenario(model, store["images"], store["labels"], s, after_cfg.kri.scenarios[s],
                                            d, int(after_cfg.kri.seed), store["classes"], variant=m, progress=False)
        counts[m] = model.images
    assert counts == {m: n + n * d for m in models}  # the clean images and the new scenario's draws only
    after = merge_tensor(inferences, dict(after_cfg.kri.scenarios), list(after_cfg.kri.losses),
                         after_cfg.kri.severity, store["classes"], models=models)
    write_tensor(after, tmp_path / "after.nc")
    old, new = open_tensor(tmp_path / "before.nc"), open_tensor(tmp_path / "after.nc")
    assert list(new["scenario"].values) == ["brightness", "gaussian", "fog", "contrast"]
    for var in ("risk", "logits"):
        kept = new[var].sel(scenario=list(old["scenario"].values))
        assert kept.values.tobytes() == old[var].values.tobytes()
    for var in ("risk_adv", "logits_adv", "perturbation_norm_adv", "clean_logits", "label", "severity_cost"):
        assert new[var].values.tobytes() == old[var].values.tobytes()
    assert not np.isnan(new["risk"].sel(scenario="contrast").values).any()
    old.close()
    new.close()


# --- (d) losses and the severity matrix -----------------------------------------------------------


def test_severity_matrix_by_hand():
    classes = ["give_way", "stop", "no_entry"]
    cfg = {"default": 1.5, "costs": {"stop": {"give_way": 10.0, "no_entry": 0.0}, "give_way": {"stop": 2.0}}}
    np.testing.assert_array_equal(severity_matrix(cfg, classes), [[0.0, 2.0, 1.5], [10.0, 0.0, 0.0],
                                                                   [1.5, 1.5, 0.0]])
    with pytest.raises(ConfigError, match="priority_road"):
        severity_matrix({"default": 1.0, "costs": {"stop": {"priority_road": 3.0}}}, classes)
    with pytest.raises(ConfigError, match="costs 0"):
        severity_matrix({"default": 1.0, "costs": {"stop": {"stop": 3.0}}}, classes)
    # the config's matrix: stop read as priority road costs 10, the reverse 0.5
    cfg = compose(BASE)
    cost = severity_matrix(cfg.kri.severity, SIGN_CLASSES)
    index = {c: i for i, c in enumerate(SIGN_CLASSES)}
    assert cost[index["stop"], index["priority_road"]] == 10.0
    assert cost[index["priority_road"], index["stop"]] == 0.5
    assert cost[index["speed_limit"], index["stop"]] == 1.0 and np.all(np.diag(cost) == 0)


def test_losses_by_hand():
    cost = np.array([[0.0, 2.0, 1.5], [10.0, 0.0, 0.0], [1.5, 1.5, 0.0]])
    clean = np.array([[3.0, 1.0, 0.0], [0.0, 1.0, 5.0]])  # predictions 0 and 2
    label = np.array([0, 1])  # sample 1 is misread on the clean image already
    logits = np.array([[[5.0, 0.0, 0.0], [0.0, 4.0, 1.0], [0.0, 0.0, 8.0]],  # sample 0: 0, 1, missing draw
                       [[0.0, 0.0, 9.0], [7.0, 1.0, 0.0], [0.0, 3.0, 2.0]]])  # sample 1: 2, 0, 1
    valid = np.array([[True, True, False], [True, True, True]])  # the padding comes from the draw counts
    out = apply_losses(logits, clean, label, ["class_change", "misclassification", "severity"], cost, valid=valid)
    expected = np.array([[[0, 1, np.nan], [0, 1, 1]],
                         [[0, 1, np.nan], [1, 1, 0]],
                         [[0, 2.0, np.nan], [0.0, 10.0, 0.0]]])
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(ConfigError, match="unknown loss"):
        apply_losses(logits, clean, label, ["hinge"], cost)
    # a NaN logit within a scenario's draws is an error, not padding; beyond them it does not matter
    logits[1, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"non-finite logits at cell \(1, 1\)"):
        apply_losses(logits, clean, label, ["class_change"], cost, valid=valid)
    logits[1, 1, 0], logits[0, 2, 1] = 7.0, np.nan
    np.testing.assert_array_equal(apply_losses(logits, clean, label, ["class_change"], cost, valid=valid), expected[:1])


def test_scenarios_with_fewer_draws_are_padded_with_nan(store):
    cfg = store["cfg"]
    model = load_kri_model(store["paths"].kri_model_stem("NNet")).model
    few = {"family": "sensor", "kind": "brightness", "params": {"limit": [-0.4, 0.4]}, "draws": 2}
    x, y = store["images"][:5], store["labels"][:5]
    inf = {("NNet", "dim"): infer_scenario(model, x, y, "dim", few, 4, 0, store["classes"], variant="NNet",
                                           progress=False),
           ("NNet", "gaussian"): infer_scenario(model, x, y, "gaussian", cfg.kri.scenarios.gaussian, 4, 0,
                                                store["classes"], variant="NNet", progress=False)}
    tensor = merge_tensor(inf, {"dim": few, "gaussian": cfg.kri.scenarios.gaussian}, ["class_change"],
                          cfg.kri.severity, store["classes"])
    assert tensor.sizes["draw"] == 4 and list(tensor["scenario_draws"].values) == [2, 4]
    assert np.isnan(tensor["risk"].sel(scenario="dim", draw=[2, 3]).values).all()
    assert not np.isnan(tensor["risk"].sel(scenario="dim", draw=[0, 1]).values).any()
    assert tensor.sizes["attack"] == 0


def test_padding_follows_the_draw_counts_not_nan(store):
    """merge_tensor pads exactly the draws beyond each scenario's count, and refuses NaN logits inside them."""
    cfg = store["cfg"]
    few = {"family": "sensor", "kind": "brightness", "params": {"limit": [-0.4, 0.4]}, "draws": 2}
    model = load_kri_model(store["paths"].kri_model_stem("NNet")).model
    x, y = store["images"][:5], store["labels"][:5]
    ds = infer_scenario(model, x, y, "dim", few, 4, 0, store["classes"], variant="NNet", progress=False)
    full = infer_scenario(model, x, y, "gaussian", cfg.kri.scenarios.gaussian, 4, 0, store["classes"],
                          variant="NNet", progress=False)
    scen = {"dim": few, "gaussian": cfg.kri.scenarios.gaussian}
    broken = full.copy(deep=True)
    broken["logits"].values[3, 1, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        merge_tensor({("NNet", "dim"): ds, ("NNet", "gaussian"): broken}, scen, ["class_change"], cfg.kri.severity,
                     store["classes"])


class NaNModel(nn.Module):
    """A model whose logits are NaN on images brighter than a threshold (an overflow, say)."""

    def __init__(self, model: nn.Module, threshold: float) -> None:
        super().__init__()
        self.model, self.threshold = model, threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        bright = x.mean(dim=(1, 2, 3)) > self.threshold
        return torch.where(bright[:, None], torch.full_like(out, float("nan")), out)


def test_non_finite_logits_are_refused_before_writing_and_when_read(store, tmp_path):
    cfg = store["cfg"]
    model = load_kri_model(store["paths"].kri_model_stem("NNet")).model
    x, y = store["images"][:6], store["labels"][:6]
    threshold = float(x.mean(axis=(1, 2, 3)).max()) + 0.05  # clean images pass, brightened ones do not
    with pytest.raises(InputFileError, match="non-finite logits on the scenario 'brightness'") as error:
        infer_scenario(NaNModel(model, threshold), x, y, "brightness", cfg.kri.scenarios.brightness, 4, 0,
                       store["classes"], variant="NNet", progress=False)
    assert "\n" not in str(error.value)
    # a file holding a NaN logit (the reviewer's repro: one class-changing draw set to NaN) is refused in one line
    ds = read_inference(store["paths"].kri_inference("NNet", "brightness"))
    ds["logits"].values[1, 2, 0] = np.nan
    path = tmp_path / "brightness.nc"
    write_inference(ds, path)
    with pytest.raises(InputFileError) as error:
        read_inference(path)
    message = str(error.value)
    assert str(path) in message and "non-finite" in message and "sample 1, draw 2, class 0" in message
    assert "\n" not in message


def test_a_replaced_model_is_refused_by_kri_tensor(store, tmp_path):
    """The reviewer's repro: NNet's model files replaced by Gauss09's; the inference files of NNet are stale."""
    root = tmp_path / "r"
    shutil.copytree(store["root"], root)
    paths = ExperimentPaths.from_config(config(root))
    paths.kri_tensor.unlink()
    for suffix in (".safetensors", ".json"):
        shutil.copy(f"{paths.kri_model_stem('Gauss09')}{suffix}", f"{paths.kri_model_stem('NNet')}{suffix}")
    result = run("kri_tensor", root)
    one_error_line(result, "kri_tensor", str(paths.kri_inference("NNet", next(iter(store["cfg"].kri.scenarios)))),
                   f"{paths.kri_model_stem('NNet')}.safetensors", "stale", "sha256")
    assert not paths.kri_tensor.exists()
    no_temporary_files(root)


def test_replaced_images_are_refused_by_kri_tensor(store, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(store["root"], root)
    paths = ExperimentPaths.from_config(config(root))
    paths.kri_tensor.unlink()
    # the same labels and splits, images a little darker: the labels check alone would not see it
    data = load_image_dataset(paths.kri_images)
    save_image_dataset(paths.kri_images, data.images * np.float32(0.99), data.labels, data.split, data.classes)
    one_error_line(run("kri_tensor", root), "kri_tensor", str(paths.kri_images), "stale")
    assert not paths.kri_tensor.exists()


# --- (f) bad input ------------------------------------------------------------------------------


def test_unknown_scenario_on_the_command_line(store):
    one_error_line(run("kri_infer", store["root"], "kri.variant=NNet", "kri.scenario=nope"), "kri_infer",
                   "kri.scenario", "nope")


def test_a_model_that_does_not_match_the_images(store, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(store["root"], root)
    paths = ExperimentPaths.from_config(config(root))
    save_kri_model(KriCNN(KriCNNSpec(32, (8, 16), 16, 6)), paths.kri_model_stem("NNet"))
    out = paths.kri_inference("NNet", "gaussian")
    out.unlink()
    one_error_line(run("kri_infer", root, "kri.variant=NNet", "kri.scenario=gaussian"), "kri_infer",
                   "(24, 16, 16, 3)", "32, 32, 3")
    assert not out.exists()
    no_temporary_files(root)


def test_fewer_test_images_than_samples(store):
    out = store["paths"].kri_inference("NNet", "gaussian")
    before = out.stat().st_mtime_ns
    one_error_line(run("kri_infer", store["root"], "kri.variant=NNet", "kri.scenario=gaussian", "kri.samples=500"),
                   "kri_infer", "fewer than kri.samples=500")
    assert out.stat().st_mtime_ns == before


@pytest.mark.parametrize("damage", ["corrupt", "half_written", "stale", "other_scenario"])
def test_bad_inference_files_are_refused_in_one_line(store, tmp_path, damage):
    root = tmp_path / "r"
    shutil.copytree(store["root"], root)
    paths = ExperimentPaths.from_config(config(root))
    paths.kri_tensor.unlink()
    target = paths.kri_inference("Gauss09", "fog")
    if damage == "corrupt":
        target.write_bytes(b"this is not netCDF" * 100)
    elif damage == "half_written":
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif damage == "stale":  # made with an older fog entry
        ds = read_inference(target)
        ds.attrs["scenario_config"] = ds.attrs["scenario_config"].replace("[0.2, 0.5]", "[0.1, 0.2]")
        write_inference(ds, target)
    else:
        shutil.copy(paths.kri_inference("Gauss09", "brightness"), target)
    result = run("kri_tensor", root)
    one_error_line(result, "kri_tensor", str(target))
    if damage == "stale":
        assert "stale" in result.stderr and "scenario_config" in result.stderr
    assert not paths.kri_tensor.exists()
    no_temporary_files(root)


def test_read_inference_refuses_missing_and_mismatched_files(store, tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        read_inference(tmp_path / "none.nc")
    path = store["paths"].kri_inference("NNet", "fog")
    with pytest.raises(InputFileError, match="variant 'NNet', not 'GCE'"):
        read_inference(path, variant="GCE", scenario="fog")


@pytest.mark.parametrize("damage", ["corrupt", "half_written", "inference_file"])
def test_bad_tensor_files_are_refused(store, tmp_path, damage):
    path = tmp_path / "tensor.nc"
    if damage == "inference_file":
        shutil.copy(store["paths"].kri_inference("NNet", "fog"), path)
    else:
        data = store["paths"].kri_tensor.read_bytes()
        path.write_bytes(data[: len(data) // 2] if damage == "half_written" else b"\x89HDF\r\n" + data[100:])
    with pytest.raises(InputFileError) as error:
        open_tensor(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)
