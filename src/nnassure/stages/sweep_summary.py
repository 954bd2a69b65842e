"""Sweep summary stage: one table per sweep, a row per (point, family, metric) with the point's
keys, from the reports of every point (nnassure.sweep.summary); also a Markdown table with a
column per metric, and the whole table logged to W&B in the sweep's group."""

from __future__ import annotations

from omegaconf import DictConfig

from nnassure.errors import ConfigError
from nnassure.io import write_csv, write_text
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.sweep.summary import read_plan, summarize, wide
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    if cfg.sweep.name is None:
        raise ConfigError("the sweep_summary stage summarizes one sweep: set sweep.name=<name>")
    paths = ExperimentPaths.from_config(cfg)
    plan = read_plan(paths.sweep_plan(cfg.sweep.name))
    summary = summarize(plan)
    output = paths.sweep_summary(cfg.sweep.name)
    with tracked_run(cfg, "sweep_summary", "summary") as tracker:
        write_csv(summary, output, float_format="%.6g")
        table = wide(summary, plan["keys"])
        shown = table.to_markdown(index=False, floatfmt=".4g") if not table.empty else "(no numbers)"
        write_text(f"# Sweep {plan['sweep']}\n\n{shown}\n", output.with_suffix(".md"))
        tracker.log_table("summary", summary)


if __name__ == "__main__":
    run_stage("sweep_summary", main)
