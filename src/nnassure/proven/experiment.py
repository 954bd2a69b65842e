"""PROVEN's experiment for one model (Sec. 4): per sample, the worst-case eps and the largest eps
certified at each confidence, for each ReLU relaxation and noise case; and the loader of its
inputs (model, data set, points to certify), shared by the proven stage and the PROVEN benchmark."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from nnassure.certify.bounds import BoundEngine
from nnassure.config import ModelId
from nnassure.data import ImageDataset, load_image_dataset
from nnassure.errors import ConfigError, InputFileError
from nnassure.models import MLP, load_model
from nnassure.proven.bisection import BisectionSettings, Criterion, RiskEvaluator, proven_eps, worst_case_eps
from nnassure.proven.noise import spatial_correlation
from nnassure.training import predict_classes

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


@dataclass
class ProvenInputs:
    data: ImageDataset
    model: MLP
    x: np.ndarray  # every point of the data set, flattened
    labels: np.ndarray
    predictions: np.ndarray
    chosen: np.ndarray  # indices of the points to certify


def load_proven_inputs(data_file: str | Path, model_stem: str | Path, model_id: ModelId, n_samples: int,
                       seed: int) -> ProvenInputs:
    """The model, its data set and a seeded choice of ``n_samples`` correctly classified test
    points to certify. A missing or corrupt file, or a model that does not fit the data, raises
    :class:`InputFileError`; too few correct test points (fewer than ``n_samples``) a
    :class:`ConfigError`, since the cure is to ask for fewer (proven.samples)."""
    data = load_image_dataset(data_file)
    model = load_model(model_stem).model
    x_all, labels = data.arrays(flatten=True)
    if model.spec.input_dim != x_all.shape[1] or model.spec.outputs != len(data.classes):
        raise InputFileError(f"model {model_id.name} ({model.spec}) does not fit data set {model_id.dataset} "
                             f"({x_all.shape[1]} inputs, {len(data.classes)} classes): retrain it")
    predictions = predict_classes(model, x_all)
    try:
        chosen = select_samples(predictions, labels, np.flatnonzero(data.split == "test"), n_samples, seed)
    except ValueError as exc:
        raise ConfigError(f"{model_id.name}: {exc}") from None
    return ProvenInputs(data, model, x_all, labels, predictions, chosen)


def bisection_settings(proven: Any) -> BisectionSettings:
    """The bisection settings of a composed ``proven`` config group (any object with its keys
    eps_min, eps_max, bisection_tolerance, guess_factor, batch_size and sigma_ratio)."""
    return BisectionSettings(eps_min=proven.eps_min, eps_max=proven.eps_max, tolerance=proven.bisection_tolerance,
                             guess_factor=proven.guess_factor, batch_size=proven.batch_size,
                             sigma_ratio=proven.sigma_ratio)


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


def certify_image_model(
    inputs: ProvenInputs,
    model_id: ModelId,
    gammas: Sequence[float],
    gaussian: bool,
    settings: BisectionSettings,
    correlation_length: float,
    channel_correlation: float,
    gaussian_samples: int | None,
) -> ProvenRun:
    """:func:`certify_model` on the chosen points of ``inputs``, the result's rows labelled with the
    model (name, data set, activation, architecture) and each point's true label.

    With ``gaussian``, Case (ii) is certified too, for independent noise and for noise with the
    spatial correlation of ``correlation_length`` pixels and ``channel_correlation`` between channels."""
    data, model, chosen = inputs.data, inputs.model, inputs.chosen
    correlation = spatial_correlation(data.images.shape[1:], correlation_length, channel_correlation) \
        if gaussian else None
    run = certify_model(model.verification_network(), inputs.x[chosen], inputs.predictions[chosen],
                        model.spec.outputs, relaxations_for(model_id.activation), list(gammas), gaussian, settings,
                        correlation, sample_ids=chosen, gaussian_samples=gaussian_samples)
    frame = run.samples
    frame.insert(1, "model", model_id.name)
    frame.insert(2, "dataset", model_id.dataset)
    frame.insert(3, "activation", model_id.activation)
    frame.insert(4, "architecture", model_id.architecture)
    frame.insert(5, "label", inputs.labels[frame["sample"].to_numpy()])
    return run


def mean_certified_eps(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean worst-case and certified eps per relaxation, certificate, noise case and confidence."""
    return frame.groupby(["relaxation", "certificate", "noise", "gamma"], as_index=False)[
        ["worst_case_eps", "certified_eps"]].mean()
