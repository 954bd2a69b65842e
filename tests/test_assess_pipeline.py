"""The assessment as a user runs it (issue 14): `snakemake --config experiment=assess` on an ONNX
model, its data and VNN-LIB properties made here; the report and its sections; a native model;
and bad input stopping a stage in one line (exit 2) with nothing written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_assess import export, not_top, vnnlib_text
from torch import nn

from nnassure.assess.model import load_onnx, onnxruntime_logits
from nnassure.paths import ExperimentPaths

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
       "NO_ALBUMENTATIONS_UPDATE": "1"}
SECTIONS = ("summary", "assessed", "accuracy", "certification", "proven", "kri", "vnnlib")


def trained_mlp(seed: int = 0) -> tuple[nn.Module, np.ndarray, np.ndarray]:
    torch.manual_seed(seed)
    network = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (400, 2)).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(np.int64) + (x[:, 1] > 0.6).astype(np.int64)
    optimizer = torch.optim.Adam(network.parameters(), 0.02)
    for _ in range(200):
        optimizer.zero_grad()
        nn.functional.cross_entropy(network(torch.as_tensor(x)), torch.as_tensor(y)).backward()
        optimizer.step()
    return network.eval(), x, y


@pytest.fixture(scope="module")
def user_files(tmp_path_factory) -> dict[str, Path]:
    """What an engineer brings: an ONNX file, test data and two properties (one holds, one violated)."""
    root = tmp_path_factory.mktemp("user")
    network, x, y = trained_mlp()
    onnx_file = Path(export(network, (2,), root / "classifier.onnx"))
    np.savez(root / "test.npz", x=x[:150], y=y[:150])
    (root / "props").mkdir()
    model = load_onnx(onnx_file)
    for name, index, eps in (("tight", 0, 0.005), ("wide", 1, 0.4)):
        centre = x[index]
        top = int(onnxruntime_logits(model, centre[None]).argmax())
        (root / "props" / f"{name}.vnnlib").write_text(vnnlib_text(centre - eps, centre + eps, not_top(top, 3), 3))
    return {"root": root, "onnx": onnx_file, "data": root / "test.npz", "props": root / "props"}


def overrides(results: Path, files: dict[str, Path], *extra: str) -> str:
    return " ".join([f"results_dir={results}", "tracking=disabled", f"assess.model={files['onnx']}",
                     f"assess.data={files['data']}", f"assess.properties=[{files['props']}]", "assess.domain=[0,1]",
                     "assess.certify.radius_steps=4", "assess.vnnlib.time_limit=30", *extra])


def run_snakemake(workdir: Path, overrides_text: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("snakemake")), "-s", str(REPO / "Snakefile"), "--directory",
               str(workdir), "--cores", "2", *args, "--config", "experiment=assess", f"overrides={overrides_text}"]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=900)


@pytest.fixture(scope="module")
def assessment(user_files, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("assess_run")
    result = run_snakemake(workdir, overrides(workdir / "results", user_files))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir


def test_the_report_is_built_with_every_section(assessment, user_files):
    paths = ExperimentPaths(assessment / "results", "assess")
    page = paths.assess_report("classifier").read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert page.count("data:image/png;base64,") >= 3  # confusion, verified accuracy, radii, PROVEN
    manifest = json.loads(paths.assess_manifest("classifier").read_text())
    assert manifest["model"]["files"][str(user_files["onnx"])] in page  # the file hash a reviewer signs
    assert "holds" in page and "violated" in page


def test_the_verdicts_are_in_vnncomp_format_and_parquet(assessment, user_files):
    paths = ExperimentPaths(assessment / "results", "assess")
    results = pd.read_csv(paths.assess_report("classifier").with_name("results.csv"))
    assert dict(zip(results["vnnlib"].map(lambda p: Path(p).stem), results["result"], strict=True)) == \
        {"tight": "unsat", "wide": "sat"}
    frame = pd.read_parquet(paths.assess_report("classifier").with_name("vnnlib.parquet"))
    assert set(frame["result"]) == {"holds", "violated"}
    text = paths.vnnlib_result("classifier", "wide").with_suffix(".txt").read_text()
    assert text.startswith("sat\n((X_0 ")
    values = dict(re.findall(r"\((X_\d+|Y_\d+) ([-0-9.e+]+)\)", text))
    x = np.array([float(values["X_0"]), float(values["X_1"])], np.float32)
    y = onnxruntime_logits(load_onnx(user_files["onnx"]), x[None])[0]
    np.testing.assert_allclose(y, [float(values[f"Y_{j}"]) for j in range(3)])


def test_the_certification_is_sound_on_the_users_data(assessment, user_files):
    """Every sample verified at eps survives PGD and random points in its ball (onnxruntime)."""
    paths = ExperimentPaths(assessment / "results", "assess")
    rows = pd.read_parquet(paths.assess_certification("classifier"))
    model = load_onnx(user_files["onnx"])
    data = np.load(user_files["data"])
    rng = np.random.default_rng(0)
    for (norm, eps), part in rows[rows["verified"]].groupby(["norm", "eps"]):
        ids = part["sample"].to_numpy()[:40]
        x = data["x"][ids].astype(np.float64)
        direction = rng.normal(size=(200, *x.shape))
        if norm == "linf":
            points = x + eps * np.sign(direction)
        else:
            points = x + eps * direction / np.linalg.norm(direction, axis=-1, keepdims=True)
        points = np.clip(points, 0, 1).astype(np.float32)  # assess.domain=[0,1]
        classes = onnxruntime_logits(model, points.reshape(-1, 2)).argmax(axis=1).reshape(200, len(ids))
        assert (classes == data["y"][ids]).all(), (norm, eps)


def test_a_rerun_does_nothing_and_a_replaced_model_reruns_the_assessment(assessment, user_files):
    text = overrides(assessment / "results", user_files)
    dry = run_snakemake(assessment, text, "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    original = user_files["onnx"].read_bytes()
    try:
        export(trained_mlp(seed=1)[0], (2,), user_files["onnx"])  # another model under the same name
        dry = run_snakemake(assessment, text, "-n", "--quiet", "rules")
        assert "assess_import" in dry.stdout + dry.stderr and "report_assess" in dry.stdout + dry.stderr
    finally:
        user_files["onnx"].write_bytes(original)


def _stage(name: str, results: Path, files: dict[str, Path], *extra: str) -> subprocess.CompletedProcess[str]:
    args = ["experiment=assess", f"results_dir={results}", "tracking=disabled", f"assess.model={files['onnx']}",
            f"assess.data={files['data']}", f"assess.properties=[{files['props']}]", *extra]
    return subprocess.run([sys.executable, "-m", f"nnassure.stages.{name}", *args], capture_output=True, text=True,
                          env=ENV, timeout=300)


def test_an_unsupported_operator_stops_the_import_in_one_line(user_files, tmp_path):
    softmax = Path(export(nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=1)), (2,), tmp_path / "softmax.onnx"))
    result = _stage("assess_import", tmp_path / "results", {**user_files, "onnx": softmax})
    assert result.returncode == 2
    error = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(error) == 1 and error[0].startswith("nnassure assess_import: error:")
    assert "ONNX operator Softmax is not supported by the bound engine" in error[0]
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("import.json"))


def test_data_of_the_wrong_shape_stops_the_import_in_one_line(user_files, tmp_path):
    np.savez(tmp_path / "wrong.npz", x=np.zeros((10, 3), np.float32), y=np.zeros(10, np.int64))
    result = _stage("assess_import", tmp_path / "results", {**user_files, "data": tmp_path / "wrong.npz"})
    assert result.returncode == 2
    error = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(error) == 1 and "the model expects (2,)" in error[0]
    assert not list(tmp_path.rglob("import.json"))


def test_a_vnnlib_syntax_error_stops_the_property_job_in_one_line(assessment, user_files, tmp_path):
    props = tmp_path / "props"
    props.mkdir()
    (props / "broken.vnnlib").write_text("(declare-const X_0 Real)\n(assert (<= X_0 1.0)\n")
    results = assessment / "results"
    result = _stage("vnnlib", results, {**user_files, "props": props}, "assess.property=broken")
    assert result.returncode == 2
    error = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(error) == 1 and "broken.vnnlib:2:1: VNN-LIB syntax error: '(' is never closed" in error[0]
    assert not ExperimentPaths(results, "assess").vnnlib_result("classifier", "broken").exists()


def test_a_native_model_is_assessed_without_onnx(tmp_path):
    from nnassure.assess.data import load_assessment_data
    from nnassure.assess.experiment import certify_samples, clean_accuracy
    from nnassure.assess.model import load_assessed_model
    from nnassure.models import MLPSpec, build_model, save_model

    model = build_model(MLPSpec(depth=2, width=8, input_dim=2, outputs=1))
    save_model(model, tmp_path / "native")
    assessed = load_assessed_model(tmp_path / "native.safetensors")
    assert assessed.source == "native" and assessed.classes == 2
    x = np.random.default_rng(0).uniform(0, 1, (50, 2)).astype(np.float32)
    labels = assessed.predict(assessed.logits(x))
    np.savez(tmp_path / "d.npz", x=x, y=labels)
    data = load_assessment_data(tmp_path / "d.npz", assessed.input_shape, assessed.classes)
    summary, _ = clean_accuracy(assessed, data, None)
    assert summary["accuracy"] == 1.0
    _, certified = certify_samples(assessed, data, ["crown"], "crown", {"linf": [1e-6]}, True, {"linf": 0.1}, 3,
                                   None, 64, progress=False)
    assert certified["verified_accuracy"].iloc[0] > 0.9


def test_the_kri_scenarios_run_on_an_rgb_image_model_and_are_skipped_otherwise(tmp_path):
    from omegaconf import OmegaConf

    from nnassure.assess.data import load_assessment_data
    from nnassure.assess.experiment import kri_components
    from nnassure.config import compose

    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    model = load_onnx(export(cnn, (3, 16, 16), tmp_path / "rgb.onnx"))
    images = np.random.default_rng(0).uniform(0, 1, (6, 3, 16, 16)).astype(np.float32)
    np.savez(tmp_path / "images.npz", x=images, y=model.predict(model.logits(images)))
    data = load_assessment_data(tmp_path / "images.npz", model.input_shape, model.classes, (0.0, 1.0))
    scenarios = OmegaConf.to_container(compose(["experiment=smoke"]).kri.scenarios)
    result = kri_components(model, data, scenarios, samples=4, draws=2, seed=0, domain=(0.0, 1.0))
    rows = {row["scenario"]: row for row in result["rows"]}
    assert set(rows) == set(scenarios)
    assert rows["fgsm"]["draws"] == 1 and rows["brightness"]["draws"] == 2
    for row in rows.values():
        assert 0.0 <= row["class_change"] <= 1.0 and row["samples"] == 4
        # every sample is labelled with the clean prediction here, so the two rates are the same
        assert row["class_change"] == row["misclassification"]
    assert "not an RGB image" in kri_components(load_onnx(export(trained_mlp()[0], (2,), tmp_path / "flat.onnx")),
                                                 data, scenarios, 4, 2, 0, (0.0, 1.0))["skipped"]
    assert "assess.domain=[0,1]" in kri_components(model, data, scenarios, 4, 2, 0, None)["skipped"]
