"""Video clips and their optical flow: renderer, Farneback against the true motion, warping, brightness, file format.

The tolerances were set by measuring (noted at each test) on more clips than the tests render,
with a margin; each bound is far below what a wrong sign, a missing flow or a frame-level
perturbation that is not a brightness change would give.
"""

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnassure.config import compose
from nnassure.errors import ConfigError, InputFileError
from nnassure.stage_keys import project
from nnassure.video.clips import (
    MOTIONS,
    SPRITES,
    VIDEO_ARRAYS,
    build_video_dataset,
    load_video_dataset,
    render_clip,
    save_video_dataset,
)
from nnassure.video.flow import (
    brighten,
    brightness_distance,
    clip_flow,
    endpoint_error,
    farneback,
    pool_flow,
    upsample_flow,
    warp_frames,
)

DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}


def _video_cfg(*overrides: str):
    return project(compose(["experiment=smoke", *overrides]), "video_data").video


@pytest.fixture(scope="module")
def smoke_cfg():
    return _video_cfg()


@pytest.fixture(scope="module")
def smoke(smoke_cfg):
    return build_video_dataset(smoke_cfg, progress=False)


@pytest.fixture(scope="module")
def params(smoke_cfg):
    return dict(smoke_cfg.farneback)


def _sprite_median_error(clip, flow):
    """Largest |median over sprite pixels of (Farneback - true)| of the two components."""
    mask = clip.alpha[:-1] >= 0.5
    error = (flow - clip.true_flow).transpose(1, 0, 2, 3)[:, mask]
    return float(np.abs(np.median(error, axis=1)).max())


# ---------------------------------------------------------------------------------------------
# Renderer and data set


def test_build_is_deterministic_and_depends_on_the_seed():
    cfg = _video_cfg("video.clips_per_class=5")
    first, again = build_video_dataset(cfg, progress=False), build_video_dataset(cfg, progress=False)
    for name in ("frames", "flows", "true_flows", "labels", "split"):
        assert np.array_equal(getattr(first, name), getattr(again, name)), name
    other = build_video_dataset(_video_cfg("video.clips_per_class=5", "video.seed=1"), progress=False)
    assert not np.array_equal(first.frames, other.frames)
    assert not np.array_equal(first.flows, other.flows)


def test_shapes_ranges_classes_balanced_and_split_stratified(smoke, smoke_cfg):
    n = 16 * 6
    assert smoke.frames.shape == (n, 8, 32, 32) and smoke.frames.dtype == np.float32
    assert smoke.flows.shape == smoke.true_flows.shape == (n, 7, 2, 8, 8)
    assert 0.0 <= smoke.frames.min() and smoke.frames.max() <= 1.0
    assert smoke.classes == tuple(smoke_cfg.motions) == MOTIONS
    assert np.bincount(smoke.labels).tolist() == [16] * 6
    for label in range(6):
        members = smoke.split[smoke.labels == label]
        for name, fraction in zip(("train", "val", "test"), smoke_cfg.split, strict=True):
            assert abs((members == name).sum() - 16 * fraction) <= 1, (label, name)
    flows, labels = smoke.arrays("test")
    assert flows.shape == ((smoke.split == "test").sum(), 7, 2, 8, 8) and flows.flags.writeable
    assert np.array_equal(smoke.frames_of("test"), smoke.frames[smoke.split == "test"])
    assert np.array_equal(labels, smoke.labels[smoke.split == "test"])
    with pytest.raises(ValueError, match="invalid split"):
        smoke.arrays("testing")


@pytest.mark.parametrize("motion", MOTIONS)
def test_sprite_stays_inside_the_frame(motion):
    for seed in range(25):
        # The fastest motion the config allows: 2 px per frame, 8 % scale change per frame.
        clip = render_clip(motion, np.random.default_rng(seed), speed=(2.0, 2.0), zoom=(0.08, 0.08))
        alpha = clip.alpha
        border = np.concatenate([alpha[:, 0], alpha[:, -1], alpha[:, :, 0], alpha[:, :, -1]], axis=1)
        assert border.max() == 0.0, (motion, seed)
        if motion in DIRECTIONS:  # nothing cut off: the coverage is the same in every frame
            mass = alpha.sum(axis=(1, 2))
            assert np.abs(mass / mass[0] - 1).max() < 0.02, (motion, seed)


def test_a_motion_that_cannot_stay_inside_the_frame_is_refused_whatever_the_seed():
    # Refused from the ranges, not from the draw: even a slow left clip of these ranges is refused.
    with pytest.raises(ValueError, match="cannot keep a sprite inside 32 x 32 frames over 8 frames"):
        render_clip("left", np.random.default_rng(0), speed=(1.0, 4.0))
    with pytest.raises(ValueError, match=r"zoom=\[0.2, 0.2\]"):
        render_clip("zoom_out", np.random.default_rng(0), zoom=(0.2, 0.2))
    with pytest.raises(ConfigError, match="invalid video config: cannot keep a sprite"):
        build_video_dataset(_video_cfg("video.clips_per_class=5", "video.speed=[1,4]"), progress=False)


def test_true_flow_is_the_renderers_motion():
    clip = render_clip("left", np.random.default_rng(3), speed=(1.25, 1.25), noise=0.0)
    moving = clip.alpha[:-1] >= 0.5
    assert np.allclose(clip.true_flow[:, 0][moving], -1.25) and np.allclose(clip.true_flow[:, 1][moving], 0.0)
    assert not clip.true_flow[:, 0][~moving].any()
    zoom = render_clip("zoom_in", np.random.default_rng(3), zoom=(0.05, 0.05), noise=0.0)
    ys, xs = np.mgrid[0:32, 0:32]
    centre = [(zoom.alpha[0] * xs).sum() / zoom.alpha[0].sum(), (zoom.alpha[0] * ys).sum() / zoom.alpha[0].sum()]
    inside = zoom.alpha[0] >= 0.5
    # dx = 0.05 * (x - centre): the scale change about the sprite's centre (centroid within 0.2 px).
    assert np.abs(zoom.true_flow[0, 0][inside] - 0.05 * (xs[inside] - centre[0])).max() < 0.02


# ---------------------------------------------------------------------------------------------
# Farneback against the true motion


@pytest.mark.parametrize("sprite", SPRITES)
def test_farneback_recovers_pure_translations(sprite, params):
    # Measured on 400 noiseless translation clips (all sprites, 1-2 px/frame): the median error on
    # the sprite is 0.024 px on average and at most 0.23 px; with the config's noise 0.03 at most
    # 0.22 px. A flow of the wrong sign or none at all would be off by 1-4 px.
    for seed in range(8):
        motion = tuple(DIRECTIONS)[seed % 4]
        clip = render_clip(motion, np.random.default_rng(1000 + seed), noise=0.0, sprite=sprite)
        assert _sprite_median_error(clip, clip_flow(clip.frames, params)) <= 0.25, (sprite, motion, seed)


def test_pooled_flow_points_the_way_of_every_translation(smoke):
    # The mean pooled flow along the motion beats the perpendicular one by at least 0.19 px on
    # 600 clips at the config's noise; asserted with margin 0.1.
    for label, motion in enumerate(smoke.classes):
        if motion not in DIRECTIONS:
            continue
        direction = np.array(DIRECTIONS[motion])
        for flows in smoke.flows[smoke.labels == label]:
            mean = flows.mean(axis=(0, 2, 3))
            assert mean @ direction - abs(mean @ direction[::-1]) > 0.1, motion


@pytest.mark.parametrize("motion", ["zoom_in", "zoom_out"])
def test_zoom_flow_diverges_on_the_sprite(motion, params):
    # The mean divergence on the sprite is 0.025..0.16 per frame for zoom_in and -0.16..-0.03 for
    # zoom_out (100 clips each, noise 0.03); the true divergence is 2 * (0.04..0.08).
    sign = 1.0 if motion == "zoom_in" else -1.0
    for seed in range(20):
        clip = render_clip(motion, np.random.default_rng(seed))
        flow = clip_flow(clip.frames, params)
        divergence = np.gradient(flow[:, 0], axis=2) + np.gradient(flow[:, 1], axis=1)
        assert sign * divergence[clip.alpha[:-1] >= 0.5].mean() > 0.01, (motion, seed)


def test_dataset_flow_error_against_the_true_motion(smoke):
    # Pooled, the error is dominated by Farneback's halo of 1-4 px around the sprite (true
    # motion 0 there) and its response to the pixel noise on the static background (about
    # 0.5 px per pixel): measured 0.60 px on the smoke and quick sets. A flow of zero would score
    # the mean true motion, much less; the bound guards against the flow growing worse.
    assert endpoint_error(smoke.flows, smoke.true_flows) < 0.8


# ---------------------------------------------------------------------------------------------
# Pooling, warping, brightness


def test_pool_and_upsample_are_inverse_layouts():
    rng = np.random.default_rng(0)
    pooled = rng.standard_normal((3, 2, 8, 8)).astype(np.float32)
    assert np.array_equal(pool_flow(upsample_flow(pooled, 4), 4), pooled)
    assert np.array_equal(pool_flow(pooled, 1), pooled)
    flow = rng.standard_normal((2, 32, 32)).astype(np.float32)
    assert np.allclose(pool_flow(flow, 4)[0, 1, 2], flow[0, 4:8, 8:12].mean(), atol=1e-6)
    with pytest.raises(ValueError, match="expected a divisor"):
        pool_flow(flow, 3)


def test_warp_frames_realises_a_flow_change(params):
    clip = render_clip("right", np.random.default_rng(5))
    frames = clip.frames
    zero = np.zeros((7, 2, 8, 8), np.float32)
    assert np.array_equal(warp_frames(frames, zero, 4), frames)
    # An integer change moves the later frames by exactly that many pixels.
    change = zero.copy()
    change[2, 0] = 1.0
    warped = warp_frames(frames, change, 4)
    assert np.array_equal(warped[:3], frames[:3])
    assert np.array_equal(warped[3:, :, 1:], frames[3:, :, :-1])
    # A fractional change shows in the Farneback flow of the warped frames as p_2 + delta_2,
    # the other flows unchanged (median over the pixels away from the replicated borders; over
    # 40 clips of all motions the errors are at most 0.19 px and 0.07 px).
    change = zero.copy()
    change[2, 0], change[2, 1] = 0.5, -0.75
    difference = clip_flow(warp_frames(frames, change, 4), params) - clip_flow(frames, params)
    median = np.median(difference[:, :, 6:26, 6:26].reshape(7, 2, -1), axis=2)
    assert np.abs(median[2] - [0.5, -0.75]).max() < 0.2
    assert np.abs(np.delete(median, 2, axis=0)).max() < 0.1


def test_brightness_changes_one_frame_and_its_distance():
    frames = np.full((4, 32, 32), 0.5, np.float32)
    frames[2, 0, 0] = 0.95
    brightened = brighten(frames, 0.1, 2)
    assert np.array_equal(np.delete(brightened, 2, axis=0), np.delete(frames, 2, axis=0))
    assert brightened[2, 0, 0] == 1.0 and np.allclose(brightened[2, 1:], 0.6)
    # delta * sqrt(w * h) = 3.2 without clipping; the clipped pixel moved by 0.05 only.
    expected = np.sqrt(0.1**2 * (32 * 32 - 1) + 0.05**2)
    assert brightness_distance(frames, 0.1, 2) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="frame_index"):
        brighten(frames, 0.1, 4)


def test_brightness_hardly_changes_the_flow(params):
    # Sec. 6.3: brightening a frame leaves its flow nearly unchanged. Farneback fits a quadratic
    # to each neighbourhood and solves for the displacement from its linear and quadratic
    # coefficients only, so a constant offset changes the flow only where pixels clip at 1 (and
    # by uint8 rounding). Measured over 4 x 24 clips: relative change on the sprite 0.004-0.007
    # for delta 0.1, while a random +-0.1 per pixel (the same L2 distance) changes it by 0.13-0.16.
    changed, random, reference = 0.0, 0.0, 0.0
    for seed in range(24):
        clip = render_clip(MOTIONS[seed % 6], np.random.default_rng(seed))
        flow = clip_flow(clip.frames, params)
        mask = clip.alpha[2:4] >= 0.5  # flows 2 and 3 are the ones frame 3 enters

        def on_sprite(f, mask=mask):
            return f[2:4].transpose(1, 0, 2, 3)[:, mask]

        noisy = clip.frames.copy()
        noisy[3] = np.clip(noisy[3] + np.random.default_rng(seed).choice([-0.1, 0.1], noisy[3].shape), 0, 1)
        changed += np.sum(on_sprite(clip_flow(brighten(clip.frames, 0.1, 3), params) - flow) ** 2)
        random += np.sum(on_sprite(clip_flow(noisy, params) - flow) ** 2)
        reference += np.sum(on_sprite(flow) ** 2)
    assert np.sqrt(changed / reference) < 0.05
    assert np.sqrt(random / reference) > 0.08


def test_farneback_refuses_mismatched_frames(params):
    with pytest.raises(ValueError, match="expected two grey frames"):
        farneback(np.zeros((32, 32)), np.zeros((16, 16)), params)
    with pytest.raises(ValueError, match="missing winsize"):
        farneback(np.zeros((32, 32)), np.zeros((32, 32)), {k: v for k, v in params.items() if k != "winsize"})


# ---------------------------------------------------------------------------------------------
# File format


def test_round_trip_is_exact_and_read_only(smoke, tmp_path):
    path = tmp_path / "clips.npz"
    save_video_dataset(path, smoke)
    loaded = load_video_dataset(path)
    for name in ("frames", "flows", "true_flows", "labels", "split"):
        assert np.array_equal(getattr(loaded, name), getattr(smoke, name)), name
        assert not getattr(loaded, name).flags.writeable
    assert loaded.classes == smoke.classes and loaded.flow_pool == 4 and dict(loaded.farneback) == dict(smoke.farneback)
    with np.load(path, allow_pickle=False) as archive:
        assert set(archive.files) == set(VIDEO_ARRAYS)
        assert archive["split"].dtype == np.dtype("<U5") and archive["labels"].dtype == np.int64


def _arrays(dataset):
    return {
        "frames": dataset.frames, "flows": dataset.flows, "true_flows": dataset.true_flows,
        "labels": dataset.labels, "split": dataset.split, "classes": np.array(dataset.classes),
        "flow_pool": np.array(dataset.flow_pool), "farneback": np.array('{"pyr_scale": 0.5, "levels": 2, '
                                                                         '"winsize": 7, "iterations": 3, '
                                                                         '"poly_n": 5, "poly_sigma": 1.1}'),
    }


def _nan_frames(a):
    frames = a["frames"].copy()
    frames[3, 2, 5, 5] = np.nan
    return {"frames": frames}


def _bright_frames(a):
    frames = a["frames"].copy()
    frames[0, 0, 0, 0] = 1.5
    return {"frames": frames}


BAD_FILES = [
    ("frames not 4-D", lambda a: {"frames": a["frames"][:, 0]},
     "frames have shape (96, 32, 32); expected (n, L, H, W)"),
    ("NaN frames", _nan_frames, "frames contain NaN or infinite values"),
    ("frames above 1", _bright_frames, "frame values span [0, 1.5]"),
    ("flows not matching frames", lambda a: {"flows": a["flows"][:, :6]},
     "flows have shape (96, 6, 2, 8, 8) for frames (96, 8, 32, 32) and flow_pool=4; expected (96, 7, 2, 8, 8)"),
    ("flows at pixel resolution", lambda a: {"true_flows": np.zeros((96, 7, 2, 32, 32), np.float32)},
     "true_flows have shape (96, 7, 2, 32, 32)"),
    ("infinite flows", lambda a: {"flows": np.where(a["flows"] > 1, np.inf, a["flows"]).astype(np.float32)},
     "flows contain NaN or infinite values"),
    ("labels out of range", lambda a: {"labels": a["labels"] + 1}, "labels span 1..6; expected 0..5"),
    ("unknown split", lambda a: {"split": np.where(a["split"] == "val", "valid", a["split"])},
     "unknown split name(s) 'valid'"),
    ("wrong number of labels", lambda a: {"labels": a["labels"][:-1]}, "length mismatch: 96 clips, 95 labels"),
    ("pool not dividing", lambda a: {"flow_pool": np.array(5)}, "cannot be pooled by flow_pool=5"),
    ("farneback not JSON", lambda a: {"farneback": np.array("winsize=7")}, "farneback is not JSON"),
    ("farneback incomplete", lambda a: {"farneback": np.array('{"winsize": 7}')}, "farneback parameters lack"),
    ("farneback text value", lambda a: {"farneback": np.array(str(a["farneback"]).replace("7", '"7"'))},
     "farneback parameter winsize is '7'; expected a number"),
    ("float flow_pool", lambda a: {"flow_pool": np.array(4.0)}, "flow_pool has dtype float64"),
]


@pytest.mark.parametrize(("case", "change", "message"), BAD_FILES, ids=[case for case, _, _ in BAD_FILES])
def test_loader_refuses_bad_files_in_one_line(smoke, tmp_path, case, change, message):
    arrays = _arrays(smoke)
    arrays.update(change(arrays))
    path = tmp_path / "clips.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputFileError) as error:
        load_video_dataset(path)
    text = str(error.value)
    assert text.startswith(f"{path}: ") and "\n" not in text
    assert message in text


def test_loader_refuses_a_missing_array(smoke, tmp_path):
    arrays = _arrays(smoke)
    del arrays["true_flows"]
    path = tmp_path / "clips.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputFileError, match=r"missing array\(s\) true_flows.*run the video_data stage"):
        load_video_dataset(path)


@pytest.mark.parametrize(("case", "change", "message"), BAD_FILES[:9], ids=[case for case, _, _ in BAD_FILES[:9]])
def test_writer_refuses_bad_arrays_and_writes_nothing(smoke, tmp_path, case, change, message):
    fields = {k: v for k, v in change(_arrays(smoke)).items() if k != "classes"}
    bad = dataclasses.replace(smoke, **fields)
    path = tmp_path / "video" / "clips.npz"
    with pytest.raises(ValueError, match="cannot save clip data set") as error:
        save_video_dataset(path, bad)
    assert message in str(error.value)
    assert not path.exists() and list(tmp_path.rglob("*")) == []


def test_stage_writes_a_loadable_data_set(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "nnassure.stages.video_data", "experiment=smoke", f"results_dir={tmp_path}",
         "tracking=disabled"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    dataset = load_video_dataset(Path(tmp_path) / "smoke" / "video" / "clips.npz")
    assert len(dataset.labels) == 96 and dataset.classes == MOTIONS
