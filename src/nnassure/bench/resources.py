"""What each stage's jobs used, against what the config's ``resources`` section asks for.

``python -m nnassure.bench.resources [key=value ...]`` reads every benchmark file Snakemake wrote
for the composed experiment (``results/<experiment>/benchmarks/<stage>/**/*.tsv``: max RSS in MB
and wall seconds per job; for jobs that ran warm, the RSS their launcher recorded in
``logs/<stage>/**/<job>.log.usage.json``) and writes <results_dir>/bench/resources.md: per stage the number of
jobs, the largest max RSS and the longest time, the values the measurement suggests (mem_mb: 1.5 x
the largest RSS rounded up to 250 MB; runtime: 3 x the longest time rounded up to whole minutes,
at least 5) and the configured ones, with a flag where a configured value is below what was
measured (a job SLURM would kill). conf/resources/default.yaml was set from this report on the
quick experiment. Stages without benchmark files (not run in this experiment) are listed as such.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from nnassure.bench._common import bench_main, benchmark_usage, warm_usage
from nnassure.errors import InputFileError
from nnassure.paths import ExperimentPaths
from nnassure.stage_keys import STAGES

MEMORY_HEADROOM = 1.5
TIME_HEADROOM = 3.0


def suggested(max_rss_mb: float, seconds: float) -> tuple[int, int]:
    """(mem_mb, runtime in minutes) with headroom over one measured job."""
    mem_mb = max(250, math.ceil(max_rss_mb * MEMORY_HEADROOM / 250) * 250)
    runtime = max(5, math.ceil(seconds * TIME_HEADROOM / 60))
    return mem_mb, runtime


def measured(benchmarks: Path) -> pd.DataFrame:
    """Per stage: jobs, largest max RSS (MB) and longest wall time (s) over its benchmark files."""
    rows = []
    for stage in STAGES:
        files = sorted((benchmarks / stage).rglob("*.tsv")) if (benchmarks / stage).is_dir() else []
        if files:
            table = pd.DataFrame([benchmark_usage(path) for path in files])
            warm = warm_usage(benchmarks.parent / "logs", stage)
            largest = max([float(table["max_rss_mb"].max())] + [r["max_rss_mb"] for r in warm])
            rows.append({"stage": stage, "jobs": len(files), "max_rss_mb": largest,
                         "seconds": float(table["seconds"].max()),
                         "mean_load": float(table.loc[table["seconds"].idxmax(), "mean_load"]),
                         "warm": len(warm)})
    return pd.DataFrame(rows, columns=["stage", "jobs", "max_rss_mb", "seconds", "mean_load", "warm"])


def report(cfg: DictConfig, _: argparse.Namespace) -> str:
    paths = ExperimentPaths.from_config(cfg)
    if not paths.benchmarks.is_dir():
        raise InputFileError(f"{paths.benchmarks}: benchmark files not found (written by every job; run the "
                             "experiment first, e.g. make run)")
    table = measured(paths.benchmarks).set_index("stage")
    lines = [f"# Resources: measured ({cfg.grid.name}) against configured", "",
             "Wall times grow when jobs share cores: `CPU %` is the longest job's CPU time over its wall time",
             "(Snakemake's mean_load); far below 100 x threads, the job waited for a core. Jobs that ran warm "
             "(nnassure.warmstart) add their own RSS from <log>.usage.json; their CPU share is not known.", "",
             "| stage | jobs | max RSS MB | longest s | CPU % | suggested mem_mb | suggested runtime min | "
             "configured mem_mb | configured runtime min | below measured |", "|" + "---|" * 10]
    for stage in STAGES:
        spec = cfg.resources[stage]
        if stage not in table.index:
            lines.append(f"| {stage} | 0 | | | | | | {spec.mem_mb} | {spec.runtime} | not run |")
            continue
        row = table.loc[stage]
        mem_mb, runtime = suggested(row.max_rss_mb, row.seconds)
        below = [what for what, short in (("mem_mb", spec.mem_mb < row.max_rss_mb),
                                          ("runtime", spec.runtime * 60 < row.seconds)) if short]
        load = "warm" if row.warm else f"{row.mean_load:.0f}"  # a warm job's benchmark measured its launcher
        lines.append(f"| {stage} | {int(row.jobs)} | {row.max_rss_mb:.0f} | {row.seconds:.1f} | {load} "
                     f"| {mem_mb} | {runtime} "
                     f"| {spec.mem_mb} | {spec.runtime} | {', '.join(below) or 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    bench_main("resources", argparse.ArgumentParser(prog="python -m nnassure.bench.resources",
                                                    description=__doc__.splitlines()[0]), report, argv)


if __name__ == "__main__":
    main()
