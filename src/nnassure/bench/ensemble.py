"""MILP solve time per benchmark row on both backends against the paper's, the MILP with and without
its sound shortcuts (the primal heuristic and the CROWN pre-check), and naive (interval) versus
LiRPA-tightened big-M constants.

``python -m nnassure.bench.ensemble [key=value ...] [--cap S] [--big-m-limit S] [--largest N]
[--sweep-eps E] [--sweep-limit S]`` reads the composed experiment's row results (ensemble/rows/
<id>.json of the ensemble_row jobs, with the experiment's time limit), re-solves with ``threads``
solver threads, and writes <results_dir>/bench/ensemble.md.

A row the paper solved but the run did not is solved again with HiGHS under the paper's own time
for that row (capped by ``--cap``), so "solved within the paper's time" is measured, not assumed;
the time judged is that of a full solve under that limit. Then the largest rows (most network
copies x inputs), and every row with a small enough eps for bounds over the ball to matter, are
solved with interval and with LiRPA big-M in one run. Every row is also solved with the bare
MILP (no heuristic, no pre-check) under ``--compare-limit`` beside the MILP with both, as the
stage runs it. The speed-ups are summarised by their
median over every row compared, beside the largest: the largest alone would report the best
case as the effect.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from tqdm import tqdm

from nnassure.bench._common import bench_main, require
from nnassure.ensemble.attack import find_attack
from nnassure.ensemble.benchmarks import Benchmark, selected_benchmarks
from nnassure.ensemble.data import data_source
from nnassure.ensemble.encoding import AttackProblem
from nnassure.ensemble.precheck import RowShortcuts
from nnassure.ensemble.rows import load_row_inputs
from nnassure.errors import InputFileError
from nnassure.paths import ExperimentPaths
from nnassure.report.ensemble import outcome, paper_outcome
from nnassure.report.paper_numbers import paper_table
from nnassure.stages.ensemble_row import settings_from


def _problem(cfg: DictConfig, benchmark: Benchmark) -> AttackProblem:
    """The row's attack problem from the instance's data file and classifiers, as ensemble_row builds it."""
    e = cfg.ensemble
    paths = ExperimentPaths.from_config(cfg)
    stems = [paths.ensemble_classifier_stem(benchmark.instance, c + 1) for c in range(benchmark.classifiers)]
    return load_row_inputs(benchmark, paths.ensemble_instance_data(benchmark.instance),
                           data_source(benchmark, e.signs_per_class, e.seed), stems, e.seed).problem


def _row_result(path: Path) -> dict[str, Any]:
    require(path, "row result", "the ensemble_row stage")
    try:
        return json.loads(path.read_text())["methods"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputFileError(f"{path}: not a row result of ensemble_row ({type(exc).__name__}: {exc})") from None


def _paper_milp(benchmark: Any) -> tuple[str | None, str | None]:
    """The paper's MILP time and value for the row, as printed (Table 4 has every row)."""
    for table in ("table4", "table5"):
        printed = paper_table("ensemble-robustness-milp", table).set_index("id")
        if benchmark.id in printed.index:
            return printed.loc[benchmark.id, "milp_time"], printed.loc[benchmark.id, "milp_val"]
    return None, None


def _seconds(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _cell(record: dict[str, Any] | None) -> str:
    if record is None:
        return "not run"
    kind = outcome(record)
    seconds = record.get("seconds")
    if kind == "error":
        return "ERR, error: " + str(record.get("note", ""))[:80]
    shown = "TO" if kind == "timeout" or seconds is None else f"{seconds:.2f} s"
    if record.get("backend") != record.get("requested_backend", record.get("backend")):
        shown += " (licence: HiGHS)"
    by = record.get("decided_by")
    return f"{shown}, {kind}" + (f" ({by})" if by and by != "solver" and kind in ("attack", "robust") else "")


def _miss_reason(ours: dict[str, Any] | None, limit: float | None) -> str:
    """Why a row the paper solved is not solved here within its time."""
    if ours is None:
        return "no result"
    kind = outcome(ours)
    if kind not in ("attack", "robust"):
        return f"{kind} ({str(ours.get('note', ''))[:60]})"
    return f"{ours['seconds']:.2f} s > the paper's {limit:g} s"


def _shortcut_comparison(cfg: DictConfig, benchmarks: list[Benchmark], limit: float, threads: int) -> list[str]:
    """Every row's feasibility MILP on HiGHS bare and with the heuristic and pre-check, one run each."""
    e = cfg.ensemble
    accelerators = settings_from(cfg).accelerators
    lines = ["## The MILP with and without the heuristic and the pre-check", "",
             f"HiGHS, feasibility (margin {e.margin:g}, then the exact proof), {limit:g} s limit, one run per row: the "
             "bare MILP of the paper, and the same after the primal heuristic (an attack, float64-checked, decides "
             "at once) and the CROWN pre-check (a bound on Val below alpha proves robustness for every "
             "randomized attack). 'same verdict' compares decided verdicts only.", "",
             "| ID | eps | alpha | bare MILP | with shortcuts | decided by | same verdict | speed-up |",
             "|---|---|---|---|---|---|---|---|"]
    speedups, disagree, bare_decided = [], 0, 0
    for benchmark in tqdm(benchmarks, desc="shortcuts"):
        problem = _problem(cfg, benchmark)
        bare = find_attack(problem, "highs", limit, "feasibility", e.bounds, e.margin, threads)
        fast = find_attack(problem, "highs", limit, "feasibility", e.bounds, e.margin, threads,
                           shortcuts=RowShortcuts(problem, e.margin, accelerators))
        bare_decided += bare.verdict in ("attack", "robust")
        decided = {bare.verdict, fast.verdict} <= {"attack", "robust"}
        same = ("yes" if bare.verdict == fast.verdict else "NO") if decided else "n/a"
        disagree += same == "NO"
        if fast.verdict in ("attack", "robust"):
            ratio = bare.seconds / max(fast.seconds, 1e-3)
            lower = bare.verdict not in ("attack", "robust")
            speedups.append((ratio, lower))
            speedup = ("> " if lower else "") + f"{ratio:.1f}x"
        else:
            speedup = "n/a"
        lines.append(f"| {benchmark.id} | {benchmark.eps:g} | {benchmark.alpha:g} | {bare.seconds:.2f} s, "
                     f"{bare.verdict} | {fast.seconds:.2f} s, {fast.verdict} | {fast.decided_by} | {same} | "
                     f"{speedup} |")
    if speedups:
        median = statistics.median(r for r, _ in speedups)
        lines += ["", f"Decided by the bare MILP: {bare_decided} of {len(benchmarks)} rows; with the shortcuts: "
                  f"{len(speedups)}; median speed-up "
                  f"{median:.1f}x ({sum(lower for _, lower in speedups)} of them lower bounds: the bare MILP timed "
                  f"out). Rows where both decided and the verdicts differ: {disagree}."]
    return lines


def run(cfg: DictConfig, cap: float, big_m_limit: float, largest: int, sweep_eps: float = 10.0,
        sweep_limit: float = 60.0, compare_limit: float = 20.0) -> str:
    """The report (Markdown) for the composed config ``cfg``."""
    paths = ExperimentPaths.from_config(cfg)
    e = cfg.ensemble
    accelerators = settings_from(cfg).accelerators
    experiment, threads = cfg.grid.name, int(cfg.threads)
    benchmarks = selected_benchmarks(e)
    # Every row's result is read before anything is solved: a missing one stops the benchmark at
    # once, not after minutes of solves.
    results = {b.id: _row_result(paths.ensemble_row(b.id)) for b in benchmarks}
    lines = ["# Ensemble benchmark", "",
             f"Experiment {experiment}: every row's MILP (feasibility, margin {e.margin:g}, {e.bounds} big-M) on "
             f"each backend with a {e.time_limit:g} s limit, as the ensemble_row jobs ran it; {threads} solver "
             "thread(s). Gurobi's pip licence stops at 2000 variables or constraints: larger models are solved by "
             "HiGHS (marked). 'within the paper's time': our HiGHS time <= the paper's Gurobi time for that row; "
             f"rows the run left unsolved were solved again with the paper's time as the limit (at most {cap:g} s).",
             "", "| ID | name | |C| | |A| | |X| | dim | alpha | eps | paper MILP | HiGHS | Gurobi | "
             "within the paper's time |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    met = solved_by_paper = 0
    sizes = []
    for benchmark in tqdm(benchmarks, desc="rows"):
        methods = results[benchmark.id]
        highs, gurobi = methods.get("milp_highs"), methods.get("milp_gurobi")
        paper_time, paper_value = _paper_milp(benchmark)
        paper_kind = paper_outcome(paper_time, paper_value)
        limit = _seconds(paper_time)
        within = "paper: no answer"
        if paper_kind in ("attack", "robust"):
            solved_by_paper += 1
            ours = highs if highs is not None and outcome(highs) in ("attack", "robust") else None
            if ours is None and limit is not None:
                problem = _problem(cfg, benchmark)
                result = find_attack(problem, "highs", min(limit, cap), "feasibility", e.bounds, e.margin, threads,
                                     shortcuts=RowShortcuts(problem, e.margin, accelerators))
                ours = {"verdict": result.verdict, "seconds": result.seconds, "note": result.note}
                highs_note = f" (again with {min(limit, cap):g} s: {result.verdict}, {result.seconds:.1f} s)"
            else:
                highs_note = ""
            ok = (ours is not None and outcome(ours) in ("attack", "robust") and limit is not None
                  and ours["seconds"] <= limit)
            met += ok
            within = ("yes" if ok else "no, " + _miss_reason(ours, limit)) + highs_note
        lines.append(f"| {benchmark.id} | {benchmark.name} | {benchmark.classifiers} | {benchmark.attacks} | "
                     f"{benchmark.points} | {benchmark.dim} | {benchmark.alpha:g} | {benchmark.eps:g} | "
                     f"{paper_time} s, {paper_value} | {_cell(highs)} | {_cell(gurobi)} | {within} |")
        copies = benchmark.classifiers * benchmark.attacks * benchmark.points
        sizes.append((copies * benchmark.height * benchmark.width, benchmark.id))
    lines += ["", f"Rows the paper solved: {solved_by_paper}; solved here within the paper's time: {met}. "
              "(A row is solved when the verdict is decided, attack or robust; where ours differs from the "
              "paper's, the table shows both.)", ""]
    lines += _shortcut_comparison(cfg, benchmarks, compare_limit, threads) + [""]

    by_size = [row for _, row in sorted(sizes, reverse=True)[:largest]]
    lines += ["## Naive versus LiRPA-tightened big-M", "",
              f"HiGHS, feasibility with margin {e.margin:g} then the exact proof, one run per row and bound. First the "
              f"{largest} largest rows (network copies |C||A||X| x inputs; {big_m_limit:g} s limit), then every row "
              f"with eps <= {sweep_eps:g}, where bounds over the ball can make ReLUs stable ({sweep_limit:g} s limit; "
              "at eps 50-1000 both kinds leave every ReLU unstable).", "",
              "| ID | eps | big-M | verdict | seconds | unstable ReLUs | stable ReLUs | speed-up |",
              "|---|---|---|---|---|---|---|---|"]
    swept = [b.id for b in benchmarks if b.eps <= sweep_eps and b.id not in by_size]
    by_id = {b.id: b for b in benchmarks}
    speedups = []
    for row in tqdm(by_size + swept, desc="big-M"):
        limit = big_m_limit if row in by_size else sweep_limit
        problem = _problem(cfg, by_id[row])
        solved = {bounds: find_attack(problem, "highs", limit, "feasibility", bounds, e.margin, threads)
                   for bounds in ("interval", "lirpa")}
        naive, tight = solved["interval"], solved["lirpa"]
        if tight.verdict == "timeout":
            speedup = "n/a (LiRPA timed out)"
        elif naive.verdict == "timeout":
            speedup = f"> {naive.seconds / tight.seconds:.1f}x (interval timed out)"
            speedups.append((naive.seconds / tight.seconds, row, True))
        else:
            speedup = f"{naive.seconds / tight.seconds:.1f}x"
            speedups.append((naive.seconds / tight.seconds, row, False))
        for bounds, result in solved.items():
            lines.append(f"| {row} | {by_id[row].eps:g} | {bounds} | {result.verdict} | {result.seconds:.2f} | "
                         f"{result.relus.get('unstable')} | {result.relus.get('stable')} | "
                         f"{speedup if bounds == 'lirpa' else ''} |")
    if speedups:
        best = max(speedups)
        median = statistics.median(s for s, _, _ in speedups)
        slower = sum(s < 1.0 for s, _, _ in speedups)
        lines += ["", f"Median speed-up of LiRPA over interval big-M over the {len(speedups)} rows compared: "
                  f"{median:.2f}x ({slower} row(s) slower with LiRPA; a speed-up where interval timed out is a "
                  f"lower bound). Largest: row {best[1]}, {'more than ' if best[2] else ''}{best[0]:.1f}x. On the "
                  f"largest rows ({', '.join(map(str, by_size))}): "
                  + ", ".join(f"{s:.1f}x" for s, r, _ in speedups if r in by_size) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nnassure.bench.ensemble", description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=float, default=300.0, help="longest re-solve of an unsolved row (s)")
    parser.add_argument("--big-m-limit", type=float, default=300.0, help="time limit of each big-M solve (s)")
    parser.add_argument("--largest", type=int, default=2, help="rows compared with naive and tight big-M")
    parser.add_argument("--sweep-eps", type=float, default=10.0, help="also compare big-M on rows with eps <= this")
    parser.add_argument("--sweep-limit", type=float, default=60.0, help="time limit of each sweep solve (s)")
    parser.add_argument("--compare-limit", type=float, default=20.0,
                        help="time limit of each solve with and without the shortcuts (s)")
    bench_main("ensemble", parser, lambda cfg, args: run(cfg, args.cap, args.big_m_limit, args.largest,
                                                         args.sweep_eps, args.sweep_limit, args.compare_limit), argv)


if __name__ == "__main__":
    main()
