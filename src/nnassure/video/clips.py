"""Synthetic video clips whose class is the motion, their flow, and the ``.npz`` file holding them.

Wu & Kwiatkowska evaluate a VGG16 + LSTM on UCF101 (Sec. 6), which is neither downloadable here
nor verifiable at that size. The stand-in keeps what their method relies on: a video whose class
is carried by its temporal dynamics, captured by the optical flow P(v) of Def. 4, so that
perturbing the flow (Def. 5) is perturbing what the network decides on. Each clip is ``frames``
grey frames of ``size`` x ``size`` in [0, 1]: a textured sprite (a scikit-learn digit or a filled
circle, square or triangle drawn with OpenCV) moving over a static textured background (smooth
blobs), plus Gaussian pixel noise drawn afresh per frame. The motion is the class:
``left``, ``right``, ``up``, ``down`` translate the sprite by a speed drawn from ``speed`` pixels
per frame, ``zoom_in`` and ``zoom_out`` scale it about its centre by a relative change drawn
from ``zoom`` per frame. The sprite is placed so that it stays inside the frame over the whole
clip, and moved with sub-pixel accuracy (``cv2.warpAffine``, bilinear, then alpha-composed), so
the renderer knows the TRUE motion field, kept beside the Farneback flow to measure it.

The data set file is an ``.npz`` archive of plain arrays (nothing pickled, like
:mod:`nnassure.data.images`), ``n`` clips of ``L`` frames, pooled to ``h = H / flow_pool``:

* ``frames``: float32 ``(n, L, H, W)`` in [0, 1];
* ``flows``: float32 ``(n, L - 1, 2, h, w)``, the pooled Farneback flow, the network's input;
* ``true_flows``: float32 ``(n, L - 1, 2, h, w)``, the pooled motion field of the renderer;
* ``labels``: int64, each an index into ``classes``;
* ``split``: ``<U5``, each ``train``, ``val`` or ``test``;
* ``classes``: unicode motion names;
* ``flow_pool``: int64 scalar, the pooling factor;
* ``farneback``: unicode scalar, the JSON object of the Farneback parameters used.

The last two say how ``flows`` was made, so that a consumer recomputing the flow of perturbed
frames (brightness, Sec. 6.3; the pixel realisation of a flow change, Sec. 3.2) computes it the
same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from omegaconf import DictConfig
from sklearn.datasets import load_digits
from tqdm import tqdm

from nnassure.data.images import SPLITS, split_indices
from nnassure.errors import ConfigError, InputFileError
from nnassure.io import atomic_path, read_npz
from nnassure.video.flow import FARNEBACK_KEYS, clip_flow, pool_flow

MOTIONS: tuple[str, ...] = ("left", "right", "up", "down", "zoom_in", "zoom_out")
SPRITES: tuple[str, ...] = ("digit", "circle", "square", "triangle")
VIDEO_ARRAYS: tuple[str, ...] = ("frames", "flows", "true_flows", "labels", "split", "classes", "flow_pool",
                                 "farneback")

_DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
_CANVAS = 12  # side of the sprite's own image, in pixels; scaled by the renderer
_MARGIN = 1  # pixels kept free between the sprite (with its bilinear fringe) and the frame border
_TRANSLATION_SCALE = (0.75, 1.0)  # sprite side 9 to 12 pixels while translating
_ZOOM_SMALLEST = (0.5, 0.75)  # the smallest scale of a zooming sprite (6 to 9 pixels)
_SPRITE_PIXEL = 0.5  # coverage from which a pixel belongs to the sprite (true flow nonzero)


@dataclass(frozen=True, eq=False)
class RenderedClip:
    """One clip: ``frames`` ``(L, H, W)``, the sprite's coverage ``alpha`` ``(L, H, W)`` and the true motion.

    ``true_flow[t, :, y, x]`` is the displacement (dx, dy) from frame t to t + 1 of the sprite
    point shown at (x, y) in frame t where ``alpha[t, y, x] >= 0.5``, and 0 elsewhere (the
    background is static): the convention of Farneback's flow.
    """

    frames: np.ndarray
    alpha: np.ndarray
    true_flow: np.ndarray
    motion: str
    sprite: str


@lru_cache(maxsize=1)
def _digits() -> np.ndarray:
    """scikit-learn's 1,797 digits in [0, 1], upscaled to the sprite canvas; read-only."""
    images = load_digits().images / 16.0
    canvas = np.stack([cv2.resize(image, (_CANVAS, _CANVAS), interpolation=cv2.INTER_LINEAR) for image in images])
    canvas = np.clip(canvas, 0.0, 1.0).astype(np.float32)
    canvas.setflags(write=False)
    return canvas


def _smooth_pattern(rng: np.random.Generator, cells: int, size: int) -> np.ndarray:
    """Smooth random texture in [0, 1]: a ``cells`` x ``cells`` Gaussian grid upsampled bicubically."""
    grid = rng.standard_normal((cells, cells)).astype(np.float32)
    pattern = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    low, high = float(pattern.min()), float(pattern.max())
    return (pattern - low) / max(high - low, 1e-6)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A static background of smooth random blobs, darker than the sprite, in about [0.05, 0.45].

    Blobs, not stripes: where the sprite covers and uncovers a high-contrast periodic texture,
    Farneback's flow on the sprite is pulled along the stripes' normal. Measured on noiseless
    translation clips: over stripes the median error on the sprite reached 1.0 px and the pooled
    flow pointed the wrong way in 13 of 200 clips; over blobs it is at most 0.23 px (400 clips)
    and never points the wrong way.
    """
    pattern = _smooth_pattern(rng, int(rng.integers(3, 7)), size)
    low, high = rng.uniform(0.05, 0.15), rng.uniform(0.3, 0.45)
    return (low + (high - low) * pattern).astype(np.float32)


def _shape_alpha(kind: str, rng: np.random.Generator) -> np.ndarray:
    """Coverage of a filled circle, square or triangle, drawn 4x larger and area-averaged (anti-aliased)."""
    big = 4 * _CANVAS
    centre = (big - 1) / 2
    image = np.zeros((big, big), np.uint8)
    if kind == "circle":
        cv2.circle(image, (big // 2, big // 2), int(round(rng.uniform(0.38, 0.48) * big)), 255, -1, cv2.LINE_AA)
    else:
        corners = 4 if kind == "square" else 3
        radius = rng.uniform(0.4, 0.49) * big  # the corners' distance from the centre: inside at any rotation
        angles = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(corners) / corners
        points = np.stack([centre + radius * np.cos(angles), centre + radius * np.sin(angles)], axis=1)
        cv2.fillPoly(image, [np.round(points).astype(np.int32)], 255, cv2.LINE_AA)
    return cv2.resize(image.astype(np.float32) / 255.0, (_CANVAS, _CANVAS), interpolation=cv2.INTER_AREA)


def _sprite(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The sprite's coverage (alpha) and its textured intensity in about [0.5, 1], both ``(_CANVAS, _CANVAS)``.

    The intensity is a smooth random texture, not a constant: a uniform interior has no image
    gradient, so no optical flow method can see it move (the aperture problem).
    """
    if kind == "digit":
        digits = _digits()
        alpha = digits[int(rng.integers(len(digits)))].copy()
    else:
        alpha = _shape_alpha(kind, rng)
    low, high = rng.uniform(0.5, 0.65), rng.uniform(0.85, 1.0)
    intensity = low + (high - low) * _smooth_pattern(rng, int(rng.integers(3, 5)), _CANVAS)
    return np.clip(alpha, 0.0, 1.0).astype(np.float32), intensity.astype(np.float32)


def _affine(scale: float, centre: np.ndarray) -> np.ndarray:
    """The 2 x 3 map from sprite-canvas to frame pixel coordinates: the canvas centre goes to ``centre``."""
    middle = (_CANVAS - 1) / 2
    return np.array([[scale, 0.0, centre[0] - scale * middle], [0.0, scale, centre[1] - scale * middle]])


def _centre_range(axis_low: float, axis_high: float, offsets: np.ndarray, scales: np.ndarray,
                  size: int) -> tuple[float, float]:
    """Where the starting centre may lie on one axis so that the sprite's extent stays inside the frame.

    ``axis_low`` / ``axis_high`` bound the sprite's support on the canvas relative to its
    centre; at step t the centre is shifted by ``offsets[t]`` and the sprite scaled by
    ``scales[t]``. One extra pixel each side covers the bilinear fringe.
    """
    lowest = np.max(_MARGIN + 1 - offsets - scales * axis_low)
    highest = np.min(size - 1 - _MARGIN - 1 - offsets - scales * axis_high)
    return float(lowest), float(highest)


def render_clip(motion: str, rng: np.random.Generator, *, frames: int = 8, size: int = 32,
                speed: Sequence[float] = (1.0, 2.0), zoom: Sequence[float] = (0.04, 0.08), noise: float = 0.03,
                sprite: str | None = None) -> RenderedClip:
    """Render one clip of ``motion`` with the random choices drawn from ``rng`` (see the module docstring).

    ``sprite`` fixes the sprite kind (one of :data:`SPRITES`) instead of drawing it. Raises
    ValueError when the fastest motion of ``speed`` or ``zoom`` could not stay inside the frame
    over the clip (e.g. a speed too high for the clip length), whatever the motion drawn.
    """
    if motion not in MOTIONS:
        raise ValueError(f"invalid motion={motion!r}: expected one of {', '.join(MOTIONS)}")
    if sprite is not None and sprite not in SPRITES:
        raise ValueError(f"invalid sprite={sprite!r}: expected one of {', '.join(SPRITES)} or None")
    # The widest extent any clip of these ranges can need (the whole canvas at the largest scale,
    # plus the path), checked up front so that a config is refused whatever the seed.
    extent = _CANVAS - 1
    needed = max(_TRANSLATION_SCALE[1] * extent + max(speed) * (frames - 1),
                 _ZOOM_SMALLEST[1] * (1.0 + max(zoom)) ** (frames - 1) * extent)
    if needed > size - 1 - 2 * (_MARGIN + 1):
        raise ValueError(f"cannot keep a sprite inside {size} x {size} frames over {frames} frames "
                         f"(speed={list(speed)}, zoom={list(zoom)}): expected a slower motion or a shorter clip")
    kind = sprite if sprite is not None else SPRITES[int(rng.integers(len(SPRITES)))]
    alpha, intensity = _sprite(kind, rng)
    steps = np.arange(frames, dtype=np.float64)
    if motion in _DIRECTIONS:
        direction = np.array(_DIRECTIONS[motion])
        offsets = rng.uniform(*speed) * steps[:, None] * direction
        scales = np.full(frames, rng.uniform(*_TRANSLATION_SCALE))
    else:
        growth = (1.0 + rng.uniform(*zoom)) ** steps
        scales = rng.uniform(*_ZOOM_SMALLEST) * (growth if motion == "zoom_in" else growth[::-1])
        offsets = np.zeros((frames, 2))
    # The sprite's support on the canvas, relative to the canvas centre.
    middle = (_CANVAS - 1) / 2
    rows, cols = np.nonzero(alpha > 0.01)
    centre = np.empty(2)
    for axis, support in enumerate((cols, rows)):
        centre[axis] = rng.uniform(*_centre_range(support.min() - middle, support.max() - middle, offsets[:, axis],
                                                  scales, size))
    background = _background(rng, size)
    premultiplied = alpha * intensity
    video, coverage, matrices = [], [], []
    for t in range(frames):
        matrix = _affine(scales[t], centre + offsets[t])
        warp = {"dsize": (size, size), "flags": cv2.INTER_LINEAR, "borderMode": cv2.BORDER_CONSTANT,
                "borderValue": 0.0}
        a = np.clip(cv2.warpAffine(alpha, matrix, **warp), 0.0, 1.0)
        frame = cv2.warpAffine(premultiplied, matrix, **warp) + (1.0 - a) * background
        frame = frame + rng.normal(0.0, noise, frame.shape) if noise > 0 else frame
        video.append(np.clip(frame, 0.0, 1.0))
        coverage.append(a)
        matrices.append(np.vstack([matrix, [0.0, 0.0, 1.0]]))
    grid_y, grid_x = np.mgrid[0:size, 0:size].astype(np.float64)
    points = np.stack([grid_x.ravel(), grid_y.ravel(), np.ones(size * size)])
    true_flow = np.zeros((frames - 1, 2, size, size), np.float32)
    for t in range(frames - 1):
        moved = (matrices[t + 1] @ np.linalg.inv(matrices[t]) @ points)[:2] - points[:2]
        true_flow[t] = moved.reshape(2, size, size) * (coverage[t] >= _SPRITE_PIXEL)
    return RenderedClip(np.stack(video).astype(np.float32), np.stack(coverage).astype(np.float32), true_flow,
                        motion, kind)


@dataclass(frozen=True, eq=False)
class VideoDataset:
    """A loaded, checked clip data set (module docstring); arrays are read-only. ``eq=False``: arrays have no truth."""

    frames: np.ndarray
    flows: np.ndarray
    true_flows: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    classes: tuple[str, ...]
    farneback: Mapping[str, float | int]
    flow_pool: int

    def indices(self, split: str | None = None) -> np.ndarray:
        """Positions of the clips of one split (all clips for None), ascending."""
        if split is None:
            return np.arange(len(self.labels))
        if split not in SPLITS:
            raise ValueError(f"invalid split={split!r}: expected one of {', '.join(SPLITS)} or None")
        return np.flatnonzero(self.split == split)

    def arrays(self, split: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The pooled flows ``(m, L - 1, 2, h, w)`` float32 and int64 labels of one split; fresh writable copies."""
        ids = self.indices(split)
        return np.array(self.flows[ids], dtype=np.float32), np.array(self.labels[ids], dtype=np.int64)

    def frames_of(self, split: str | None = None) -> np.ndarray:
        """The frames ``(m, L, H, W)`` float32 of one split; a fresh writable copy."""
        return np.array(self.frames[self.indices(split)], dtype=np.float32)


def _problem(frames: np.ndarray, flows: np.ndarray, true_flows: np.ndarray, labels: np.ndarray, split: np.ndarray,
             classes: np.ndarray, flow_pool: int, farneback: Mapping[str, Any]) -> str | None:
    """What is wrong with these arrays as a clip data set, or None; shared by the writer and the loader."""
    if frames.ndim != 4 or frames.shape[1] < 2:
        return f"frames have shape {frames.shape}; expected (n, L, H, W) with L >= 2 frames per clip"
    if not np.issubdtype(frames.dtype, np.floating):
        return f"frames have dtype {frames.dtype}; expected float32 in [0, 1]"
    if isinstance(flow_pool, bool) or not isinstance(flow_pool, int) or flow_pool < 1:
        return f"flow_pool is {flow_pool!r}; expected an integer >= 1"
    n, length, height, width = frames.shape
    if height % flow_pool or width % flow_pool:
        return f"frames of {height} x {width} pixels cannot be pooled by flow_pool={flow_pool}; expected a divisor"
    expected = (n, length - 1, 2, height // flow_pool, width // flow_pool)
    for name, array in (("flows", flows), ("true_flows", true_flows)):
        if array.shape != expected:
            return (f"{name} have shape {array.shape} for frames {frames.shape} and flow_pool={flow_pool}; expected "
                    f"{expected} (one pooled flow per pair of adjacent frames)")
        if not np.issubdtype(array.dtype, np.floating):
            return f"{name} have dtype {array.dtype}; expected float32 displacements in pixels"
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        return f"labels have dtype {labels.dtype} and shape {labels.shape}; expected one integer per clip"
    if split.ndim != 1 or split.dtype.kind != "U":
        return f"split has dtype {split.dtype} and shape {split.shape}; expected one of {', '.join(SPLITS)} per clip"
    if classes.ndim != 1 or classes.dtype.kind != "U" or len(classes) == 0:
        return f"classes have dtype {classes.dtype} and shape {classes.shape}; expected a non-empty list of names"
    if len(set(classes.tolist())) != len(classes):
        return "class names are not unique; expected each name once"
    if n == 0:
        return "the data set has no clips; expected at least one"
    if len(labels) != n or len(split) != n:
        return f"length mismatch: {n} clips, {len(labels)} labels, {len(split)} split entries; expected equal lengths"
    missing = [key for key in FARNEBACK_KEYS if key not in farneback]
    if missing:
        return f"farneback parameters lack {', '.join(missing)}; expected {', '.join(FARNEBACK_KEYS)}"
    for key in FARNEBACK_KEYS:
        value = farneback[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"farneback parameter {key} is {value!r}; expected a number"
    for name, array in (("frames", frames), ("flows", flows), ("true_flows", true_flows)):
        if not np.isfinite(array).all():
            return f"{name} contain NaN or infinite values; expected finite values"
    low, high = float(frames.min()), float(frames.max())
    if low < 0.0 or high > 1.0:
        return f"frame values span [{low:g}, {high:g}]; expected values in [0, 1]"
    if labels.min() < 0 or labels.max() >= len(classes):
        return (f"labels span {labels.min()}..{labels.max()}; expected 0..{len(classes) - 1} "
                f"(indices into {len(classes)} classes)")
    unknown = sorted(set(split.tolist()) - set(SPLITS))
    if unknown:
        return f"unknown split name(s) {', '.join(map(repr, unknown))}; expected {', '.join(SPLITS)}"
    return None


def save_video_dataset(path: str | Path, dataset: VideoDataset) -> None:
    """Write a clip data set ``.npz`` atomically: the file appears complete or not at all.

    Raises ValueError, before writing anything, for arrays that :func:`load_video_dataset`
    would refuse (a programming error of the caller, as in :func:`nnassure.data.save_image_dataset`).
    """
    frames, flows, true_flows = (np.asarray(a) for a in (dataset.frames, dataset.flows, dataset.true_flows))
    labels, split = np.asarray(dataset.labels), np.asarray(dataset.split)
    if isinstance(dataset.classes, str):
        raise ValueError(f"invalid classes={dataset.classes!r}: expected a sequence of class names, not one string")
    classes = np.asarray([str(c) for c in dataset.classes], dtype=str)
    problem = _problem(frames, flows, true_flows, labels, split, classes, dataset.flow_pool, dataset.farneback)
    if problem:
        raise ValueError(f"cannot save clip data set to {path}: {problem}")
    arrays = {
        "frames": frames.astype(np.float32),
        "flows": flows.astype(np.float32),
        "true_flows": true_flows.astype(np.float32),
        "labels": labels.astype(np.int64),
        "split": split.astype("<U5"),
        "classes": classes,
        "flow_pool": np.array(dataset.flow_pool, dtype=np.int64),
        "farneback": np.array(json.dumps({key: dataset.farneback[key] for key in FARNEBACK_KEYS})),
    }
    # Writing through a file handle: given a path, numpy would append ".npz" to the temporary name.
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def _scalars(arrays: Mapping[str, np.ndarray]) -> tuple[int, dict[str, Any]] | str:
    """``flow_pool`` and the Farneback parameters of a loaded archive, or what is wrong with them."""
    pool, params = arrays["flow_pool"], arrays["farneback"]
    if pool.shape != () or not np.issubdtype(pool.dtype, np.integer):
        return f"flow_pool has dtype {pool.dtype} and shape {pool.shape}; expected an integer scalar"
    if params.shape != () or params.dtype.kind != "U":
        return f"farneback has dtype {params.dtype} and shape {params.shape}; expected a JSON string scalar"
    try:
        parsed = json.loads(str(params))
    except json.JSONDecodeError as exc:
        return f"farneback is not JSON ({exc}); expected the object of Farneback parameters"
    if not isinstance(parsed, dict):
        return f"farneback is JSON {type(parsed).__name__}; expected an object of Farneback parameters"
    return int(pool), parsed


def load_video_dataset(path: str | Path) -> VideoDataset:
    """Read and check a clip data set ``.npz``; raises :class:`InputFileError` naming the file and the problem."""
    path = Path(path)
    arrays = read_npz(path, VIDEO_ARRAYS, "expected a clip data set written by save_video_dataset: run the "
                                          "video_data stage")
    scalars = _scalars(arrays)
    if isinstance(scalars, str):
        raise InputFileError(f"{path}: {scalars}")
    flow_pool, farneback = scalars
    problem = _problem(arrays["frames"], arrays["flows"], arrays["true_flows"], arrays["labels"], arrays["split"],
                       arrays["classes"], flow_pool, farneback)
    if problem:
        raise InputFileError(f"{path}: {problem}")
    frames = arrays["frames"].astype(np.float32, copy=False)
    flows = arrays["flows"].astype(np.float32, copy=False)
    true_flows = arrays["true_flows"].astype(np.float32, copy=False)
    labels = arrays["labels"].astype(np.int64, copy=False)
    split = arrays["split"]
    for array in (frames, flows, true_flows, labels, split):
        array.setflags(write=False)
    return VideoDataset(frames, flows, true_flows, labels, split, tuple(arrays["classes"].tolist()), farneback,
                        flow_pool)


def build_video_dataset(video_cfg: DictConfig, progress: bool = True) -> VideoDataset:
    """Render, extract the flow of and split the clips of a ``video`` config section (``VideoConfig``).

    Clip i shows ``motions[i % K]`` and draws its randomness from the i-th child of
    ``SeedSequence(seed)``, so the data set is a function of the config, and raising
    ``clips_per_class`` keeps the clips already there. The split is stratified by motion
    (:func:`nnassure.data.images.split_indices`). Raises :class:`ConfigError` for a motion that
    cannot stay inside the frame (``VideoConfig`` already refuses a ``flow_pool`` not dividing
    ``size``).
    """
    motions = [str(m) for m in video_cfg.motions]
    size, length, pool = int(video_cfg.size), int(video_cfg.frames), int(video_cfg.flow_pool)
    params = {key: video_cfg.farneback[key] for key in FARNEBACK_KEYS}
    n = len(motions) * int(video_cfg.clips_per_class)
    labels = np.arange(n, dtype=np.int64) % len(motions)
    seeds = np.random.SeedSequence(int(video_cfg.seed)).spawn(n)
    frames = np.empty((n, length, size, size), np.float32)
    grid = size // pool
    flows = np.empty((n, length - 1, 2, grid, grid), np.float32)
    true_flows = np.empty_like(flows)
    render = {"frames": length, "size": size, "speed": tuple(video_cfg.speed), "zoom": tuple(video_cfg.zoom),
              "noise": float(video_cfg.noise)}
    for i in tqdm(range(n), desc="clips", disable=not progress):
        try:
            clip = render_clip(motions[labels[i]], np.random.default_rng(seeds[i]), **render)
        except ValueError as exc:
            raise ConfigError(f"invalid video config: {exc}") from None
        frames[i] = clip.frames
        flows[i] = pool_flow(clip_flow(clip.frames, params), pool)
        true_flows[i] = pool_flow(clip.true_flow, pool)
    split = split_indices(labels, tuple(float(f) for f in video_cfg.split), int(video_cfg.seed))
    for array in (frames, flows, true_flows, labels, split):
        array.setflags(write=False)
    return VideoDataset(frames, flows, true_flows, labels, split, tuple(motions), params, pool)
