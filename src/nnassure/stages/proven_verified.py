"""PROVEN beside verified accuracy on a 2-D model of the verified-classification stage: at each
eps of ``certify.eps`` (Linf), which points are verified in the worst case and which are
certified with confidence ``proven.gammas[0]`` under bounded noise (Case (i))."""

from __future__ import annotations

from omegaconf import DictConfig

from nnassure.data import load_dataset, split_arrays
from nnassure.io import write_parquet
from nnassure.models import load_model
from nnassure.paths import ExperimentPaths, format_cost
from nnassure.proven.verified import accuracy_by_eps, proven_versus_verified
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run
from nnassure.training import predict_labels


def main(cfg: DictConfig) -> None:
    paths = ExperimentPaths.from_config(cfg)
    name, cost = cfg.dataset.name, cfg.train.cost_fn
    frame = load_dataset(paths.dataset(name))
    model = load_model(paths.model_stem(name, cost)).model
    x, labels = split_arrays(frame)
    with tracked_run(cfg, "proven_verified", f"{name}_c{format_cost(cost)}") as tracker:
        result = proven_versus_verified(model.verification_network(), x, labels, predict_labels(model, x),
                                        frame["sample_id"].to_numpy(), list(cfg.certify.eps),
                                        float(cfg.proven.gammas[0]), cfg.proven.batch_size)
        write_parquet(result, paths.proven_verified(name, cost))
        tracker.log_table("proven_vs_verified_accuracy", accuracy_by_eps(result))


if __name__ == "__main__":
    run_stage("proven_verified", main)
