"""Report stage: vc_table1, vc_table3-5 (with .compare.md) and vc_fig1-3 from the artifacts."""

from __future__ import annotations

import pandas as pd
from omegaconf import DictConfig

from nnassure.data import load_dataset
from nnassure.errors import InputFileError
from nnassure.io import write_text
from nnassure.paths import ExperimentPaths, format_cost
from nnassure.report import compare, figures, tables
from nnassure.report.outputs import report_outputs
from nnassure.report.render import save_figure, write_table
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def _read_certification(path: object) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # missing or corrupt; pyarrow raises several types
        raise InputFileError(f"{path}: cannot read certification results ({type(exc).__name__})") from None


def main(cfg: DictConfig) -> None:
    paths = ExperimentPaths.from_config(cfg)
    datasets = sorted(cfg.grid.datasets)
    costs = sorted(float(c) for c in cfg.grid.costs)
    method = cfg.certify.method
    frames = {d: load_dataset(paths.dataset(d)) for d in datasets}
    baselines = {d: pd.read_csv(paths.baselines(d)) for d in datasets}
    certs = {d: {c: _read_certification(paths.certification(d, c)) for c in costs} for d in datasets}
    expected = report_outputs(cfg)

    with tracked_run(cfg, "report", "tables") as tracker:
        long, display = tables.baseline_table(baselines)
        write_table(long, display, paths.tables, "vc_table1")
        network_accuracy = {}
        if costs[0] == 1.0:
            for d in datasets:
                rows = tables.prediction_rows(certs[d][1.0])
                val = rows[rows["split"] == "val"]
                network_accuracy[d] = float((val["label"] == val["prediction"]).mean())
        write_text(compare.baseline_compare(long, network_accuracy), paths.tables / "vc_table1.compare.md")
        tracker.log_table("vc_table1", long)

        for d in datasets:
            table_id = tables.TABLE_OF_DATASET[d]
            long, display = tables.dataset_table(d, certs[d], method, cfg.train.cost_fp)
            write_table(long, display, paths.tables, table_id)
            write_text(compare.dataset_compare(table_id, d, long, method), paths.tables / f"{table_id}.compare.md")
            tracker.log_table(table_id, long)

        save_figure(figures.datasets_figure(frames), paths.figures, "vc_fig1")
        r = cfg.report
        if "vc_fig2" in expected:
            fig = figures.verified_regions_figure(
                certs[r.fig2_dataset][float(r.fig2_cost)], r.fig2_eps, method,
                f"data set {r.fig2_dataset.upper()}, c10 = {format_cost(r.fig2_cost)}, {method}")
            save_figure(fig, paths.figures, "vc_fig2")
        if "vc_fig3" in expected:
            fig = figures.cost_predictions_figure(
                certs[r.fig3_dataset], r.fig3_eps, method, cfg.certify.norms[0],
                f"data set {r.fig3_dataset.upper()}, validation, eps = {r.fig3_eps:g} ({cfg.certify.norms[0]})")
            save_figure(fig, paths.figures, "vc_fig3")
        missing = [str(p) for files in expected.values() for p in files if not p.exists()]
        if missing:
            raise RuntimeError(f"report stage did not write {missing}")


if __name__ == "__main__":
    run_stage("report", main)
