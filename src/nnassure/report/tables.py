"""The tables of the verified-classification paper computed from the pipeline's artifacts.

Table 1 from the baselines stage; Tables 3-5 (data sets A, B, C) from the certify stage's
per-sample results: verified accuracy on the full data (Eqs. 3-4) per cost, eps and norm, and
train/validation accuracy, macro F1 and cost per sample (Sec. 4.1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nnassure.metrics import classification_metrics
from nnassure.paths import format_cost
from nnassure.report.catalog import TABLE_OF_DATASET

__all__ = ["TABLE_OF_DATASET", "baseline_table", "dataset_table", "prediction_rows", "verdicts_at"]
NORM_LABELS = {"linf": "Linf", "l2": "L2"}


def baseline_table(baselines: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1: accuracy and F1 of LR, NB, SVM, GB on train and validation, per data set."""
    long = pd.concat([frame.assign(dataset=name) for name, frame in baselines.items()], ignore_index=True)
    long = long.melt(id_vars=["dataset", "model", "split"], value_vars=["accuracy", "f1_macro"],
                     var_name="metric", value_name="value")
    long = long[["dataset", "split", "metric", "model", "value"]]
    long = long.sort_values(["dataset", "split", "metric", "model"], kind="stable").reset_index(drop=True)
    display = long.pivot_table(index=["split", "metric"], columns=["dataset", "model"], values="value",
                               sort=False)
    return long, display


def verdicts_at(samples: pd.DataFrame, method: str, norm: str, eps: float) -> pd.DataFrame:
    """The rows of one method, norm and eps, whose ``verified`` column is the per-eps verdict.

    Tables 3-5 count this column and Figs. 2-3 draw it, so a figure never shows a sample as
    verified (or not) where the table counts it otherwise. ``certified_radius`` is deliberately not
    used: it is the largest eps the bisection proved, and since CROWN is not monotone in eps a
    sample can be verified at an eps above it (Sec. 3.2).
    """
    part = samples[(samples["method"] == method) & (samples["norm"] == norm) & np.isclose(samples["eps"], eps)]
    if part.empty:
        # the config requires report.fig*_eps to be one of certify.eps: an empty selection is a
        # bug, not a figure with nothing verified
        raise ValueError(f"no certification rows for method {method}, norm {norm}, eps = {eps:g}")
    return part


def prediction_rows(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per sample (label, prediction, split) from a certification table."""
    first = samples[["norm", "method", "eps"]].iloc[0]
    mask = (samples["norm"] == first["norm"]) & (samples["method"] == first["method"]) & (
        samples["eps"] == first["eps"])
    return samples.loc[mask, ["sample_id", "split", "x1", "x2", "label", "prediction"]].reset_index(drop=True)


def dataset_table(
    dataset: str, certifications: dict[float, pd.DataFrame], method: str, cost_fp: float = 1.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tables 3-5 for one data set: one block of columns per cost c10 and eps."""
    records: list[dict[str, object]] = []
    for cost, samples in sorted(certifications.items()):
        chosen = samples[samples["method"] == method]
        for norm, eps in chosen[["norm", "eps"]].drop_duplicates().sort_values(["norm", "eps"]).itertuples(
                index=False):
            accuracy = float(verdicts_at(chosen, method, norm, eps)["verified"].mean())
            for metric, value in (("verified_accuracy", accuracy), ("misclassification_error", 1 - accuracy)):
                records.append({"dataset": dataset, "cost_fn": cost, "section": "full", "metric": metric,
                                "norm": norm, "eps": eps, "value": value})
        predictions = prediction_rows(samples)
        for section, part in (("full", predictions), ("train", predictions[predictions["split"] == "train"]),
                              ("val", predictions[predictions["split"] == "val"])):
            m = classification_metrics(part["label"].to_numpy(), part["prediction"].to_numpy(), cost, cost_fp)
            for metric in ("accuracy", "f1_macro", "cost_per_sample", "false_negatives"):
                if section == "full" and metric != "accuracy":
                    continue
                records.append({"dataset": dataset, "cost_fn": cost, "section": section, "metric": metric,
                                "norm": "", "eps": np.nan, "value": float(getattr(m, metric))})
    long = pd.DataFrame(records)
    return long, _dataset_display(long)


def _dataset_display(long: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for record in long.itertuples():
        name = record.metric.replace("_", " ")
        if record.norm:
            name = f"{name} ({NORM_LABELS[record.norm]})"
        cost = f"c10={format_cost(record.cost_fn)}"
        eps_values = sorted(long["eps"].dropna().unique())
        # Non-eps metrics sit under the first eps column of their cost, as merged cells would.
        eps = f"eps={record.eps:g}" if not np.isnan(record.eps) else f"eps={eps_values[0]:g}"
        rows.append({"section": record.section, "metric": name, "cost": cost, "eps": eps, "value": record.value})
    frame = pd.DataFrame(rows)
    return frame.pivot_table(index=["section", "metric"], columns=["cost", "eps"], values="value", sort=False)
