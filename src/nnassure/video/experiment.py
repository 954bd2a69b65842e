"""One analysed test clip: every bound of its maximum safe radius (MSR) w.r.t. its optical flow.

What one ``video_bounds`` job computes (Wu & Kwiatkowska, Secs. 5-6), all on the float64 network
and each re-checked in float64 before it counts:

* the upper bound: the gradient search of Sec. 5.1 (Eq. 8) on the whole flow sequence, and the
  check whether its adversarial flow survives in pixel space (the frames warped by the flow change,
  Farneback recomputed, the clip classified again; the paper does not do this);
* the lower bound by admissible A* (Sec. 5.2, Alg. 1, Thm. 1) over the tau-grid of Player II's
  dimensions (the most salient dimensions of every flow), with the gradient search restricted to
  the same subspace as its upper bound, so that the two bound the same MSR;
* the CROWN-certified lower bound (not in the paper): the whole flow ball in each configured norm,
  and A*'s subspace in A*'s norm, so that the two lower bounds are compared on the same claim;
* Fig. 10: both lower bounds with only k manipulated flows (Player I's most influential k);
* Fig. 8 (Sec. 6.3): brightness changes of one frame, the resulting flow change and what the
  certified ball proves about them.

A bound whose computation raised (auto_LiRPA 0.3 has failing corner cases) is recorded as an
error with its message and no value, never as a radius.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from nnassure.errors import ConfigError
from nnassure.video._checks import classify64, lp_norm
from nnassure.video.astar import AStarResult, astar_lower, salient_dims, salient_flows
from nnassure.video.brightness import brightness_check, clip_flows
from nnassure.video.certified import CertifiedResult, FlowCertifier, certified_radius
from nnassure.video.clips import VideoDataset
from nnassure.video.flow import brighten, clip_flow, pool_flow, warp_frames
from nnassure.video.lipschitz import margin_lipschitz
from nnassure.video.model import FlowLSTM, check_flow_shape
from nnassure.video.upper import UpperResult, gradient_search

LIRPA_NORMS = ("l2", "linf")  # the norms the bound engine certifies
TRACE_COLUMNS = ("clip", "bound", "flows", "norm", "iteration", "seconds", "value")


@dataclass(frozen=True)
class BoundSettings:
    """The ``video`` keys one clip's analysis reads."""

    norm: str
    upper_iterations: int
    upper_gradient: str
    upper_step: float
    astar_iterations: int
    astar_seconds: float
    astar_batch: int
    astar_dims_per_flow: int
    tau_fraction: float
    lirpa_method: str
    lirpa_norms: tuple[str, ...]
    lirpa_tolerance: float
    manipulated_flows: tuple[int, ...]
    brightness: tuple[float, ...]
    margin: float

    @classmethod
    def from_config(cls, video: Any) -> BoundSettings:
        return cls(norm=video.norm, upper_iterations=video.upper_iterations, upper_gradient=video.upper_gradient,
                   upper_step=video.upper_step, astar_iterations=video.astar_iterations,
                   astar_seconds=video.astar_seconds, astar_batch=video.astar_batch,
                   astar_dims_per_flow=video.astar_dims_per_flow, tau_fraction=video.tau_fraction,
                   lirpa_method=video.lirpa_method, lirpa_norms=tuple(video.lirpa_norms),
                   lirpa_tolerance=video.lirpa_tolerance, manipulated_flows=tuple(video.manipulated_flows),
                   brightness=tuple(video.brightness), margin=video.margin)


def analysed_clips(model: FlowLSTM, data: VideoDataset, seed: int, what: str = "the video data set") -> np.ndarray:
    """Dataset positions of the test clips the float64 network classifies correctly, in a seeded
    order: clip ``i`` of the pipeline is entry ``i``, whatever ``video.clips`` is, so raising the
    count adds jobs without changing the clips already analysed."""
    ids = data.indices("test")
    flows, labels = data.flows[ids], data.labels[ids]
    check_flow_shape(model, flows.shape, what)
    correct = ids[classify64(model, flows).argmax(axis=1) == labels]
    return correct[np.random.default_rng(seed).permutation(len(correct))]


def select_clip(model: FlowLSTM, data: VideoDataset, clip: int, seed: int, what: str = "the video data set") -> int:
    """The dataset position of analysed clip ``clip`` (see :func:`analysed_clips`); ``what`` names
    the data and model files in errors."""
    order = analysed_clips(model, data, seed, what)
    if not 0 <= clip < len(order):
        raise ConfigError(f"video.clip={clip}: only {len(order)} test clips are classified correctly; "
                          f"expected video.clip in 0..{len(order) - 1} (and video.clips <= {len(order)})")
    return int(order[clip])


def _attempt(compute: Callable[[], Any]) -> tuple[Any, str | None]:
    """``compute()`` and no error, or None and the error's type and message (the stage records a
    bound that failed as an error, never as a value)."""
    try:
        return compute(), None
    except (RuntimeError, AssertionError, ValueError, IndexError, KeyError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def _upper_trace(result: UpperResult, clip: int, bound: str, flows: int) -> list[dict[str, Any]]:
    return [{"clip": clip, "bound": bound, "flows": flows, "norm": result.norm, "iteration": p.iteration,
             "seconds": p.seconds, "value": p.distance if np.isfinite(p.distance) else np.nan}
            for p in result.trace]


def _astar_trace(result: AStarResult, clip: int, bound: str, flows: int) -> list[dict[str, Any]]:
    return [{"clip": clip, "bound": bound, "flows": flows, "norm": result.norm, "iteration": p.iteration,
             "seconds": p.seconds, "value": p.lower} for p in result.trace]


def _certified_trace(result: CertifiedResult, clip: int, bound: str, flows: int, norm: str) -> list[dict[str, Any]]:
    # the bisection's (iteration, seconds, lower end, upper end): the lower end is certified
    return [{"clip": clip, "bound": bound, "flows": flows, "norm": norm, "iteration": iteration,
             "seconds": seconds, "value": lower} for iteration, seconds, lower, _ in result.trace]


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def pixel_space_check(model: FlowLSTM, frames: np.ndarray, flow: np.ndarray, adversarial: np.ndarray, label: int,
                      farneback: dict[str, Any], pool: int, norm: str, classes: Sequence[str]) -> dict[str, Any]:
    """Whether an adversarial flow survives as a video: the frames warped by the flow change
    (``warp_frames``), Farneback and pooling recomputed, the clip classified in float64."""
    warped = warp_frames(frames, adversarial - flow, pool)
    realised = pool_flow(clip_flow(warped, farneback), pool).astype(np.float64)
    predicted = int(classify64(model, realised[None]).argmax(axis=1)[0])
    return {"survives": predicted != label, "predicted_class": classes[predicted],
            "flow_distance": float(lp_norm((realised - flow)[None], norm)[0]),
            "pixel_distance": float(np.linalg.norm((warped - frames).astype(np.float64).ravel()))}


def brightness_rows(model: FlowLSTM, frames: np.ndarray, label: int, farneback: dict[str, Any], pool: int,
                    deltas: Sequence[float], l2_radius: float | None, classes: Sequence[str]
                    ) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """Per brightness change, the frame whose brightening moves the flow most (Sec. 6.3 brightens
    one frame; every frame is tried), with what the certified L2 ball proves about it; and that
    frame and the clip's flow after the change, per delta. Without a certified radius (its bound
    errored) "inside" is unknown (None), not false."""
    result = brightness_check(frames, farneback, pool, model, label, l2_radius or 0.0, deltas)
    rows, shown_frames, shown_flows = [], [], []
    for delta in deltas:
        cases = [c for c in result.cases if c.delta == float(delta)]
        worst = max(cases, key=lambda c: c.flow_distance)
        brightened = brighten(frames, float(delta), worst.frame_index)
        rows.append({"delta": float(delta), "frame": worst.frame_index, "pixel_distance": worst.pixel_distance,
                     "flow_change": worst.flow_distance, "flow_change_relative": worst.relative_flow_distance,
                     "predicted_class": classes[worst.predicted],
                     "inside_certified": bool(worst.inside) if l2_radius is not None else None,
                     "lower_bound": worst.lower_bound if l2_radius is not None and worst.inside else None,
                     "frames_kept": sum(c.predicted == label for c in cases), "frames_tried": len(cases)})
        shown_frames.append(brightened[worst.frame_index])
        shown_flows.append(clip_flows(brightened, farneback, pool))
    return rows, np.stack(shown_frames), np.stack(shown_flows)


def analyse_clip(model: FlowLSTM, data: VideoDataset, position: int, clip: int, settings: BoundSettings,
                 progress: bool = True) -> tuple[dict[str, Any], pd.DataFrame, dict[str, np.ndarray]]:
    """Every bound of one clip: the summary (the ``video_bounds`` JSON), the per-iteration traces
    (columns :data:`TRACE_COLUMNS`) and the arrays the report draws (frames, flows, brightness)."""
    s = settings
    classes = list(data.classes)
    frames = np.asarray(data.frames[position], np.float32)
    flow = np.asarray(data.flows[position], np.float64)
    label = int(data.labels[position])
    flows_count = flow.shape[0]
    farneback = dict(data.farneback)
    steps = tqdm(total=5 + 2 * len(s.manipulated_flows), desc=f"video clip {clip}", disable=not progress)
    traces: list[dict[str, Any]] = []
    summary: dict[str, Any] = {"clip": clip, "test_index": position, "true_class": classes[label],
                               "predicted_class": classes[int(classify64(model, flow[None]).argmax(axis=1)[0])],
                               "classes": classes, "norm": s.norm, "flows": flows_count,
                               "flow_norm": float(lp_norm(flow[None], s.norm)[0])}

    # Upper bound on the whole flow sequence (Sec. 5.1), and whether it survives as a video.
    upper = gradient_search(model, flow, label, s.norm, s.upper_iterations, s.upper_step, s.upper_gradient,
                            None, s.margin)
    traces += _upper_trace(upper, clip, "upper", flows_count)
    pixel = {"survives": None, "predicted_class": None, "flow_distance": None, "pixel_distance": None}
    if upper.adversarial is not None:
        pixel = pixel_space_check(model, frames, flow, upper.adversarial, label, farneback, data.flow_pool, s.norm,
                                  classes)
    adversarial_class = None if upper.adversarial_class is None else classes[upper.adversarial_class]
    summary["upper"] = {"distance": _finite(upper.distance), "adversarial_class": adversarial_class,
                        "iterations": s.upper_iterations, "seconds": upper.seconds, "gradient": upper.gradient,
                        "pixel": pixel, "error": None}
    steps.update()

    # A* over Player II's subspace, and the gradient search in that subspace (the same MSR).
    dims = salient_dims(model, flow, label, None, s.astar_dims_per_flow)
    # A*'s bound is a claim about perturbations within the subspace, so the Lipschitz constant of
    # the margins over that subspace suffices (half the whole-sequence one on the quick model).
    lipschitz = margin_lipschitz(model, s.norm, None, dims)
    astar = astar_lower(model, flow, label, s.norm, lipschitz, dims, s.astar_iterations, s.astar_seconds,
                        s.astar_batch, s.tau_fraction, s.margin)
    traces += _astar_trace(astar, clip, "astar", flows_count)
    sub_upper = gradient_search(model, flow, label, s.norm, s.upper_iterations, s.upper_step, s.upper_gradient,
                                dims, s.margin)
    traces += _upper_trace(sub_upper, clip, "astar_subspace_upper", flows_count)
    summary["astar"] = {"lower": astar.lower, "root_radius": astar.root_radius, "tau": astar.tau,
                        "grid_width": astar.grid_width, "lipschitz": float(np.max(np.delete(astar.lipschitz, label))),
                        "dims": int(dims.sum()), "iterations": astar.iterations, "seconds": astar.seconds,
                        "stop": astar.stop, "fmsr_upper": _finite(astar.fmsr),
                        "subspace_upper": _finite(sub_upper.distance), "error": None}
    steps.update()

    # CROWN over the whole flow ball per norm, then over A*'s subspace in A*'s norm.
    certifier = FlowCertifier(model, flow.shape)
    lirpa: dict[str, Any] = {}
    whole: dict[str, CertifiedResult | None] = {}
    for norm in s.lirpa_norms:
        result, error = _attempt(lambda norm=norm: certified_radius(
            certifier, flow, label, norm, None, s.lirpa_method, s.lirpa_tolerance,
            upper.distance if norm == s.norm and upper.adversarial is not None else None))
        lirpa[norm] = _certified_summary(result, error)
        whole[norm] = result
        if result is not None:
            traces += _certified_trace(result, clip, f"lirpa_{norm}", flows_count, norm)
        steps.update()
    radius_of = {norm: None if result is None else result.radius for norm, result in whole.items()}

    def warm_start(norm: str) -> float | None:
        # A ball on fewer dimensions at the whole ball's certified radius lies inside the whole
        # ball, so it is certified too: the bisection starts its search for an upper end there.
        radius = radius_of.get(norm)
        return radius if radius else None

    if s.norm in LIRPA_NORMS:
        result, error = _attempt(lambda: certified_radius(certifier, flow, label, s.norm, dims, s.lirpa_method,
                                                          s.lirpa_tolerance, _finite(sub_upper.distance),
                                                          start=warm_start(s.norm)))
        lirpa["subspace"] = _certified_summary(result, error) | {"norm": s.norm}
    else:
        lirpa["subspace"] = {"radius": None, "seconds": None, "bound_calls": None, "norm": s.norm,
                             "error": f"the bound engine certifies {', '.join(LIRPA_NORMS)} balls, not {s.norm}"}
    summary["lirpa"] = lirpa
    steps.update()

    # Fig. 10: k manipulated flows (Player I's k most influential), both lower bounds.
    certified_norm = s.norm if s.norm in LIRPA_NORMS else "l2"
    manipulated = []
    for k in s.manipulated_flows:
        chosen = salient_flows(model, flow, label, s.norm, k)
        k_dims = salient_dims(model, flow, label, chosen, s.astar_dims_per_flow)
        k_astar = astar_lower(model, flow, label, s.norm, margin_lipschitz(model, s.norm, chosen, k_dims), k_dims,
                              s.astar_iterations, s.astar_seconds, s.astar_batch, s.tau_fraction, s.margin)
        traces += _astar_trace(k_astar, clip, "astar_k", k)
        steps.update()
        mask = np.broadcast_to(chosen[:, None, None, None], flow.shape)
        if k == flows_count and whole.get(certified_norm) is not None:
            k_lirpa, error = whole[certified_norm], None  # every flow manipulated: the whole ball's radius
        else:
            k_lirpa, error = _attempt(lambda mask=mask: certified_radius(
                certifier, flow, label, certified_norm, mask, s.lirpa_method, s.lirpa_tolerance, None,
                start=warm_start(certified_norm)))
        if k_lirpa is not None:
            traces += _certified_trace(k_lirpa, clip, "lirpa_k", k, certified_norm)
        manipulated.append({"flows": k, "chosen": [int(t) for t in np.flatnonzero(chosen)],
                            "astar_lower": k_astar.lower, "astar_seconds": k_astar.seconds,
                            "astar_iterations": k_astar.iterations, "astar_stop": k_astar.stop,
                            "lirpa_radius": None if k_lirpa is None else k_lirpa.radius,
                            "lirpa_seconds": None if k_lirpa is None else k_lirpa.seconds,
                            "lirpa_norm": certified_norm, "error": error})
        steps.update()
    summary["manipulated"] = manipulated

    # Fig. 8: brightness of one frame; what the certified L2 ball says about the changed flows.
    rows, brightened_frames, brightened_flows = brightness_rows(model, frames, label, farneback, data.flow_pool,
                                                                 s.brightness, radius_of.get("l2"), classes)
    summary["brightness"] = rows
    steps.update()
    steps.close()

    # The flow and the adversarial flow in float64, as checked: "every upper bound reproduces its
    # class change from the saved flow" must hold for a margin of video.margin, below float32's
    # resolution.
    arrays = {"frames": frames, "flow": flow,
              "full_flow": clip_flow(frames, farneback).astype(np.float32),
              "adversarial": upper.adversarial if upper.adversarial is not None else np.zeros_like(flow),
              "has_adversarial": np.array(upper.adversarial is not None),
              "brightness_deltas": np.asarray(s.brightness, np.float64),
              "brightened_frame": brightened_frames.astype(np.float32),
              "brightened_flow": brightened_flows.astype(np.float32)}
    trace = pd.DataFrame(traces, columns=list(TRACE_COLUMNS))
    return _plain(summary), trace, arrays


def _plain(value: Any) -> Any:
    """``value`` with NumPy scalars made Python numbers and NaN/inf made None, for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return float(value) if np.isfinite(value) else None
    return value


def _certified_summary(result: CertifiedResult | None, error: str | None) -> dict[str, Any]:
    if result is None:
        return {"radius": None, "seconds": None, "bound_calls": None, "error": error}
    return {"radius": float(result.radius), "seconds": float(result.seconds), "bound_calls": int(result.bound_calls),
            "error": None}


def timed(compute: Callable[[], Any]) -> tuple[Any, float]:
    """``compute()`` and its wall seconds (the bench's helper)."""
    started = time.perf_counter()
    return compute(), time.perf_counter() - started
