"""Report stage for the ensemble paper: en_table1..6 (csv, md, tex) and a ``.compare.md`` beside
each, from the per-row results of the ensemble_row stage."""

from __future__ import annotations

from omegaconf import DictConfig

from nnassure.io import write_text
from nnassure.paths import ExperimentPaths
from nnassure.report import ensemble as report
from nnassure.report.render import write_table
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    e = cfg.ensemble
    paths = ExperimentPaths.from_config(cfg)
    documents = report.load_rows(cfg)
    with tracked_run(cfg, "report_ensemble", "report_ensemble") as tracker:
        for table_id in report.TABLES:
            long, display = report.table(documents, table_id, f"milp_{e.table_backend}")
            write_table(long, display, paths.tables, table_id)
            write_text(report.compare(table_id, long, e.time_limit, e.smt_time_limit),
                       paths.tables / f"{table_id}.compare.md")
            if len(display):
                tracker.log_table(table_id, display.reset_index())


if __name__ == "__main__":
    run_stage("report_ensemble", main)
