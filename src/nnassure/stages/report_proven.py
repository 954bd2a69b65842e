"""Report stage for PROVEN: pv_table2a..e, pv_table3, pv_table4, pv_table5, pv_fig1 and the
``.compare.md`` beside each table, from the per-sample Parquet files of the proven stages."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from nnassure.errors import InputFileError
from nnassure.io import write_text
from nnassure.paths import ExperimentPaths
from nnassure.report import proven as report
from nnassure.report.catalog import family_files
from nnassure.report.render import save_figure, write_table
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def proven_outputs(cfg: DictConfig) -> list[Path]:
    """Every file this stage writes (the Snakefile's targets; ids and captions in report.catalog)."""
    return family_files(cfg, "proven")


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path}: cannot read the proven stage's results ({exc}); rerun that stage") from None


def main(cfg: DictConfig) -> None:
    paths = ExperimentPaths.from_config(cfg)
    p = cfg.proven
    results = pd.concat([_read(paths.proven(m)) for m in p.models], ignore_index=True)
    gammas = list(p.gammas)
    with tracked_run(cfg, "report_proven", "report_proven") as tracker:
        # The long frames carry the counts of certified samples; the findings and Table 3 read them,
        # never the rendered cells ("not certified" is a count of 0, not a radius of 0).
        longs = {}
        for table_id, (activation, relaxation, _) in report.TABLE2.items():
            long, display = report.table2(results, activation, relaxation, gammas, p.table2_samples)
            longs[table_id] = long
            write_table(long, display, paths.tables, table_id)
            tracker.log_table(table_id, long)
        for table_id in report.TABLE2:
            other = longs["pv_table2a"] if table_id == "pv_table2b" else None
            write_text(report.table2_compare(table_id, longs[table_id], other),
                       paths.tables / f"{table_id}.compare.md")
        long3, display3 = report.table3(longs)
        write_table(long3, display3, paths.tables, "pv_table3")
        write_text(report.table3_compare(long3), paths.tables / "pv_table3.compare.md")
        long4, display4 = report.table4(results, list(p.table4_models), gammas[0], list(p.table4_sizes),
                                        p.table4_trials, p.seed)
        write_table(long4, display4, paths.tables, "pv_table4")
        write_text(report.table4_compare(long4), paths.tables / "pv_table4.compare.md")
        verified = {(d, c): _read(paths.proven_verified(d, c)) for d in cfg.grid.datasets for c in cfg.grid.costs}
        long5, display5 = report.verified_table(verified)
        write_table(long5, display5, paths.tables, "pv_table5")
        write_text(report.verified_compare(long5), paths.tables / "pv_table5.compare.md")
        if p.gaussian_models:
            curves = report.fig1_frame(results, list(p.gaussian_models), gammas)
            save_figure(report.fig1(curves), paths.figures, "pv_fig1")
            write_text(report.fig1_compare(curves), paths.tables / "pv_fig1.compare.md")
    missing = [str(f) for f in proven_outputs(cfg) if not f.exists()]
    if missing:
        raise RuntimeError(f"report_proven did not write {missing}")


if __name__ == "__main__":
    run_stage("report_proven", main)
