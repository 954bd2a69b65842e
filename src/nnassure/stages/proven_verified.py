"""PROVEN beside verified accuracy on a 2-D model of the verified-classification stage: at each
eps of ``certify.eps`` (Linf), which points are verified in the worst case and which are
certified with confidence ``proven.gammas[0]`` under bounded noise (Case (i))."""

from __future__ import annotations

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from nnassure.certify.bounds import BoundEngine
from nnassure.data import load_dataset, split_arrays
from nnassure.io import write_parquet
from nnassure.models import load_model
from nnassure.paths import ExperimentPaths, format_cost
from nnassure.proven.bisection import RiskEvaluator
from nnassure.stages._common import run_stage
from nnassure.stages.proven import settings_from
from nnassure.tracking import tracked_run
from nnassure.training import predict_labels


def main(cfg: DictConfig) -> None:
    paths = ExperimentPaths.from_config(cfg)
    name, cost = cfg.dataset.name, cfg.train.cost_fn
    frame = load_dataset(paths.dataset(name))
    model = load_model(paths.model_stem(name, cost)).model
    x, labels = split_arrays(frame)
    predicted = predict_labels(model, x)
    gamma = float(cfg.proven.gammas[0])
    evaluator = RiskEvaluator(BoundEngine(model.verification_network(), x.shape[1]), x, predicted, 1,
                              settings_from(cfg))
    rows = np.arange(len(x))
    parts = []
    with tracked_run(cfg, "proven_verified", f"{name}_c{format_cost(cost)}") as tracker:
        for eps in cfg.certify.eps:
            radius = np.full(len(x), float(eps))
            worst = evaluator(rows, radius, np.full(len(x), "worst-case"))
            risk = evaluator(rows, radius, np.full(len(x), "hoeffding"))
            parts.append(pd.DataFrame({
                "sample_id": frame["sample_id"].to_numpy(), "eps": float(eps), "label": labels,
                "prediction": predicted, "correct": predicted == labels, "verified": worst == 0.0,
                "proven_risk": risk, "proven_certified": risk <= 1.0 - gamma, "gamma": gamma,
            }))
        result = pd.concat(parts, ignore_index=True)
        write_parquet(result, paths.proven_verified(name, cost))
        summary = result.assign(verified=result.verified & result.correct,
                                proven=result.proven_certified & result.correct).groupby("eps")[
            ["correct", "verified", "proven"]].mean().reset_index()
        tracker.log_table("proven_vs_verified_accuracy", summary)


if __name__ == "__main__":
    run_stage("proven_verified", main)
