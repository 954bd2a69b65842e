"""Throughput of batched CROWN verification, and the time of each stage of the experiment.

``python -m nnassure.bench.certify [key=value ...] [--eps E] [--norm linf|l2] [--loop-samples N]``
times the verified-classification model of ``dataset.name`` at ``train.cost_fn`` of the composed
experiment, with ``threads`` torch threads, and writes <results_dir>/bench/certify.md.

The batched engine builds one BoundedModule per model and verifies all samples in batches; the
baseline is the paper authors' pattern, a bounded model rebuilt for each sample (measured on a
subset and reported per sample, since the full loop takes many minutes). The ratio is of
throughputs with the build included on both sides: each engine as a user would run it once.

The report also gives the cost of sound float64 bounds (float64 CROWN widened by the stated
rounding bound, :mod:`nnassure.certify.bounds`) over the former float32 computation: both
engines bound the same samples at the same eps and norm in one run, best of three, build
excluded, and the ratio of their times is reported (never asserted: timings vary by machine).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from nnassure.bench._common import bench_main, require
from nnassure.certify.bounds import BoundEngine
from nnassure.certify.verify import batched_bounds, is_verified
from nnassure.data import load_dataset, split_arrays
from nnassure.models import load_model
from nnassure.paths import ExperimentPaths, format_cost

TARGET_SECONDS = 10.0  # all points of the data set at one eps, on the machine's 2 cores
PRECISION_REPEATS = 3


def float_cost(network: torch.nn.Module, x: np.ndarray, eps: float, norm: str, batch_size: int,
               repeats: int = PRECISION_REPEATS) -> dict[str, float]:
    """Seconds of batched CROWN bounds of all of ``x`` with a float32 and with a float64 engine
    (same inputs, build excluded, best of ``repeats``), and their ratio float64 / float32."""
    seconds = {}
    for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        engine = BoundEngine(network, x.shape[1], dtype=dtype)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            batched_bounds(engine, x, eps, norm, "crown", batch_size)
            times.append(time.perf_counter() - started)
        seconds[name] = min(times)
    seconds["ratio"] = seconds["float64"] / seconds["float32"]
    return seconds


def _per_sample_loop(network: torch.nn.Module, x: np.ndarray, eps: float, norm: str) -> float:
    started = time.perf_counter()
    for row in x:
        engine = BoundEngine(network, x.shape[1])
        engine.bounds(row[None, :], eps, norm, "crown")
    return time.perf_counter() - started


def _stage_times(benchmarks: Path) -> pd.DataFrame:
    rows = []
    for path in sorted(benchmarks.glob("*/*.tsv")):
        seconds = float(pd.read_csv(path, sep="\t")["s"].iloc[0])
        rows.append({"stage": path.parent.name, "job": path.stem, "seconds": seconds})
    return pd.DataFrame(rows, columns=["stage", "job", "seconds"])


def run(cfg: DictConfig, eps: float, norm: str, loop_samples: int) -> str:
    """The report (Markdown) for the composed config ``cfg``."""
    paths = ExperimentPaths.from_config(cfg)
    dataset, cost, experiment = cfg.dataset.name, float(cfg.train.cost_fn), cfg.grid.name
    frame = load_dataset(require(paths.dataset(dataset), f"data set {dataset}", "the data stage"))
    stem = paths.model_stem(dataset, cost)
    require(stem.with_suffix(".safetensors"), f"model {dataset} at c10 = {format_cost(cost)}", "the train stage")
    network = load_model(stem).model.verification_network()
    x, labels = split_arrays(frame)

    started = time.perf_counter()
    engine = BoundEngine(network, x.shape[1])
    lower, upper = batched_bounds(engine, x, eps, norm, "crown", cfg.certify.batch_size)
    batched_seconds = time.perf_counter() - started
    verified = is_verified(lower, upper, labels)

    precision = float_cost(network, x, eps, norm, cfg.certify.batch_size)

    subset = x[:loop_samples]
    loop_seconds = _per_sample_loop(network, subset, eps, norm)
    batched_rate = len(x) / batched_seconds
    loop_rate = len(subset) / loop_seconds

    stages = _stage_times(paths.benchmarks)
    per_stage = stages.groupby("stage")["seconds"].agg(["count", "sum", "max"]).reset_index()
    target = "met" if batched_seconds < TARGET_SECONDS else "NOT met"
    lines = [
        "# Certification benchmark",
        "",
        f"Model: data set {dataset.upper()}, c10 = {cost:g} ({experiment} experiment), "
        f"{len(x)} samples, CROWN, {norm}, eps = {eps:g}, {torch.get_num_threads()} torch thread(s).",
        "",
        "| engine | samples | seconds | samples / s |",
        "|---|---|---|---|",
        f"| batched, one BoundedModule (incl. build) | {len(x)} | {batched_seconds:.3f} | {batched_rate:.0f} |",
        f"| per-sample loop, BoundedModule rebuilt per sample | {len(subset)} | {loop_seconds:.3f} | "
        f"{loop_rate:.1f} |",
        "",
        f"Speed-up: {batched_rate / loop_rate:.0f}x. Verified accuracy at this eps: {verified.mean():.4f}.",
        f"Target (all {len(x)} points at one eps in under {TARGET_SECONDS:g} s on 2 cores): {target} "
        f"({batched_seconds:.2f} s).",
        "",
        "## Cost of sound float64 bounds",
        "",
        f"CROWN bounds of the same {len(x)} samples ({norm}, eps = {eps:g}), build excluded, best of "
        f"{PRECISION_REPEATS}:",
        "",
        "| engine | seconds |",
        "|---|---|",
        f"| float32 (former; rounding not covered) | {precision['float32']:.3f} |",
        f"| float64, widened by the stated rounding bound (the certify stage) | {precision['float64']:.3f} |",
        "",
        f"Ratio float64 / float32: {precision['ratio']:.2f}x.",
        "",
        f"## Time of each {experiment} stage (Snakemake benchmark files)",
        "",
    ]
    if len(per_stage):
        lines += ["| stage | jobs | total s | slowest job s |", "|---|---|---|---|"]
        lines += [f"| {r.stage} | {r.count} | {r.sum:.1f} | {r.max:.1f} |" for r in per_stage.itertuples()]
        lines += ["", f"Sum over jobs: {stages['seconds'].sum():.1f} s (jobs run two at a time with --cores 2)."]
    else:
        lines.append(f"No benchmark files under {paths.benchmarks}: run `make run` first.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nnassure.bench.certify", description=__doc__.splitlines()[0])
    parser.add_argument("--eps", type=float, default=0.01)
    parser.add_argument("--norm", default="linf", choices=["linf", "l2"])
    parser.add_argument("--loop-samples", type=int, default=200)
    bench_main("certify", parser, lambda cfg, args: run(cfg, args.eps, args.norm, args.loop_samples), argv)


if __name__ == "__main__":
    main()
