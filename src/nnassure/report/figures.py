"""Figures 1-3 of the verified-classification paper."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.collections import PatchCollection
from matplotlib.patches import Circle, Rectangle

from nnassure.paths import format_cost
from nnassure.report.tables import verdicts_at

CLASS_COLOURS = {0: "tab:green", 1: "tab:red"}


def _square(ax: plt.Axes, title: str) -> None:
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.set_xlabel("$x^1$")
    ax.set_ylabel("$x^2$")


def datasets_figure(frames: dict[str, pd.DataFrame]) -> plt.Figure:
    """Fig. 1: the data sets, class 0 green and class 1 red."""
    fig, axes = plt.subplots(1, len(frames), figsize=(4.2 * len(frames), 4.2), squeeze=False)
    for ax, (name, frame) in zip(axes[0], sorted(frames.items()), strict=True):
        for label, colour in CLASS_COLOURS.items():
            part = frame[frame["label"] == label]
            ax.scatter(part["x1"], part["x2"], s=3, c=colour, label=f"class {label} ({len(part)})")
        _square(ax, f"data set {name.upper()} (n = {len(frame)})")
        ax.legend(loc="upper right", fontsize=8, markerscale=3)
    fig.tight_layout()
    return fig


def verified_regions_figure(samples: pd.DataFrame, eps: float, method: str, title: str) -> plt.Figure:
    """Fig. 2 (Sec. 3.2): boxes (Linf) and circles (L2) of radius eps around the verified samples.

    Verified means the per-eps verdict at ``eps`` that Tables 3-5 count (:func:`verdicts_at`), so a
    sample verified at eps is drawn verified even when its bisection radius is smaller.
    """
    norms = [n for n in ("linf", "l2") if n in set(samples["norm"])]
    fig, axes = plt.subplots(1, len(norms), figsize=(5.2 * len(norms), 5.2), squeeze=False)
    for ax, norm in zip(axes[0], norms, strict=True):
        part = verdicts_at(samples, method, norm, eps)
        verified = part[part["verified"]]
        for label, colour in CLASS_COLOURS.items():
            cls = verified[verified["label"] == label]
            if norm == "linf":
                shapes = [Rectangle((x - eps, y - eps), 2 * eps, 2 * eps) for x, y in zip(cls["x1"], cls["x2"],
                                                                                           strict=True)]
            else:
                shapes = [Circle((x, y), eps) for x, y in zip(cls["x1"], cls["x2"], strict=True)]
            ax.add_collection(PatchCollection(shapes, facecolor=colour, edgecolor=colour, alpha=0.35, lw=0.3))
        rest = part[~part["verified"]]
        ax.scatter(rest["x1"], rest["x2"], s=6, c="black", marker="x", lw=0.6,
                   label=f"not verified ({len(rest)})")
        ax.legend(loc="upper right", fontsize=8)
        share = len(verified) / max(len(part), 1)
        shape_name = r"$L_\infty$ boxes" if norm == "linf" else r"$L_2$ circles"
        _square(ax, f"{shape_name}, eps = {eps:g} (verified {share:.1%})")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def cost_predictions_figure(
    certifications: dict[float, pd.DataFrame], eps: float, method: str, norm: str, title: str
) -> plt.Figure:
    """Fig. 3 (Sec. 4.3): validation predictions for each cost c10, verified or not by the per-eps
    verdict at ``eps`` (as in Tables 3-5); safety-critical errors as red crosses."""
    costs = sorted(certifications)
    fig, axes = plt.subplots(1, len(costs), figsize=(4.4 * len(costs), 4.6), squeeze=False)
    for ax, cost in zip(axes[0], costs, strict=True):
        samples = certifications[cost]
        part = verdicts_at(samples, method, norm, eps)
        part = part[part["split"] == "val"]
        for label, colour in CLASS_COLOURS.items():
            predicted = part[part["prediction"] == label]
            ok = predicted[predicted["verified"]]
            weak = predicted[~predicted["verified"]]
            ax.scatter(ok["x1"], ok["x2"], s=8, c=colour, label=f"predicted {label}, verified")
            ax.scatter(weak["x1"], weak["x2"], s=8, facecolors="none", edgecolors=colour, lw=0.6,
                       label=f"predicted {label}, not verified")
        critical = part[(part["label"] == 1) & (part["prediction"] == 0)]
        ax.scatter(critical["x1"], critical["x2"], s=60, c="red", marker="X", edgecolors="black", lw=0.5,
                   label=f"safety-critical errors ({len(critical)})")
        _square(ax, f"c10 = {format_cost(cost)}")
        ax.legend(loc="upper right", fontsize=6)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
