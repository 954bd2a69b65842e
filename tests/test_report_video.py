"""The video family's report (vd_table1, vd_fig4/5/7/8/10) on synthetic video_bounds results: the
cells of the table (hand-checked, "ERR" for an errored bound, "none found" without an adversarial
flow), every finding turned to "does not hold" by data made to violate it, and the stage run as a
subprocess writing every catalog file."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from nnassure.config import compose
from nnassure.paths import ExperimentPaths
from nnassure.report import catalog
from nnassure.report import video as report

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["left", "right", "up", "down", "zoom_in", "zoom_out"]
FLOWS, GRID, SIZE = 7, 8, 32
NORMS = ["l2", "linf"]


def bounds_document(clip: int) -> dict[str, Any]:
    """A video_bounds summary in which every bound is sound and every finding holds."""
    return {
        "clip": clip, "test_index": 10 + clip, "true_class": "left", "predicted_class": "left", "classes": CLASSES,
        "norm": "l2", "flows": FLOWS, "flow_norm": 10.0,
        "upper": {"distance": 2.0 + clip, "adversarial_class": "up", "iterations": 5, "seconds": 1.5,
                  "gradient": "autograd", "pixel": {"survives": True, "predicted_class": "up", "flow_distance": 2.5},
                  "error": None},
        "astar": {"lower": 0.01, "tau": 0.002, "grid_width": 0.01, "lipschitz": 40.0, "dims": 14, "iterations": 60,
                  "seconds": 5.0, "stop": "iterations", "fmsr_upper": None, "subspace_upper": 3.0 + clip,
                  "error": None},
        "lirpa": {"l2": {"radius": 0.5, "seconds": 3.0, "bound_calls": 4, "error": None},
                  "linf": {"radius": 0.1, "seconds": 2.5, "bound_calls": 4, "error": None},
                  "subspace": {"radius": 0.4, "seconds": 2.0, "bound_calls": 3, "norm": "l2", "error": None}},
        "manipulated": [
            {"flows": 1, "astar_lower": 0.05, "astar_seconds": 5.0, "astar_iterations": 60, "lirpa_radius": 0.9,
             "lirpa_seconds": 2.0},
            {"flows": 7, "astar_lower": 0.01, "astar_seconds": 5.0, "astar_iterations": 60, "lirpa_radius": 0.5,
             "lirpa_seconds": 3.0}],
        "brightness": [
            {"delta": 0.05, "frame": 3, "pixel_distance": 1.6, "flow_change": 0.02, "flow_change_relative": 0.002,
             "predicted_class": "left", "inside_certified": True, "lower_bound": 0.18},
            {"delta": 0.2, "frame": 3, "pixel_distance": 6.4, "flow_change": 0.08, "flow_change_relative": 0.008,
             "predicted_class": "left", "inside_certified": True, "lower_bound": 0.25}],
    }


def trace_frame(clip: int) -> pd.DataFrame:
    """Running minima / maxima per iteration: the upper bound falls, every lower bound rises."""
    rows = []

    def add(bound: str, values: list[float], flows: int = FLOWS) -> None:
        rows.extend({"clip": clip, "bound": bound, "flows": flows, "norm": "l2", "iteration": i, "seconds": 0.1 * i,
                     "value": v} for i, v in enumerate(values))

    add("upper", [np.nan, 6.0, 5.0, 5.0, 4.5, 2.0 + clip])
    add("astar", [0.0, 0.002, 0.005, 0.008, 0.01])
    add("astar_subspace_upper", [np.nan, 6.0, 3.0 + clip])
    add("lirpa_l2", [0.0, 0.25, 0.375, 0.5])
    add("lirpa_linf", [0.0, 0.05, 0.1])
    for k, top in ((1, 0.05), (7, 0.01)):
        add("astar_k", [0.0, top / 2, top], k)
        add("lirpa_k", [0.0, top * 9], k)
    return pd.DataFrame(rows)


def flow_arrays(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    flow = rng.normal(0, 1, (FLOWS, 2, GRID, GRID)).astype(np.float32)
    return {"frames": rng.uniform(0, 1, (FLOWS + 1, SIZE, SIZE)).astype(np.float32), "flow": flow,
            "full_flow": rng.normal(0, 1, (FLOWS, 2, SIZE, SIZE)).astype(np.float32),
            "adversarial": flow + rng.normal(0, 0.1, flow.shape).astype(np.float32),
            "has_adversarial": np.array(True), "brightness_deltas": np.array([0.05, 0.2]),
            "brightened_frame": rng.uniform(0, 1, (2, SIZE, SIZE)).astype(np.float32),
            "brightened_flow": np.stack([flow, flow]).astype(np.float32)}


def metadata(test: float | None = 0.95) -> dict[str, Any]:
    accuracy = {"train": 1.0, "val": 0.96} | ({} if test is None else {"test": test})
    return {"accuracy": accuracy, "epochs": 20, "seconds": 12.0, "classes": CLASSES}


def write_inputs(results: Path, clips: int = 3) -> ExperimentPaths:
    """Every input of report_video for the smoke experiment under ``results``."""
    paths = ExperimentPaths(results, "smoke")
    for clip in range(clips):
        paths.video_bounds(clip).parent.mkdir(parents=True, exist_ok=True)
        paths.video_bounds(clip).write_text(json.dumps(bounds_document(clip)))
        trace_frame(clip).to_parquet(paths.video_trace(clip), index=False)
        np.savez(paths.video_flows(clip), **flow_arrays(clip))
    stem = paths.video_model_stem
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps({"format": "test", "spec": {}, "metadata": metadata()}))
    stem.with_suffix(".safetensors").write_bytes(b"")  # the report never reads the weights
    return paths


def documents(change: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
    docs = [bounds_document(c) for c in range(3)]
    if change is not None:
        change(docs)
    return docs


def traces(change: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> pd.DataFrame:
    frame = pd.concat([trace_frame(c) for c in range(3)], ignore_index=True)
    return change(frame) if change is not None else frame


def by_claim(found, start: str):
    matches = [f for f in found if f.claim.startswith(start)]
    assert len(matches) == 1, [f.claim for f in found]
    return matches[0]


def table_findings(docs: list[dict[str, Any]], meta: dict[str, Any] | None = None):
    long = report.table1_long(docs, NORMS)
    return report.table1_findings(docs, long, meta or metadata())


# --------------------------------------------------------------------------------------------
# vd_table1


def test_table1_cells_are_hand_checked():
    long, display = report.table1(documents(), NORMS)
    row = display.loc["clip 1 (test 11)"]
    assert row["true"] == "left" and row["predicted"] == "left"
    assert row["upper L2 (class)"] == "3.0000 (up)"  # 2.0 + clip
    assert row["A* lower (subspace)"] == "0.0100 (14 dims)"
    assert row["LiRPA L2"] == "0.5000" and row["LiRPA Linf"] == "0.1000"
    assert row["gap (upper / LiRPA L2)"] == "6.00"  # 3.0 / 0.5
    assert (row["upper s"], row["A* s"], row["LiRPA L2 s"], row["LiRPA Linf s"]) == ("1.5", "5.0", "3.0", "2.5")
    assert row["pixel space"] == "yes"
    assert long.loc[0, "gap"] == pytest.approx(4.0)
    found = table_findings(documents())
    assert all(f.holds is True for f in found), [(f.claim, f.evidence) for f in found]
    assert by_claim(found, "On A*'s subspace").evidence.startswith("clip 0: 0.4 vs 0.01 (40x)")


def test_errored_bounds_show_err_and_an_empty_search_none_found():
    def change(docs):
        docs[0]["lirpa"]["l2"] = {"radius": None, "seconds": 1.0, "bound_calls": 0, "error": "CROWN failed"}
        docs[1]["upper"] |= {"distance": None, "adversarial_class": None, "error": "gradient failed"}
        docs[2]["upper"] |= {"distance": None, "adversarial_class": None}  # nothing found within the budget
        docs[2]["astar"] |= {"lower": None, "error": "out of memory"}

    long, display = report.table1(documents(change), NORMS)
    assert display.iloc[0]["LiRPA L2"] == "ERR" and display.iloc[0]["gap (upper / LiRPA L2)"] == "ERR"
    assert display.iloc[1]["upper L2 (class)"] == "ERR" and display.iloc[1]["gap (upper / LiRPA L2)"] == "ERR"
    assert display.iloc[1]["pixel space"] == "—"  # no adversarial flow to realise
    assert display.iloc[2]["upper L2 (class)"] == "none found" and display.iloc[2]["A* lower (subspace)"] == "ERR"
    assert display.iloc[2]["gap (upper / LiRPA L2)"] == "—"
    assert long["upper_error"].tolist()[1] == "gradient failed"
    # an errored bound takes part in no finding
    assert by_claim(table_findings(documents(change)), "Soundness").holds is True


@pytest.mark.parametrize("change", [
    lambda docs: docs[1]["astar"].update(lower=5.0),  # above A*'s subspace upper bound 4.0
    lambda docs: docs[2]["lirpa"]["l2"].update(radius=4.5),  # above the upper bound 4.0
    lambda docs: docs[0]["lirpa"]["linf"].update(radius=2.5),  # Linf radius above an L2 adversarial distance
    lambda docs: docs[0]["astar"].update(fmsr_upper=0.005),  # A* lower above FMSR's upper bound
])
def test_soundness_fails_on_a_lower_bound_above_an_upper_bound(change):
    finding = by_claim(table_findings(documents(change)), "Soundness")
    assert finding.holds is False and finding.kind == "finding" and ">" in finding.evidence


def test_a_subspace_lower_bound_is_not_compared_with_the_whole_flow_upper_bound():
    # A* lower 2.5 > upper 2.0 is no contradiction: A* searches a subspace, whose MSR may be larger.
    finding = by_claim(table_findings(documents(lambda d: d[0]["astar"].update(lower=2.5))), "Soundness")
    assert finding.holds is True


def test_the_other_table_findings_fail_on_violating_data():
    weak = by_claim(table_findings(documents(lambda d: d[1]["lirpa"]["subspace"].update(radius=0.05))),
                    "On A*'s subspace")
    assert weak.holds is False and "5x" in weak.evidence
    assert by_claim(table_findings(documents(), metadata(0.5)), "The flow classifier").holds is False
    assert by_claim(table_findings(documents(), metadata(None)), "The flow classifier").holds is None

    def lost(docs):
        for d in docs[:2]:
            d["upper"]["pixel"]["survives"] = False
    pixel = by_claim(table_findings(documents(lost)), "The attack survives")
    assert pixel.holds is False and "1 of 3" in pixel.evidence


def test_table1_compare_quotes_the_paper_and_the_test_accuracy():
    docs = documents()
    long = report.table1_long(docs, NORMS)
    text = report.table1_compare(docs, long, metadata(0.93), 5, 60)
    assert "5670.31 after 20 iterations" in text and "52.95 after 1000 iterations" in text
    assert "LongJump (100.00%)" in text and "FloorGymnastics (86.10%)" in text and "FrontCrawl (99.86%)" in text
    assert "~30" in text and "Sec. 6.4" in text and "Fig. 7 (Sec. 6.2)" in text
    assert "test accuracy 0.9300" in text and "## Findings" in text
    assert "3.0000 (median; 2.0000 to 4.0000)" in text  # upper bounds 2, 3, 4


# --------------------------------------------------------------------------------------------
# vd_fig7


def test_fig7_findings_hold_on_converging_bounds():
    found = report.fig7_findings(traces(), [0, 1, 2], "l2")
    assert [f.holds for f in found] == [True, True, True]
    assert found[0].kind == "sanity check" and found[1].kind == "finding"
    assert "clip 0: upper inf -> 2" in found[1].evidence


def test_a_rising_upper_trace_fails_the_monotone_sanity_check():
    def rise(frame):
        mask = (frame["clip"] == 1) & (frame["bound"] == "upper") & (frame["iteration"] == 5)
        frame.loc[mask, "value"] = 9.0
        return frame
    finding = report.monotone_finding(traces(rise))
    assert finding.holds is False and "clip 1 upper" in finding.evidence


def test_a_gap_that_does_not_shrink_fails():
    def flat(frame):
        # A* never moves on clips 0 and 1: its gap shrinks only because the upper bound falls
        mask = frame["clip"].isin([0, 1]) & (frame["bound"] == "astar")
        frame.loc[mask, "value"] = 0.01
        return frame
    found = report.fig7_findings(traces(flat), [0, 1, 2], "l2")
    assert found[1].holds is False and "1 of 3" in found[1].evidence and found[0].holds is True

    def stuck(frame):
        mask = frame["clip"].isin([0, 1, 2]) & (frame["bound"] == "upper")
        frame.loc[mask, "value"] = 2.0
        return frame
    assert report.fig7_findings(traces(stuck), [0, 1, 2], "l2")[2].holds is False


def test_fig7_compare_sets_the_paper_beside_our_traces():
    text = report.fig7_compare(traces(), documents(), "l2")
    assert "5670.31" in text and "52.95" in text and "| 0 | inf -> 2 | 5 | 0 -> 0.01 | 4 |" in text


# --------------------------------------------------------------------------------------------
# vd_fig8


def test_brightness_findings_hold_and_fail():
    found = report.fig8_findings(report.brightness_frame(documents()))
    assert [f.holds for f in found] == [True, True, True]
    assert "0.2: 0.0080" in found[0].evidence

    def big(docs):
        for d in docs[:2]:
            d["brightness"][1]["flow_change_relative"] = 0.5
    assert report.flow_change_finding(report.brightness_frame(documents(big))).holds is False
    # every listed delta counts, not only the largest (a whole number of grey levels moves the flow least)
    small_only = documents(lambda d: [x["brightness"][0].update(flow_change_relative=0.5) for x in d])
    assert report.flow_change_finding(report.brightness_frame(small_only)).holds is False
    one_clip = documents(lambda d: d[0]["brightness"][0].update(flow_change_relative=0.5))
    assert report.flow_change_finding(report.brightness_frame(one_clip)).holds is True  # a median over clips

    outside = documents(lambda d: d[2]["brightness"][0].update(inside_certified=False))
    safe = report.listed_safe_finding(report.brightness_frame(outside))
    assert safe.holds is False and "outside the certified ball" in safe.evidence
    assert "not a proof over a brightness interval" in safe.claim

    flipped = documents(lambda d: d[0]["brightness"][1].update(predicted_class="right"))
    frame = report.brightness_frame(flipped)
    assert report.listed_safe_finding(frame).holds is False
    sound = report.inside_keeps_class_finding(frame)
    assert sound.holds is False and sound.kind == "sanity check"


def test_unchecked_brightness_is_undecided_and_missing_deltas_are_named():
    unchecked = documents(lambda d: d[1]["brightness"][0].update(inside_certified=None))
    assert report.listed_safe_finding(report.brightness_frame(unchecked)).holds is None
    text = report.fig8_compare(report.brightness_frame(documents()), [0.05, 0.1, 0.2])
    assert "548.68" in text and "no result for clip 0 delta 0.1, clip 1 delta 0.1, clip 2 delta 0.1" in text


# --------------------------------------------------------------------------------------------
# vd_fig10


def test_fewer_flows_findings_hold_and_fail():
    frame = report.manipulated_frame(documents())
    assert [f.holds for f in report.fig10_findings(frame, 60)] == [True, True]

    def grows(docs):
        for d in docs[:2]:
            d["manipulated"][1]["astar_lower"] = 0.2  # k = 7 above k = 1's 0.05
    astar, lirpa = report.fig10_findings(report.manipulated_frame(documents(grows)), 60)
    assert astar.holds is False and lirpa.holds is True and "1 of 3" in astar.evidence

    def lirpa_grows(docs):
        for d in docs:
            d["manipulated"][1]["lirpa_radius"] = 2.0
    assert report.fig10_findings(report.manipulated_frame(documents(lirpa_grows)), 60)[1].holds is False
    one_k = documents(lambda d: [x.update(manipulated=x["manipulated"][:1]) for x in d])
    assert report.fig10_findings(report.manipulated_frame(one_k), 60)[0].holds is None


# --------------------------------------------------------------------------------------------
# figures and the stage


def test_every_figure_draws_also_without_an_adversarial_flow():
    docs, arrays = documents(), flow_arrays(0)
    assert report.fig5_clip(docs, {0: True, 1: True, 2: True}) == 0  # 2 / 10 is the smallest relative bound
    assert report.fig5_clip(docs, {0: False, 1: True, 2: True}) == 1
    figures = [report.fig4(arrays, 0, "left"), report.fig5(arrays, docs[0]), report.fig5(None, None),
               report.fig7(traces(), docs, NORMS), report.fig8(arrays, report.brightness_frame(docs), 0),
               report.fig10(report.manipulated_frame(docs), traces(), 0, [1, 7]),
               report.fig7(traces().iloc[0:0], docs, NORMS)]
    for figure in figures:
        assert isinstance(figure, plt.Figure)
        plt.close(figure)


def _run_stage(results: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "nnassure.stages.report_video", "experiment=smoke",
                           f"results_dir={results}", "tracking=disabled"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)


def test_the_stage_writes_every_catalog_file(tmp_path):
    paths = write_inputs(tmp_path)
    result = _run_stage(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    cfg = compose(["experiment=smoke", f"results_dir={tmp_path}"])
    files = catalog.family_files(cfg, "video")
    assert len(files) == 4 + 5 * 2 + 3  # the table (csv, md, tex, compare) and five figures, three compared
    assert all(f.exists() and f.stat().st_size > 0 for f in files), [str(f) for f in files if not f.exists()]
    table = (paths.tables / "vd_table1.md").read_text()
    assert "clip 1 (test 11)" in table and "clip 2" not in table  # smoke analyses 2 clips
    # clip 0: gap 2.0 / 0.5 (the Markdown renderer prints numeric cells as numbers, the LaTeX as written)
    tex = (paths.tables / "vd_table1.tex").read_text()
    assert "& 2.0000 (up) & 0.0100 (14 dims) & 0.5000 & 4.00 & 1.5 &" in tex  # smoke certifies L2 only
    compare = (paths.tables / "vd_table1.compare.md").read_text()
    assert "clip 0: left, clip 1: left" in compare and "clip 0: up, clip 1: up" in compare
    assert "## Findings" in (paths.tables / "vd_fig10.compare.md").read_text()


def test_a_missing_input_is_a_one_line_error_naming_it(tmp_path):
    paths = write_inputs(tmp_path)
    paths.video_trace(1).unlink()
    result = _run_stage(tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and str(paths.video_trace(1)) in lines[0], lines
    broken = copy.deepcopy(bounds_document(0))
    del broken["astar"]
    paths.video_bounds(0).write_text(json.dumps(broken))
    result = _run_stage(tmp_path)
    assert result.returncode == 2 and "0.json: missing key(s) astar" in result.stderr
