"""The dependability report of an assessed model: one self-contained HTML page (figures embedded
as PNG), built from the assessment's artifacts only, so that the same files give the same page.

Every statement is labelled with what backs it: **proven** (a sound certificate: bound-based
verification or a complete MILP answer, valid for every input of the stated set, with float64
rounding accounted for), **estimated** (statistics on the user's samples: accuracy, cost, PROVEN's
probabilistic certificates, which hold with the stated confidence under the stated noise model),
or **found** (a counterexample, re-run in onnxruntime). Jinja2 renders it from ``report.html.j2``.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# The page's Jinja2 template, shipped with the package (one page, no external assets).
TEMPLATE = Path(__file__).with_name("report.html.j2")


def _png(figure: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _figures(accuracy: dict[str, Any], certify: pd.DataFrame, summary: pd.DataFrame,
             proven: dict[str, Any], kri: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: dict[str, str] = {}
    confusion = np.asarray(accuracy["confusion"])
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(confusion, cmap="Blues")
    for (i, j), value in np.ndenumerate(confusion):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
    ax.set_xlabel("prediction")
    ax.set_ylabel("label")
    ax.set_title("confusion matrix")
    figures["confusion"] = _png(fig)
    fig, axes = plt.subplots(1, summary["norm"].nunique(), figsize=(4.2 * summary["norm"].nunique(), 3.2),
                             squeeze=False)
    for ax, (norm, rows) in zip(axes[0], summary.groupby("norm", sort=False), strict=True):
        for method, part in rows.groupby("method", sort=False):
            ax.plot(part["eps"], part["verified_accuracy"], marker="o", label=method)
        ax.axhline(rows["accuracy"].iloc[0], color="grey", ls="--", lw=0.8, label="accuracy")
        ax.set_xlabel(f"eps ({norm})")
        ax.set_ylabel("verified accuracy")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
    figures["verified"] = _png(fig)
    radii = certify.dropna(subset=["certified_radius"]).drop_duplicates(["sample", "norm"])
    if len(radii):
        fig, axes = plt.subplots(1, radii["norm"].nunique(), figsize=(4.2 * radii["norm"].nunique(), 3.0),
                                 squeeze=False)
        for ax, (norm, rows) in zip(axes[0], radii.groupby("norm", sort=False), strict=True):
            ax.hist(rows["certified_radius"], bins=20, color="#4a7")
            ax.set_xlabel(f"certified radius ({norm})")
            ax.set_ylabel("samples")
        figures["radii"] = _png(fig)
    if "skipped" not in proven:
        frame = pd.DataFrame(proven["rows"])
        fig, ax = plt.subplots(figsize=(4.6, 3.2))
        labels = [f"{c}" if c == "worst-case" else f"PROVEN gamma={g:g}"
                  for c, g in frame[["certificate", "gamma"]].drop_duplicates().itertuples(index=False)]
        groups = [part["certified_eps"].to_numpy() for _, part in frame.groupby(["certificate", "gamma"], sort=False)]
        ax.boxplot(groups)
        ax.set_xticks(range(1, len(labels) + 1), labels, rotation=20, fontsize=7)
        ax.set_ylabel("radius (Linf)")
        figures["proven"] = _png(fig)
    if "skipped" not in kri:
        frame = pd.DataFrame(kri["rows"])
        fig, ax = plt.subplots(figsize=(5.6, 3.2))
        positions = np.arange(len(frame))
        ax.bar(positions - 0.2, frame["class_change"], 0.4, label="class change")
        ax.bar(positions + 0.2, frame["misclassification"], 0.4, label="misclassification")
        ax.set_xticks(positions, frame["scenario"], rotation=40, fontsize=7, ha="right")
        ax.set_ylabel("share of perturbed draws")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
        figures["kri"] = _png(fig)
    return figures


def build_report(manifest: dict[str, Any], accuracy: dict[str, Any], certify: pd.DataFrame, summary: pd.DataFrame,
                 proven: dict[str, Any], kri: dict[str, Any], vnnlib: list[dict[str, Any]], config_yaml: str) -> str:
    """The report's HTML (see the module docstring)."""
    from jinja2 import Environment

    proven_lines, found_lines, estimated_lines, skipped_lines = [], [], [], []
    best = summary.sort_values("eps").groupby(["norm", "eps"])["verified_accuracy"].max().reset_index()
    for row in best.itertuples():
        proven_lines.append(f"{row.verified_accuracy:.1%} of the {accuracy['samples']} samples are verified robust "
                            f"within {row.norm} radius {row.eps:g}")
    for result in vnnlib:
        if result["result"] == "holds":
            proven_lines.append(f"property {result['property']} holds (by {result['decided_by']})")
        elif result["result"] == "violated":
            found_lines.append(f"property {result['property']} is violated (counterexample found by "
                               f"{result['decided_by']})")
        else:
            skipped_lines.append(f"property {result['property']}: {result['result']}"
                                 + (f" ({result['note']})" if result["note"] else ""))
    estimated_lines.append(f"accuracy {accuracy['accuracy']:.4f}, mean cost {accuracy['mean_cost']:.4f} on "
                           f"{accuracy['samples']} samples")
    proven_frame = None
    if "skipped" in proven:
        skipped_lines.append(f"PROVEN certificates: {proven['skipped']}")
    else:
        proven_frame = pd.DataFrame(proven["mean_certified_eps"])
        for row in proven_frame.itertuples():
            if row.certificate != "worst-case":
                estimated_lines.append(f"under uniform noise, mean PROVEN radius {row.certified_eps:.4g} at confidence "
                                       f"{row.gamma:g} ({len(proven['samples'])} samples)")
    kri_frame = None
    if "skipped" in kri:
        skipped_lines.append(f"KRI scenarios: {kri['skipped']}")
    else:
        kri_frame = pd.DataFrame(kri["rows"])
        worst = kri_frame.sort_values("class_change").iloc[-1]
        estimated_lines.append(f"KRI scenarios: the highest class-change rate is {worst['class_change']:.1%}, under "
                               f"{worst['scenario']} ({worst['family']}), over {int(worst['samples'])} images")
    counterexamples = [{"property": r["property"], "x": np.array2string(np.asarray(r["counterexample"]), precision=6,
                                                                      threshold=20),
                        "y": np.array2string(np.asarray(r["output"]), precision=6)}
                       for r in vnnlib if r["result"] == "violated"]
    vnnlib_frame = pd.DataFrame([{k: r[k] for k in ("property", "result", "vnncomp", "decided_by", "seconds", "note")}
                                 for r in vnnlib])
    classes = len(accuracy["confusion"])
    confusion = pd.DataFrame(accuracy["confusion"], index=[f"label {i}" for i in range(classes)],
                             columns=[f"pred {j}" for j in range(classes)])
    environment = Environment(autoescape=True)
    template = environment.from_string(TEMPLATE.read_text())
    from markupsafe import Markup

    def table(frame: pd.DataFrame | None, **kwargs: Any) -> Markup:
        return Markup("") if frame is None or frame.empty else Markup(frame.to_html(border=0, **kwargs))

    return template.render(
        name=manifest["name"], m=manifest,
        built_from="import.json, accuracy.json, certify.parquet, proven.json, kri.json, vnnlib/*.json",
        proven=proven_lines, found=found_lines, estimated=estimated_lines, skipped=skipped_lines,
        accuracy=accuracy, confusion_table=table(confusion), certify_table=table(summary, index=False,
                                                                                   float_format="%.4g"),
        figures=_figures(accuracy, certify, summary, proven, kri), proven_skipped=proven.get("skipped"),
        kri_skipped=kri.get("skipped"), kri_table=table(kri_frame, index=False, float_format="%.4g"),
        proven_count=len(proven.get("samples", [])), proven_table=table(proven_frame, index=False, float_format="%.4g"),
        vnnlib_table=table(vnnlib_frame, index=False, float_format="%.3f") if vnnlib else "",
        counterexamples=counterexamples, config=config_yaml)


def vnncomp_results_csv(name: str, manifest: dict[str, Any], vnnlib: list[dict[str, Any]]) -> pd.DataFrame:
    """VNN-COMP's results.csv rows: benchmark, ONNX file, VNN-LIB file, preparation time, result, run time."""
    return pd.DataFrame([{"benchmark": name, "onnx": manifest["model"]["path"], "vnnlib": r["file"],
                          "prepare_seconds": 0.0, "result": r["vnncomp"], "seconds": r["seconds"]} for r in vnnlib])


def read_results(paths: list[Path]) -> list[dict[str, Any]]:
    return [json.loads(Path(p).read_text()) for p in paths]
