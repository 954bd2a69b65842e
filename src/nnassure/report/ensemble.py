"""The ensemble paper's tables (Gross et al., Tables 1-6) from the per-row results, and their
comparison with the numbers the paper prints.

Cells follow the paper: a time in seconds or "TO" (no answer within the time limit); Val(A, P)
with two decimals, "robust" (no attack reaches alpha) or "-" (timeout). MaxMILP values carry "*"
when the solver proved its objective optimal. Our additions: "robust†" marks a proof that covers
only attacks of at most |A| deterministic attacks (|A| below Proposition 1's bound and alpha < 1),
"rejected" an attack that failed the float64 re-check (never shown as a value).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from nnassure.ensemble.benchmarks import selected_benchmarks
from nnassure.errors import InputFileError
from nnassure.paths import ExperimentPaths

# table id -> (paper key in benchmarks.yaml, title, kind)
TABLES = {
    "en_table1": ("table1_smt_vs_milp", "SMT versus MILP (main text, Table 1)", "smt"),
    "en_table2": ("table2_milp_vs_maxmilp", "MILP versus MaxMILP (main text, Table 2)", "maxmilp"),
    "en_table3": ("table3_attacker_comparison", "Attacker comparison (main text, Table 3)", "attackers"),
    "en_table4": ("table4_smt_vs_milp", "SMT versus MILP (appendix, Table 4)", "smt"),
    "en_table5": ("table5_milp_vs_maxmilp", "MILP versus MaxMILP (appendix, Table 5)", "maxmilp"),
    "en_table6": ("table6_attacker_comparison", "Attacker comparison (appendix, Table 6)", "attackers"),
}
BENCHMARK_COLUMNS = ["ID", "Name", "|C|", "|A|", "|X|", "dim", "alpha", "eps"]
LONG_COLUMNS = ["id", "method", "outcome", "value", "seconds", "optimal", "complete", "paper_outcome", "paper_value",
                "paper_time"]


def ensemble_outputs(cfg: DictConfig) -> list[Path]:
    """Every file the report_ensemble stage writes (the Snakefile's targets)."""
    tables = ExperimentPaths.from_config(cfg).tables
    return [tables / f"{t}.{ext}" for t in TABLES for ext in ("csv", "md", "tex", "compare.md")]


def load_rows(cfg: DictConfig) -> list[dict[str, Any]]:
    paths = ExperimentPaths.from_config(cfg)
    documents = []
    for benchmark in selected_benchmarks(cfg.ensemble):
        path = paths.ensemble_row(benchmark.id)
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputFileError(f"{path}: cannot read the ensemble row result ({exc}); rerun ensemble_row") from None
        document["paper"] = benchmark.paper
        documents.append(document)
    return documents


def outcome(record: dict[str, Any] | None) -> str:
    """attack | robust | timeout | rejected | boundary | missing."""
    if record is None:
        return "missing"
    verdict = record["verdict"]
    return "timeout" if verdict in ("timeout", "error") else verdict


def time_cell(record: dict[str, Any] | None) -> str:
    if record is None:
        return "n/a"
    if outcome(record) == "timeout" or record.get("seconds") is None:
        return "TO"
    return f"{record['seconds']:.2f}"


def value_cell(record: dict[str, Any] | None, star: bool = False) -> str:
    kind = outcome(record)
    if kind == "missing":
        return "n/a"
    assert record is not None
    if kind == "attack":
        return f"{record['value']:.2f}" + ("*" if star and record.get("optimal") else "")
    if kind == "robust":
        return "robust" if record.get("complete") else "robust†"
    if kind == "timeout":
        return "-"
    return kind  # rejected / boundary


def paper_outcome(time: str | None, value: str | None) -> str:
    if value is None:
        return "missing"
    if value.startswith("robust"):
        return "robust"
    if value == "-" or (time or "").strip("-") == "TO":
        return "timeout"
    return "attack"


def _benchmark_cells(document: dict[str, Any]) -> dict[str, Any]:
    b = document["benchmark"]
    return {"ID": b["id"], "Name": b["name"], "|C|": b["classifiers"], "|A|": b["attacks"], "|X|": b["points"],
            "dim": b["dim"], "alpha": f"{b['alpha']:g}", "eps": f"{b['eps']:g}"}


def table(documents: list[dict[str, Any]], table_id: str, milp_method: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(long, display) of one table over the rows the paper prints in it."""
    key, _, kind = TABLES[table_id]
    long_rows, display_rows = [], []
    for document in documents:
        paper = document["paper"].get(key)
        if paper is None:
            continue
        methods = document["methods"]
        milp, maxmilp, smt, baselines = (methods.get(milp_method), methods.get("maxmilp"), methods.get("smt"),
                                         methods.get("baselines"))
        cells = _benchmark_cells(document)
        if kind == "smt":
            cells |= {"SMT time": time_cell(smt), "SMT Val": value_cell(smt), "MILP time": time_cell(milp),
                      "MILP Val": value_cell(milp), "paper SMT": f"{paper['smt_time']} / {paper['smt_val']}",
                      "paper MILP": f"{paper['milp_time']} / {paper['milp_val']}"}
            compared = {"smt": smt, "milp": milp}
        elif kind == "maxmilp":
            cells |= {"MILP time": time_cell(milp), "MILP Val": value_cell(milp), "MaxMILP time": time_cell(maxmilp),
                      "MaxMILP Val": value_cell(maxmilp, star=True),
                      "paper MILP": f"{paper['milp_time']} / {paper['milp_val']}",
                      "paper MaxMILP": f"{paper['maxmilp_time']} / {paper['maxmilp_val']}"}
            compared = {"milp": milp, "maxmilp": maxmilp}
        else:
            done = baselines is not None and baselines.get("verdict") == "done"
            cells |= {"UA Val": f"{baselines['uniform']:.2f}" if done else "-",
                      "BDA Val": f"{baselines['best_deterministic']:.2f}" if done else "-",
                      "MaxMILP Val": value_cell(maxmilp, star=True),
                      "paper UA / BDA / MaxMILP": f"{paper['ua_val']} / {paper['bda_val']} / {paper['maxmilp_val']}"}
            compared = {"maxmilp": maxmilp}
            long_rows.append({"id": cells["ID"], "method": "uniform", "outcome": "attack" if done else "timeout",
                              "value": baselines["uniform"] if done else None, "seconds": None, "optimal": None,
                              "complete": None, "paper_outcome": "attack", "paper_value": paper["ua_val"],
                              "paper_time": None})
            long_rows.append({"id": cells["ID"], "method": "best_deterministic",
                              "outcome": "attack" if done else "timeout",
                              "value": baselines["best_deterministic"] if done else None, "seconds": None,
                              "optimal": None, "complete": None, "paper_outcome": "attack",
                              "paper_value": paper["bda_val"], "paper_time": None})
        for method, record in compared.items():
            paper_time = paper.get(f"{method}_time")
            paper_value = paper.get(f"{method}_val")
            long_rows.append({"id": cells["ID"], "method": method, "outcome": outcome(record),
                              "value": record.get("value") if record else None,
                              "seconds": record.get("seconds") if record else None,
                              "optimal": record.get("optimal") if record else None,
                              "complete": record.get("complete") if record else None,
                              "paper_outcome": paper_outcome(paper_time, paper_value), "paper_value": paper_value,
                              "paper_time": paper_time})
        display_rows.append(cells)
    display = pd.DataFrame(display_rows, columns=None if display_rows else BENCHMARK_COLUMNS).set_index("ID")
    # fixed columns, so that a table none of whose rows ran is still a readable (header-only) CSV
    return pd.DataFrame(long_rows, columns=LONG_COLUMNS), display


def _verdict(holds: bool) -> str:
    return "holds" if holds else "does not hold"


def compare(table_id: str, long: pd.DataFrame, time_limit: float, smt_time_limit: float) -> str:
    """The table's .compare.md: outcomes against the paper's, and the paper's findings decided."""
    _, title, kind = TABLES[table_id]
    lines = [f"# {table_id} compared with the paper's {title}", "",
             f"Our time limit: {time_limit:g} s per MILP call, {smt_time_limit:g} s for Z3 (the paper: 7200 s, "
             "hardware not stated). Our classifiers, data points and pixel scale are not the paper's (it gives none "
             "of them), so values are compared by outcome (attack / robust / timeout), not digit by digit.", ""]
    if long.empty:
        return "\n".join(lines + ["No row of this table was run (see ensemble.rows)."]) + "\n"
    methods = [m for m in ("smt", "milp", "maxmilp") if m in set(long["method"])]
    summary = []
    for method in methods:
        frame = long[long["method"] == method]
        ours = frame["outcome"].value_counts()
        paper = frame["paper_outcome"].value_counts()
        agree = int((frame["outcome"] == frame["paper_outcome"]).sum())
        summary.append({"method": method, "rows": len(frame),
                        "attack (ours/paper)": f"{ours.get('attack', 0)}/{paper.get('attack', 0)}",
                        "robust (ours/paper)": f"{ours.get('robust', 0)}/{paper.get('robust', 0)}",
                        "timeout (ours/paper)": f"{ours.get('timeout', 0)}/{paper.get('timeout', 0)}",
                        "same outcome": agree})
    lines += [pd.DataFrame(summary).to_markdown(index=False), "", "## Findings", ""]
    solved = {m: int(long[long["method"] == m]["outcome"].isin(["attack", "robust"]).sum()) for m in methods}
    if kind == "smt":
        milp_robust = int(((long["method"] == "milp") & (long["outcome"] == "robust")).sum())
        lines.append(f"- MILP solves far more instances than SMT within the time limit, robust ones included: "
                     f"MILP {solved['milp']} (robust {milp_robust}), SMT {solved['smt']} of "
                     f"{int((long['method'] == 'milp').sum())}: "
                     f"{_verdict(solved['milp'] > solved['smt'] and milp_robust > 0)}.")
    if kind == "maxmilp":
        lines.append(f"- MaxMILP answers (attack or robust) {solved['maxmilp']} rows, MILP {solved['milp']}.")
        values = long[(long["method"] == "maxmilp") & (long["outcome"] == "attack")]["value"]
        lines.append(f"- MaxMILP's attacks reach Val = 1 in {int((values >= 1 - 1e-9).sum())} of {len(values)} rows "
                     "(the paper: 1.00 wherever it found an attack).")
    if kind == "attackers":
        pivot = long.pivot_table(index="id", columns="method", values="value", aggfunc="first")
        if {"maxmilp", "uniform", "best_deterministic"} <= set(pivot.columns):
            complete = pivot.dropna(subset=["maxmilp", "uniform", "best_deterministic"])
            wins = complete[(complete["maxmilp"] >= 1 - 1e-9) & (complete["uniform"] < 1)
                            & (complete["best_deterministic"] < 1)]
            lines.append(f"- MaxMILP reaches value 1 where UA and BDA do not: {len(wins)} of {len(complete)} rows "
                         f"with all three values; {_verdict(len(complete) > 0 and len(wins) == len(complete))}.")
            beaten = int((complete["maxmilp"] + 1e-9 >= complete[["uniform", "best_deterministic"]].max(axis=1))
                         .sum())
            lines.append(f"- MaxMILP's attack is at least as good as both baselines in {beaten} of {len(complete)} "
                         "rows (it is optimal over randomized attacks, so it cannot be worse when solved).")
    disagreements = long[(long["outcome"] != long["paper_outcome"]) & long["method"].isin(methods)]
    if len(disagreements):
        lines += ["", "## Rows whose outcome differs from the paper's", ""]
        for row in disagreements.itertuples():
            lines.append(f"- row {row.id}, {row.method}: ours {row.outcome}, the paper {row.paper_outcome} "
                         f"({row.paper_time} s, {row.paper_value})")
    robust_partial = long[(long["outcome"] == "robust") & (long["complete"] == False)]  # noqa: E712
    if len(robust_partial):
        lines += ["", f"robust† ({len(robust_partial)} entries): no attack built from at most |A| deterministic "
                  "attacks reaches alpha; Proposition 1 needs (|X|+1)^|C| attacks for a full proof (alpha < 1)."]
    return "\n".join(lines) + "\n"
