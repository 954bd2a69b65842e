"""Frame-level brightness changes against the certified flow ball (Wu & Kwiatkowska, Sec. 6.3, Fig. 8).

The paper brightens every pixel of one frame by tau and reads the MSR lower bound as a bound on
safe brightness changes (Fig. 8b), observing that the Farneback flow barely moves (Fig. 8a). Here
the certified L2 radius r of the clip's flow P(v) (nnassure.video.certified, a CROWN proof over
the ball ``{p : ||p - P(v)||_2 <= r}``) is compared with the flow of each brightened clip:

* ``flow_distance`` = ||P(v_delta) - P(v)||_2 (Farneback, pooled as the network reads it), its
  size relative to ||P(v)||_2, the pixel-space distance ||v_delta - v||_2 of the change (clipped
  to [0, 1], nnassure.video.flow.brightness_distance), and the float64 network's class at
  P(v_delta);
* ``inside``: P(v_delta) lies in the certified ball. Then the brightened clip is PROVEN to keep
  the class (its flow is a point of the proven set), and by the triangle inequality the ball of
  radius ``lower_bound = r - ||P(v_delta) - P(v)||_2`` around P(v_delta) lies inside the certified
  ball, so it is a proven lower bound of the MSR w.r.t. flow of the brightened clip too.

What is and is not claimed. The proof covers a set of FLOWS (the ball), for the float64 network.
The brightness values are a CHECK AT THE LISTED deltas (and frames): the map from a brightness
change to the Farneback flow is not bounded anywhere (auto_LiRPA has no Farneback), so nothing is
claimed for a delta between two listed ones, and a delta whose flow leaves the ball is not
reported unsafe: only ``predicted`` (one float64 forward pass) is said about it. The pixel
distance is reported for comparison with the paper's d'(L^2, tau w h); unlike the paper's reading
of Fig. 8b, no bound in pixel space follows from a bound in flow space.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from nnassure.video.flow import brighten, brightness_distance, clip_flow, pool_flow
from nnassure.video.model import FlowLSTM

# ||.||_2 computed in float64 is within a few units of roundoff of the real norm; a point is only
# called inside when it is inside with that margin, so "inside" never rests on a rounding.
NORM_ROUNDING = 1e-12


@dataclass(frozen=True)
class BrightnessCase:
    """One brightness change ``delta`` of frame ``frame_index`` (0-based)."""

    frame_index: int
    delta: float
    flow_distance: float  # ||P(v_delta) - P(v)||_2
    relative_flow_distance: float  # flow_distance / ||P(v)||_2
    pixel_distance: float  # ||v_delta - v||_2 (clipped pixels)
    predicted: int  # the float64 network's class at P(v_delta)
    inside: bool  # P(v_delta) in the certified ball: the class is proven kept
    lower_bound: float  # r - flow_distance if inside (a proven flow radius around P(v_delta)), else 0


@dataclass
class BrightnessResult:
    """All cases, and per delta the worst frame (largest flow distance, hence smallest bound)."""

    radius: float  # the certified L2 radius r at P(v)
    label: int
    flow_norm: float  # ||P(v)||_2
    cases: list[BrightnessCase] = field(default_factory=list)

    def worst(self) -> dict[float, BrightnessCase]:
        out: dict[float, BrightnessCase] = {}
        for case in self.cases:
            if case.delta not in out or case.flow_distance > out[case.delta].flow_distance:
                out[case.delta] = case
        return out


def clip_flows(frames: np.ndarray, params: Mapping[str, float | int], flow_pool: int) -> np.ndarray:
    """P(v) as the network reads it: the pooled Farneback flows of the clip, (L - 1, 2, g, g)."""
    return pool_flow(clip_flow(frames, params), flow_pool)


def brightness_check(
    frames: np.ndarray,
    params: Mapping[str, float | int],
    flow_pool: int,
    model: FlowLSTM,
    label: int,
    radius: float,
    deltas: Sequence[float],
    frame_indices: Sequence[int] | None = None,
) -> BrightnessResult:
    """The cases of the module docstring for every delta of ``deltas`` and every frame of
    ``frame_indices`` (default: every frame), against the certified L2 ``radius`` at P(v)."""
    if not (radius >= 0 and math.isfinite(radius)):
        raise ValueError(f"invalid radius {radius!r}: expected a finite number >= 0")
    frames = np.asarray(frames, np.float32)
    base = clip_flows(frames, params, flow_pool).astype(np.float64)
    network = copy.deepcopy(model).double().eval()
    indices = list(range(len(frames))) if frame_indices is None else [int(i) for i in frame_indices]
    result = BrightnessResult(radius=float(radius), label=int(label), flow_norm=float(np.linalg.norm(base.ravel())))
    for index in indices:
        brightened = [clip_flows(brighten(frames, float(d), index), params, flow_pool).astype(np.float64)
                      for d in deltas]
        with torch.no_grad():
            predicted = network(torch.as_tensor(np.stack(brightened))).argmax(1).numpy()
        for delta, flow, pred in zip(deltas, brightened, predicted, strict=True):
            distance = float(np.linalg.norm((flow - base).ravel()))
            inside = distance * (1 + NORM_ROUNDING) <= radius
            result.cases.append(BrightnessCase(
                frame_index=index, delta=float(delta), flow_distance=distance,
                relative_flow_distance=distance / result.flow_norm if result.flow_norm > 0 else math.inf,
                pixel_distance=brightness_distance(frames, float(delta), index), predicted=int(pred),
                inside=bool(inside),
                lower_bound=max(radius - distance * (1 + NORM_ROUNDING), 0.0) if inside else 0.0))
    return result
