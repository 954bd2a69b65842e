"""Where a run's time went: its wall time and a per-family breakdown, read from the benchmark files.

``python -m nnassure.bench.run [key=value ...]`` reads every benchmark file Snakemake wrote for the
composed experiment (``results/<experiment>/benchmarks/<stage>/**/*.tsv``: one per job, its wall
seconds ``s`` and CPU time) and writes <results_dir>/bench/run.md. A job's end is its file's
modification time and its start that minus ``s``; the run's wall time is the span from the first
start to the last end (Snakemake's own start-up, the DAG's parse before the first job, is in no
benchmark file and is measured separately, as the README's `make run` timing says). So the
figure describes one run from a clean results directory only when every file comes from it:
the report says how many files there are and over what span.

A stage belongs to the family whose report it feeds (``nnassure.stage_keys``: the inputs of
each family's report stage, followed upstream); a stage feeding several families is listed as
shared. ``--budget`` (minutes) is the target the report compares the wall time with.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from nnassure.bench._common import bench_main, benchmark_usage, warm_usage
from nnassure.errors import InputFileError
from nnassure.paths import ExperimentPaths
from nnassure.stage_keys import STAGES
from nnassure.sweep import REPORT_STAGES

SHARED = "shared"


def stage_families() -> dict[str, str]:
    """Each stage's family (the report it feeds), or ``shared`` when it feeds several."""
    feeds: dict[str, set[str]] = {stage: set() for stage in STAGES}
    # The papers' families, and the assessment of an outside model (its report is not a paper's).
    for family, report in {**REPORT_STAGES, "assess": "report_assess"}.items():
        pending = [report]
        while pending:
            stage = pending.pop()
            if family in feeds[stage]:
                continue
            feeds[stage].add(family)
            pending += list(STAGES[stage].inputs)
    return {stage: (next(iter(families)) if len(families) == 1 else SHARED)
            for stage, families in feeds.items() if families}


def job_times(benchmarks: Path) -> pd.DataFrame:
    """One row per benchmark file: stage, seconds, CPU seconds, start and end (epoch seconds)."""
    rows = []
    for path in sorted(benchmarks.rglob("*.tsv")):
        stage = path.relative_to(benchmarks).parts[0]
        usage = benchmark_usage(path)
        seconds, cpu = usage["seconds"], usage["cpu_seconds"]
        end = path.stat().st_mtime
        rows.append({"stage": stage, "seconds": seconds, "cpu_seconds": cpu, "start": end - seconds, "end": end})
    return pd.DataFrame(rows, columns=["stage", "seconds", "cpu_seconds", "start", "end"])


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


def report(cfg: DictConfig, args: argparse.Namespace) -> str:
    paths = ExperimentPaths.from_config(cfg)
    if not paths.benchmarks.is_dir():
        raise InputFileError(f"{paths.benchmarks}: benchmark files not found (written by every job; run the "
                             "experiment first, e.g. make run)")
    jobs = job_times(paths.benchmarks)
    if jobs.empty:
        raise InputFileError(f"{paths.benchmarks}: no benchmark files (run the experiment first, e.g. make run)")
    families = stage_families()
    unknown = sorted(set(jobs["stage"]) - set(families))
    if unknown:
        raise InputFileError(f"{paths.benchmarks}: benchmark files of unknown stage(s) {', '.join(unknown)}")
    jobs["family"] = jobs["stage"].map(families)
    # The CPU time of warm jobs is in their usage records (the benchmark measured the launcher).
    warm_cpu = {stage: sum(r["cpu_seconds"] for r in warm_usage(paths.logs, stage)) for stage in set(jobs["stage"])}
    wall = float(jobs["end"].max() - jobs["start"].min())
    budget = float(args.budget) * 60
    lines = [f"# Run time of the {cfg.grid.name} experiment", "",
             f"From {len(jobs)} benchmark files, one per job ({paths.benchmarks}). Wall time, first job's start "
             f"to last job's end: **{_minutes(wall)}** (budget {args.budget:g} min: "
             f"{'within' if wall <= budget else 'OVER'}). Job time summed over every job: "
             f"{_minutes(float(jobs['seconds'].sum()))}; CPU time: "
             f"{_minutes(float(jobs['cpu_seconds'].sum()) + sum(warm_cpu.values()))}. "
             "Snakemake's parse before the first job is not in these files.", "",
             "## Per family", "",
             "| family | jobs | job time | share of job time | longest job | span (first start - last end) |",
             "|---|---|---|---|---|---|"]
    total = float(jobs["seconds"].sum())
    for family, group in sorted(jobs.groupby("family"), key=lambda item: -item[1]["seconds"].sum()):
        lines.append(f"| {family} | {len(group)} | {_minutes(float(group['seconds'].sum()))} | "
                     f"{group['seconds'].sum() / total:.0%} | {group['seconds'].max():.1f} s | "
                     f"{_minutes(float(group['end'].max() - group['start'].min()))} |")
    lines += ["", "## Per stage", "", "| stage | family | jobs | job time | mean per job | longest | CPU time |",
              "|---|---|---|---|---|---|---|"]
    for stage, group in sorted(jobs.groupby("stage"), key=lambda item: -item[1]["seconds"].sum()):
        lines.append(f"| {stage} | {families[stage]} | {len(group)} | {group['seconds'].sum():.1f} s | "
                     f"{group['seconds'].mean():.1f} s | {group['seconds'].max():.1f} s | "
                     f"{group['cpu_seconds'].sum() + warm_cpu[stage]:.1f} s |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nnassure.bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=15.0, help="target wall time in minutes")
    bench_main("run", parser, report, argv)


if __name__ == "__main__":
    main()
