"""Verified accuracy and certified radii (L2, Linf) of an assessed model on the user's data
(``results/<experiment>/assess/<name>/certify.parquet`` and ``certify_summary.csv``)."""

from __future__ import annotations

from omegaconf import DictConfig

from nnassure.io import write_csv, write_parquet
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    from nnassure.assess.experiment import certify_samples, domain_of, imported

    paths = ExperimentPaths.from_config(cfg)
    name, model, data = imported(cfg)
    c = cfg.assess.certify
    with tracked_run(cfg, "assess_certify", name) as tracker:
        samples, summary = certify_samples(
            model, data, list(c.methods), c.method, {k: list(v) for k, v in c.eps.items()}, bool(c.radius),
            {k: float(v) for k, v in c.radius_max.items()}, int(c.radius_steps), domain_of(cfg.assess),
            int(c.batch_size))
        target = paths.assess_certification(name)
        write_parquet(samples, target)
        write_csv(summary, target.with_name("certify_summary.csv"), float_format="%.6f")
        tracker.log_table("verified_accuracy", summary)
    for row in summary.itertuples():
        print(f"assess_certify {name}: {row.method} {row.norm} eps={row.eps:g}: verified {row.verified_accuracy:.4f}")


if __name__ == "__main__":
    run_stage("assess_certify", main)
