"""Figs. 2-3 draw the per-eps verdicts that Tables 3-5 count, never the bisection radius: CROWN is
not monotone in eps, so a sample can be verified at eps with a smaller certified_radius (Sec. 3.2)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PatchCollection

from nnassure.report import figures, tables

EPS = 0.025


def samples_frame() -> pd.DataFrame:
    """Three samples, Linf, CROWN, at eps 0.01 and 0.025: sample 0 is verified at 0.025 although the
    bisection stopped at 0.0137; sample 1 is not verified at 0.025 although the bisection proved
    0.3 (CROWN failed at 0.025 but not at larger radii); samples 2 and 3 (train) are verified nowhere."""
    rows = []
    for eps in (0.01, EPS):
        for sample_id, (x1, x2, verified, radius) in enumerate(
                [(0.2, 0.2, True, 0.0137), (0.5, 0.5, eps < EPS, 0.3), (0.8, 0.8, False, 0.0),
                 (0.9, 0.1, False, 0.0)]):
            rows.append({"sample_id": sample_id, "split": "train" if sample_id == 3 else "val", "x1": x1, "x2": x2,
                         "label": 1, "prediction": 1, "norm": "linf", "eps": eps, "method": "crown", "lower": 0.0,
                         "upper": 1.0, "verified": verified, "certified_radius": radius})
    return pd.DataFrame(rows)


def drawn_boxes(figure: plt.Figure) -> list[np.ndarray]:
    """Centres of the boxes drawn on the first axes (a patch's path is in data coordinates)."""
    collections = [c for c in figure.axes[0].collections if isinstance(c, PatchCollection)]
    return [path.vertices[:4].mean(axis=0) for c in collections for path in c.get_paths()]


def test_fig2_draws_a_sample_verified_at_eps_with_a_smaller_radius_as_verified():
    samples = samples_frame()
    figure = figures.verified_regions_figure(samples, EPS, "crown", "t")
    centres = drawn_boxes(figure)
    # sample 0 (verified at eps, radius 0.0137 < eps) has its box; sample 1 (radius 0.3, not
    # verified at eps) has none, as in the table
    assert len(centres) == 1 and np.allclose(centres[0], (0.2, 0.2))
    crosses = figure.axes[0].collections[-1].get_offsets()
    assert sorted(map(tuple, np.asarray(crosses).round(3))) == [(0.5, 0.5), (0.8, 0.8), (0.9, 0.1)]
    long, _ = tables.dataset_table("a", {1.0: samples}, "crown")
    accuracy = long[(long["metric"] == "verified_accuracy") & np.isclose(long["eps"], EPS)]["value"].item()
    assert accuracy == pytest.approx(1 / 4)
    assert f"verified {accuracy:.1%}" in figure.axes[0].get_title()
    plt.close(figure)


def test_fig3_marks_the_same_samples_verified_as_the_table():
    figure = figures.cost_predictions_figure({1.0: samples_frame()}, EPS, "crown", "linf", "t")
    by_label = {c.get_label(): np.asarray(c.get_offsets()).round(3) for c in figure.axes[0].collections}
    assert list(map(tuple, by_label["predicted 1, verified"])) == [(0.2, 0.2)]
    assert sorted(map(tuple, by_label["predicted 1, not verified"])) == [(0.5, 0.5), (0.8, 0.8)]
    plt.close(figure)


def test_an_eps_without_verdicts_is_an_error_not_an_empty_figure():
    with pytest.raises(ValueError, match="eps = 0.05"):
        figures.verified_regions_figure(samples_frame(), 0.05, "crown", "t")
