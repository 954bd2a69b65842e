"""Deciding a VNN-LIB property on a model: falsify, bound, then solve exactly.

Each (input box, output polytope) case of a property (:mod:`nnassure.assess.vnnlib`) is closed
in turn, cheapest first:

1. **Falsification**: the box's centre, ``samples`` uniform points and PGD from ``starts``
   points minimising the polytope's violation max_i (A_i y - b_i) (sign gradient steps, projected
   on the box). A candidate counts only once the ONNX file itself, run by onnxruntime in float32
   (the model's own runtime for a native model), maps the float32 input, inside the box, into the
   polytope with no tolerance: a ``violated`` always carries that checked counterexample.
2. **Bounds**: IBP, CROWN and alpha-CROWN (ReLU networks only, see
   :class:`nnassure.certify.bounds.BoundEngine`) lower bounds of every row A_i y - b_i over the
   box, in float64 and widened by the engine's rounding bound. One row with a lower bound > 0
   proves no point of the box reaches the polytope: the case is closed.
3. **MILP** (ReLU networks of Linear/Conv layers): the exact big-M encoding of the ensemble
   stages (:func:`nnassure.ensemble.encoding.encode_network`, Tjeng et al.'s form) over the box,
   pre-activation bounds from interval arithmetic intersected with CROWN on every prefix of the
   network (LiRPA-tightened big-M), and the polytope's rows relaxed by ``MILP_SLACK`` (1 + |b_i|)
   towards the unsafe side. Infeasible closes the case; that relaxation and the encoding's widened
   bounds are what stand between a solver's feasibility tolerance and a wrong ``holds``. A
   feasible point goes through the onnxruntime check of step 1 (and PGD from it, if it misses by
   rounding); a solver time limit is a ``timeout``, never a ``holds``.

Verdicts (VNN-COMP's words in brackets): ``holds`` [unsat] when every case is closed, ``violated``
[sat] with the counterexample, ``timeout`` when the instance's time ran out (or the MILP hit it)
with a case open, ``unknown`` when every method ran and a case is still open (a non-ReLU network
after its bounds, say), ``error`` when a method failed, with the message. ``decided_by`` names the
method that closed the last case (or found the counterexample).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from nnassure.assess.model import AssessedModel, onnxruntime_logits
from nnassure.assess.vnnlib import Polytope, Property, Region

RESULTS = ("holds", "violated", "unknown", "timeout", "error")
VNNCOMP_RESULTS = {"holds": "unsat", "violated": "sat", "unknown": "unknown", "timeout": "timeout", "error": "error"}
BOUND_METHODS = ("ibp", "crown", "alpha-crown")
METHODS = ("falsify", *BOUND_METHODS, "milp")
MILP_SLACK = 1e-6


@dataclass
class DecideSettings:
    """What :func:`decide` may use; ``time_limit`` is per instance (seconds)."""

    methods: Sequence[str] = METHODS
    time_limit: float = 60.0
    samples: int = 256
    starts: int = 4
    pgd_steps: int = 50
    backend: str = "highs"
    threads: int = 1
    seed: int = 0

    @classmethod
    def from_config(cls, v: Any, threads: int) -> DecideSettings:
        """The settings of a composed ``assess.vnnlib`` section ``v``, with ``threads`` solver threads."""
        return cls(methods=tuple(v.methods), time_limit=float(v.time_limit), samples=int(v.samples),
                   starts=int(v.starts), pgd_steps=int(v.pgd_steps), backend=str(v.backend), threads=int(threads),
                   seed=int(v.seed))


@dataclass
class Decision:
    """The verdict of one property on one model."""

    result: str
    decided_by: str
    seconds: float
    cases: int
    closed: dict[str, int] = field(default_factory=dict)  # method -> cases it closed
    counterexample: np.ndarray | None = None  # flat input, float32
    output: np.ndarray | None = None  # onnxruntime's outputs at the counterexample
    note: str = ""


def _runtime_outputs(model: AssessedModel, x_flat: np.ndarray) -> np.ndarray:
    x = np.asarray(x_flat, np.float32).reshape(len(x_flat), *model.input_shape)
    if model.onnx_path is not None:
        return onnxruntime_logits(model, x).astype(np.float64)
    return model.logits(x).astype(np.float64)


def _into_box(x: np.ndarray, region: Region) -> np.ndarray:
    """``x`` as float32 inside the box (a float32 rounding below the lower bound is moved up)."""
    x32 = np.clip(np.asarray(x, np.float64), region.lower, region.upper).astype(np.float32)
    low = x32 < region.lower
    x32[low] = np.nextafter(x32[low], np.float32(np.inf))
    high = x32 > region.upper
    x32[high] = np.nextafter(x32[high], np.float32(-np.inf))
    return x32


def checked_counterexample(model: AssessedModel, region: Region, polytope: Polytope,
                           candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The first candidate (flat inputs) that, as float32 inside the box, the runtime maps into the
    polytope with no tolerance, with the runtime's outputs; None if none does."""
    if not len(candidates):
        return None
    x32 = np.stack([_into_box(c, region) for c in np.atleast_2d(candidates)])
    inside = ((x32 >= region.lower) & (x32 <= region.upper)).all(axis=1)
    if not inside.any():
        return None
    x32 = x32[inside]
    outputs = _runtime_outputs(model, x32)
    hits = np.flatnonzero(polytope.contains(outputs))
    if not len(hits):
        return None
    return x32[hits[0]], outputs[hits[0]]


def _violation_torch(y: torch.Tensor, polytope: Polytope) -> torch.Tensor:
    A = torch.as_tensor(polytope.A, dtype=y.dtype)
    b = torch.as_tensor(polytope.b, dtype=y.dtype)
    return (y @ A.T - b).amax(dim=1)


def falsify(model: AssessedModel, region: Region, polytope: Polytope, settings: DecideSettings,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """Search the box for a counterexample (centre, uniform samples, PGD); checked ones only."""
    lower, upper = region.lower, region.upper
    points = [(lower + upper) / 2]
    if settings.samples:
        points.extend(rng.uniform(lower, upper, size=(settings.samples, len(lower))))
    found = checked_counterexample(model, region, polytope, np.asarray(points))
    if found is not None or not len(polytope.b) or not settings.pgd_steps:
        return found
    width = torch.as_tensor(upper - lower, dtype=torch.float32)
    lo, hi = torch.as_tensor(lower, dtype=torch.float32), torch.as_tensor(upper, dtype=torch.float32)
    starts = np.asarray(points)[np.argsort(polytope.violation(_runtime_outputs(model, np.asarray(points))))]
    x = torch.as_tensor(starts[: max(settings.starts, 1)], dtype=torch.float32).clone()
    network = model.network
    for step in range(settings.pgd_steps):
        x.requires_grad_(True)
        y = network(x.reshape(len(x), *model.input_shape)).reshape(len(x), -1)
        loss = _violation_torch(y, polytope).sum()
        (grad,) = torch.autograd.grad(loss, x)
        size = 0.1 * (1.0 - step / settings.pgd_steps) + 0.005
        with torch.no_grad():
            x = torch.clamp(x - size * width * grad.sign(), lo, hi)
    return checked_counterexample(model, region, polytope, x.detach().numpy())


def _bound_refutes(engine: object, region: Region, polytope: Polytope, method: str, shape: tuple[int, ...]) -> bool:
    """True when some row A_i y - b_i has a sound lower bound > 0 over the box."""
    if not len(polytope.b):
        return False
    lower = torch.as_tensor(region.lower.reshape(1, *shape))
    upper = torch.as_tensor(region.upper.reshape(1, *shape))
    spec = torch.as_tensor(polytope.A[None], dtype=torch.float64)
    bound, _ = engine.box_bounds(lower, upper, method, C=spec)  # type: ignore[attr-defined]
    return bool((bound[0].numpy() - polytope.b > 0).any())


def _milp_case(layers: list, region: Region, polytope: Polytope, time_limit: float, backend: str,
               threads: int) -> tuple[str, np.ndarray | None, str]:
    """Solve one case exactly: ("infeasible" | "feasible" | "timeout" | "error", the point, note)."""
    from nnassure.assess.milp import encode_case
    from nnassure.ensemble.milp import solve

    model, inputs = encode_case(layers, region, polytope, MILP_SLACK)
    solution = solve(model, backend=backend, time_limit=max(time_limit, 0.1), threads=threads)
    if solution.status == "infeasible":
        return "infeasible", None, solution.note
    if solution.feasible:
        return "feasible", np.asarray(solution.values)[inputs], solution.note
    if solution.status == "timeout":
        return "timeout", None, solution.note
    return "error", None, solution.note or f"the MILP solver returned {solution.status}"


def decide(model: AssessedModel, prop: Property, settings: DecideSettings, engine: object | None = None,
           layers: list | None = None) -> Decision:
    """Decide ``prop`` on ``model`` (module docstring). ``engine`` is a float64
    :class:`~nnassure.certify.bounds.BoundEngine` of the model's network (built here if None), and
    ``layers`` its exact layer list for the MILP (None: no MILP)."""
    started = time.perf_counter()
    rng = np.random.default_rng(settings.seed)
    closed = {m: 0 for m in METHODS}
    methods = [m for m in METHODS if m in settings.methods]
    if not model.relu_only:
        methods = [m for m in methods if m not in ("alpha-crown", "milp")]
    if layers is None:
        methods = [m for m in methods if m != "milp"]
    cases = [(region, polytope) for region in prop.regions for polytope in region.polytopes]

    def elapsed() -> float:
        return time.perf_counter() - started

    def decision(result: str, by: str, note: str = "", x: np.ndarray | None = None,
                 y: np.ndarray | None = None) -> Decision:
        return Decision(result, by, elapsed(), len(cases), {k: v for k, v in closed.items() if v}, x, y, note)

    try:
        if "falsify" in methods:
            for region, polytope in cases:
                if elapsed() > settings.time_limit:
                    return decision("timeout", "", "the time limit ran out during falsification")
                found = falsify(model, region, polytope, settings, rng)
                if found is not None:
                    return decision("violated", "falsify", x=found[0], y=found[1])
        open_cases = list(cases)
        bound_methods = [m for m in BOUND_METHODS if m in methods]
        if bound_methods and engine is None:
            from nnassure.certify.bounds import BoundEngine

            engine = BoundEngine(*model.bound_network())
        last = ""
        for method in bound_methods:
            still_open = []
            for region, polytope in open_cases:
                if elapsed() > settings.time_limit:
                    return decision("timeout", "", f"the time limit ran out during {method}")
                if _bound_refutes(engine, region, polytope, method, engine.input_shape):
                    closed[method] += 1
                    last = method
                else:
                    still_open.append((region, polytope))
            open_cases = still_open
            if not open_cases:
                return decision("holds", last)
        if "milp" in methods:
            for region, polytope in list(open_cases):
                remaining = settings.time_limit - elapsed()
                if remaining <= 0:
                    return decision("timeout", "", "the time limit ran out before the MILP")
                status, point, note = _milp_case(layers, region, polytope, remaining, settings.backend,
                                                 settings.threads)
                if status == "infeasible":
                    closed["milp"] += 1
                    open_cases.remove((region, polytope))
                    last = "milp"
                elif status == "feasible":
                    found = checked_counterexample(model, region, polytope, point[None])
                    if found is None:
                        found = _polish(model, region, polytope, point, settings)
                    if found is not None:
                        return decision("violated", "milp", x=found[0], y=found[1])
                    return decision("unknown", "", "the MILP's point misses the polytope in the runtime by "
                                    "rounding, and PGD from it found no counterexample")
                elif status == "timeout":
                    return decision("timeout", "", "the MILP solver hit the time limit")
                else:
                    return decision("error", "", note)
            if not open_cases:
                return decision("holds", last)
        return decision("unknown", "", f"{len(open_cases)} of {len(cases)} cases open after "
                        f"{', '.join(methods)}")
    except Exception as exc:  # an error is reported as an error, never as a verdict
        return decision("error", "", f"{type(exc).__name__}: {exc}")


def _polish(model: AssessedModel, region: Region, polytope: Polytope, point: np.ndarray,
            settings: DecideSettings) -> tuple[np.ndarray, np.ndarray] | None:
    """PGD from a solver's point that misses the polytope by rounding."""
    lo = torch.as_tensor(region.lower, dtype=torch.float32)
    hi = torch.as_tensor(region.upper, dtype=torch.float32)
    width = hi - lo
    x = torch.as_tensor(np.asarray(point, np.float32)[None]).clamp(lo, hi)
    for step in range(max(settings.pgd_steps, 1)):
        x.requires_grad_(True)
        y = model.network(x.reshape(1, *model.input_shape)).reshape(1, -1)
        (grad,) = torch.autograd.grad(_violation_torch(y, polytope).sum(), x)
        with torch.no_grad():
            x = torch.clamp(x - 1e-4 * (1 + step) * width * grad.sign(), lo, hi)
        found = checked_counterexample(model, region, polytope, x.detach().numpy())
        if found is not None:
            return found
    return None
