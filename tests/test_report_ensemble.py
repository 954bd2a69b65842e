"""The ensemble report: cells of every outcome (an error is ERR, not a timeout), the tables
against the paper's printed numbers, the findings of Sec. 6.2 (each holds in one case and not in
another), and run_row recording a failing solver as verdict "error"."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from nnassure.ensemble import AttackProblem, Solution
from nnassure.ensemble.baselines import BaselineSolverError, BaselineTimeout, per_classifier_attacks
from nnassure.ensemble.experiment import SolveSettings, run_row
from nnassure.report.ensemble import (
    ERROR_CELL,
    compare,
    findings,
    outcome,
    outcome_summary,
    paper_outcome,
    table,
    time_cell,
    value_cell,
    with_paper,
)

BENCHMARK = {2: {"id": 2, "name": "mnist_0_1", "classifiers": 3, "attacks": 2, "points": 4, "dim": "7x7",
                 "alpha": 0.2, "eps": 100},
             25: {"id": 25, "name": "mnist_7_8", "classifiers": 3, "attacks": 2, "points": 4, "dim": "6x6",
                  "alpha": 1.0, "eps": 0.1},
             21: {"id": 21, "name": "mnist_0_1", "classifiers": 3, "attacks": 2, "points": 4, "dim": "8x8",
                  "alpha": 0.9, "eps": 3.75}}


def record(verdict, value=None, seconds=1.0, optimal=False, complete=False, backend="highs", note=""):
    return {"verdict": verdict, "value": value, "optimal": optimal, "complete": complete, "backend": backend,
            "seconds": seconds, "relus": {}, "note": note}


def baselines(uniform=1 / 3, best=0.75, verdict="done", note=""):
    if verdict != "done":
        return {"verdict": verdict, "uniform": None, "best_deterministic": None, "backend": "highs",
                "seconds": None, "note": note}
    return {"verdict": "done", "uniform": uniform, "best_deterministic": best, "backend": "highs", "seconds": 2.0}


def documents(methods: dict[int, dict]) -> list[dict]:
    """Row documents as the ensemble_row stage writes them (no paper numbers inside)."""
    return [{"benchmark": BENCHMARK[i], "methods": m} for i, m in methods.items()]


def standard_documents() -> list[dict]:
    return documents({
        2: {"milp_highs": record("attack", 0.25, 1.234), "maxmilp": record("attack", 1.0, 3.456, optimal=True),
            "smt": record("timeout", None, 60.0, backend="z3"), "baselines": baselines()},
        25: {"milp_highs": record("robust", None, 0.5, optimal=True, complete=False),
             "maxmilp": record("timeout", None, 60.0), "smt": record("timeout", None, 60.0, backend="z3"),
             "baselines": baselines(verdict="timeout", note="no attack")},
    })


# ---------------------------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------------------------

def test_cells_of_every_outcome():
    assert value_cell(record("attack", 0.3002)) == "0.30"
    assert value_cell(record("attack", 1.0, optimal=True), star=True) == "1.00*"
    assert value_cell(record("attack", 1.0, optimal=False), star=True) == "1.00"
    assert value_cell(record("robust", complete=True)) == "robust"
    assert value_cell(record("robust", complete=False)) == "robust†"
    assert value_cell(record("timeout")) == "-"
    assert value_cell(record("rejected")) == "rejected" and value_cell(record("boundary")) == "boundary"
    assert value_cell(None) == "n/a" and time_cell(None) == "n/a"
    assert time_cell(record("timeout", seconds=60.0)) == "TO" and time_cell(record("attack", 0.5, 0.004)) == "0.00"
    assert outcome(None) == "missing"
    assert [paper_outcome(t, v) for t, v in [("285", "0.25"), ("2.56", "robust"), ("-TO-", "-"), ("TO", "-"),
                                             ("17.97", "1.00*"), (None, None)]] == \
        ["attack", "robust", "timeout", "timeout", "attack", "missing"]


def test_an_error_has_its_own_cell_and_outcome():
    failed = record("error", seconds=None, note="GurobiError: licence expired")
    assert outcome(failed) == "error"
    assert time_cell(failed) == ERROR_CELL == "ERR" and value_cell(failed) == "ERR"
    assert value_cell(failed, star=True) == "ERR"


# ---------------------------------------------------------------------------------------------
# tables against the paper's printed numbers (package data)
# ---------------------------------------------------------------------------------------------

def test_smt_table_cells_and_paper_columns():
    long, display = table(standard_documents(), "en_table4", "milp_highs")
    assert list(display.index) == [2, 25]
    two, twenty_five = display.loc[2], display.loc[25]
    assert (two["Name"], two["|C|"], two["|A|"], two["|X|"], two["dim"], two["alpha"], two["eps"]) == \
        ("mnist_0_1", 3, 2, 4, "7x7", "0.2", "100")
    assert (two["SMT time"], two["SMT Val"], two["MILP time"], two["MILP Val"]) == ("TO", "-", "1.23", "0.25")
    assert (twenty_five["MILP time"], twenty_five["MILP Val"]) == ("0.50", "robust†")
    # our tables hold only our results; the paper's cells are paired with them for the compare file
    assert not any("paper" in str(c) for c in [*display.columns, *long.columns])
    assert len(long) == 4 and set(long["method"]) == {"smt", "milp"}
    paired = with_paper("en_table4", long).set_index(["id", "method"])
    assert (paired.loc[(2, "milp"), "paper_time"], paired.loc[(2, "milp"), "paper_value"]) == ("17", "0.2002")
    assert paired.loc[(2, "smt"), "paper_time"] == "-TO-"
    assert (paired["outcome"] == paired["paper_outcome"]).all()
    text = compare("en_table4", long, 60, 60)
    assert "differs from the paper" not in text
    assert "| 2 | milp | 1.23 / 0.25 | 17 / 0.2002 | yes |" in " ".join(text.split())
    assert "robust† (1 entries)" in text


def test_rows_the_paper_does_not_print_are_left_out():
    # Table 2 (main text) prints rows 2 and 25 but Table 1 only rows it lists: row 2 is not in Table 1
    long, display = table(standard_documents(), "en_table1", "milp_highs")
    assert 2 not in display.index and 25 not in display.index and long.empty
    long, display = table(standard_documents(), "en_table3", "milp_highs")
    assert list(display.index) == [2]
    assert (display.loc[2, "UA Val"], display.loc[2, "BDA Val"], display.loc[2, "MaxMILP Val"]) == \
        ("0.33", "0.75", "1.00*")
    paired = with_paper("en_table3", long).set_index("method")
    assert paired.loc[["uniform", "best_deterministic", "maxmilp"], "paper_value"].tolist() == ["0.33", "0.75", "1.00*"]


def test_an_error_is_err_in_the_table_and_never_matches_a_paper_timeout():
    # row 21: the paper's MILP and SMT both time out ("TO" / "-TO-"); ours fails with an error
    docs = documents({21: {"milp_highs": record("error", seconds=None, note="GurobiError: out of memory"),
                           "maxmilp": record("timeout", None, 60.0),
                           "smt": record("error", seconds=None, backend="z3", note="Z3Exception: canceled"),
                           "baselines": baselines(verdict="error", note="BaselineSolverError: status error")}})
    long, display = table(docs, "en_table4", "milp_highs")
    assert (display.loc[21, "MILP time"], display.loc[21, "MILP Val"]) == ("ERR", "ERR")
    assert (display.loc[21, "SMT time"], display.loc[21, "SMT Val"]) == ("ERR", "ERR")
    long = with_paper("en_table4", long)
    assert set(long["paper_outcome"]) == {"timeout"} and set(long["outcome"]) == {"error"}
    summary = outcome_summary(long).set_index("method")
    assert (summary["same outcome"] == 0).all() and (summary["error (ours)"] == 1).all()
    assert summary.loc["milp", "timeout (ours/paper)"] == "0/1"
    text = compare("en_table4", long, 60, 60)
    assert "- row 21, milp: ours error: GurobiError: out of memory, the paper timeout" in text
    # a genuine timeout does match the paper's "TO"
    docs[0]["methods"]["milp_highs"] = record("timeout", None, 60.0)
    long, _ = table(docs, "en_table4", "milp_highs")
    assert outcome_summary(with_paper("en_table4", long)).set_index("method").loc["milp", "same outcome"] == 1


def test_a_baseline_error_is_err_in_the_attacker_table():
    docs = standard_documents()
    docs[0]["methods"]["baselines"] = baselines(verdict="error", note="BaselineSolverError: status error")
    long, display = table(docs, "en_table3", "milp_highs")
    assert (display.loc[2, "UA Val"], display.loc[2, "BDA Val"]) == ("ERR", "ERR")
    assert set(long.loc[long["method"] != "maxmilp", "outcome"]) == {"error"}
    docs[0]["methods"]["baselines"] = baselines(verdict="timeout")
    _, display = table(docs, "en_table3", "milp_highs")
    assert (display.loc[2, "UA Val"], display.loc[2, "BDA Val"]) == ("-", "-")


# ---------------------------------------------------------------------------------------------
# findings (Sec. 6.2): each holds in one case and does not in another
# ---------------------------------------------------------------------------------------------

def by_claim(found, start):
    matches = [f for f in found if f.claim.startswith(start)]
    assert len(matches) == 1, [f.claim for f in found]
    return matches[0]


def test_milp_solves_more_than_smt():
    long, _ = table(standard_documents(), "en_table4", "milp_highs")
    more = by_claim(findings("en_table4", long), "MILP solves more")
    assert more.holds is True and more.kind == "finding" and "MILP 2 (robust 1), SMT 0 of 2" in more.evidence
    # without a robust MILP row, "robust ones included" does not hold (the paper has row 25 robust)
    docs = standard_documents()
    docs[1]["methods"]["milp_highs"] = record("timeout", None, 60.0)
    assert holds(docs, "en_table4", "MILP solves more") is False


def holds(docs: list, table_id: str, claim: str) -> bool | None:
    """Whether the finding of ``table_id`` that starts with ``claim`` holds on ``docs``."""
    long, _ = table(docs, table_id, "milp_highs")
    return by_claim(findings(table_id, long), claim).holds


def test_smt_does_not_terminate_on_robust_rows():
    assert holds(standard_documents(), "en_table4", "SMT does not terminate") is True
    docs = standard_documents()
    docs[1]["methods"]["smt"] = record("robust", None, 3.0, backend="z3")
    assert holds(docs, "en_table4", "SMT does not terminate") is False
    docs[1]["methods"]["milp_highs"] = record("timeout", None, 60.0)
    assert holds(docs, "en_table4", "SMT does not terminate") is None


def test_maxmilp_value_is_always_one():
    long, _ = table(standard_documents(), "en_table5", "milp_highs")
    found = findings("en_table5", long)
    assert by_claim(found, "MaxMILP's attacks reach Val = 1").holds is True
    docs = standard_documents()
    docs[0]["methods"]["maxmilp"] = record("attack", 0.5, 3.0)
    assert holds(docs, "en_table5", "MaxMILP's attacks reach Val = 1") is False
    docs[0]["methods"]["maxmilp"] = record("timeout", None, 60.0)
    assert holds(docs, "en_table5", "MaxMILP's attacks reach Val = 1") is None


def test_milp_and_maxmilp_agree_on_robustness_is_a_sanity_check():
    docs = standard_documents()
    docs[1]["methods"]["maxmilp"] = record("robust", None, 0.2, optimal=True)
    long, _ = table(docs, "en_table5", "milp_highs")
    check = by_claim(findings("en_table5", long), "MILP and MaxMILP agree")
    assert check.kind == "sanity check" and check.holds is True
    assert by_claim(findings("en_table5", long), "On robust ensembles MaxMILP sometimes").holds is True
    docs[1]["methods"]["maxmilp"] = record("robust", None, 5.0, optimal=True)
    assert holds(docs, "en_table5", "On robust ensembles MaxMILP sometimes") is False
    docs[1]["methods"]["maxmilp"] = record("attack", 1.0, 0.2)
    assert holds(docs, "en_table5", "MILP and MaxMILP agree") is False


def test_attacker_findings():
    long, _ = table(standard_documents(), "en_table3", "milp_highs")
    found = findings("en_table3", long)
    assert by_claim(found, "MaxMILP reaches value 1 where UA and BDA do not").holds is True
    assert by_claim(found, "The best deterministic attacker usually").holds is True
    mip_start = by_claim(found, "MaxMILP's attack is at least as good")
    assert mip_start.kind == "sanity check" and mip_start.holds is True
    docs = standard_documents()
    docs[0]["methods"]["baselines"] = baselines(uniform=0.5, best=1.0)
    docs[0]["methods"]["maxmilp"] = record("attack", 0.75, 3.0)
    long, _ = table(docs, "en_table3", "milp_highs")
    found = findings("en_table3", long)
    assert by_claim(found, "MaxMILP reaches value 1 where UA and BDA do not").holds is False
    assert by_claim(found, "MaxMILP's attack is at least as good").holds is False
    docs[0]["methods"]["baselines"] = baselines(uniform=0.5, best=0.25)
    assert holds(docs, "en_table3", "The best deterministic attacker usually") is False


def test_compare_renders_the_findings_table():
    long, _ = table(standard_documents(), "en_table2", "milp_highs")
    text = compare("en_table2", long, 60, 60)
    assert "## Findings" in text and "| kind" in text and "| sanity check |" in " ".join(text.split())
    assert "- row 25, maxmilp: ours timeout, the paper robust (1 s, robust)" in text
    assert "row 2," not in text and "row 25, milp" not in text
    assert "No row of this table was run" in compare("en_table2", pd.DataFrame(columns=long.columns), 60, 60)


# ---------------------------------------------------------------------------------------------
# run_row: a failing solver is recorded as "error", only a time limit as "timeout"
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def problem():
    from test_ensemble import paper_example

    classifiers, points, labels = paper_example("relu")
    return AttackProblem(classifiers, points, labels, 2, 2.0, 0.5)


SETTINGS = SolveSettings(backends=("highs",), table_backend="highs", smt=False, time_limit=10, smt_time_limit=10)


def _row_with_failing_baselines(problem: AttackProblem, monkeypatch: pytest.MonkeyPatch,
                                error: Exception) -> dict:
    """run_row with the baseline attackers raising ``error``."""
    import nnassure.ensemble.experiment as experiment

    def failing(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(experiment, "baseline_values", failing)
    methods, _ = run_row(problem, SETTINGS)
    return methods


def test_a_failing_baseline_solver_is_an_error_and_the_row_goes_on(problem, monkeypatch):
    methods = _row_with_failing_baselines(problem, monkeypatch, BaselineSolverError(
        "the single-classifier MILP ended with status error (highs: Solve error)"))
    assert methods["baselines"]["verdict"] == "error"
    assert "BaselineSolverError: the single-classifier MILP ended with status error" in methods["baselines"]["note"]
    assert methods["milp_highs"]["verdict"] == "attack" and methods["maxmilp"]["verdict"] == "attack"
    json.dumps(methods)
    docs = documents({2: {"milp_highs": methods["milp_highs"], "maxmilp": methods["maxmilp"],
                          "baselines": methods["baselines"]}})
    _, display = table(docs, "en_table3", "milp_highs")
    assert (display.loc[2, "UA Val"], display.loc[2, "BDA Val"]) == ("ERR", "ERR")


def test_a_baseline_time_limit_is_a_timeout(problem, monkeypatch):
    methods = _row_with_failing_baselines(problem, monkeypatch,
                                          BaselineTimeout("no attack found for a single classifier within 10 s"))
    assert methods["baselines"]["verdict"] == "timeout"


def test_a_failing_milp_solver_is_an_error(problem, monkeypatch):
    import gurobipy

    import nnassure.ensemble.experiment as experiment

    real = experiment.find_attack

    def licence_gone(problem, backend, *args, **kwargs):
        if args[1] == "feasibility":  # (time_limit, objective, ...): the MILP column, not MaxMILP
            raise gurobipy.GurobiError(10009, "No Gurobi license found")
        return real(problem, backend, *args, **kwargs)

    monkeypatch.setattr(experiment, "find_attack", licence_gone)
    methods, _ = run_row(problem, SETTINGS)
    assert methods["milp_highs"]["verdict"] == "error" and "No Gurobi license" in methods["milp_highs"]["note"]
    assert methods["maxmilp"]["verdict"] == "attack"  # the rest of the row still ran
    docs = documents({2: {"milp_highs": methods["milp_highs"], "maxmilp": methods["maxmilp"]}})
    _, display = table(docs, "en_table2", "milp_highs")
    assert (display.loc[2, "MILP time"], display.loc[2, "MILP Val"]) == ("ERR", "ERR")


def test_a_bug_is_not_recorded_as_a_solver_error(problem, monkeypatch):
    # what torch raises on a shape bug
    with pytest.raises(RuntimeError, match="shapes"):
        _row_with_failing_baselines(problem, monkeypatch, RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


@pytest.mark.parametrize(("status", "error"), [("timeout", BaselineTimeout), ("error", BaselineSolverError),
                                               ("infeasible", BaselineSolverError)])
def test_per_classifier_attacks_tells_a_time_limit_from_a_failure(problem, monkeypatch, status, error):
    import nnassure.ensemble.baselines as module

    monkeypatch.setattr(module, "solve", lambda *a, **k: Solution(status, "highs", None, None, 0.1, "status"))
    with pytest.raises(error):
        per_classifier_attacks(problem, "highs", 5.0)


def test_a_failing_smt_solver_is_an_error(problem, monkeypatch):
    import z3

    import nnassure.ensemble.experiment as experiment

    def canceled(*args, **kwargs):
        raise z3.Z3Exception("canceled")

    monkeypatch.setattr(experiment, "solve_smt", canceled)
    methods, _ = run_row(problem, SolveSettings(backends=("highs",), smt=True, time_limit=10, smt_time_limit=10))
    assert methods["smt"]["verdict"] == "error" and methods["smt"]["note"] == "Z3Exception: canceled"
    assert methods["milp_highs"]["verdict"] == "attack"
