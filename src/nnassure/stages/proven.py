"""PROVEN stage: worst-case and probabilistic certified radii of one image model (``proven.model``)."""

from __future__ import annotations

from omegaconf import DictConfig

from nnassure.config import parse_model_id
from nnassure.errors import ConfigError
from nnassure.io import write_parquet
from nnassure.paths import ExperimentPaths
from nnassure.proven.experiment import bisection_settings, certify_image_model, load_proven_inputs, mean_certified_eps
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    p = cfg.proven
    if p.model is None:
        raise ConfigError("proven.model is not set: name the model to certify, e.g. proven.model=digits_relu_2x20")
    model_id = parse_model_id(p.model, "proven.model")
    paths = ExperimentPaths.from_config(cfg)
    n_samples = p.table4_samples if model_id.name in p.table4_models else p.samples
    inputs = load_proven_inputs(paths.image_dataset(model_id.dataset), paths.classifier_stem(model_id.name), model_id,
                                n_samples, p.seed)
    with tracked_run(cfg, "proven", model_id.name) as tracker:
        run = certify_image_model(inputs, model_id, p.gammas, model_id.name in p.gaussian_models,
                                  bisection_settings(p), p.correlation_length, p.channel_correlation, p.samples)
        write_parquet(run.samples, paths.proven(model_id.name))
        tracker.log_table("mean_certified_eps", mean_certified_eps(run.samples))
        tracker.summary({f"seconds/{k}": v for k, v in run.seconds.items()}
                        | {f"bound_calls/{k}": v for k, v in run.bound_calls.items()})


if __name__ == "__main__":
    run_stage("proven", main)
