"""PROVEN's experiment for one model (Sec. 4): per sample, the worst-case eps and the largest eps
certified at each confidence, for each ReLU relaxation and noise case."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from torch import nn

from nnassure.certify.bounds import BoundEngine
from nnassure.proven.bisection import BisectionSettings, Criterion, RiskEvaluator, proven_eps, worst_case_eps

GAUSSIAN_NOISE = ("gaussian-diagonal", "gaussian-correlated")
RESULT_COLUMNS = ["sample", "relaxation", "noise", "certificate", "gamma", "worst_case_eps", "certified_eps",
                  "certified_probability", "risk"]


@dataclass
class ProvenRun:
    samples: pd.DataFrame  # one row per (sample, relaxation, criterion), RESULT_COLUMNS
    seconds: dict[str, float]  # wall time of the worst-case and PROVEN bisections per relaxation
    bound_calls: dict[str, int]


def select_samples(
    predictions: np.ndarray, labels: np.ndarray, candidates: np.ndarray, n: int, seed: int
) -> np.ndarray:
    """``n`` correctly classified candidates (indices), a seeded random choice in index order.

    Certificates speak of the predicted class; like the paper (and CROWN's evaluation), only
    correctly classified points are certified, so radii measure robustness, not errors.
    """
    correct = candidates[predictions[candidates] == labels[candidates]]
    if len(correct) < n:
        raise ValueError(f"only {len(correct)} correctly classified test points, {n} requested (proven.samples)")
    chosen = np.random.default_rng(seed).choice(correct, size=n, replace=False)
    return np.sort(chosen)


def criteria(gammas: Sequence[float], gaussian: bool) -> list[Criterion]:
    """Case (i) at every gamma; with ``gaussian``, Case (ii) too, the paper's approximation and
    the rigorous certificate, for independent and correlated noise."""
    chosen = [Criterion("hoeffding", "bounded", g) for g in gammas]
    if gaussian:
        chosen += [Criterion(kind, noise, g) for noise in GAUSSIAN_NOISE
                   for kind in ("gaussian-approx", "gaussian-rigorous") for g in gammas]
    return chosen


def relaxations_for(activation: str) -> list[str]:
    """ReLU nets get Fast-Lin's fixed slopes (Table 2a) and CROWN's adaptive ones (2b); other
    activations only CROWN's general-activation bounds (Fast-Lin is ReLU-only)."""
    return ["fast-lin", "crown"] if activation == "relu" else ["crown"]


def certify_model(
    network: nn.Module,
    x: np.ndarray,
    predicted: np.ndarray,
    outputs: int,
    relaxations: Sequence[str],
    gammas: Sequence[float],
    gaussian: bool,
    settings: BisectionSettings,
    correlation: np.ndarray | None = None,
    sample_ids: np.ndarray | None = None,
    gaussian_samples: int | None = None,
    progress: bool = True,
) -> ProvenRun:
    """Worst-case and PROVEN radii for the points ``x`` (flattened) with predicted classes ``predicted``.

    Gaussian certificates (with ``gaussian``) are computed for the first ``gaussian_samples`` points
    only (None: all): Fig. 1 averages a few points, and these certificates are 4x the bisections.
    """
    sample_ids = np.arange(len(x)) if sample_ids is None else np.asarray(sample_ids)
    frames, seconds, calls = [], {}, {}
    for relaxation in relaxations:
        # Fig. 1 (Gaussian noise) is drawn with CROWN's bounds; Fast-Lin serves Table 2a only.
        chosen = criteria(gammas, False)
        gaussian_criteria = criteria(gammas, True)[len(chosen):] if gaussian and relaxation == "crown" else []
        engine = BoundEngine(network, x.shape[1], relu_relaxation=relaxation)
        evaluator = RiskEvaluator(engine, x.astype(np.float32), predicted, outputs, settings, correlation)
        started = time.perf_counter()
        worst = worst_case_eps(evaluator, progress=progress)
        seconds[f"{relaxation}/worst_case"] = time.perf_counter() - started
        calls[f"{relaxation}/worst_case"] = evaluator.calls
        started, evaluator.calls = time.perf_counter(), 0
        found = proven_eps(evaluator, chosen, worst, progress=progress)
        if gaussian_criteria:
            subset = slice(0, gaussian_samples)
            sub_evaluator = RiskEvaluator(engine, x[subset].astype(np.float32), predicted[subset], outputs, settings,
                                          correlation)
            found = pd.concat([found, proven_eps(sub_evaluator, gaussian_criteria, worst[subset], progress=progress)],
                              ignore_index=True)
            evaluator.calls += sub_evaluator.calls
        seconds[f"{relaxation}/proven"] = time.perf_counter() - started
        calls[f"{relaxation}/proven"] = evaluator.calls
        worst_rows = pd.DataFrame({"sample": np.arange(len(x)), "certificate": "worst-case", "noise": "any",
                                   "gamma": 1.0, "certified_eps": worst, "risk": 0.0, "certified_probability": 1.0})
        frame = pd.concat([worst_rows, found], ignore_index=True)
        frame["worst_case_eps"] = worst[frame["sample"].to_numpy()]
        frame["sample"] = sample_ids[frame["sample"].to_numpy()]
        frame["relaxation"] = relaxation
        frames.append(frame[RESULT_COLUMNS])
    return ProvenRun(pd.concat(frames, ignore_index=True), seconds, calls)
