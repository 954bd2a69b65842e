"""PROVEN stage: worst-case and probabilistic certified radii of one image model (``proven.model``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig

from nnassure.config import ModelId, parse_model_id
from nnassure.data import ImageDataset, load_image_dataset
from nnassure.errors import ConfigError
from nnassure.io import write_parquet
from nnassure.models import MLP, load_model
from nnassure.paths import ExperimentPaths
from nnassure.proven.bisection import BisectionSettings
from nnassure.proven.experiment import certify_model, relaxations_for, select_samples
from nnassure.proven.noise import spatial_correlation
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run
from nnassure.training import predict_classes


def settings_from(cfg: DictConfig) -> BisectionSettings:
    p = cfg.proven
    return BisectionSettings(eps_min=p.eps_min, eps_max=p.eps_max, tolerance=p.bisection_tolerance,
                             guess_factor=p.guess_factor, batch_size=p.batch_size, sigma_ratio=p.sigma_ratio)


@dataclass
class ProvenInputs:
    data: ImageDataset
    model: MLP
    x: np.ndarray  # every point of the data set, flattened
    labels: np.ndarray
    predictions: np.ndarray
    chosen: np.ndarray  # indices of the points to certify


def load_inputs(cfg: DictConfig, model_id: ModelId, n_samples: int) -> ProvenInputs:
    """The model, its data set and the seeded choice of correctly classified test points to certify
    (shared by this stage and ``make bench``)."""
    paths = ExperimentPaths.from_config(cfg)
    data = load_image_dataset(paths.image_dataset(model_id.dataset))
    model = load_model(paths.classifier_stem(model_id.name)).model
    x_all, labels = data.arrays(flatten=True)
    if model.spec.input_dim != x_all.shape[1] or model.spec.outputs != len(data.classes):
        raise ConfigError(f"model {model_id.name} ({model.spec}) does not fit data set {model_id.dataset} "
                          f"({x_all.shape[1]} inputs, {len(data.classes)} classes): retrain it")
    predictions = predict_classes(model, x_all)
    try:
        chosen = select_samples(predictions, labels, np.flatnonzero(data.split == "test"), n_samples,
                                cfg.proven.seed)
    except ValueError as exc:
        raise ConfigError(f"{model_id.name}: {exc}") from None
    return ProvenInputs(data, model, x_all, labels, predictions, chosen)


def main(cfg: DictConfig) -> None:
    p = cfg.proven
    if p.model is None:
        raise ConfigError("proven.model is not set: name the model to certify, e.g. proven.model=digits_relu_2x20")
    model_id = parse_model_id(p.model, "proven.model")
    paths = ExperimentPaths.from_config(cfg)
    n_samples = p.table4_samples if model_id.name in p.table4_models else p.samples
    inputs = load_inputs(cfg, model_id, n_samples)
    data, model, x_all, labels = inputs.data, inputs.model, inputs.x, inputs.labels
    predictions, chosen = inputs.predictions, inputs.chosen
    gaussian = model_id.name in p.gaussian_models
    correlation = spatial_correlation(data.images.shape[1:], p.correlation_length, p.channel_correlation) \
        if gaussian else None
    with tracked_run(cfg, "proven", model_id.name) as tracker:
        run = certify_model(model.verification_network(), x_all[chosen], predictions[chosen], model.spec.outputs,
                            relaxations_for(model_id.activation), list(p.gammas), gaussian, settings_from(cfg),
                            correlation, sample_ids=chosen, gaussian_samples=p.samples)
        frame = run.samples
        frame.insert(1, "model", model_id.name)
        frame.insert(2, "dataset", model_id.dataset)
        frame.insert(3, "activation", model_id.activation)
        frame.insert(4, "architecture", model_id.architecture)
        frame.insert(5, "label", labels[frame["sample"].to_numpy()])
        write_parquet(frame, paths.proven(model_id.name))
        summary = frame.groupby(["relaxation", "certificate", "noise", "gamma"], as_index=False)[
            ["worst_case_eps", "certified_eps"]].mean()
        tracker.log_table("mean_certified_eps", summary)
        tracker.summary({f"seconds/{k}": v for k, v in run.seconds.items()}
                        | {f"bound_calls/{k}": v for k, v in run.bound_calls.items()})


if __name__ == "__main__":
    run_stage("proven", main)
