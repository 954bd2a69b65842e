"""What every benchmark shares: the composed config, its inputs checked up front, one-line errors."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig

from nnassure.config import compose
from nnassure.errors import InputFileError, NnassureError
from nnassure.io import write_text


def require(path: Path, what: str, made_by: str) -> Path:
    """``path`` if it exists; otherwise an :class:`InputFileError` saying what is missing and which
    stage makes it, so that a benchmark never times a fallback or fails deep inside a loader."""
    if not path.exists():
        raise InputFileError(f"{path}: {what} not found (made by {made_by}; run the experiment first, e.g. make run)")
    return path


def report_path(cfg: DictConfig, name: str) -> Path:
    """Where a benchmark writes its report by default: <results_dir>/bench/<name>.md."""
    return Path(cfg.results_dir) / "bench" / f"{name}.md"


def bench_main(name: str, parser: argparse.ArgumentParser, run: Callable[[DictConfig, argparse.Namespace], str],
               argv: list[str] | None = None) -> None:
    """Parse ``--options`` with ``parser`` and the rest as config overrides, run the benchmark with
    ``cfg.threads`` torch threads and write its report (``--out``, default :func:`report_path`).

    A user error (a bad override, a missing input) ends in one line on stderr and exit code 2."""
    parser.add_argument("--out", type=Path, default=None, help="report file (default <results_dir>/bench/NAME.md)")
    parser.epilog = "Other arguments are config overrides as for the stages, e.g. experiment=quick threads=2."
    args, overrides = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    try:
        bad = [a for a in overrides if "=" not in a or a.startswith("-")]
        if bad:
            raise NnassureError(f"unknown argument(s) {' '.join(bad)}: expected --options or key=value overrides")
        cfg = compose(overrides)
        import torch

        torch.set_num_threads(cfg.threads)
        report = run(cfg, args)
    except NnassureError as exc:
        print(f"nnassure bench.{name}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    write_text(report, args.out or report_path(cfg, name))
    print(report)


def benchmark_usage(path: Path) -> dict[str, float]:
    """One job's wall seconds, CPU seconds, max RSS (MB) and mean load from its Snakemake benchmark file."""
    import pandas as pd

    try:
        row = pd.read_csv(path, sep="\t", na_values=["-"]).iloc[0]
        return {"seconds": float(row["s"]), "cpu_seconds": float(0.0 if pd.isna(row["cpu_time"]) else row["cpu_time"]),
                "max_rss_mb": float(row["max_rss"]), "mean_load": float(row["mean_load"])}
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise InputFileError(f"{path}: not a Snakemake benchmark file ({type(exc).__name__}: {exc})") from None


def warm_usage(logs: Path, stage: str) -> list[dict[str, float]]:
    """CPU seconds and max RSS of the stage's jobs that ran warm (nnassure.warmstart).

    Such a job runs in a fork of the server, which Snakemake's benchmark of the job (it measures
    the launcher) does not see; the launcher records the fork's use in ``<log>.usage.json``. So
    a stage's CPU time is its benchmark files' (cold jobs, and the launchers of warm ones) plus
    these, and its largest RSS the largest of both."""
    import json

    records = []
    for path in sorted((logs / stage).rglob("*.usage.json")) if (logs / stage).is_dir() else []:
        try:
            measured = json.loads(path.read_text())
            records.append({"cpu_seconds": float(measured["cpu_seconds"]), "max_rss_mb": float(measured["max_rss_mb"])})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputFileError(f"{path}: not a usage record of nnassure.launch ({type(exc).__name__}: {exc})"
                                 ) from None
    return records
