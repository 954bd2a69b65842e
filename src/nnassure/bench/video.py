"""What the video family's bounds cost, from the experiment's own ``video_bounds`` results.

``python -m nnassure.bench.video [key=value ...] [--clips N]`` reads the composed experiment's
per-clip results (``make run`` makes them) and writes <results_dir>/bench/video.md:

* seconds per clip for each bound (gradient search, A*, CROWN per norm), as the jobs measured them;
* the gradient of Eq. (8) by autograd versus the paper's finite differences (Eqs. 9-10: one
  forward pass per flow dimension), timed here on the first ``N`` analysed clips, with the
  cosine between the two gradients and the upper bound each search reaches (the paper: about
  30 minutes per frame for its gradient, Sec. 6.4);
* the CROWN lower bound against A*'s at equal time: A*'s bound from its trace at the second the
  CROWN bisection on A*'s subspace finished, and their ratio (the target: at least 10x).

Ratios are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from nnassure.bench._common import bench_main, require
from nnassure.paths import ExperimentPaths
from nnassure.video.clips import load_video_dataset
from nnassure.video.model import load_flow_lstm
from nnassure.video.upper import gradient_search, loss_gradient

TARGET_RATIO = 10.0


def _lower_at(trace: pd.DataFrame, seconds: float) -> float:
    """A bound's value at ``seconds`` of its run (the last trace point reached by then)."""
    reached = trace[trace["seconds"] <= seconds]
    return float(reached["value"].iloc[-1]) if len(reached) else float("nan")


def equal_time_rows(paths: ExperimentPaths, clips: int) -> list[dict[str, object]]:
    rows = []
    for clip in range(clips):
        summary = json.loads(require(paths.video_bounds(clip), "a clip's bounds", "video_bounds").read_text())
        trace = pd.read_parquet(require(paths.video_trace(clip), "a clip's bound traces", "video_bounds"))
        astar = trace[trace["bound"] == "astar"]
        sub = summary["lirpa"]["subspace"]
        at = _lower_at(astar, sub["seconds"]) if sub["seconds"] is not None else float("nan")
        radius = sub["radius"]
        rows.append({
            "clip": clip, "class": summary["true_class"],
            "upper s": summary["upper"]["seconds"], "A* s": summary["astar"]["seconds"],
            **{f"CROWN {n} s": summary["lirpa"][n]["seconds"] for n in summary["lirpa"] if n != "subspace"},
            "CROWN subspace s": sub["seconds"], "CROWN subspace": radius,
            "A* at equal time": at, "A* final": summary["astar"]["lower"],
            "ratio at equal time": radius / at if radius is not None and at > 0 else float("nan"),
        })
    return rows


def gradient_rows(cfg: DictConfig, paths: ExperimentPaths, clips: int) -> list[dict[str, object]]:
    """Autograd versus finite differences on the first ``clips`` analysed clips."""
    data = load_video_dataset(require(paths.video_clips, "the video clips", "video_data"))
    model = load_flow_lstm(require(paths.video_model_stem.with_suffix(".json"), "the video model",
                                   "video_train").with_suffix("")).model
    v = cfg.video
    rows = []
    for clip in range(clips):
        summary = json.loads(paths.video_bounds(clip).read_text())
        position = int(summary["test_index"])
        flow, label = np.asarray(data.flows[position], np.float64), int(data.labels[position])
        row: dict[str, object] = {"clip": clip}
        gradients = {}
        for method in ("autograd", "finite-difference"):
            started = time.perf_counter()
            gradients[method] = loss_gradient(model, flow, label, method)
            row[f"{method} gradient s"] = time.perf_counter() - started
            search = gradient_search(model, flow, label, v.norm, v.upper_iterations, v.upper_step, method, None,
                                     v.margin)
            row[f"{method} search s"] = search.seconds
            row[f"{method} upper"] = search.distance
        a, b = gradients["autograd"].ravel(), gradients["finite-difference"].ravel()
        row["cosine"] = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-300))
        row["FD / autograd (gradient)"] = row["finite-difference gradient s"] / row["autograd gradient s"]
        rows.append(row)
    return rows


def _markdown(rows: list[dict[str, object]]) -> str:
    return pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4g")


def run(cfg: DictConfig, gradient_clips: int) -> str:
    paths = ExperimentPaths.from_config(cfg)
    clips = int(cfg.video.clips)
    equal = equal_time_rows(paths, clips)
    ratios = np.array([r["ratio at equal time"] for r in equal], float)
    finite = ratios[np.isfinite(ratios)]
    met = len(finite) == len(ratios) and bool((finite >= TARGET_RATIO).all())
    gradients = gradient_rows(cfg, paths, min(gradient_clips, clips))
    return "\n".join([
        "# Video bounds: cost per clip, gradients, CROWN versus A*",
        "",
        f"Experiment `{cfg.grid.name}`, {clips} analysed clips, norm {cfg.video.norm}, {cfg.threads} torch threads.",
        "",
        "## Seconds per clip and the lower bounds at equal time",
        "",
        "A* at equal time is A*'s lower bound at the second CROWN's bisection on A*'s subspace ended "
        "(both bound the same subspace MSR).",
        "",
        _markdown(equal),
        "",
        f"Target: the CROWN lower bound at least {TARGET_RATIO:g}x A*'s at equal time on every clip: "
        f"**{'met' if met else 'not met'}** (ratios {', '.join(f'{r:.3g}' for r in ratios)}).",
        "",
        "## Eq. (8)'s gradient: autograd versus finite differences (Eqs. 9-10)",
        "",
        "One gradient of the margin loss at the clip's flow, and a whole gradient search with each "
        "(the paper: about 30 minutes per frame for its finite-difference gradient, Sec. 6.4).",
        "",
        _markdown(gradients),
        "",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nnassure.bench.video", description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=2, help="clips on which the two gradients are timed")
    bench_main("video", parser, lambda cfg, args: run(cfg, args.clips), argv)


if __name__ == "__main__":
    main()
