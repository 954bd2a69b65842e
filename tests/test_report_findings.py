"""Findings as computed records: the record and its rendering, and every finding and sanity check
of the verified-classification and PROVEN compare files in a case where it holds and one where it
does not (or cannot be observed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_report_proven import results_frame

from nnassure.report import compare, proven
from nnassure.report.findings import Finding, findings_frame, findings_markdown, sanity


def by_claim(found, start):
    matches = [f for f in found if f.claim.startswith(start)]
    assert len(matches) == 1, [f.claim for f in found]
    return matches[0]


# ---------------------------------------------------------------------------------------------
# the record
# ---------------------------------------------------------------------------------------------

def test_verdicts_and_kinds():
    assert Finding("c", True, "e").verdict == "holds" and Finding("c", False, "e").verdict == "does not hold"
    assert Finding("c", None, "e").verdict == "not observable"
    assert sanity("c", True, "e").kind == "sanity check" and Finding("c", True, "e").kind == "finding"
    assert Finding("c", np.bool_(True), "e").holds is True
    with pytest.raises(ValueError, match="kind"):
        Finding("c", True, "e", "opinion")


def test_markdown_table_escapes_pipes():
    text = findings_markdown([Finding("at most |A| attacks", False, "2 of 3"), sanity("bounded", True, "ok")])
    assert text.startswith("## Findings\n\n| kind")
    assert "at most \\|A\\| attacks" in text and "does not hold" in text and "sanity check" in text
    assert list(findings_frame([Finding("c", None, "e")]).columns) == ["kind", "claim", "verdict", "evidence"]
    assert "Nothing to decide" in findings_markdown([])


# ---------------------------------------------------------------------------------------------
# verified classification
# ---------------------------------------------------------------------------------------------

def baseline_long(values: dict[str, dict[str, float]]) -> pd.DataFrame:
    rows = [{"dataset": d, "split": "val", "metric": "accuracy", "model": m, "value": v}
            for d, models in values.items() for m, v in models.items()]
    return pd.DataFrame(rows)


def test_network_matches_the_best_baseline():
    long = baseline_long({"a": {"LR": 0.70, "GB": 0.92}, "b": {"SVM": 0.99, "GB": 0.98}})
    found = compare.baseline_findings(long, {"a": 0.915, "b": 0.95})
    assert by_claim(found, "Data set A").holds is True
    assert by_claim(found, "Data set B").holds is False  # 0.95 < 0.99 - 0.01
    assert by_claim(compare.baseline_findings(long, {}), "Data set A").holds is None  # no c10 = 1 in the grid
    assert by_claim(found, "Gradient boosting is the best baseline").holds is False
    only_a = baseline_long({"a": {"LR": 0.70, "GB": 0.92}})
    assert by_claim(compare.baseline_findings(only_a, {}), "Gradient boosting is the best baseline").holds is True
    text = compare.baseline_compare(long, {"a": 0.915})
    assert "| A | val | accuracy | GB | 0.9200 | 0.9200 |" in text and "## Findings" in text


def dataset_long(verified: dict[tuple[float, str], list[float]], accuracy: dict[float, float],
                 val_accuracy: dict[float, float], val_fn: dict[float, int],
                 eps: tuple[float, ...] = (0.001, 0.01, 0.025)) -> pd.DataFrame:
    rows = []
    for (cost, norm), values in verified.items():
        rows += [{"dataset": "a", "cost_fn": cost, "section": "full", "metric": "verified_accuracy", "norm": norm,
                  "eps": e, "value": v} for e, v in zip(eps, values, strict=True)]
    for cost in accuracy:
        rows.append({"dataset": "a", "cost_fn": cost, "section": "full", "metric": "accuracy", "norm": "",
                     "eps": np.nan, "value": accuracy[cost]})
        rows.append({"dataset": "a", "cost_fn": cost, "section": "val", "metric": "accuracy", "norm": "",
                     "eps": np.nan, "value": val_accuracy[cost]})
        rows.append({"dataset": "a", "cost_fn": cost, "section": "val", "metric": "false_negatives", "norm": "",
                     "eps": np.nan, "value": float(val_fn[cost])})
    return pd.DataFrame(rows)


GOOD_VERIFIED = {(1.0, "linf"): [0.96, 0.90, 0.70], (1.0, "l2"): [0.96, 0.92, 0.80],
                 (10.0, "linf"): [0.90, 0.85, 0.70], (10.0, "l2"): [0.90, 0.86, 0.75]}


def good_long(**changes) -> pd.DataFrame:
    args = {"verified": dict(GOOD_VERIFIED), "accuracy": {1.0: 0.97, 10.0: 0.92},
            "val_accuracy": {1.0: 0.95, 10.0: 0.88}, "val_fn": {1.0: 5, 10.0: 1}} | changes
    return dataset_long(**args)


def test_dataset_findings_hold_on_good_tables():
    found = compare.dataset_findings(good_long())
    for start in ("Verified accuracy never exceeds", "Verified accuracy does not rise", "Verified accuracy tends",
                  "Raising c10 removes", "Raising c10 costs"):
        assert by_claim(found, start).holds is True, start
    assert by_claim(found, "Verified accuracy never exceeds").kind == "sanity check"
    assert by_claim(found, "Verified accuracy does not rise").kind == "sanity check"
    assert by_claim(found, "Raising c10 removes").kind == "finding"
    assert by_claim(found, "Raising c10 removes").evidence == "c10 = 1 -> 10: 5 -> 1"


def test_verified_accuracy_above_accuracy_fails_the_sanity_check():
    verified = dict(GOOD_VERIFIED) | {(1.0, "l2"): [0.98, 0.92, 0.80]}
    check = by_claim(compare.dataset_findings(good_long(verified=verified)), "Verified accuracy never exceeds")
    assert check.holds is False and "c10 = 1 l2" in check.evidence


def test_verified_accuracy_rising_with_eps_fails_the_sanity_check():
    verified = dict(GOOD_VERIFIED) | {(10.0, "linf"): [0.80, 0.85, 0.70]}
    assert by_claim(compare.dataset_findings(good_long(verified=verified)), "Verified accuracy does not rise"
                    ).holds is False


def test_verified_accuracy_far_from_accuracy_at_the_smallest_eps():
    verified = dict(GOOD_VERIFIED) | {(10.0, "l2"): [0.80, 0.78, 0.75]}
    finding = by_claim(compare.dataset_findings(good_long(verified=verified)), "Verified accuracy tends")
    assert finding.holds is False and "0.1200" in finding.evidence


def test_removing_safety_critical_errors():
    assert by_claim(compare.dataset_findings(good_long(val_fn={1.0: 5, 10.0: 5})), "Raising c10 removes"
                    ).holds is False
    assert by_claim(compare.dataset_findings(good_long(val_fn={1.0: 2, 10.0: 3})), "Raising c10 removes"
                    ).holds is False
    # 0 -> 0: there was nothing to remove, so the effect cannot be observed (it does not "hold")
    nothing = by_claim(compare.dataset_findings(good_long(val_fn={1.0: 0, 10.0: 0})), "Raising c10 removes")
    assert nothing.holds is None and nothing.verdict == "not observable" and "0 -> 0" in nothing.evidence


def test_the_safety_accuracy_trade_off():
    flat = good_long(val_accuracy={1.0: 0.95, 10.0: 0.96})
    assert by_claim(compare.dataset_findings(flat), "Raising c10 costs").holds is False
    paper = compare.paper_table(compare.PAPER, "table3")
    finding = by_claim(compare.dataset_findings(good_long(), paper), "Raising c10 costs")
    assert finding.evidence == "c10 = 1 -> 10: 0.9500 -> 0.8800 (paper: 0.9450 -> 0.8800)"


def test_one_cost_cannot_show_a_cost_effect():
    one = dataset_long({(1.0, "linf"): [0.96, 0.9, 0.7]}, {1.0: 0.97}, {1.0: 0.95}, {1.0: 3})
    found = compare.dataset_findings(one)
    assert by_claim(found, "Raising c10 removes").holds is None and by_claim(found, "Raising c10 costs").holds is None


def test_dataset_compare_puts_the_paper_beside_ours():
    text = compare.dataset_compare("vc_table3", "a", good_long(), "crown")
    assert "| 1 | verified accuracy | 0.001 | 0.9600 | 0.9600 | 0.9680 |" in text
    assert "| 10 | val accuracy | | 0.8800 | | 0.8800 |" in text
    assert "| sanity check |" in text.replace("  ", " ").replace("  ", " ")


# ---------------------------------------------------------------------------------------------
# PROVEN
# ---------------------------------------------------------------------------------------------

def table2_long(gains: dict[str, float]) -> pd.DataFrame:
    """Table 2's long frame for rows "<dataset> <depth>x[<width>]", one sample each, worst case 0.02."""
    frames = []
    for name, gain in gains.items():
        dataset, arch = name.split(" ")
        model = f"{dataset}_relu_{arch.replace('[', '').replace(']', '')}"
        frames.append(results_frame(model, [0.02], {0.9999: [0.02 * (1 + gain / 100)]}))
    results = pd.concat(frames) if frames else results_frame("digits_relu_2x20", [0.02], {}).iloc[:0]
    return proven.table2(results, "relu", "crown", [0.9999], 1)[0]


def test_proven_beats_the_worst_case():
    found = proven.table2_findings("pv_table2a", table2_long({"digits 2x[20]": 30.0, "digits 3x[20]": 10.0}), None)
    assert by_claim(found, "PROVEN at the highest gamma").holds is True
    assert by_claim(found, "The gain shrinks with depth").holds is True
    found = proven.table2_findings("pv_table2a", table2_long({"digits 2x[20]": 0.0, "digits 3x[20]": 10.0}), None)
    assert by_claim(found, "PROVEN at the highest gamma").holds is False
    assert by_claim(found, "The gain shrinks with depth").holds is False
    empty = proven.table2_findings("pv_table2d", table2_long({}), None)
    assert [f.holds for f in empty] == [None]
    single = proven.table2_findings("pv_table2a", table2_long({"digits 2x[20]": 5.0}), None)
    assert by_claim(single, "The gain shrinks with depth").holds is None


def test_adaptive_bounds_gain_more():
    fixed = table2_long({"digits 2x[20]": 30.0, "digits 3x[20]": 10.0})
    adaptive = table2_long({"digits 2x[20]": 40.0, "digits 3x[20]": 20.0})
    claim = "The gain is larger with adaptive ReLU bounds"
    assert by_claim(proven.table2_findings("pv_table2b", adaptive, fixed), claim).holds is True
    assert by_claim(proven.table2_findings("pv_table2b", fixed, adaptive), claim).holds is False
    other = table2_long({"signs 2x[20]": 10.0})
    assert by_claim(proven.table2_findings("pv_table2b", adaptive, other), claim).holds is None
    text = proven.table2_compare("pv_table2b", adaptive, fixed)
    assert "| digits 2x[20] |" in text and "| MNIST 2x[20] | 0.02746 | 0.04912 | 78.9% |" in text


def table3_long(wide: pd.DataFrame) -> pd.DataFrame:
    """Table 3's long frame from improvements per row and column (NaN: no such model)."""
    records = [{"row": name, "column": column, **proven.Gain(1, 1, 1, 1, 0.03, 0.02, float(value)).record()}
               for name, row in wide.iterrows() for column, value in row.items() if np.isfinite(value)]
    return pd.DataFrame(records)


def test_table3_findings():
    good = pd.DataFrame({"Relu": [20.0, 5.0], "Relu-ada": [70.0, 40.0], "tanh": [30.0, 20.0],
                         "sigmoid": [10.0, 25.0], "arctan": [np.nan, 15.0]},
                        index=["digits 2x[1024]", "digits 3x[1024]"])
    found = proven.table3_findings(table3_long(good))
    assert by_claim(found, "Adaptive ReLU bounds").holds is True
    assert by_claim(found, "Non-ReLU activations").holds is True  # 4 of 5 pairs
    bad = good.assign(**{"Relu-ada": [10.0, 40.0], "tanh": [1.0, 1.0], "sigmoid": [1.0, 1.0]})
    found = proven.table3_findings(table3_long(bad))
    assert by_claim(found, "Adaptive ReLU bounds").holds is False
    assert by_claim(found, "Non-ReLU activations").holds is False
    text = proven.table3_compare(table3_long(good))
    assert "| MNIST 3x[1024] |" in text and "47.1" in text  # the paper's Table 3, from the package data


def table4_long(means: list[float], stds: list[float], improvement_stds: list[float], pool: int = 100):
    rows = []
    for samples, mean, std, istd in zip((10, 50, 100), means, stds, improvement_stds, strict=True):
        rows.append({"model": "digits_relu_3x1024", "samples": samples, "statistic": "mean", "worst_case_eps": 0.02,
                     "proven_eps": mean, "improvement_pct": 40.0, "certified_fraction": 1.0, "pool": pool})
        rows.append({"model": "digits_relu_3x1024", "samples": samples, "statistic": "std", "worst_case_eps": 0.001,
                     "proven_eps": std, "improvement_pct": istd, "certified_fraction": 0.0, "pool": pool})
    return pd.DataFrame(rows)


def test_table4_findings():
    found = proven.table4_findings(table4_long([0.037] * 3, [0.0022, 0.001, 0.0007], [1.1, 0.6, 0.4]))
    assert by_claim(found, "digits_relu_3x1024: the average PROVEN eps").holds is True
    falls = by_claim(found, "digits_relu_3x1024: the std of the improvement")
    assert falls.holds is True and falls.kind == "sanity check"
    found = proven.table4_findings(table4_long([0.037] * 3, [0.008, 0.001, 0.0007], [1.1, 0.6, 0.9], pool=150))
    assert by_claim(found, "digits_relu_3x1024: the average PROVEN eps").holds is False
    falls = by_claim(found, "digits_relu_3x1024: the std of the improvement")
    assert falls.holds is False and "pool of only 150" in falls.evidence
    text = proven.table4_compare(table4_long([0.037] * 3, [0.0022, 0.001, 0.0007], [1.1, 0.6, 0.4]))
    assert "| digits_relu_3x1024 | 10 | 40.00% | 1.10% | 100% | (a) MNIST 3x[1024] | 44.75% | 1.12% |" in text


def fig1_curves(gauss: float, bounded: list[float]) -> pd.DataFrame:
    """Fig. 1's frame: improvements of the bounded and Gaussian (paper) curves on one sample (NaN
    gauss: no Gaussian sample), the rigorous curve certifying nothing."""
    rows = []
    for gamma, b in zip((0.9999, 0.75, 0.5), bounded, strict=True):
        for curve, gain in (("bounded (i)", proven.Gain(1, 1, 1, 1, 0.1, 0.05, b)),
                            ("Gaussian independent (paper)", proven.Gain(1, 1, 1, 1, 0.1, 0.05, gauss)
                             if np.isfinite(gauss) else proven.Gain(0, 0, 0, 0, np.nan, np.nan, np.nan)),
                            ("Gaussian independent (rigorous)", proven.Gain(1, 0, 1, 0, np.nan, 0.05, np.nan))):
            rows.append({"model": "m", "curve": curve, "gamma": gamma, **gain.record()})
    return pd.DataFrame(rows)


def test_fig1_findings():
    found = proven.fig1_findings(fig1_curves(100.0, [30.0, 80.0, 95.0]))
    assert by_claim(found, "m: at the highest gamma Gaussian").holds is True
    grows = by_claim(found, "m: the bounded-noise improvement grows")
    assert grows.holds is True and grows.kind == "sanity check"
    found = proven.fig1_findings(fig1_curves(20.0, [30.0, 25.0, 95.0]))
    assert by_claim(found, "m: at the highest gamma Gaussian").holds is False
    assert by_claim(found, "m: the bounded-noise improvement grows").holds is False
    found = proven.fig1_findings(fig1_curves(np.nan, [30.0, 80.0, 95.0]))
    assert by_claim(found, "m: at the highest gamma Gaussian").holds is None


def verified_long(gamma: float, proven_only: float) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": "a", "cost": 1.0, "eps": 0.01, "gamma": gamma, "accuracy": 0.9,
                          "verified_accuracy": 0.8, "proven_accuracy": 0.8 + proven_only,
                          "proven_only": proven_only}])


def test_pv_table5_constants_are_computed():
    found = proven.verified_findings(verified_long(0.9999, 0.0))
    assert len(found) == 1 and found[0].kind == "sanity check" and found[0].holds is True
    assert "4.29 eps" in found[0].evidence and "1.41 eps" in found[0].evidence and "99.99%" in found[0].claim
    assert proven.verified_findings(verified_long(0.9999, 0.02))[0].holds is False
    # at gamma = 50% Hoeffding's factor sqrt(2 ln 2) = 1.18 is below sqrt(2): extra points are possible
    low = proven.verified_findings(verified_long(0.5, 0.02))[0]
    assert low.kind == "finding" and low.holds is True and "1.18 eps" in low.evidence
    assert proven.verified_findings(verified_long(0.5, 0.0))[0].holds is False
    assert proven.verified_findings(verified_long(0.5, 0.0).iloc[:0])[0].holds is None
    text = proven.verified_compare(verified_long(0.9999, 0.0))
    assert "4.29" in text and "the issue" not in text


def test_the_overhead_claim_is_not_observable_without_run_times():
    display = pd.DataFrame({"Relu": [20.0], "Relu-ada": [70.0]}, index=["digits 2x[1024]"])
    overhead = by_claim(proven.table3_findings(table3_long(display)), "PROVEN's overhead")
    assert overhead.holds is None and overhead.verdict == "not observable"
