"""PROVEN's tables and figure when a certificate certifies nothing or only some samples: the
proven stage stores certified_eps = 0 for "not certified", which must be shown as such and never
averaged into a mean radius or counted as an improvement of 0 (Sec. 4, Tables 2-4, Fig. 1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from nnassure.report import proven
from nnassure.report.proven import NOT_CERTIFIED, Gain

Radii = Mapping[float, Sequence[float]]  # gamma -> certified eps per sample


def results_frame(model: str, worst: Sequence[float], bounded: Radii, relaxation: str = "crown",
                  gaussian: Mapping[tuple[str, str], Radii] | None = None) -> pd.DataFrame:
    """A proven stage result for one model id <dataset>_<activation>_<depth>x<width>: the worst
    case's radius per sample, Hoeffding's (bounded noise) per gamma, optional Gaussian curves
    keyed by (certificate, noise), on the first samples."""
    dataset, activation, arch = model.split("_")
    depth, width = arch.split("x")
    rows = []

    def add(certificate: str, noise: str, gamma: float, radii: Sequence[float]) -> None:
        for sample, eps in enumerate(radii):
            rows.append({"sample": sample, "model": model, "dataset": dataset, "activation": activation,
                         "architecture": f"{depth}x[{width}]", "label": 0, "relaxation": relaxation,
                         "noise": noise, "certificate": certificate, "gamma": gamma,
                         "worst_case_eps": worst[sample], "certified_eps": eps})

    add("worst-case", "any", 1.0, worst)
    for gamma, radii in bounded.items():
        add("hoeffding", "bounded", gamma, radii)
    for (certificate, noise), curves in (gaussian or {}).items():
        for gamma, radii in curves.items():
            add(certificate, noise, gamma, radii)
    return pd.DataFrame(rows)


def by_claim(found, start):
    matches = [f for f in found if f.claim.startswith(start)]
    assert len(matches) == 1, [f.claim for f in found]
    return matches[0]


GAMMAS = [0.9999, 0.5]
WORST = [0.02, 0.04, 0.06, 0.08]


def test_gain_of_counts_certified_samples_and_pairs_the_improvement():
    g = Gain.of([0.02, 0.04, 0.0], [0.03, 0.0, 0.0])
    assert (g.samples, g.certified, g.worst_certified, g.compared) == (3, 1, 2, 1)
    assert g.mean_eps == pytest.approx(0.03) and g.worst_mean_eps == pytest.approx(0.03)
    assert g.improvement_pct == pytest.approx(50.0)  # 0.03 / 0.02 on the one sample both certify
    assert g.text(1, "%") == "50.0% (1/3)" and g.beats_worst_case() is False
    nothing = Gain.of([0.02, 0.04], [0.0, np.nan])
    assert nothing.certified == 0 and np.isnan(nothing.mean_eps) and np.isnan(nothing.improvement_pct)
    assert nothing.text() == NOT_CERTIFIED and nothing.rank == -np.inf and nothing.beats_worst_case() is False
    assert proven.beats(g, nothing) is True and proven.beats(nothing, g) is False
    assert proven.beats(nothing, nothing) is None  # two curves certifying nothing are not compared
    assert Gain.from_record(g.record()) == g


def test_table2_shows_not_certified_instead_of_a_mean_of_zeros():
    results = results_frame("digits_relu_2x20", WORST, {0.9999: [0.0] * 4, 0.5: [0.03, 0.05, 0.07, 0.09]})
    long, display = proven.table2(results, "relu", "crown", GAMMAS, 4)
    row = display.loc["digits 2x[20]"]
    assert row["PROVEN 99.99%"] == NOT_CERTIFIED and row["improvement (%)"] == NOT_CERTIFIED
    assert row["worst-case (100%)"] == "0.0500" and row["PROVEN 50%"] == "0.0600"
    top = long[(long["certificate"] == "hoeffding") & (long["gamma"] == 0.9999)].iloc[0]
    assert top["certified"] == 0 and top["samples"] == 4
    assert np.isnan(top["mean_eps"]) and np.isnan(top["improvement_pct"])  # not 0, not -100 %
    larger = by_claim(proven.table2_findings("pv_table2b", long, None), "PROVEN at the highest gamma")
    assert larger.holds is False and f"digits 2x[20] {NOT_CERTIFIED}" in larger.evidence
    text = proven.table2_compare("pv_table2b", long, None)
    assert f"| digits 2x[20] | 0.05000 | {NOT_CERTIFIED} | {NOT_CERTIFIED} | MNIST 2x[20] |" in text


def test_table2_mixed_means_over_the_certified_samples_with_the_fraction():
    # PROVEN certifies 3 of 4 samples; the fourth is certified by neither (worst case 0 too)
    worst = [0.02, 0.04, 0.06, 0.0]
    results = results_frame("digits_relu_2x20", worst, {0.9999: [0.03, 0.05, 0.07, 0.0], 0.5: [0.04] * 4})
    long, display = proven.table2(results, "relu", "crown", GAMMAS, 4)
    row = display.loc["digits 2x[20]"]
    assert row["worst-case (100%)"] == "0.0400 (3/4)"  # (0.02 + 0.04 + 0.06) / 3, not / 4
    assert row["PROVEN 99.99%"] == "0.0500 (3/4)"
    assert row["improvement (%)"] == "25.0000 (3/4)"  # 0.05 / 0.04 - 1 over the three
    assert row["PROVEN 50%"] == "0.0400"
    larger = by_claim(proven.table2_findings("pv_table2b", long, None), "PROVEN at the highest gamma")
    assert larger.holds is True and "25.0% (3/4)" in larger.evidence
    # a sample the worst case certifies and PROVEN does not: PROVEN certifies less there
    results = results_frame("digits_relu_2x20", WORST, {0.9999: [0.03, 0.05, 0.07, 0.0], 0.5: [0.1] * 4})
    long, _ = proven.table2(results, "relu", "crown", GAMMAS, 4)
    assert by_claim(proven.table2_findings("pv_table2b", long, None), "PROVEN at the highest gamma").holds is False


def test_depth_and_adaptive_findings_rank_not_certified_below_any_gain():
    shallow = results_frame("digits_relu_2x20", WORST, {0.9999: [w * 1.3 for w in WORST]})
    deep = results_frame("digits_relu_3x20", WORST, {0.9999: [0.0] * 4})
    long, _ = proven.table2(pd.concat([shallow, deep]), "relu", "crown", [0.9999], 4)
    found = proven.table2_findings("pv_table2b", long, None)
    shrinks = by_claim(found, "The gain shrinks with depth")
    assert shrinks.holds is True and f"3 layers {NOT_CERTIFIED}" in shrinks.evidence
    fixed_shallow = results_frame("digits_relu_2x20", WORST, {0.9999: [0.0] * 4}, relaxation="fast-lin")
    fixed_deep = results_frame("digits_relu_3x20", WORST, {0.9999: [0.0] * 4}, relaxation="fast-lin")
    fixed, _ = proven.table2(pd.concat([fixed_shallow, fixed_deep]), "relu", "fast-lin", [0.9999], 4)
    adaptive = by_claim(proven.table2_findings("pv_table2b", long, fixed), "The gain is larger with adaptive")
    # 2x[20]: 30% against not certified, a win; 3x[20]: neither certifies, undecided
    assert adaptive.holds is None and "larger on 1 of 2 models" in adaptive.evidence
    assert f"digits 3x[20] {NOT_CERTIFIED} vs {NOT_CERTIFIED}" in adaptive.evidence


def test_table3_shows_not_certified_cells_and_its_findings_rank_them():
    relu = results_frame("digits_relu_2x20", WORST, {0.9999: [0.0] * 4}, relaxation="fast-lin")
    relu_ada = results_frame("digits_relu_2x20", WORST, {0.9999: [w * 1.5 for w in WORST]})
    tanh = results_frame("digits_tanh_2x20", WORST, {0.9999: [0.0, 0.05, 0.07, 0.09]})
    results = pd.concat([relu, relu_ada, tanh])
    longs = {t: proven.table2(results, a, r, [0.9999], 4)[0] for t, (a, r, _) in proven.TABLE2.items()}
    long3, display3 = proven.table3(longs)
    assert display3.loc["digits 2x[20]", "Relu"] == NOT_CERTIFIED
    assert display3.loc["digits 2x[20]", "Relu-ada"] == "50.0000"
    assert display3.loc["digits 2x[20]", "tanh"] == "16.6667 (3/4)"  # 0.07 / 0.06 - 1 over three samples
    assert display3.loc["digits 2x[20]", "sigmoid"] == ""  # no sigmoid model: empty, not "not certified"
    found = proven.table3_findings(long3)
    assert by_claim(found, "Adaptive ReLU bounds").holds is True
    general = by_claim(found, "Non-ReLU activations")
    assert general.holds is True and f"tanh 16.7% (3/4) vs {NOT_CERTIFIED}" in general.evidence
    assert NOT_CERTIFIED in proven.table3_compare(long3)


def table4_results(bounded: Sequence[float]) -> pd.DataFrame:
    worst = [0.02 + 0.001 * i for i in range(len(bounded))]
    return results_frame("digits_relu_3x1024", worst, {0.9999: bounded})


def test_table4_when_nothing_is_certified():
    long, display = proven.table4(table4_results([0.0] * 12), ["digits_relu_3x1024"], 0.9999, [4, 8], 5, 0)
    assert (long["certified_fraction"].fillna(0) == 0).all() and long["proven_eps"].isna().all()
    assert (display.filter(like="proven_eps") == NOT_CERTIFIED).all().all()
    assert (display.filter(like="improvement_pct") == NOT_CERTIFIED).all().all()
    assert display.filter(like="worst_case_eps").map(lambda c: c[:2] == "0.").all().all()
    found = proven.table4_findings(long)
    varies = by_claim(found, "digits_relu_3x1024: the average PROVEN eps")
    assert varies.holds is None and NOT_CERTIFIED in varies.evidence
    assert by_claim(found, "digits_relu_3x1024: the std of the improvement").holds is None
    assert f"| digits_relu_3x1024 | 4 | {NOT_CERTIFIED} | {NOT_CERTIFIED} | 0% |" in proven.table4_compare(long)


def test_table4_mixed_averages_the_certified_samples():
    bounded = [0.03 + 0.001 * i if i % 2 else 0.0 for i in range(12)]  # every other sample certified
    long, display = proven.table4(table4_results(bounded), ["digits_relu_3x1024"], 0.9999, [4], 20, 0)
    mean = long[long["statistic"] == "mean"].iloc[0]
    assert 0 < mean["certified_fraction"] < 1
    # a trial's mean is over its certified samples: above the smallest certified radius, which a
    # mean with zeros would not be
    assert mean["proven_eps"] > 0.03
    assert display.loc[("digits_relu_3x1024", "mean"), "4 samples: proven_eps"].endswith("% certified)")
    varies = by_claim(proven.table4_findings(long), "digits_relu_3x1024: the average PROVEN eps")
    assert varies.holds is not None and "certified samples only" in varies.evidence


GAUSSIAN = {("gaussian-approx", "gaussian-diagonal"): {0.9999: [0.05, 0.09], 0.5: [0.06, 0.1]},
            ("gaussian-rigorous", "gaussian-diagonal"): {0.9999: [0.0, 0.0], 0.5: [0.05, 0.0]}}


def fig1_results() -> pd.DataFrame:
    # Gaussian certificates on the first two samples only, as the proven stage runs them
    return results_frame("digits_relu_2x20", WORST, {0.9999: [0.03, 0.05, 0.07, 0.09], 0.5: [0.04, 0.06, 0.08, 0.1]},
                         gaussian=GAUSSIAN)


def test_fig1_frame_pairs_each_curve_with_the_worst_case_on_its_samples():
    curves = proven.fig1_frame(fig1_results(), ["digits_relu_2x20"], GAMMAS).set_index(["curve", "gamma"])
    paper = Gain.from_record(curves.loc[("Gaussian independent (paper)", 0.9999)])
    # worst case over the same two samples (0.03), not over all four (0.05)
    assert paper.samples == 2 and paper.improvement_pct == pytest.approx(100 * (0.07 / 0.03 - 1))
    rigorous = Gain.from_record(curves.loc[("Gaussian independent (rigorous)", 0.9999)])
    assert rigorous.certified == 0 and np.isnan(rigorous.improvement_pct)
    half = Gain.from_record(curves.loc[("Gaussian independent (rigorous)", 0.5)])
    assert half.text(1) == "150.0 (1/2)"


def test_fig1_marks_not_certified_and_its_compare_says_so():
    curves = proven.fig1_frame(fig1_results(), ["digits_relu_2x20"], GAMMAS)
    figure = proven.fig1(curves)
    ax = figure.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert NOT_CERTIFIED in labels and "over the samples certified only" in labels
    crosses = [line for line in ax.get_lines() if line.get_marker() == "x" and len(line.get_xdata())]
    # the rigorous curves at 99.99 % (the correlated one has no rows: no samples, no mark)
    assert [list(line.get_xdata()) for line in crosses] == [[99.99]]
    plt.close(figure)
    text = proven.fig1_compare(curves)
    assert NOT_CERTIFIED in text and "rigorous Gaussian not certified" in text


def test_fig1_finding_does_not_take_not_certified_for_a_gain_of_zero():
    nothing = {("gaussian-approx", "gaussian-diagonal"): {0.9999: [0.0, 0.0], 0.5: [0.0, 0.0]}}
    results = results_frame("digits_relu_2x20", WORST, {0.9999: [0.03] * 4, 0.5: [0.04] * 4}, gaussian=nothing)
    found = proven.fig1_findings(proven.fig1_frame(results, ["digits_relu_2x20"], GAMMAS))
    gauss = by_claim(found, "digits_relu_2x20: at the highest gamma Gaussian")
    assert gauss.holds is False and f"Gaussian {NOT_CERTIFIED}" in gauss.evidence
    # bounded noise certifying nothing at 99.99 % but something below: the improvement grew
    results = results_frame("digits_relu_2x20", WORST, {0.9999: [0.0] * 4, 0.5: [0.04] * 4}, gaussian=nothing)
    found = proven.fig1_findings(proven.fig1_frame(results, ["digits_relu_2x20"], GAMMAS))
    assert by_claim(found, "digits_relu_2x20: at the highest gamma Gaussian").holds is None  # neither certifies
    grows = by_claim(found, "digits_relu_2x20: the bounded-noise improvement grows")
    assert grows.holds is True and grows.evidence.startswith(NOT_CERTIFIED)
