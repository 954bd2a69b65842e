"""``make bench`` (ensemble part): MILP solve time per benchmark row on both backends, and
naive (interval) versus LiRPA-tightened big-M constants on the largest instances.

Writes results/bench/ensemble.md. The per-row times are those of the experiment's ensemble_row
jobs (``make run`` has just made them, with the experiment's time limit). A row the paper solved
but the run did not is solved again with HiGHS under the paper's own time for that row (capped by
``--cap``), so "solved within the paper's time" is measured, not assumed. Then the largest rows
(most network copies x inputs), and every row with a small enough eps for bounds over the ball to
matter, are solved with interval and with LiRPA big-M in one run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tqdm import tqdm

from nnassure.config import compose
from nnassure.ensemble.attack import find_attack
from nnassure.ensemble.benchmarks import selected_benchmarks
from nnassure.io import write_text
from nnassure.paths import ExperimentPaths
from nnassure.report.ensemble import outcome, paper_outcome
from nnassure.ensemble.data import data_source
from nnassure.ensemble.rows import load_row_inputs


def load_problem(cfg: Any, row: int) -> tuple[Any, Any]:
    e = cfg.ensemble
    benchmark = {b.id: b for b in selected_benchmarks(e)}[row]
    paths = ExperimentPaths.from_config(cfg)
    stems = [paths.ensemble_classifier_stem(benchmark.instance, c + 1) for c in range(benchmark.classifiers)]
    inputs = load_row_inputs(benchmark, paths.ensemble_instance_data(benchmark.instance),
                             data_source(benchmark, e.signs_per_class, e.seed), stems, e.seed)
    return benchmark, inputs.problem


def _paper_milp(benchmark: Any) -> tuple[str | None, str | None]:
    for key in ("table4_smt_vs_milp", "table5_milp_vs_maxmilp"):
        if key in benchmark.paper:
            return benchmark.paper[key]["milp_time"], benchmark.paper[key]["milp_val"]
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
    shown = "TO" if kind == "timeout" or seconds is None else f"{seconds:.2f} s"
    if record.get("backend") != record.get("requested_backend", record.get("backend")):
        shown += " (licence: HiGHS)"
    return f"{shown}, {kind}"


def run(experiment: str, cap: float, big_m_limit: float, largest: int, threads: int, sweep_eps: float = 10.0,
        sweep_limit: float = 60.0) -> str:
    cfg = compose([f"experiment={experiment}"])
    paths = ExperimentPaths.from_config(cfg)
    e = cfg.ensemble
    benchmarks = selected_benchmarks(e)
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
        document = json.loads(paths.ensemble_row(benchmark.id).read_text())
        methods = document["methods"]
        highs, gurobi = methods.get("milp_highs"), methods.get("milp_gurobi")
        paper_time, paper_value = _paper_milp(benchmark)
        paper_kind = paper_outcome(paper_time, paper_value)
        limit = _seconds(paper_time)
        within = "paper: no answer"
        if paper_kind in ("attack", "robust"):
            solved_by_paper += 1
            ours = highs if highs is not None and outcome(highs) in ("attack", "robust") else None
            if ours is None and limit is not None:
                problem = load_problem(cfg, benchmark.id)[1]
                result = find_attack(problem, "highs", min(limit, cap), "feasibility", e.bounds, e.margin, threads)
                ours = {"verdict": result.verdict, "seconds": result.seconds}
                highs_note = f" (again with {min(limit, cap):g} s: {result.verdict}, {result.seconds:.1f} s)"
            else:
                highs_note = ""
            ok = (ours is not None and outcome(ours) in ("attack", "robust") and limit is not None
                  and ours["seconds"] <= limit)
            met += ok
            within = ("yes" if ok else "no") + highs_note
        lines.append(f"| {benchmark.id} | {benchmark.name} | {benchmark.classifiers} | {benchmark.attacks} | "
                     f"{benchmark.points} | {benchmark.dim} | {benchmark.alpha:g} | {benchmark.eps:g} | "
                     f"{paper_time} s, {paper_value} | {_cell(highs)} | {_cell(gurobi)} | {within} |")
        copies = benchmark.classifiers * benchmark.attacks * benchmark.points
        sizes.append((copies * benchmark.height * benchmark.width, benchmark.id))
    lines += ["", f"Rows the paper solved: {solved_by_paper}; solved here within the paper's time: {met}.", ""]

    by_size = [row for _, row in sorted(sizes, reverse=True)[:largest]]
    lines += ["## Naive versus LiRPA-tightened big-M", "",
              f"HiGHS, feasibility with margin {e.margin:g} then the exact proof, one run per row and bound. First the "
              f"{largest} largest rows (network copies |C||A||X| x inputs; {big_m_limit:g} s limit), then every row "
              f"with eps <= {sweep_eps:g}, where bounds over the ball can make ReLUs stable ({sweep_limit:g} s limit; "
              "at eps 50-1000 both kinds leave every ReLU unstable).", "",
              "| ID | eps | big-M | verdict | seconds | unstable ReLUs | stable ReLUs | speed-up |",
              "|---|---|---|---|---|---|---|---|"]
    swept = [b.id for b in benchmarks if b.eps <= sweep_eps and b.id not in by_size]
    eps_of = {b.id: b.eps for b in benchmarks}
    speedups = []
    for row in tqdm(by_size + swept, desc="big-M"):
        limit = big_m_limit if row in by_size else sweep_limit
        problem = load_problem(cfg, row)[1]
        results = {bounds: find_attack(problem, "highs", limit, "feasibility", bounds, e.margin, threads)
                   for bounds in ("interval", "lirpa")}
        naive, tight = results["interval"], results["lirpa"]
        if tight.verdict == "timeout":
            speedup = "n/a (LiRPA timed out)"
        elif naive.verdict == "timeout":
            speedup = f"> {naive.seconds / tight.seconds:.1f}x (interval timed out)"
            speedups.append((naive.seconds / tight.seconds, row, True))
        else:
            speedup = f"{naive.seconds / tight.seconds:.1f}x"
            speedups.append((naive.seconds / tight.seconds, row, False))
        for bounds, result in results.items():
            lines.append(f"| {row} | {eps_of[row]:g} | {bounds} | {result.verdict} | {result.seconds:.2f} | "
                         f"{result.relus.get('unstable')} | {result.relus.get('stable')} | "
                         f"{speedup if bounds == 'lirpa' else ''} |")
    if speedups:
        best = max(speedups)
        lines += ["", f"Largest speed-up: row {best[1]}, {'more than ' if best[2] else ''}{best[0]:.1f}x. On the "
                  f"largest rows ({', '.join(map(str, by_size))}): "
                  + ", ".join(f"{s:.1f}x" for s, r, _ in speedups if r in by_size) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="quick")
    parser.add_argument("--cap", type=float, default=300.0, help="longest re-solve of an unsolved row (s)")
    parser.add_argument("--big-m-limit", type=float, default=300.0, help="time limit of each big-M solve (s)")
    parser.add_argument("--largest", type=int, default=2, help="rows compared with naive and tight big-M")
    parser.add_argument("--sweep-eps", type=float, default=10.0, help="also compare big-M on rows with eps <= this")
    parser.add_argument("--sweep-limit", type=float, default=60.0, help="time limit of each sweep solve (s)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("results/bench/ensemble.md"))
    args = parser.parse_args()
    report = run(args.experiment, args.cap, args.big_m_limit, args.largest, args.threads, args.sweep_eps,
                 args.sweep_limit)
    write_text(report, args.out)
    print(report)


if __name__ == "__main__":
    main()
