"""Which report files an experiment produces (used by the report stage and the Snakefile)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from nnassure.paths import ExperimentPaths
from nnassure.report.tables import TABLE_OF_DATASET


def report_outputs(cfg: DictConfig) -> dict[str, list[Path]]:
    """Table and figure files by id for the experiment's grid."""
    paths = ExperimentPaths.from_config(cfg)
    table_ids = ["vc_table1"] + [TABLE_OF_DATASET[d] for d in sorted(cfg.grid.datasets)]
    outputs = {
        t: [paths.tables / f"{t}.{ext}" for ext in ("csv", "md", "tex")] + [paths.tables / f"{t}.compare.md"]
        for t in table_ids
    }
    figure_ids = ["vc_fig1"]
    if cfg.report.fig2_dataset in cfg.grid.datasets and cfg.report.fig2_cost in cfg.grid.costs:
        figure_ids.append("vc_fig2")
    if cfg.report.fig3_dataset in cfg.grid.datasets:
        figure_ids.append("vc_fig3")
    for f in figure_ids:
        outputs[f] = [paths.figures / f"{f}.{ext}" for ext in ("png", "pdf")]
    return outputs
