"""``<table>.compare.md`` of the verified-classification paper: our numbers beside the paper's,
and the paper's findings decided by a computation on our tables (see report.findings)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nnassure.paths import format_cost
from nnassure.report.findings import Finding, findings_markdown, sanity
from nnassure.report.paper_numbers import paper_table

PAPER = "verified-classification-lirpa"
PAPER_TABLE_OF = {"vc_table1": "table1", "vc_table3": "table3", "vc_table4": "table4", "vc_table5": "table5"}
MATCH_TOLERANCE = 0.01  # "matches" the best baseline: within one point of accuracy
GAP_TOLERANCE = 0.05  # "tends to accuracy": verified accuracy within 5 points of it at the smallest eps
BASELINE_MODELS = ("LR", "NB", "SVM", "GB")


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _paper_baseline(paper: pd.DataFrame, dataset: str, split: str, metric: str, model: str) -> float | None:
    row = paper[(paper["dataset"] == dataset) & (paper["split"] == split) & (paper["metric"] == metric)]
    if row.empty or model not in row.columns or pd.isna(row[model].iloc[0]):
        return None
    return float(row[model].iloc[0])


def baseline_findings(long: pd.DataFrame, network_val_accuracy: dict[str, float]) -> list[Finding]:
    """Sec. 2.1 (gradient boosting is the best baseline) and Sec. 4.3 (the network matches or beats
    the baselines at cost 1:1), decided per data set on validation accuracy."""
    paper = paper_table(PAPER, "table1")
    findings = []
    val = long[(long["split"] == "val") & (long["metric"] == "accuracy")]
    best_models = {}
    for dataset, group in val.groupby("dataset"):
        best = group.loc[group["value"].idxmax()]
        best_models[dataset] = best["model"]
        paper_values = {m: _paper_baseline(paper, dataset, "val", "accuracy", m) for m in BASELINE_MODELS}
        paper_best = max(((m, v) for m, v in paper_values.items() if v is not None), key=lambda kv: kv[1],
                         default=("—", np.nan))
        claim = (f"Data set {dataset.upper()}: the network at c10 = 1 matches (within {MATCH_TOLERANCE}) or beats "
                 "the best baseline on validation accuracy (Sec. 4.3)")
        evidence = (f"best baseline {best['model']} {best['value']:.4f} (paper: {paper_best[0]} "
                    f"{paper_best[1]:.3f})")
        if dataset in network_val_accuracy:
            ours = network_val_accuracy[dataset]
            findings.append(Finding(claim, ours >= best["value"] - MATCH_TOLERANCE,
                                    f"network {ours:.4f}; {evidence}"))
        else:
            findings.append(Finding(claim, None, f"c10 = 1 is not among the configured costs; {evidence}"))
    if best_models:
        findings.append(Finding(
            "Gradient boosting is the best baseline on every data set (Sec. 2.1)",
            all(m == "GB" for m in best_models.values()),
            ", ".join(f"{d.upper()}: {m}" for d, m in sorted(best_models.items())) + " (validation accuracy)"))
    return findings


def baseline_compare(long: pd.DataFrame, network_val_accuracy: dict[str, float]) -> str:
    """vc_table1.compare.md. ``network_val_accuracy``: our MLP at c10 = 1, per data set."""
    paper = paper_table(PAPER, "table1")
    lines = ["# vc_table1 compared with the paper's Table 1", "",
             "| data set | split | metric | model | ours | paper |", "|---|---|---|---|---|---|"]
    for row in long.itertuples():
        ref = _paper_baseline(paper, row.dataset, row.split, row.metric, row.model)
        lines.append(f"| {row.dataset.upper()} | {row.split} | {row.metric} | {row.model} | "
                     f"{_fmt(row.value)} | {_fmt(ref)} |")
    return "\n".join(lines) + "\n\n" + findings_markdown(baseline_findings(long, network_val_accuracy))


def _paper_dataset_value(paper: pd.DataFrame, cost: float, section: str, metric: str,
                         eps: float | None) -> float | None:
    mask = (np.isclose(paper["c10"], cost)) & (paper["section"] == section) & (paper["metric"] == metric)
    mask &= paper["eps"].isna() if eps is None else np.isclose(paper["eps"].fillna(-1.0), eps)
    value = paper.loc[mask, "value"]
    return float(value.iloc[0]) if len(value) else None


def dataset_compare(table_id: str, dataset: str, long: pd.DataFrame, method: str) -> str:
    """vc_table3/4/5.compare.md for one data set."""
    paper = paper_table(PAPER, PAPER_TABLE_OF[table_id])
    lines = [f"# {table_id} compared with the paper (data set {dataset.upper()}, bounds: {method})", "",
             "The paper reports one norm without naming it; we give both.", "",
             "| c10 | quantity | eps | ours (Linf) | ours (L2) | paper |", "|---|---|---|---|---|---|"]
    verified = long[long["metric"] == "verified_accuracy"]
    for cost in sorted(long["cost_fn"].unique()):
        for eps in sorted(verified["eps"].unique()):
            ours = {norm: verified[(verified["cost_fn"] == cost) & (verified["eps"] == eps)
                                   & (verified["norm"] == norm)]["value"] for norm in ("linf", "l2")}
            ref = _paper_dataset_value(paper, cost, "full", "verified_accuracy", eps)
            lines.append(f"| {format_cost(cost)} | verified accuracy | {eps:g} | "
                         f"{_fmt(float(ours['linf'].iloc[0]) if len(ours['linf']) else None)} | "
                         f"{_fmt(float(ours['l2'].iloc[0]) if len(ours['l2']) else None)} | {_fmt(ref)} |")
        plain = long[(long["cost_fn"] == cost) & long["eps"].isna()]
        for row in plain.itertuples():
            ref = _paper_dataset_value(paper, cost, row.section, row.metric, None)
            lines.append(f"| {format_cost(cost)} | {row.section} {row.metric.replace('_', ' ')} | | "
                         f"{_fmt(row.value)} | | {_fmt(ref)} |")
    return "\n".join(lines) + "\n\n" + findings_markdown(dataset_findings(long, paper))


def dataset_findings(long: pd.DataFrame, paper: pd.DataFrame | None = None) -> list[Finding]:
    """The paper's findings on one data set's table (Secs. 3.2 and 4.3). ``paper``: the paper's
    table for the data set, quoted in the evidence where it prints the same quantity."""
    findings = []
    verified = long[long["metric"] == "verified_accuracy"]
    accuracy = long[(long["metric"] == "accuracy") & (long["section"] == "full")].set_index("cost_fn")["value"]
    rises, exceeds, gaps = [], [], {}
    for (cost, norm), group in verified.groupby(["cost_fn", "norm"]):
        ordered = group.sort_values("eps")
        values = ordered["value"].to_numpy()
        if np.any(np.diff(values) > 0):
            rises.append(f"c10 = {format_cost(cost)} {norm}")
        if np.any(values > accuracy[cost] + 1e-12):
            exceeds.append(f"c10 = {format_cost(cost)} {norm}")
        gaps[(cost, norm)] = accuracy[cost] - values[0]
    groups = len(gaps)
    # A point is verified only if it is classified correctly (Eqs. 3-4), so this cannot fail
    # unless the table is computed wrongly.
    findings.append(sanity("Verified accuracy never exceeds accuracy (Sec. 3.2, Eqs. 3-4)", not exceeds,
                           f"exceeded for {', '.join(exceeds)}" if exceeds else
                           f"at or below accuracy for all {groups} cost/norm pairs"))
    # A point robust in a ball is robust in every smaller ball; the bounds of a smaller ball are
    # at least as tight, so a rise would mean the certification itself is wrong.
    findings.append(sanity("Verified accuracy does not rise as eps grows (Sec. 3.2)", not rises,
                           f"rises for {', '.join(rises)}" if rises else
                           f"non-increasing in eps for all {groups} cost/norm pairs"))
    if gaps:
        smallest = verified["eps"].min()
        (cost, norm), gap = max(gaps.items(), key=lambda kv: kv[1])
        findings.append(Finding(
            f"Verified accuracy tends to accuracy as eps goes to 0: at the smallest eps it is within "
            f"{GAP_TOLERANCE} of accuracy (Sec. 3.2)", bool(gap <= GAP_TOLERANCE),
            f"eps = {smallest:g}: largest gap {gap:.4f} (c10 = {format_cost(cost)}, {norm})"))
    findings += _cost_findings(long, paper)
    return findings


def _cost_findings(long: pd.DataFrame, paper: pd.DataFrame | None) -> list[Finding]:
    """Sec. 4.3 and Fig. 3: raising c10 removes the safety-critical errors (false negatives,
    label 1 predicted 0) on validation, at some cost in accuracy (the safety-accuracy trade-off)."""
    costs = sorted(long["cost_fn"].unique())
    removes = "Raising c10 removes safety-critical errors (validation false negatives) (Sec. 4.3, Fig. 3)"
    trade = "Raising c10 costs validation accuracy: the safety-accuracy trade-off (Sec. 4.3)"
    if len(costs) < 2:
        only = f"only c10 = {format_cost(costs[0])} is configured" if costs else "no cost is configured"
        return [Finding(removes, None, only), Finding(trade, None, only)]
    val = long[long["section"] == "val"]
    fn = val[val["metric"] == "false_negatives"].set_index("cost_fn")["value"]
    acc = val[val["metric"] == "accuracy"].set_index("cost_fn")["value"]
    low, high = costs[0], costs[-1]
    change = f"c10 = {format_cost(low)} -> {format_cost(high)}"
    fn_low, fn_high = int(fn[low]), int(fn[high])
    if fn_low == 0:
        # nothing to remove: our data cannot show the effect, whatever happens at the higher cost
        findings = [Finding(removes, None, f"{change}: {fn_low} -> {fn_high}, no safety-critical error to remove")]
    else:
        findings = [Finding(removes, fn_high < fn_low, f"{change}: {fn_low} -> {fn_high}")]
    evidence = f"{change}: {acc[low]:.4f} -> {acc[high]:.4f}"
    if paper is not None:
        p_low, p_high = (_paper_dataset_value(paper, c, "val", "accuracy", None) for c in (low, high))
        if p_low is not None and p_high is not None:
            evidence += f" (paper: {p_low:.4f} -> {p_high:.4f})"
    findings.append(Finding(trade, bool(acc[high] < acc[low]), evidence))
    return findings
