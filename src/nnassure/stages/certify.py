"""Certify stage: LiRPA verification of every sample of one model (Sec. 3.2)."""

from __future__ import annotations

from omegaconf import DictConfig

from nnassure.certify import certify_dataset
from nnassure.data import load_dataset
from nnassure.io import write_csv, write_parquet
from nnassure.models import load_model
from nnassure.paths import ExperimentPaths, format_cost
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    paths = ExperimentPaths.from_config(cfg)
    name, cost = cfg.dataset.name, cfg.train.cost_fn
    frame = load_dataset(paths.dataset(name))
    model = load_model(paths.model_stem(name, cost)).model
    c = cfg.certify
    with tracked_run(cfg, "certify", f"{name}_c{format_cost(cost)}") as tracker:
        result = certify_dataset(
            model.verification_network(), frame, list(c.norms), list(c.eps), list(c.methods),
            radius_method=c.method, clip_to_domain=c.clip_to_domain, batch_size=c.batch_size,
            alpha_batch_size=c.alpha_batch_size, alpha_iterations=c.alpha_iterations,
            radius_max=c.radius_max, radius_steps=c.radius_steps,
        )
        write_parquet(result.samples, paths.certification(name, cost))
        write_csv(result.summary, paths.certification_summary(name, cost), float_format="%.6f")
        tracker.log_table("verified_accuracy", result.summary)
        for row in result.summary.itertuples():
            tracker.summary({f"verified_accuracy/{row.method}/{row.norm}/eps={row.eps:g}": row.verified_accuracy})


if __name__ == "__main__":
    run_stage("certify", main)
