"""A sweep's summary: per point, its keys and the headline numbers of every family it changes.

The numbers are read from the tables each point's report stage wrote (so the summary shows what
the reports show, computed by the pipeline), one long table: point, the sweep keys, family,
metric, value. Each family contributes a few numbers a reader compares across points first:

- verified classification: verified accuracy per norm and radius, the mean over data sets and
  costs of Tables 3-5 (the full test set);
- PROVEN: mean certified radius per model family (Table 3, PROVEN's and the worst case's), and
  PROVEN's accuracy per radius (Table 5);
- ensembles: how many rows each method ended with each outcome (Table 4);
- video: the medians over clips of the upper bound, A*'s lower bound and CROWN's radii (Table 1);
- KRI: each model's final risk per loss (Table 2, Eq. 2).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nnassure.errors import InputFileError


def _table(files: Sequence[str], table_id: str) -> pd.DataFrame | None:
    """The CSV of ``table_id`` among a report's files, or None when this config does not draw it."""
    for name in files:
        if Path(name).name == f"{table_id}.csv":
            try:
                return pd.read_csv(name)
            except (OSError, ValueError) as exc:
                raise InputFileError(f"cannot read {name}: {exc}; rerun the report that writes it") from None
    return None


def _verified(files: Sequence[str]) -> dict[str, float]:
    frames = [t for t in (_table(files, i) for i in ("vc_table3", "vc_table4", "vc_table5")) if t is not None]
    if not frames:
        return {}
    rows = pd.concat(frames)
    rows = rows[(rows["section"] == "full") & (rows["metric"] == "verified_accuracy")]
    means = rows.groupby(["norm", "eps"], sort=True)["value"].mean()
    return {f"verified_accuracy {norm} eps={eps:g}": float(v) for (norm, eps), v in means.items()}


def _proven(files: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    table3 = _table(files, "pv_table3")
    if table3 is not None:
        for column, name in (("mean_eps", "proven"), ("worst_mean_eps", "worst case")):
            out[f"mean certified radius ({name})"] = float(table3[column].mean())
    table5 = _table(files, "pv_table5")
    if table5 is not None:
        for eps, value in table5.groupby("eps", sort=True)["proven_accuracy"].mean().items():
            out[f"proven_accuracy eps={eps:g}"] = float(value)
    return out


def _ensemble(files: Sequence[str]) -> dict[str, float]:
    table4 = _table(files, "en_table4")
    if table4 is None:
        return {}
    counts = table4.groupby(["method", "outcome"], sort=True).size()
    return {f"rows {outcome} ({method})": float(n) for (method, outcome), n in counts.items()}


def _video(files: Sequence[str]) -> dict[str, float]:
    table1 = _table(files, "vd_table1")
    if table1 is None:
        return {}
    columns = ("upper", "astar_lower", "lirpa_l2", "lirpa_linf")
    return {f"median {c}": float(table1[c].median()) for c in columns if c in table1 and table1[c].notna().any()}


def _kri(files: Sequence[str]) -> dict[str, float]:
    table2 = _table(files, "kr_table2")
    if table2 is None:
        return {}
    final = table2[table2["level"] == "final"]
    return {f"final risk {row.loss} {row.model}": float(row.kri) for row in final.itertuples()}


HEADLINES: dict[str, Callable[[Sequence[str]], dict[str, float]]] = {
    "verified-classification": _verified, "proven": _proven, "ensemble": _ensemble, "video": _video, "kri": _kri,
}


def read_plan(path: str | Path) -> dict[str, Any]:
    """The plan the Snakefile wrote for a sweep (nnassure.paths.ExperimentPaths.sweep_plan)."""
    try:
        plan = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputFileError(f"cannot read the sweep plan {path}: {exc}; run the sweep through Snakemake, "
                             "which writes it") from None
    if not isinstance(plan, dict) or not {"sweep", "keys", "families", "points"} <= set(plan):
        raise InputFileError(f"the sweep plan {path} lacks sweep, keys, families or points; rerun Snakemake")
    return plan


def summarize(plan: Mapping[str, Any]) -> pd.DataFrame:
    """One row per (point, family, metric): the point's name, its value of every sweep key (as
    JSON text, so lists stay one cell), the family, the metric and its value."""
    rows = []
    for point in plan["points"]:
        keys = {key: json.dumps(point["values"][key]) for key in plan["keys"]}
        for family in plan["families"]:
            for metric, value in HEADLINES[family](point["reports"][family]).items():
                rows.append({"point": point["name"], **keys, "family": family, "metric": metric, "value": value})
    return pd.DataFrame(rows, columns=["point", *plan["keys"], "family", "metric", "value"])


def wide(summary: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The summary with a column per metric and a row per point (the Markdown view)."""
    if summary.empty:
        return summary
    table = summary.pivot_table(index=["point", *keys], columns="metric", values="value", sort=False)
    return table.reset_index()
