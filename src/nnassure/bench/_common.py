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


def job_usage(path: Path) -> dict[str, float]:
    """One job's wall seconds, CPU seconds, max RSS (MB) and mean load from its Snakemake
    benchmark file. A job that ran warm (nnassure.warmstart) ran in a fork of the server, which
    the benchmark does not see; its launcher wrote the fork's CPU time and max RSS to
    ``<file>.usage.json``, and those replace the benchmark's (the CPU share is recomputed)."""
    import json

    import pandas as pd

    try:
        table = pd.read_csv(path, sep="\t", na_values=["-"])
        row = table.iloc[0]
        usage = {"seconds": float(row["s"]), "cpu_seconds": float(row.get("cpu_time", 0.0) or 0.0),
                 "max_rss_mb": float(row["max_rss"]) if pd.notna(row["max_rss"]) else float("nan"),
                 "mean_load": float(row["mean_load"]) if pd.notna(row["mean_load"]) else float("nan")}
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise InputFileError(f"{path}: not a Snakemake benchmark file ({type(exc).__name__}: {exc})") from None
    warm = path.with_name(path.name + ".usage.json")
    if warm.exists():
        try:
            measured = json.loads(warm.read_text())
            usage["cpu_seconds"] = float(measured["cpu_seconds"])
            usage["max_rss_mb"] = float(measured["max_rss_mb"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputFileError(f"{warm}: not a usage record of nnassure.launch ({type(exc).__name__}: {exc})"
                                 ) from None
        usage["mean_load"] = 100.0 * usage["cpu_seconds"] / usage["seconds"] if usage["seconds"] > 0 else 0.0
    return usage
