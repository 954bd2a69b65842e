"""The ensemble paper's tables (Gross et al., Tables 1-6) from the per-row results, and their
comparison with the numbers the paper prints (read from the package data, report.paper_numbers).

Cells follow the paper: a time in seconds or "TO" (no answer within the time limit); Val(A, P)
with two decimals, "robust" (no attack reaches alpha) or "-" (timeout). MaxMILP values carry "*"
when the solver proved its objective optimal. Our additions: "robust†" marks a proof that covers
only attacks of at most |A| deterministic attacks (|A| below Proposition 1's bound and alpha < 1),
"rejected" an attack that failed the float64 re-check (never shown as a value), and "ERR" a
solver that failed (its message is in the row result's note): an error is not a timeout, so it
never counts as agreeing with a paper's "TO".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from nnassure.ensemble.benchmarks import selected_benchmarks
from nnassure.errors import InputFileError
from nnassure.paths import ExperimentPaths
from nnassure.report import catalog
from nnassure.report.findings import Finding, findings_markdown, sanity
from nnassure.report.paper_numbers import paper_table

PAPER = "ensemble-robustness-milp"
# table id -> (the paper's table in the package data, title, kind)
TABLES = {
    "en_table1": ("table1", "SMT versus MILP (main text, Table 1)", "smt"),
    "en_table2": ("table2", "MILP versus MaxMILP (main text, Table 2)", "maxmilp"),
    "en_table3": ("table3", "Attacker comparison (main text, Table 3)", "attackers"),
    "en_table4": ("table4", "SMT versus MILP (appendix, Table 4)", "smt"),
    "en_table5": ("table5", "MILP versus MaxMILP (appendix, Table 5)", "maxmilp"),
    "en_table6": ("table6", "Attacker comparison (appendix, Table 6)", "attackers"),
}
BENCHMARK_COLUMNS = ["ID", "Name", "|C|", "|A|", "|X|", "dim", "alpha", "eps"]
LONG_COLUMNS = ["id", "method", "outcome", "value", "seconds", "optimal", "complete", "note"]
ERROR_CELL = "ERR"
ONE = 1 - 1e-9  # Val = 1 up to float rounding


def ensemble_outputs(cfg: DictConfig) -> list[Path]:
    """Every file the report_ensemble stage writes (the Snakefile's targets)."""
    return catalog.family_files(cfg, "ensemble")


def load_rows(cfg: DictConfig) -> list[dict[str, Any]]:
    paths = ExperimentPaths.from_config(cfg)
    documents = []
    for benchmark in selected_benchmarks(cfg.ensemble):
        path = paths.ensemble_row(benchmark.id)
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputFileError(f"{path}: cannot read the ensemble row result ({exc}); rerun ensemble_row") from None
        documents.append(document)
    return documents


def outcome(record: dict[str, Any] | None) -> str:
    """attack | robust | timeout | error | rejected | boundary | missing."""
    if record is None:
        return "missing"
    return str(record["verdict"])


def time_cell(record: dict[str, Any] | None) -> str:
    if record is None:
        return "n/a"
    if outcome(record) == "error":
        return ERROR_CELL
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
    if kind == "error":
        return ERROR_CELL
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
    """(long, display) of one table over the rows the paper prints in it. Only our results: the
    paper's cells are set beside them in the .compare.md (:func:`with_paper`)."""
    key, _, kind = TABLES[table_id]
    printed = set(paper_table(PAPER, key)["id"])
    long_rows, display_rows = [], []
    for document in documents:
        if int(document["benchmark"]["id"]) not in printed:
            continue  # the paper does not print this row in this table
        methods = document["methods"]
        milp, maxmilp, smt, baselines = (methods.get(milp_method), methods.get("maxmilp"), methods.get("smt"),
                                         methods.get("baselines"))
        cells = _benchmark_cells(document)
        if kind == "smt":
            cells |= {"SMT time": time_cell(smt), "SMT Val": value_cell(smt), "MILP time": time_cell(milp),
                      "MILP Val": value_cell(milp)}
            compared = {"smt": smt, "milp": milp}
        elif kind == "maxmilp":
            cells |= {"MILP time": time_cell(milp), "MILP Val": value_cell(milp), "MaxMILP time": time_cell(maxmilp),
                      "MaxMILP Val": value_cell(maxmilp, star=True)}
            compared = {"milp": milp, "maxmilp": maxmilp}
        else:
            verdict = "missing" if baselines is None else str(baselines.get("verdict"))
            done = verdict == "done"
            empty = {"error": ERROR_CELL, "missing": "n/a"}.get(verdict, "-")
            cells |= {"UA Val": f"{baselines['uniform']:.2f}" if done else empty,
                      "BDA Val": f"{baselines['best_deterministic']:.2f}" if done else empty,
                      "MaxMILP Val": value_cell(maxmilp, star=True)}
            compared = {"maxmilp": maxmilp}
            for method in ("uniform", "best_deterministic"):
                long_rows.append({"id": cells["ID"], "method": method, "outcome": "attack" if done else verdict,
                                  "value": baselines[method] if done else None, "seconds": None, "optimal": None,
                                  "complete": None, "note": (baselines or {}).get("note", "")})
        for method, record in compared.items():
            long_rows.append({"id": cells["ID"], "method": method, "outcome": outcome(record),
                              "value": record.get("value") if record else None,
                              "seconds": record.get("seconds") if record else None,
                              "optimal": record.get("optimal") if record else None,
                              "complete": record.get("complete") if record else None,
                              "note": (record or {}).get("note", "")})
        display_rows.append(cells)
    display = pd.DataFrame(display_rows, columns=None if display_rows else BENCHMARK_COLUMNS).set_index("ID")
    # fixed columns, so that a table none of whose rows ran is still a readable (header-only) CSV
    return pd.DataFrame(long_rows, columns=LONG_COLUMNS), display


# our method -> the paper's (time, value) columns
PAPER_COLUMNS = {"smt": ("smt_time", "smt_val"), "milp": ("milp_time", "milp_val"),
                 "maxmilp": ("maxmilp_time", "maxmilp_val"), "uniform": (None, "ua_val"),
                 "best_deterministic": (None, "bda_val")}


def with_paper(table_id: str, long: pd.DataFrame) -> pd.DataFrame:
    """``long`` with the paper's printed cells and outcome for each row and method beside ours."""
    printed = paper_table(PAPER, TABLES[table_id][0]).set_index("id")
    paired = long.copy()
    times, values = [], []
    for row in long.itertuples():
        time_column, value_column = PAPER_COLUMNS[row.method]
        # Tables 3 and 6 print MaxMILP's value without its time
        times.append(printed.loc[row.id, time_column] if time_column in printed.columns else None)
        values.append(printed.loc[row.id, value_column])
    paired["paper_time"], paired["paper_value"] = times, values
    paired["paper_outcome"] = [paper_outcome(t, v) for t, v in zip(times, values, strict=True)]
    return paired


def _our_cell(row: Any) -> str:
    record = {"verdict": row.outcome, "value": row.value, "seconds": row.seconds, "optimal": row.optimal,
              "complete": row.complete}
    if row.outcome == "missing":
        return "n/a"
    if row.method in ("uniform", "best_deterministic"):
        return f"{row.value:.2f}" if row.outcome == "attack" else value_cell(record)
    return f"{time_cell(record)} / {value_cell(record, star=row.method == 'maxmilp')}"


def side_by_side(paired: pd.DataFrame) -> pd.DataFrame:
    """One line per row and method: our cell and the paper's, as printed ("time / Val")."""
    return pd.DataFrame({"ID": paired["id"], "method": paired["method"],
                         "ours": [_our_cell(r) for r in paired.itertuples()],
                         "paper": [v if t is None else f"{t} / {v}" for t, v in
                                   zip(paired["paper_time"], paired["paper_value"], strict=True)],
                         "same outcome": np.where(paired["outcome"] == paired["paper_outcome"], "yes", "no")})


def _smt_findings(long: pd.DataFrame) -> list[Finding]:
    """Sec. 6.2, "SMT versus MILP": MILP solves most benchmarks, robust ones included; SMT does not
    terminate on any robust ensemble."""
    milp, smt = long[long["method"] == "milp"].set_index("id"), long[long["method"] == "smt"].set_index("id")
    solved = {m: int(f["outcome"].isin(["attack", "robust"]).sum()) for m, f in (("milp", milp), ("smt", smt))}
    milp_robust = int((milp["outcome"] == "robust").sum())
    paper_robust = int((milp["paper_outcome"] == "robust").sum())
    evidence = (f"answered within the limit: MILP {solved['milp']} (robust {milp_robust}), SMT {solved['smt']} "
                f"of {len(milp)} rows; the paper's MILP proved {paper_robust} robust")
    claim = "MILP solves more instances than SMT within the time limit, robust ones included (Sec. 6.2)"
    if milp_robust == 0 and paper_robust == 0:
        more = Finding(claim, None, evidence + "; no row of this selection is robust")
    else:
        more = Finding(claim, solved["milp"] > solved["smt"] and milp_robust > 0, evidence)
    robust_ids = milp.index[milp["outcome"] == "robust"]
    on_robust = smt.loc[smt.index.intersection(robust_ids), "outcome"]
    decided = on_robust[on_robust.isin(["attack", "robust", "timeout"])]
    errors = int((on_robust == "error").sum())
    never = "SMT does not terminate on robust ensembles: it times out wherever MILP proves robustness (Sec. 6.2)"
    if decided.empty:
        terminate = Finding(never, None, "MILP proved no row robust" if not len(robust_ids) else
                            f"SMT failed (ERR) on all {errors} rows MILP proved robust")
    else:
        terminate = Finding(never, bool((decided == "timeout").all()),
                            f"SMT on the {len(decided)} rows MILP proved robust: "
                            + ", ".join(f"{k} {v}" for k, v in decided.value_counts().items())
                            + (f"; {errors} more SMT errors (ERR)" if errors else ""))
    return [more, terminate]


def _maxmilp_findings(long: pd.DataFrame) -> list[Finding]:
    """Sec. 6.2, "MILP versus MaxMILP": MaxMILP's value is always 1; on robust ensembles it
    sometimes needs less time."""
    milp = long[long["method"] == "milp"].set_index("id")
    maxmilp = long[long["method"] == "maxmilp"].set_index("id")
    values = maxmilp.loc[maxmilp["outcome"] == "attack", "value"].astype(float)
    always = ("MaxMILP's attacks reach Val = 1 (Sec. 6.2: 'The misclassification value for the MaxMILP solver "
              "is always 1')")
    findings = [Finding(always, bool((values >= ONE).all()) if len(values) else None,
                        f"Val = 1 in {int((values >= ONE).sum())} of {len(values)} rows with a MaxMILP attack")]
    both = milp.index.intersection(maxmilp.index)
    answered = [i for i in both if milp.loc[i, "outcome"] in ("attack", "robust")
                and maxmilp.loc[i, "outcome"] in ("attack", "robust")]
    disagree = [i for i in answered if (milp.loc[i, "outcome"] == "robust") != (maxmilp.loc[i, "outcome"] == "robust")]
    # Both encode the same constraints (Eqs. 3-5) and differ only in the objective, so where both
    # answer they must agree on whether an attack exists.
    findings.append(sanity("MILP and MaxMILP agree on robustness wherever both answer (same constraints)",
                           not disagree if answered else None,
                           f"{len(answered) - len(disagree)} of {len(answered)} rows agree"
                           + (f"; rows {disagree} differ" if disagree else "")))
    robust = [i for i in answered if milp.loc[i, "outcome"] == "robust" and maxmilp.loc[i, "outcome"] == "robust"]
    faster = [i for i in robust if maxmilp.loc[i, "seconds"] < milp.loc[i, "seconds"]]
    findings.append(Finding("On robust ensembles MaxMILP sometimes needs less time than MILP (Sec. 6.2)",
                            bool(faster) if robust else None,
                            f"faster on {len(faster)} of {len(robust)} rows both proved robust"
                            + (f" ({', '.join(map(str, faster))})" if faster else "")))
    return findings


def _attacker_findings(long: pd.DataFrame) -> list[Finding]:
    """Sec. 6.2, "MaxMILP versus alternative attacks": BDA usually beats UA, neither reaches the
    optimum of 1 that MaxMILP reaches."""
    pivot = long.pivot_table(index="id", columns="method", values="value", aggfunc="first")
    names = ["maxmilp", "uniform", "best_deterministic"]
    complete = pivot.dropna(subset=names) if set(names) <= set(pivot.columns) else pd.DataFrame(columns=names)
    wins = complete[(complete["maxmilp"] >= ONE) & (complete["uniform"] < ONE) & (complete["best_deterministic"] < ONE)]
    evidence = f"{len(wins)} of {len(complete)} rows with all three values"
    findings = [Finding("MaxMILP reaches value 1 where UA and BDA do not (Sec. 6.2)",
                        len(wins) == len(complete) if len(complete) else None, evidence)]
    pair = pivot.dropna(subset=["uniform", "best_deterministic"]) if {"uniform", "best_deterministic"} <= set(
        pivot.columns) else pd.DataFrame(columns=["uniform", "best_deterministic"])
    higher = int((pair["best_deterministic"] > pair["uniform"]).sum())
    findings.append(Finding("The best deterministic attacker usually achieves a higher value than the uniform "
                            "attacker (Sec. 6.2)", higher > len(pair) / 2 if len(pair) else None,
                            f"BDA > UA in {higher} of {len(pair)} rows"))
    # MaxMILP starts from the best of the baselines' attacks (experiment.run_row), so it can only
    # fall below them if the start or the solver is broken.
    beaten = int((complete["maxmilp"] + 1e-9 >= complete[["uniform", "best_deterministic"]].max(axis=1)).sum())
    findings.append(sanity("MaxMILP's attack is at least as good as both baselines (its MIP start is the best "
                           "of their attacks)", beaten == len(complete) if len(complete) else None,
                           f"{beaten} of {len(complete)} rows"))
    return findings


def findings(table_id: str, long: pd.DataFrame) -> list[Finding]:
    """The paper's findings for one table, decided on our rows (``long`` as :func:`table` gives it,
    or already paired with the paper by :func:`with_paper`)."""
    kind = TABLES[table_id][2]
    if long.empty:
        return []
    if "paper_outcome" not in long.columns:
        long = with_paper(table_id, long)
    return {"smt": _smt_findings, "maxmilp": _maxmilp_findings, "attackers": _attacker_findings}[kind](long)


def outcome_summary(long: pd.DataFrame) -> pd.DataFrame:
    """Per method: our outcomes beside the paper's, and how many rows have the same outcome. A
    solver error is its own outcome: it never matches the paper's timeout. ``long``: paired with
    the paper by :func:`with_paper`."""
    rows = []
    for method in ("smt", "milp", "maxmilp", "uniform", "best_deterministic"):
        frame = long[long["method"] == method]
        if frame.empty:
            continue
        ours, paper = frame["outcome"].value_counts(), frame["paper_outcome"].value_counts()
        row: dict[str, Any] = {"method": method, "rows": len(frame)}
        for kind in ("attack", "robust", "timeout"):
            row[f"{kind} (ours/paper)"] = f"{ours.get(kind, 0)}/{paper.get(kind, 0)}"
        row["error (ours)"] = int(ours.get("error", 0))
        row["same outcome"] = int((frame["outcome"] == frame["paper_outcome"]).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def compare(table_id: str, long: pd.DataFrame, time_limit: float, smt_time_limit: float) -> str:
    """The table's .compare.md: outcomes against the paper's, and the paper's findings decided."""
    _, title, _ = TABLES[table_id]
    settings = paper_table(PAPER, "settings").set_index("setting")["value"]
    lines = [f"# {table_id} compared with the paper's {title}", "",
             f"Our time limit: {time_limit:g} s per MILP call, {smt_time_limit:g} s for Z3 (the paper: "
             f"{settings['time_limit_seconds']:g} s, hardware not stated). Our classifiers, data points and pixel "
             "scale are not the paper's (it gives none of them), so values are compared by outcome (attack / "
             f"robust / timeout), not digit by digit. A solver that failed is shown as {ERROR_CELL} and never "
             "counts as the paper's timeout.", ""]
    if long.empty:
        return "\n".join(lines + ["No row of this table was run (see ensemble.rows).", "", findings_markdown([])])
    long = with_paper(table_id, long)
    lines += [outcome_summary(long).to_markdown(index=False), "",
              side_by_side(long).map(lambda v: str(v).replace("|", "\\|")).to_markdown(index=False), "",
              findings_markdown(findings(table_id, long))]
    disagreements = long[long["outcome"] != long["paper_outcome"]]
    if len(disagreements):
        lines += ["## Rows whose outcome differs from the paper's", ""]
        for row in disagreements.itertuples():
            paper = f"{row.paper_time} s, {row.paper_value}" if row.paper_time is not None else str(row.paper_value)
            note = f": {row.note}" if row.outcome == "error" and row.note else ""
            lines.append(f"- row {row.id}, {row.method}: ours {row.outcome}{note}, the paper {row.paper_outcome} "
                         f"({paper})")
        lines.append("")
    robust_partial = long[(long["outcome"] == "robust") & (long["complete"] == False)]  # noqa: E712
    if len(robust_partial):
        lines += [f"robust† ({len(robust_partial)} entries): no attack built from at most |A| deterministic "
                  "attacks reaches alpha; Proposition 1 needs (|X|+1)^|C| attacks for a full proof (alpha < 1)."]
    return "\n".join(lines).rstrip("\n") + "\n"
