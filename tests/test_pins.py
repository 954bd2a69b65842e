"""Every dependency is pinned, and envs/nnassure.yaml is in step with requirements.lock."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_conda_environment_matches_the_lock_file() -> None:
    env = yaml.safe_load((REPO / "envs" / "nnassure.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = {}
    for spec in pip_section:
        name, version = spec.split("==")
        conda_pins[name.lower().replace("_", "-")] = version
    assert conda_pins == _lock()
    assert "python=3.11" in env["dependencies"]


def test_pyproject_dependencies_are_exact_pins_that_agree_with_the_lock() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lock = _lock()
    specs = project["dependencies"] + [spec for extra in project["optional-dependencies"].values() for spec in extra]
    for spec in specs:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([0-9][^\s;]*)", spec)
        assert match, f"{spec} is not an exact pin"
        name = match.group(1).lower().replace("_", "-")
        assert lock.get(name) == match.group(2), f"{spec} disagrees with requirements.lock"


def test_torch_is_pinned_to_the_cpu_build_served_here() -> None:
    assert _lock()["torch"] == "2.13.0"
    assert "auto-lirpa" not in _lock()  # installed with --no-deps by the Makefile
    assert "auto_LiRPA==0.3" in (REPO / "Makefile").read_text()


def test_onnx2torch_is_installed_without_its_torchvision_requirement() -> None:
    # onnx2torch's metadata asks for torchvision, which would pull another torch build.
    assert "onnx2torch" not in _lock() and "torchvision" not in _lock()
    assert "--no-deps onnx2torch==1.5.15" in (REPO / "Makefile").read_text()
    assert "--no-deps onnx2torch==1.5.15" in (REPO / "envs" / "nnassure.post-deploy.sh").read_text()
