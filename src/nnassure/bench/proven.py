"""Time of the PROVEN bisection over the worst-case bisection, on one image model.

``python -m nnassure.bench.proven proven.model=<name> [key=value ...] [--samples N] [--repeats R]``
certifies ``N`` correctly classified test points of the composed experiment's model ``proven.model``
with ``threads`` torch threads and writes <results_dir>/bench/proven.md.

Both bisections run on the same points, model and bounded module, to the same relative tolerance;
each step is one batched auto_LiRPA call. The paper says the probabilistic certificate comes
with almost no overhead; the target is a PROVEN radius at one confidence level for at most 1.2x
the time of the worst-case radius.

Which ratio is judged: the proven stage warm-starts PROVEN's bisection from the worst-case eps
(a radius certified in the worst case is certified by PROVEN too, so the search can start
there). That warm bisection is short, but it can only start once the worst-case bisection has
been paid for, so its time over the worst case's is not a price anyone pays for a PROVEN radius.
What a PROVEN radius costs on its own is the cold bisection, from the same [eps_min, eps_max]
as the worst case's, and the verdict is on that ratio. The report also gives what the stage pays
for both radii (worst case, then warm PROVEN) over the worst case alone, and the warm part alone.

It also gives the cost of sound float64 linear bounds (float64 CROWN, tested at Theorem 3.1's
level a = the stated rounding bound) over the former float32 ones: one evaluation of the
Hoeffding risk of every point at its worst-case eps with each engine (the same inputs, best of
the repeats), and their ratio, reported, never asserted.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from nnassure.bench._common import bench_main, require
from nnassure.certify.bounds import BoundEngine
from nnassure.config import parse_model_id
from nnassure.errors import ConfigError
from nnassure.paths import ExperimentPaths
from nnassure.proven.bisection import BisectionSettings, Criterion, RiskEvaluator, proven_eps, worst_case_eps
from nnassure.proven.experiment import bisection_settings, load_proven_inputs

TARGET_RATIO = 1.2


def float_cost(network: torch.nn.Module, x: np.ndarray, predicted: np.ndarray, outputs: int, eps: np.ndarray,
               settings: BisectionSettings, repeats: int) -> dict[str, float]:
    """Seconds of one RiskEvaluator pass (Hoeffding risk of every row of ``x`` at its ``eps``)
    with a float32 and with a float64 CROWN engine (build excluded, best of ``repeats``), and
    their ratio float64 / float32."""
    rows, keys = np.arange(len(x)), np.full(len(x), "hoeffding")
    seconds = {}
    for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        evaluator = RiskEvaluator(BoundEngine(network, x.shape[1], relu_relaxation="crown", dtype=dtype), x, predicted,
                                  outputs, settings)
        times = []
        for _ in range(max(repeats, 1)):
            started = time.perf_counter()
            evaluator(rows, eps, keys)
            times.append(time.perf_counter() - started)
        seconds[name] = min(times)
    seconds["ratio"] = seconds["float64"] / seconds["float32"]
    return seconds


def _timed(function: Callable[..., Any], evaluator: RiskEvaluator, *args: object) -> tuple[float, int, Any]:
    evaluator.calls = 0
    started = time.perf_counter()
    result = function(evaluator, *args)
    return time.perf_counter() - started, evaluator.calls, result


def verdict(worst_seconds: float, cold_seconds: float) -> str:
    """``met`` iff a PROVEN radius from scratch takes at most TARGET_RATIO x the worst-case radius."""
    return "met" if cold_seconds <= TARGET_RATIO * worst_seconds else "not met"


def run(cfg: DictConfig, samples: int, repeats: int) -> str:
    """The report (Markdown) for the composed config ``cfg``."""
    if cfg.proven.model is None:
        raise ConfigError("proven.model is not set: name the model to time, e.g. proven.model=digits_relu_4x128")
    model_id = parse_model_id(cfg.proven.model, "proven.model")
    paths = ExperimentPaths.from_config(cfg)
    data_file = require(paths.image_dataset(model_id.dataset), f"image data set {model_id.dataset}",
                        "the images stage")
    stem = paths.classifier_stem(model_id.name)
    require(stem.with_suffix(".safetensors"), f"model {model_id.name}", "the train_classifier stage")
    inputs = load_proven_inputs(data_file, stem, model_id, samples, cfg.proven.seed)
    model, x, predicted, chosen = inputs.model, inputs.x, inputs.predictions, inputs.chosen
    settings = bisection_settings(cfg.proven)
    engine = BoundEngine(model.verification_network(), x.shape[1], relu_relaxation="crown")
    evaluator = RiskEvaluator(engine, x[chosen], predicted[chosen], model.spec.outputs, settings)
    gammas = list(cfg.proven.gammas)
    one = [Criterion("hoeffding", "bounded", gammas[0])]
    every = [Criterion("hoeffding", "bounded", g) for g in gammas]
    rows = []
    for _ in range(repeats):
        t_worst, c_worst, worst = _timed(worst_case_eps, evaluator)
        t_cold, c_cold, _ = _timed(proven_eps, evaluator, one, None)
        t_warm, c_warm, found = _timed(proven_eps, evaluator, one, worst)
        t_all, c_all, _ = _timed(proven_eps, evaluator, every, worst)
        rows.append((t_worst, c_worst, t_cold, c_cold, t_warm, c_warm, t_all, c_all, t_worst + t_warm))
    # At the worst-case eps (eps_min where none was found): radii where the bounds matter.
    precision = float_cost(model.verification_network(), x[chosen], predicted[chosen], model.spec.outputs,
                           np.maximum(worst, settings.eps_min), settings, repeats)
    t = np.array(rows, dtype=float)
    best = t.min(axis=0)  # the least disturbed repeat of each measurement
    cold, warm, both = best[2] / best[0], best[4] / best[0], best[8] / best[0]
    gain = 100 * (found["certified_eps"].mean() / worst.mean() - 1)
    level = f"{gammas[0] * 100:g}%"
    lines = [
        "# PROVEN benchmark", "",
        f"Model {model_id.name} ({cfg.grid.name}), {samples} correctly classified test points, CROWN relaxation, "
        f"bisection tolerance {cfg.proven.bisection_tolerance:g} (relative), {torch.get_num_threads()} torch "
        f"thread(s), best of {repeats} repeat(s).", "",
        "| bisection | seconds | auto_LiRPA calls | ratio to worst case |", "|---|---|---|---|",
        f"| worst case (from [eps_min, eps_max]) | {best[0]:.2f} | {int(best[1])} | 1.00 |",
        f"| PROVEN at {level}, from [eps_min, eps_max]: a PROVEN radius on its own | {best[2]:.2f} | {int(best[3])} | "
        f"{cold:.2f} |",
        f"| PROVEN at {level}, warm from the worst-case eps (the stage's second step) | {best[4]:.2f} | "
        f"{int(best[5])} | {warm:.2f} |",
        f"| worst case, then PROVEN at {level} warm: the stage's cost of both radii | {best[8]:.2f} | "
        f"{int(best[1] + best[5])} | {both:.2f} |",
        f"| PROVEN at all {len(gammas)} levels, batched, warm from the worst-case eps | {best[6]:.2f} | "
        f"{int(best[7])} | {best[6] / best[0]:.2f} |", "",
        f"Target: a PROVEN radius at one level for at most {TARGET_RATIO:g}x the worst-case radius, judged on the "
        f"cold ratio (the warm start needs the worst-case bisection first): {verdict(best[0], best[2])} "
        f"({cold:.2f}x). The stage pays {both:.2f}x the worst case for both radii; the warm step alone is "
        f"{warm:.2f}x.",
        f"Mean worst-case eps {worst.mean():.5f}, PROVEN {level} eps {found['certified_eps'].mean():.5f} "
        f"(+{gain:.1f}%).", "",
        "## Cost of sound float64 linear bounds", "",
        f"One Hoeffding-risk evaluation of the {samples} points at their worst-case eps (one batched CROWN "
        f"call per {settings.batch_size} points), build excluded, best of {max(repeats, 1)}:", "",
        "| engine | seconds |", "|---|---|",
        f"| float32 (former; rounding not covered) | {precision['float32']:.3f} |",
        f"| float64, tested at level a = the stated rounding bound (the proven stage) | {precision['float64']:.3f} |",
        "",
        f"Ratio float64 / float32: {precision['ratio']:.2f}x.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nnassure.bench.proven", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    bench_main("proven", parser, lambda cfg, args: run(cfg, args.samples, args.repeats), argv)


if __name__ == "__main__":
    main()
