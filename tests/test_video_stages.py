"""Bad input to the video stages: a clip data set of the wrong shape or with NaN frames, an unknown
norm, a model that does not match the clips. Each ends in one clear line and exit code 2, and the
stage writes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnassure.paths import ExperimentPaths
from nnassure.video.model import FlowLSTM, FlowLSTMSpec, save_flow_lstm

SMALL = ["experiment=smoke", "tracking=disabled", "video.clips_per_class=5", "video.max_epochs=2"]


def run_stage(stage: str, results: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", f"nnassure.stages.{stage}", *SMALL, f"results_dir={results}",
                           *overrides], capture_output=True, text=True, timeout=600)


def error_line(result: subprocess.CompletedProcess[str], stage: str) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nnassure {stage}: error: "), result.stderr[-2000:]
    return lines[0]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("video")
    assert run_stage("video_data", results).returncode == 0
    return results


def outputs(results: Path) -> list[Path]:
    paths = ExperimentPaths(results, "smoke")
    stem = paths.video_model_stem
    return [stem.with_suffix(".safetensors"), stem.with_suffix(".json"), paths.video_bounds(0),
            paths.video_trace(0), paths.video_flows(0)]


def corrupt(source: Path, target: Path, **changes: np.ndarray) -> None:
    """A copy of the clip file with some arrays replaced (bypassing the writer's own checks)."""
    with np.load(source) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays.update(changes)
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez(target, **arrays)


@pytest.mark.parametrize(("name", "change", "expected"), [
    ("nan", lambda a: {"frames": np.where(np.arange(a["frames"].size).reshape(a["frames"].shape) == 7, np.nan,
                                          a["frames"]).astype(np.float32)}, "finite"),
    ("shape", lambda a: {"frames": a["frames"][:, :, :, :-1]}, "frames"),
])
def test_a_bad_clip_file_stops_training_in_one_line_and_writes_nothing(clips: Path, tmp_path: Path, name: str,
                                                                       change, expected: str) -> None:
    source = ExperimentPaths(clips, "smoke").video_clips
    target = ExperimentPaths(tmp_path, "smoke").video_clips
    with np.load(source) as archive:
        corrupt(source, target, **change(archive))
    line = error_line(run_stage("video_train", tmp_path), "video_train")
    assert str(target) in line and expected in line.lower(), line
    assert not any(p.exists() for p in outputs(tmp_path))


def test_an_unknown_norm_is_refused_before_anything_runs(clips: Path) -> None:
    line = error_line(run_stage("video_bounds", clips, "video.clip=0", "video.norm=l3"), "video_bounds")
    assert "video.norm" in line and "l1, l2, linf" in line, line
    assert not ExperimentPaths(clips, "smoke").video_bounds(0).exists()


def test_a_model_that_does_not_match_the_clips_is_refused_in_one_line(clips: Path, tmp_path: Path) -> None:
    paths = ExperimentPaths(tmp_path, "smoke")
    paths.video_clips.parent.mkdir(parents=True)
    paths.video_clips.write_bytes(ExperimentPaths(clips, "smoke").video_clips.read_bytes())
    save_flow_lstm(FlowLSTM(FlowLSTMSpec(flows=7, grid=4, classes=6)), paths.video_model_stem)  # clips: 8x8 grid
    line = error_line(run_stage("video_bounds", tmp_path, "video.clip=0"), "video_bounds")
    assert "7, 2, 4, 4" in line and "8, 8)" in line and str(paths.video_clips) in line, line
    assert not any(p.exists() for p in outputs(tmp_path)[2:])
