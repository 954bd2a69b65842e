"""Which report files an experiment produces (used by the report stage and the Snakefile); the
ids, captions and paths of every family live in report.catalog."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from nnassure.report.catalog import outputs


def report_outputs(cfg: DictConfig) -> dict[str, list[Path]]:
    """Table and figure files by id of the verified-classification family for the experiment's grid."""
    return outputs(cfg, "verified-classification")
