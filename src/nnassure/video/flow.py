"""Optical flow of the clips and the pixel-space realisations of flow and brightness changes.

Wu & Kwiatkowska perturb a video through its optical flow: the flow extraction function f maps
each pair of adjacent frames (F_t, F_{t+1}) to a flow p_t, and P(v) = (p_1, ..., p_{l-1}) is the
sequence the robustness is measured on (Def. 4). Like the paper (Sec. 6.1) we extract dense flow
with Gunnar Farneback's algorithm. Arrays follow OpenCV's convention: ``flow[y, x] = (dx, dy)``
such that ``frame_{t+1}(x + dx, y + dy) ~ frame_t(x, y)``; sequences are stored component first,
``(L - 1, 2, H, W)``, the layout the network reads (:mod:`nnassure.video.model`).

The network reads the flow average-pooled to a coarse grid (``flow_pool``), so a flow
manipulation (Def. 5) is a change of the pooled cells. :func:`warp_frames` imposes such a change
on the original frames (Sec. 3.2, below Def. 5: "impose the manipulated flow on the original
frames"), and :func:`brighten` is the frame-level brightness change of Sec. 6.3.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

FARNEBACK_KEYS: tuple[str, ...] = ("pyr_scale", "levels", "winsize", "iterations", "poly_n", "poly_sigma")


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    return np.round(np.clip(frame, 0.0, 1.0) * 255.0).astype(np.uint8)


def farneback(frame_a: np.ndarray, frame_b: np.ndarray, params: Mapping[str, float | int]) -> np.ndarray:
    """Dense Farneback flow from ``frame_a`` to ``frame_b`` (grey ``(H, W)`` in [0, 1]), shape ``(H, W, 2)`` float32.

    ``params`` is the ``video.farneback`` config section (:data:`FARNEBACK_KEYS`), flags 0 (no
    initial flow, box rather than Gaussian window). The common ``(0.5, 3, 15, 3, 5, 1.2)`` is
    tuned for frames of hundreds of pixels: at 32 x 32 a 15-pixel window averages half the frame
    (the sprite's flow bleeds far into the static background). A 7-pixel window, about one
    sprite width, keeps the flow local. ``levels`` has no effect on frames this small: OpenCV
    builds no pyramid level below about 32 pixels (measured with OpenCV 4.14: levels 1, 2, 3 and
    5 give identical flow at 32 to 64 pixels), so the flow is estimated at full resolution only,
    which suffices for the clips' 1-2 pixels of motion per frame. tests/test_video_data.py
    measures the error against the renderer's true motion.

    The frames are quantised to uint8 as OpenCV's implementation and video files expect; the
    quantisation step (1/255) is well below the clips' pixel noise.
    """
    missing = [key for key in FARNEBACK_KEYS if key not in params]
    if missing:
        raise ValueError(f"invalid Farneback params: missing {', '.join(missing)}; expected "
                         f"{', '.join(FARNEBACK_KEYS)}")
    a, b = np.asarray(frame_a), np.asarray(frame_b)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"invalid frames of shapes {a.shape} and {b.shape}: expected two grey frames (H, W) alike")
    flow = cv2.calcOpticalFlowFarneback(
        _to_uint8(a), _to_uint8(b), None, float(params["pyr_scale"]), int(params["levels"]),
        int(params["winsize"]), int(params["iterations"]), int(params["poly_n"]), float(params["poly_sigma"]), 0,
    )
    return flow.astype(np.float32, copy=False)


def clip_flow(frames: np.ndarray, params: Mapping[str, float | int]) -> np.ndarray:
    """P(v) of Def. 4: the Farneback flow of each adjacent pair of ``frames`` ``(L, H, W)``, as ``(L - 1, 2, H, W)``."""
    frames = np.asarray(frames)
    if frames.ndim != 3 or len(frames) < 2:
        raise ValueError(f"invalid frames of shape {frames.shape}: expected (L, H, W) with L >= 2")
    flows = [farneback(frames[t], frames[t + 1], params) for t in range(len(frames) - 1)]
    return np.stack(flows).transpose(0, 3, 1, 2).astype(np.float32, copy=False)


def _check_factor(factor: int) -> int:
    if isinstance(factor, bool) or not isinstance(factor, int | np.integer) or factor < 1:
        raise ValueError(f"invalid factor={factor!r}: expected an integer >= 1")
    return int(factor)


def pool_flow(flow: np.ndarray, factor: int) -> np.ndarray:
    """Average pooling of ``flow`` ``(..., 2, H, W)`` over ``factor`` x ``factor`` cells to ``(..., 2, H/f, W/f)``.

    Each cell holds the mean displacement of its pixels, so the pooled flow of a translation is
    the translation on the sprite's cells; ``factor`` 1 returns a float32 copy. The pooled grid
    is what the network reads and what Def. 5's manipulations act on: at 32 x 32 and factor 4,
    7 flows x 2 x 8 x 8 = 896 dimensions instead of 14,336.
    """
    factor = _check_factor(factor)
    flow = np.asarray(flow, dtype=np.float32)
    if flow.ndim < 3 or flow.shape[-3] != 2:
        raise ValueError(f"invalid flow of shape {flow.shape}: expected (..., 2, H, W)")
    height, width = flow.shape[-2:]
    if height % factor or width % factor:
        raise ValueError(f"invalid factor={factor} for flow of {height} x {width} pixels: expected a divisor of both")
    cells = flow.reshape(*flow.shape[:-2], height // factor, factor, width // factor, factor)
    return cells.mean(axis=(-3, -1), dtype=np.float64).astype(np.float32)


def upsample_flow(pooled: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upsampling of a pooled flow ``(..., 2, h, w)`` to pixels ``(..., 2, h*f, w*f)``.

    The inverse layout of :func:`pool_flow`: every pixel of a cell gets the cell's value, so
    pooling the result gives ``pooled`` back exactly. It spreads a change of the pooled flow over
    the pixels it stands for, which is what :func:`warp_frames` moves.
    """
    factor = _check_factor(factor)
    pooled = np.asarray(pooled, dtype=np.float32)
    if pooled.ndim < 3 or pooled.shape[-3] != 2:
        raise ValueError(f"invalid pooled flow of shape {pooled.shape}: expected (..., 2, h, w)")
    return np.repeat(np.repeat(pooled, factor, axis=-2), factor, axis=-1)


def warp_frames(frames: np.ndarray, flow_change: np.ndarray, factor: int) -> np.ndarray:
    """Frames v' whose flow is about P(v) + delta, for a change ``flow_change`` (L - 1, 2, h, w) of the pooled flow.

    Def. 5 manipulates the flow; the paper then imposes the manipulated flow on the original
    frames to obtain v' with P(v') = M(P(v)) (Sec. 3.2). Here F'_1 = F_1 and
    F'_{t+1}(x) = F_{t+1}(x - D_t(x)), with D_t the cumulative sum over s <= t of the upsampled
    changes: a point at x in F'_t sits at x - D_{t-1} in F_t, moves by p_t to x - D_{t-1} + p_t in
    F_{t+1} and is shown in F'_{t+1} at about x + p_t + delta_t, so the flow from F'_t to F'_{t+1}
    is about p_t + delta_t (exactly where D is locally constant). Bilinear sampling
    (``cv2.remap``) with replicated borders keeps the frames in [0, 1] and free of black edges.
    """
    factor = _check_factor(factor)
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 3 or len(frames) < 2:
        raise ValueError(f"invalid frames of shape {frames.shape}: expected (L, H, W) with L >= 2")
    length, height, width = frames.shape
    expected = (length - 1, 2, height // factor, width // factor)
    change = np.asarray(flow_change, dtype=np.float32)
    if height % factor or width % factor or change.shape != expected:
        raise ValueError(f"invalid flow change of shape {change.shape} for frames {frames.shape} and factor "
                         f"{factor}: expected {expected}")
    displacement = np.cumsum(upsample_flow(change, factor), axis=0, dtype=np.float64).astype(np.float32)
    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
    warped = [frames[0].copy()]
    for t in range(length - 1):
        map_x = grid_x - displacement[t, 0]
        map_y = grid_y - displacement[t, 1]
        warped.append(cv2.remap(frames[t + 1], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    return np.stack(warped)


def brighten(frames: np.ndarray, delta: float, frame_index: int) -> np.ndarray:
    """The frame-level brightness change of Sec. 6.3: ``delta`` added to every pixel of frame ``frame_index`` (0-based).

    The paper brightens each pixel of the same frame by the atomic manipulation tau; the
    frames stay in [0, 1] (Sec. 3.2: perturbed inputs are restricted to the input bounds), so
    pixels are clipped. Returns a new float32 array; the other frames are unchanged.
    """
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 3:
        raise ValueError(f"invalid frames of shape {frames.shape}: expected (L, H, W)")
    if isinstance(frame_index, bool) or not isinstance(frame_index, int | np.integer) \
            or not 0 <= frame_index < len(frames):
        raise ValueError(f"invalid frame_index={frame_index!r}: expected an integer in 0..{len(frames) - 1}")
    out = frames.copy()
    out[frame_index] = np.clip(out[frame_index] + np.float32(delta), 0.0, 1.0)
    return out


def brightness_distance(frames: np.ndarray, delta: float, frame_index: int) -> float:
    """Pixel L2 distance ||v' - v||_2 of :func:`brighten`'s change.

    Without clipping it is |delta| * sqrt(w * h), the paper's d'(L^2, tau * w * h) (Sec. 6.3);
    clipping at 0 and 1 makes it smaller, and this is the distance of the frames really produced.
    """
    change = brighten(frames, delta, frame_index) - np.asarray(frames, dtype=np.float32)
    return float(np.linalg.norm(change.astype(np.float64).ravel()))


def endpoint_error(flows: np.ndarray, true_flows: np.ndarray, where: np.ndarray | None = None) -> float:
    """Mean endpoint error ||p - p_true||_2 over the cells of flows ``(..., 2, H, W)``, in pixels per frame.

    ``where`` (the flows' shape without the component axis) restricts the mean to some cells,
    e.g. those the sprite moves in; NaN if it selects none.
    """
    flows, true_flows = np.asarray(flows), np.asarray(true_flows)
    if flows.shape != true_flows.shape or flows.ndim < 3 or flows.shape[-3] != 2:
        raise ValueError(f"invalid flows of shapes {flows.shape} and {true_flows.shape}: expected equal (..., 2, H, W)")
    difference = flows.astype(np.float64) - true_flows.astype(np.float64)
    errors = np.sqrt((difference**2).sum(axis=-3))
    if where is None:
        return float(errors.mean())
    where = np.asarray(where, dtype=bool)
    if where.shape != errors.shape:
        raise ValueError(f"invalid where of shape {where.shape}: expected {errors.shape}")
    return float(errors[where].mean()) if where.any() else float("nan")
