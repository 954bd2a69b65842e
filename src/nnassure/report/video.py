"""The video family's table and figures (Wu & Kwiatkowska, Sec. 6): vd_table1, vd_fig4, vd_fig5,
vd_fig7, vd_fig8 and vd_fig10, and their comparison with the numbers the paper prints.

Every number is read from the per-clip results of the ``video_bounds`` stage: a JSON summary
(:meth:`ExperimentPaths.video_bounds`), the bounds per iteration (``video_trace``, Parquet) and
the clip's frames and flows (``video_flows``, ``.npz``).

What is proven and what is checked. The CROWN (LiRPA) radii are proven lower bounds of the maximum
safe radius (MSR) w.r.t. the flow; the A* lower bound holds as far as its Lipschitz constant is a
true one (Sec. 3.3, Theorem 1); the upper bound is the distance of an adversarial flow that the
gradient search found and the network misclassifies, so it is checked, not proven minimal. A bound
that errored has no number: its cell is "ERR" (its message is in the CSV), never a number, and an
upper bound that found no adversarial flow within its budget is "none found", not a radius.

Spaces. A* manipulates a subspace of the flow (the most salient dimensions of each flow), so its
lower bound is a lower bound of the MSR *within that subspace*, which may exceed the MSR of the
whole flow. Soundness therefore compares a lower and an upper bound only where both speak about
the same space, or the lower one about a larger space (:func:`soundness_pairs`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from nnassure.errors import InputFileError
from nnassure.io import read_npz
from nnassure.paths import ExperimentPaths
from nnassure.report.findings import Finding, findings_markdown, sanity
from nnassure.report.paper_numbers import paper_numbers, paper_table

PAPER = "video-robustness-optical-flow"
ERROR_CELL = "ERR"
NONE_FOUND = "none found"
NO_VALUE = "—"
NORM_LABEL = {"l2": "L2", "linf": "Linf", "l1": "L1"}
BOUND_KEYS = ("clip", "true_class", "predicted_class", "norm", "flows", "upper", "astar", "lirpa", "manipulated",
              "brightness")
TRACE_COLUMNS = ("clip", "bound", "flows", "norm", "iteration", "seconds", "value")
FLOW_ARRAYS = ("frames", "flow", "full_flow", "adversarial", "has_adversarial", "brightness_deltas",
               "brightened_frame", "brightened_flow")
# Traces of upper bounds are running minima, of lower bounds running maxima (the stage keeps the
# best bound so far), which is what the monotonicity sanity check relies on.
UPPER_TRACES = ("upper", "astar_subspace_upper")
LOWER_TRACES = ("astar", "lirpa_l2", "lirpa_linf", "astar_k", "lirpa_k")
LIRPA_FACTOR = 10.0  # "the LiRPA lower bound is at least 10x A*'s"
ACCURACY_FLOOR = 0.90  # the classifier is worth analysing
FLOW_CHANGE_THRESHOLD = 0.1  # "brightness barely changes the flow": relative change below this
REMEDY = "rerun the video_bounds stage"


# --------------------------------------------------------------------------------------------
# inputs


def load_bounds(paths: ExperimentPaths, clips: Iterable[int]) -> list[dict[str, Any]]:
    """The JSON summaries of ``clips``; a missing, unreadable or incomplete one is an InputFileError."""
    documents = []
    for clip in clips:
        path = paths.video_bounds(clip)
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputFileError(f"{path}: cannot read the video bounds ({exc}); {REMEDY}") from None
        if not isinstance(document, dict):
            raise InputFileError(f"{path}: expected a JSON object, got {type(document).__name__}; {REMEDY}")
        missing = [k for k in BOUND_KEYS if k not in document]
        if missing:
            raise InputFileError(f"{path}: missing key(s) {', '.join(missing)}; {REMEDY}")
        documents.append(document)
    return documents


def load_traces(paths: ExperimentPaths, clips: Iterable[int]) -> pd.DataFrame:
    """Every clip's trace (bound per iteration) in one frame with :data:`TRACE_COLUMNS`."""
    frames = []
    for clip in clips:
        path = paths.video_trace(clip)
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise InputFileError(f"{path}: cannot read the bound trace ({exc}); {REMEDY}") from None
        missing = [c for c in TRACE_COLUMNS if c not in frame.columns]
        if missing:
            raise InputFileError(f"{path}: missing column(s) {', '.join(missing)}; {REMEDY}")
        frames.append(frame[list(TRACE_COLUMNS)])
    if not frames:
        return pd.DataFrame(columns=list(TRACE_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def load_flows(paths: ExperimentPaths, clip: int) -> dict[str, np.ndarray]:
    """The frames, flows and adversarial and brightened flows of one clip."""
    return read_npz(paths.video_flows(clip), FLOW_ARRAYS, REMEDY)


def load_model_metadata(stem: Path) -> dict[str, Any]:
    """The video model's training metadata (accuracy per split, epochs, seconds, classes), read from
    ``<stem>.json`` without loading the weights (the report needs none)."""
    path = Path(stem).with_suffix(".json")
    try:
        document = json.loads(path.read_text())
        metadata = document["metadata"]
        if not isinstance(metadata, dict):
            raise TypeError(f"metadata is a {type(metadata).__name__}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputFileError(f"{path}: cannot read the video model's metadata ({exc}); rerun video_train") from None
    return metadata


def model_test_accuracy(metadata: Mapping[str, Any]) -> float | None:
    """The model's test accuracy (video_train writes ``accuracy``; ``accuracies`` is accepted too)."""
    accuracy = metadata.get("accuracy", metadata.get("accuracies"))
    if isinstance(accuracy, Mapping) and accuracy.get("test") is not None:
        return float(accuracy["test"])
    return None


def check_classes(documents: Sequence[Mapping[str, Any]], motions: Sequence[str], paths: ExperimentPaths) -> None:
    """Refuse bounds computed for other motions than the config's (a stale result)."""
    for document in documents:
        classes = document.get("classes")
        if classes is not None and list(classes) != list(motions):
            raise InputFileError(f"{paths.video_bounds(document['clip'])}: computed for motions {classes}, the "
                                 f"config has {list(motions)}; {REMEDY}")


# --------------------------------------------------------------------------------------------
# cells


def _number(value: Any) -> float:
    """A JSON number as float; None (no value) as NaN."""
    return math.nan if value is None else float(value)


def _finite(value: float) -> bool:
    return value is not None and math.isfinite(value)


def _present(value: Any) -> bool:
    """Not None and not NaN (a JSON null read into a frame becomes either)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _is_true(value: Any) -> bool:
    """A JSON true, also after pandas turned it into a numpy bool."""
    return isinstance(value, (bool, np.bool_)) and bool(value)


def _is_false(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_)) and not bool(value)


def _fmt(value: float, digits: int = 4) -> str:
    # A bound below the fixed-point resolution is shown in significant digits, never as 0.0000.
    if not _finite(value):
        return NO_VALUE
    return f"{value:.3g}" if 0 < abs(value) < 10.0**-digits * 10 else f"{value:.{digits}f}"


def upper_status(document: Mapping[str, Any]) -> str:
    """"found", "none found" (no adversarial within the budget) or "error"."""
    upper = document["upper"]
    if upper.get("error"):
        return "error"
    return "found" if upper.get("distance") is not None else NONE_FOUND


def _status(bound: Mapping[str, Any] | None, key: str) -> str:
    """"ok", "error" or "missing" (no number and no error message) of a lower bound."""
    if bound is None:
        return "missing"
    if bound.get("error"):
        return "error"
    return "ok" if bound.get(key) is not None else "missing"


def _cell(value: float, status: str, suffix: str = "") -> str:
    if status == "error":
        return ERROR_CELL
    if status == NONE_FOUND:
        return NONE_FOUND
    return _fmt(value) + suffix if _finite(value) else NO_VALUE


def comparable(lower_norm: str, upper_norm: str) -> bool:
    """A lower bound in ``lower_norm`` can be compared with an upper bound in ``upper_norm``: the
    same norm, or an Linf radius against an L2 distance (‖d‖_inf <= ‖d‖_2, so an L2 adversarial at
    distance u lies at Linf distance <= u, and a sound Linf radius r has r <= u)."""
    return lower_norm == upper_norm or (lower_norm == "linf" and upper_norm == "l2")


# --------------------------------------------------------------------------------------------
# vd_table1


def table1_long(documents: Sequence[Mapping[str, Any]], norms: Sequence[str]) -> pd.DataFrame:
    """One row per clip: every bound with its status ("ok", "error", "missing"; the upper bound's
    "found", "none found", "error"), seconds and error message."""
    rows = []
    for d in documents:
        upper, astar, lirpa = d["upper"], d["astar"], d["lirpa"]
        norm = d["norm"]
        row: dict[str, Any] = {
            "clip": d["clip"], "test_index": d.get("test_index"), "true_class": d["true_class"],
            "predicted_class": d["predicted_class"], "norm": norm, "flows": d.get("flows"),
            "flow_norm": _number(d.get("flow_norm")),
            "upper": _number(upper.get("distance")), "upper_status": upper_status(d),
            "adversarial_class": upper.get("adversarial_class"), "upper_iterations": upper.get("iterations"),
            "upper_seconds": _number(upper.get("seconds")), "upper_error": upper.get("error"),
            "astar_lower": _number(astar.get("lower")), "astar_status": _status(astar, "lower"),
            "astar_dims": astar.get("dims"), "astar_iterations": astar.get("iterations"),
            "astar_seconds": _number(astar.get("seconds")),
            "astar_subspace_upper": _number(astar.get("subspace_upper")),
            "astar_fmsr_upper": _number(astar.get("fmsr_upper")), "astar_error": astar.get("error"),
        }
        for n in norms:
            bound = lirpa.get(n)
            row |= {f"lirpa_{n}": _number((bound or {}).get("radius")), f"lirpa_{n}_status": _status(bound, "radius"),
                    f"lirpa_{n}_seconds": _number((bound or {}).get("seconds")),
                    f"lirpa_{n}_error": (bound or {}).get("error")}
        sub = lirpa.get("subspace")
        row |= {"lirpa_subspace": _number((sub or {}).get("radius")), "lirpa_subspace_status": _status(sub, "radius"),
                "lirpa_subspace_norm": (sub or {}).get("norm"), "lirpa_subspace_error": (sub or {}).get("error")}
        # The gap is upper / lower in the upper bound's norm: how far apart the bracket of the MSR is.
        lower_same = row.get(f"lirpa_{norm}", math.nan)
        ok = row["upper_status"] == "found" and row.get(f"lirpa_{norm}_status") == "ok" and lower_same > 0
        row["gap"] = row["upper"] / lower_same if ok else math.nan
        pixel = upper.get("pixel") or {}
        row["pixel_survives"] = pixel.get("survives") if row["upper_status"] == "found" else None
        rows.append(row)
    return pd.DataFrame(rows)


def _gap_cell(row: Mapping[str, Any], norm: str) -> str:
    if row["upper_status"] == "error" or row.get(f"lirpa_{norm}_status") == "error":
        return ERROR_CELL
    return f"{row['gap']:.2f}" if _finite(row["gap"]) else NO_VALUE


def _pixel_cell(value: Any) -> str:
    return "yes" if _is_true(value) else "no" if _is_false(value) else NO_VALUE


def table1_display(long: pd.DataFrame, norms: Sequence[str]) -> pd.DataFrame:
    """The table as shown: one row per clip, "ERR" for an errored bound, "none found" for an upper
    bound without an adversarial flow."""
    rows = {}
    for row in long.to_dict("records"):
        norm = row["norm"]
        upper = _cell(row["upper"], row["upper_status"] if row["upper_status"] != "found" else "ok")
        if row["upper_status"] == "found" and row["adversarial_class"]:
            upper += f" ({row['adversarial_class']})"
        dims = f" ({int(row['astar_dims'])} dims)" if _present(row["astar_dims"]) else ""
        cells = {"true": row["true_class"], "predicted": row["predicted_class"],
                 f"upper {NORM_LABEL.get(norm, norm)} (class)": upper,
                 "A* lower (subspace)": _cell(row["astar_lower"], row["astar_status"], dims)}
        for n in norms:
            cells[f"LiRPA {NORM_LABEL.get(n, n)}"] = _cell(row[f"lirpa_{n}"], row[f"lirpa_{n}_status"])
        cells[f"gap (upper / LiRPA {NORM_LABEL.get(norm, norm)})"] = _gap_cell(row, norm)
        cells["upper s"] = _fmt(row["upper_seconds"], 1)
        cells["A* s"] = _fmt(row["astar_seconds"], 1)
        for n in norms:
            cells[f"LiRPA {NORM_LABEL.get(n, n)} s"] = _fmt(row[f"lirpa_{n}_seconds"], 1)
        cells["pixel space"] = _pixel_cell(row["pixel_survives"])
        test = f" (test {int(row['test_index'])})" if _present(row["test_index"]) else ""
        rows[f"clip {row['clip']}{test}"] = cells
    display = pd.DataFrame.from_dict(rows, orient="index")
    display.index.name = "clip"
    return display


def table1(documents: Sequence[Mapping[str, Any]], norms: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(long, display) of vd_table1."""
    long = table1_long(documents, norms)
    return long, table1_display(long, norms)


def soundness_pairs(document: Mapping[str, Any]) -> list[tuple[str, float, str, float]]:
    """(lower name, lower, upper name, upper) pairs of one clip that soundness orders.

    A lower bound of the whole flow's MSR is below every adversarial distance, whole-flow or
    subspace (a subspace adversarial flow is one of the whole flow); a subspace lower bound is only
    below the subspace's upper bounds. FMSR's upper bound is one too: MSR <= FMSR (Theorem 1).
    Errored and missing bounds are left out."""
    norm = document["norm"]
    upper, astar, lirpa = document["upper"], document["astar"], document["lirpa"]
    full_uppers, sub_uppers = [], []
    if upper_status(document) == "found":
        full_uppers.append(("upper", float(upper["distance"])))
    if not astar.get("error"):
        for key in ("subspace_upper", "fmsr_upper"):
            if astar.get(key) is not None:
                sub_uppers.append((f"A* {key}", float(astar[key])))
    full_lowers = [(f"LiRPA {n}", n, float(b["radius"])) for n, b in lirpa.items()
                   if n != "subspace" and isinstance(b, Mapping) and _status(b, "radius") == "ok"]
    sub_lowers = []
    if _status(astar, "lower") == "ok":
        sub_lowers.append(("A* lower", norm, float(astar["lower"])))
    sub = lirpa.get("subspace")
    if isinstance(sub, Mapping) and _status(sub, "radius") == "ok":
        sub_lowers.append(("LiRPA subspace", sub.get("norm", norm), float(sub["radius"])))
    pairs = []
    for name, n, value in full_lowers:
        pairs += [(name, value, u, uv) for u, uv in full_uppers + sub_uppers if comparable(n, norm)]
    for name, n, value in sub_lowers:
        pairs += [(name, value, u, uv) for u, uv in sub_uppers if comparable(n, norm)]
    return pairs


def soundness_finding(documents: Sequence[Mapping[str, Any]]) -> Finding:
    """Every lower bound is at most every upper bound of the same space, for every clip. The bounds
    are computed by independent methods, so this can fail on a bug or an unsound bound: a finding,
    not a sanity check."""
    claim = ("Soundness: on every clip each lower bound (A*, LiRPA) is at most each upper bound of the same space "
             "(Sec. 5: the bounds bracket the MSR)")
    checked, violations = 0, []
    for d in documents:
        for lower_name, lower, upper_name, upper in soundness_pairs(d):
            checked += 1
            if lower > upper:
                violations.append(f"clip {d['clip']}: {lower_name} {lower:.4g} > {upper_name} {upper:.4g}")
    if not checked:
        return Finding(claim, None, "no clip has a lower and an upper bound of the same space")
    evidence = "; ".join(violations) if violations else f"all {checked} lower/upper pairs ordered"
    return Finding(claim, not violations, evidence + " (a subspace lower bound is compared only with subspace "
                   "upper bounds)")


def lirpa_vs_astar_finding(documents: Sequence[Mapping[str, Any]]) -> Finding:
    """Our CROWN bound against A* on the same subspace: at least :data:`LIRPA_FACTOR` times larger."""
    claim = (f"On A*'s subspace the LiRPA (CROWN) lower bound is at least {LIRPA_FACTOR:g}x A*'s on every clip "
             "(not in the paper)")
    parts, verdicts = [], []
    for d in documents:
        astar, sub = d["astar"], d["lirpa"].get("subspace")
        if _status(astar, "lower") != "ok" or not isinstance(sub, Mapping) or _status(sub, "radius") != "ok":
            parts.append(f"clip {d['clip']}: {ERROR_CELL if astar.get('error') or (sub or {}).get('error') else 'n/a'}")
            continue
        if sub.get("norm", d["norm"]) != d["norm"]:
            parts.append(f"clip {d['clip']}: LiRPA subspace in {sub.get('norm')}, A* in {d['norm']}")
            continue
        a, r = float(astar["lower"]), float(sub["radius"])
        ratio = r / a if a > 0 else (math.inf if r > 0 else math.nan)
        verdicts.append(bool(ratio >= LIRPA_FACTOR))
        parts.append(f"clip {d['clip']}: {r:.4g} vs {a:.4g} ({ratio:.3g}x)")
    return Finding(claim, all(verdicts) if verdicts else None, "; ".join(parts) or "no clip")


def accuracy_finding(metadata: Mapping[str, Any]) -> Finding:
    """Whether the classifier is accurate enough for its robustness to be worth measuring."""
    claim = f"The flow classifier's test accuracy is at least {ACCURACY_FLOOR:.0%} (not in the paper)"
    accuracy = model_test_accuracy(metadata)
    if accuracy is None:
        return Finding(claim, None, "the model's metadata holds no test accuracy")
    return Finding(claim, accuracy >= ACCURACY_FLOOR, f"test accuracy {accuracy:.2%}")


def pixel_finding(long: pd.DataFrame) -> Finding:
    """Whether the adversarial flows are realisable: warped into frames whose re-extracted flow is
    still misclassified (the video_bounds stage's pixel check)."""
    claim = ("The attack survives in pixel space for most clips: the frames warped by the adversarial flow are "
             "still misclassified (not in the paper)")
    decided = [(c, _is_true(v)) for c, v in zip(long["clip"], long["pixel_survives"], strict=True)
               if _is_true(v) or _is_false(v)]
    if not decided:
        return Finding(claim, None, "no clip has an adversarial flow with a pixel-space check")
    survived = sum(v for _, v in decided)
    return Finding(claim, survived > len(decided) / 2, f"{survived} of {len(decided)} clips: " + ", ".join(
        f"clip {c} {'yes' if v else 'no'}" for c, v in decided))


def table1_findings(documents: Sequence[Mapping[str, Any]], long: pd.DataFrame,
                    metadata: Mapping[str, Any]) -> list[Finding]:
    """The findings of vd_table1.compare.md."""
    return [soundness_finding(documents), lirpa_vs_astar_finding(documents), accuracy_finding(metadata),
            pixel_finding(long)]


def _paper(name: str) -> pd.DataFrame:
    """One of the paper's quoted tables (report/paper/video-robustness-optical-flow.yaml)."""
    return paper_table(PAPER, name)


def _source(name: str) -> str:
    """Where in the paper a quoted table comes from."""
    return paper_numbers(PAPER).tables[name].source


def _range(values: Iterable[float], digits: int = 4) -> str:
    """Median and range of the finite values (NaN: an errored or missing bound, left out)."""
    finite = [v for v in values if _finite(v)]
    if not finite:
        return NO_VALUE
    if len(finite) == 1:
        return _fmt(finite[0], digits)
    return f"{_fmt(float(np.median(finite)), digits)} (median; {_fmt(min(finite), digits)} to " \
           f"{_fmt(max(finite), digits)})"


def table1_compare(documents: Sequence[Mapping[str, Any]], long: pd.DataFrame, metadata: Mapping[str, Any],
                   upper_iterations: int, astar_iterations: int) -> str:
    """vd_table1.compare.md: the paper's Sec. 6 numbers beside ours, and the findings."""
    fig7 = _paper("fig7").set_index("bound")
    fig5 = _paper("fig5")
    fig7_class = _paper("fig7_class")
    efficiency = _paper("efficiency").set_index("quantity")
    accuracy = model_test_accuracy(metadata)
    splits = metadata.get("accuracy", metadata.get("accuracies"))
    trained = ""
    if isinstance(splits, Mapping):
        trained = ", ".join(f"{k} {float(v):.4f}" for k, v in splits.items() if k != "test" and v is not None)
        trained = f" ({trained}; {metadata.get('epochs', '?')} epochs)" if trained else ""
    found = long[long["upper_status"] == "found"]
    relative = found["upper"] / found["flow_norm"]
    per_flow = long["upper_seconds"] / long["flows"].astype(float)
    # our counterpart of the paper's original and adversarial class, per clip with an adversarial flow
    ours_class = {"original": ", ".join(f"clip {r.clip}: {r.predicted_class}" for r in found.itertuples()),
                  "adversarial": ", ".join(f"clip {r.clip}: {r.adversarial_class}" for r in found.itertuples())}
    norm = str(long["norm"].iloc[0]) if len(long) else "l2"
    label = NORM_LABEL.get(norm, norm)
    lirpa = (long.loc[long[f"lirpa_{norm}_status"] == "ok", f"lirpa_{norm}"] if f"lirpa_{norm}" in long
             else pd.Series(dtype=float))
    upper_row, lower_row = fig7.loc["upper"], fig7.loc["lower"]
    lines = [
        "# vd_table1 compared with the paper (Sec. 6)", "",
        "The paper's numbers are about single UCF101 videos (VGG16 + LSTM on 224 x 224 dense flow); ours are",
        "synthetic moving-sprite clips whose network reads the flow pooled to a coarse grid, so absolute",
        "distances differ in scale: the relative upper bound (distance / norm of the clip's flow) is the",
        "comparable quantity. The paper prints no table; each row quotes its source. A median is over the",
        "clips with that bound (\"ERR\" and \"none found\" are left out).", "",
        f"Our flow classifier: test accuracy {_fmt(accuracy) if accuracy is not None else NO_VALUE}{trained}.", "",
        "| quantity | paper | source | ours |", "|---|---|---|---|",
        f"| upper bound ({label}) | {upper_row['value']:.2f} after {int(upper_row['iterations'])} iterations | "
        f"{_source('fig7')} | {_range(found['upper'])} after {upper_iterations} iterations ({len(found)} of "
        f"{len(long)} clips found an adversarial flow) |",
        f"| relative upper bound | — | — | {_range(relative)} |",
        f"| A* lower bound ({label}) | {lower_row['value']:.2f} after {int(lower_row['iterations'])} iterations | "
        f"{_source('fig7')} | {_range(long.loc[long['astar_status'] == 'ok', 'astar_lower'])} after at most "
        f"{astar_iterations} iterations (on A*'s subspace) |",
        f"| LiRPA lower bound ({label}) | not in the paper | — | {_range(lirpa)} |",
        f"| gap upper / lower | {upper_row['value'] / lower_row['value']:.1f} (A*) | {_source('fig7')} | "
        f"{_range(long['gap'], 2)} (LiRPA) |",
    ]
    for row in fig5.to_dict("records"):
        lines.append(f"| {row['role']} class (confidence) | {row['class']} ({row['confidence_pct']:.2f}%) | "
                     f"{_source('fig5')} | {ours_class.get(row['role']) or NO_VALUE} (we record no confidences) |")
    for row in fig7_class.to_dict("records"):
        lines.append(f"| {row['role']} class of the upper bound (confidence) | {row['class']} "
                     f"({row['confidence_pct']:.2f}%) | {_source('fig7_class')} | as in the row above |")
    lines.append(f"| gradient time per frame (minutes) | ~{efficiency.loc['upper_gradient_per_frame', 'minutes']:g} | "
                 f"{_source('efficiency')} | {_range(per_flow / 60.0)} (the whole gradient search over the number of "
                 "flows; autograd through the network, not a manipulation per pixel) |")
    return "\n".join(lines) + "\n\n" + findings_markdown(table1_findings(documents, long, metadata))


# --------------------------------------------------------------------------------------------
# traces (vd_fig7, vd_fig10)


def _series(traces: pd.DataFrame, clip: int, bound: str, flows: int | None = None) -> pd.DataFrame:
    """One trace, sorted by iteration; for whole-sequence bounds the rows of the largest flow count."""
    part = traces[(traces["clip"] == clip) & (traces["bound"] == bound)]
    if flows is None and len(part):
        part = part[part["flows"] == part["flows"].max()]
    elif flows is not None:
        part = part[part["flows"] == flows]
    return part.sort_values("iteration")


def monotone_finding(traces: pd.DataFrame) -> Finding:
    """Sanity check: upper-bound traces never rise and lower-bound traces never fall. The stage
    records the best bound so far (a running min / max), so this holds by construction."""
    claim = ("Every trace is monotone: upper bounds never rise, lower bounds never fall (Fig. 7; by construction, "
             "each trace is the best bound so far)")
    broken, checked = [], 0
    for (clip, bound, flows), part in traces.groupby(["clip", "bound", "flows"], sort=True):
        values = part.sort_values("iteration")["value"].to_numpy(dtype=float)
        if bound in UPPER_TRACES:
            # no adversarial found yet is an upper bound of +inf
            values = np.where(np.isnan(values), np.inf, values)
            bad = np.any(np.diff(values) > 0)
        elif bound in LOWER_TRACES:
            values = values[~np.isnan(values)]
            bad = np.any(np.diff(values) < 0)
        else:
            continue
        checked += 1
        if bad:
            broken.append(f"clip {clip} {bound} (k = {flows})")
    if not checked:
        return sanity(claim, None, "no trace")
    return sanity(claim, not broken, f"not monotone: {', '.join(broken)}" if broken else
                  f"all {checked} traces monotone")


def _first_last(part: pd.DataFrame, upper: bool) -> tuple[float, float]:
    values = part["value"].to_numpy(dtype=float)
    if upper:
        values = np.where(np.isnan(values), np.inf, values)
    else:
        values = np.where(np.isnan(values), 0.0, values)
    return (float(values[0]), float(values[-1])) if len(values) else (math.nan, math.nan)


def gap_rows(traces: pd.DataFrame, clips: Iterable[int], lower_bound: str) -> pd.DataFrame:
    """Per clip: the upper bound and ``lower_bound``'s trace at their first and last iteration."""
    rows = []
    for clip in clips:
        up, low = _series(traces, clip, "upper"), _series(traces, clip, lower_bound)
        u0, u1 = _first_last(up, True)
        l0, l1 = _first_last(low, False)
        rows.append({"clip": clip, "lower_bound": lower_bound, "upper_first": u0, "upper_last": u1,
                     "upper_iterations": int(up["iteration"].max()) if len(up) else 0,
                     "lower_first": l0, "lower_last": l1,
                     "lower_iterations": int(low["iteration"].max()) if len(low) else 0})
    return pd.DataFrame(rows)


def gap_finding(rows: pd.DataFrame, name: str) -> Finding:
    """The gap upper / lower strictly shrinks from the first to the last iteration, both bounds
    moving, for most clips. A clip whose search never found an adversarial flow has no finite gap
    and is left out; a trace that never moves makes the clip count against the claim."""
    claim = (f"The bounds move towards each other: from the first to the last iteration the upper bound falls and the "
             f"{name} lower bound rises, so the gap strictly shrinks, for most clips (Sec. 6.2, Fig. 7)")
    parts, verdicts = [], []
    for r in rows.itertuples():
        if not _finite(r.upper_last):
            parts.append(f"clip {r.clip}: no adversarial flow, no gap")
            continue
        if math.isnan(r.lower_first):
            parts.append(f"clip {r.clip}: no {name} trace")
            continue
        moves = bool(r.upper_last < r.upper_first and r.lower_last > r.lower_first)
        verdicts.append(moves)
        gap0 = r.upper_first / r.lower_first if r.lower_first > 0 else math.inf
        gap1 = r.upper_last / r.lower_last if r.lower_last > 0 else math.inf
        parts.append(f"clip {r.clip}: upper {r.upper_first:.4g} -> {r.upper_last:.4g}, lower {r.lower_first:.4g} -> "
                     f"{r.lower_last:.4g} (gap {gap0:.3g} -> {gap1:.3g}){'' if moves else ', not both moving'}")
    if not verdicts:
        return Finding(claim, None, "; ".join(parts) or "no trace")
    return Finding(claim, sum(verdicts) > len(verdicts) / 2,
                   f"{sum(verdicts)} of {len(verdicts)} clips: " + "; ".join(parts))


def fig7_findings(traces: pd.DataFrame, clips: Sequence[int], norm: str) -> list[Finding]:
    """Monotone traces (sanity check) and a shrinking gap for A* and for LiRPA (findings)."""
    return [monotone_finding(traces), gap_finding(gap_rows(traces, clips, "astar"), "A*"),
            gap_finding(gap_rows(traces, clips, f"lirpa_{norm}"), f"LiRPA {NORM_LABEL.get(norm, norm)}")]


def representative(documents: Sequence[Mapping[str, Any]]) -> int:
    """The clip drawn bold: the first with an adversarial flow and no errored bound, else the first."""
    for d in documents:
        errors = [d["astar"].get("error")] + [b.get("error") for b in d["lirpa"].values() if isinstance(b, Mapping)]
        if upper_status(d) == "found" and not any(errors):
            return int(d["clip"])
    return int(documents[0]["clip"]) if documents else 0


def fig7(traces: pd.DataFrame, documents: Sequence[Mapping[str, Any]], norms: Sequence[str]) -> plt.Figure:
    """Converging bounds: upper bound, A* lower bound and LiRPA lower bounds per iteration, each
    panel its own y scale (the paper's two axes), every clip faint and one bold."""
    bold = representative(documents)
    panels = [("upper", "upper bound (gradient search)", "tab:red", "gradient iteration"),
              ("astar", "A* lower bound (subspace)", "tab:blue", "A* iteration")]
    panels += [(f"lirpa_{n}", f"LiRPA {NORM_LABEL.get(n, n)} lower bound", "tab:green", "bisection step")
               for n in norms]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 3.8), squeeze=False)
    for ax, (bound, title, colour, xlabel) in zip(axes[0], panels, strict=True):
        drawn, faint = False, False
        for d in documents:
            part = _series(traces, int(d["clip"]), bound)
            if part.empty:
                continue
            drawn = True
            strong = int(d["clip"]) == bold
            label = f"clip {d['clip']}" if strong else (None if faint else "other clips")
            faint = faint or not strong
            ax.step(part["iteration"], part["value"], where="post", color=colour, alpha=1.0 if strong else 0.25,
                    lw=2.0 if strong else 1.0, label=label)
        if not drawn:
            ax.text(0.5, 0.5, "no trace", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("distance in flow space")
        if drawn:
            ax.legend(fontsize=8)
    fig.suptitle(f"Converging bounds of the maximum safe radius (clip {bold} bold, all clips faint)")
    fig.tight_layout()
    return fig


def fig7_compare(traces: pd.DataFrame, documents: Sequence[Mapping[str, Any]], norm: str) -> str:
    """vd_fig7.compare.md: the paper's final bounds beside our first and last bound per clip."""
    clips = [int(d["clip"]) for d in documents]
    paper = _paper("fig7").set_index("bound")
    astar = gap_rows(traces, clips, "astar")
    lirpa = gap_rows(traces, clips, f"lirpa_{norm}").set_index("clip")
    lines = ["# vd_fig7 compared with the paper's Fig. 7", "",
             f"The paper ({_source('fig7')}): the upper bound falls to {paper.loc['upper', 'value']:.2f} after "
             f"{int(paper.loc['upper', 'iterations'])} iterations and the A* lower bound rises to "
             f"{paper.loc['lower', 'value']:.2f} after {int(paper.loc['lower', 'iterations'])} iterations (one video).",
             "Ours per clip (first -> last iteration; \"inf\": no adversarial flow yet; distances in our pooled "
             "flow):", "",
             "| clip | upper | iterations | A* lower | iterations | LiRPA lower | steps |",
             "|---|---|---|---|---|---|---|"]
    for r in astar.itertuples():
        lr = lirpa.loc[r.clip]
        lines.append(f"| {r.clip} | {r.upper_first:.4g} -> {r.upper_last:.4g} | {r.upper_iterations} | "
                     f"{r.lower_first:.4g} -> {r.lower_last:.4g} | {r.lower_iterations} | "
                     f"{lr['lower_first']:.4g} -> {lr['lower_last']:.4g} | {lr['lower_iterations']} |")
    return "\n".join(lines) + "\n\n" + findings_markdown(fig7_findings(traces, clips, norm))


def manipulated_frame(documents: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per clip and number k of manipulated flows."""
    rows = [{"clip": d["clip"], "flows": int(m["flows"]), "astar_lower": _number(m.get("astar_lower")),
             "astar_seconds": _number(m.get("astar_seconds")), "astar_iterations": m.get("astar_iterations"),
             "lirpa_radius": _number(m.get("lirpa_radius")), "lirpa_seconds": _number(m.get("lirpa_seconds"))}
            for d in documents for m in d["manipulated"]]
    return pd.DataFrame(rows, columns=["clip", "flows", "astar_lower", "astar_seconds", "astar_iterations",
                                       "lirpa_radius", "lirpa_seconds"])


def fewer_flows_finding(frame: pd.DataFrame, column: str, name: str, budget: str) -> Finding:
    """Within the same budget the lower bound reached does not grow with k, for most clips."""
    claim = (f"Fewer manipulated flows converge faster: within the same budget ({budget}) the {name} lower bound "
             "reached does not grow with the number k of manipulated flows, for most clips (Sec. 6.4, Fig. 10)")
    parts, verdicts = [], []
    for clip, part in frame.groupby("clip", sort=True):
        part = part.sort_values("flows")
        known = part[np.isfinite(part[column].to_numpy(dtype=float))]
        if len(known) < 2:
            parts.append(f"clip {clip}: fewer than two k with a bound")
            continue
        values = known[column].to_numpy(dtype=float)
        ok = bool(np.all(np.diff(values) <= 0))
        verdicts.append(ok)
        parts.append(f"clip {clip}: " + ", ".join(f"k={k} {v:.4g}" for k, v in zip(known["flows"], values,
                                                                                     strict=True)))
    if not verdicts:
        return Finding(claim, None, "; ".join(parts) or "no clip")
    return Finding(claim, sum(verdicts) > len(verdicts) / 2, f"non-increasing on {sum(verdicts)} of "
                   f"{len(verdicts)} clips: " + "; ".join(parts))


def fig10_findings(frame: pd.DataFrame, astar_iterations: int) -> list[Finding]:
    """Fewer manipulated flows give larger lower bounds within the budget, for A* and for LiRPA."""
    return [fewer_flows_finding(frame, "astar_lower", "A*", f"at most {astar_iterations} A* iterations"),
            fewer_flows_finding(frame, "lirpa_radius", "LiRPA", "the same bisection")]


def fig10(frame: pd.DataFrame, traces: pd.DataFrame, bold: int, ks: Sequence[int]) -> plt.Figure:
    """Lower bounds against k per clip (A*, LiRPA) and A*'s lower bound over iterations per k."""
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.9))
    for ax, column, title in ((axes[0], "astar_lower", "A* lower bound"),
                              (axes[1], "lirpa_radius", "LiRPA lower bound")):
        for clip, part in frame.groupby("clip", sort=True):
            part = part.sort_values("flows")
            strong = clip == bold
            ax.plot(part["flows"], part[column], marker="o", alpha=1.0 if strong else 0.35, lw=2.0 if strong else 1.0,
                    label=f"clip {clip}")
        ax.set_xticks(list(ks))
        ax.set_xlabel("manipulated flows k")
        ax.set_ylabel("lower bound of the MSR")
        ax.set_title(title, fontsize=10)
        if len(frame):
            ax.legend(fontsize=7)
    ax = axes[2]
    drawn = False
    for k, part in traces[(traces["clip"] == bold) & (traces["bound"] == "astar_k")].groupby("flows", sort=True):
        part = part.sort_values("iteration")
        ax.step(part["iteration"], part["value"], where="post", label=f"k = {k}")
        drawn = True
    if drawn:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no astar_k trace", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("A* iteration")
    ax.set_ylabel("A* lower bound")
    ax.set_title(f"clip {bold}: A* lower bound per k", fontsize=10)
    fig.suptitle("Lower bounds of the maximum safe radius for different numbers of manipulated flows")
    fig.tight_layout()
    return fig


def fig10_compare(frame: pd.DataFrame, astar_iterations: int) -> str:
    """vd_fig10.compare.md: our bounds per k (the paper's Fig. 10 prints no numbers) and the findings."""
    lines = ["# vd_fig10 compared with the paper's Fig. 10", "",
             "The paper's Fig. 10 prints no numbers; Sec. 6.4 says that within the same number of iterations",
             "manipulating fewer flows converges faster. Ours, A* lower bound (seconds) and LiRPA radius per k:", ""]
    if frame.empty:
        lines.append("No clip has results for manipulated flows.")
    else:
        shown = frame.assign(cell=[f"{_fmt(a)} ({_fmt(s, 1)} s) / {_fmt(r)}" for a, s, r in
                                   zip(frame["astar_lower"], frame["astar_seconds"], frame["lirpa_radius"],
                                       strict=True)])
        lines.append(shown.pivot_table(index="clip", columns="flows", values="cell", aggfunc="first")
                     .rename(columns=lambda k: f"k = {k}").to_markdown())
    return "\n".join(lines) + "\n\n" + findings_markdown(fig10_findings(frame, astar_iterations))


# --------------------------------------------------------------------------------------------
# brightness (vd_fig8)


def brightness_frame(documents: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per clip and listed brightness delta, with the clip's certified radius (the LiRPA
    radius in the bounds' norm) and whether the brightened clip kept its class."""
    rows = []
    for d in documents:
        lirpa = d["lirpa"].get(d["norm"]) or {}
        radius = _number(lirpa.get("radius")) if _status(lirpa, "radius") == "ok" else math.nan
        for b in d["brightness"]:
            rows.append({"clip": d["clip"], "delta": float(b["delta"]), "frame": b.get("frame"),
                         "pixel_distance": _number(b.get("pixel_distance")),
                         "flow_change": _number(b.get("flow_change")),
                         "flow_change_relative": _number(b.get("flow_change_relative")),
                         "predicted_class": b.get("predicted_class"), "clip_class": d["predicted_class"],
                         "inside_certified": b.get("inside_certified"), "lower_bound": _number(b.get("lower_bound")),
                         "certified_radius": radius})
    return pd.DataFrame(rows, columns=["clip", "delta", "frame", "pixel_distance", "flow_change",
                                       "flow_change_relative", "predicted_class", "clip_class", "inside_certified",
                                       "lower_bound", "certified_radius"])


def flow_change_finding(frame: pd.DataFrame) -> Finding:
    """Sec. 6.3: the flow of a brightened frame is not significantly affected, decided on the median
    relative change (‖flow change‖ / ‖flow‖) over clips at the listed delta where it is largest.

    Not simply at the largest delta: Farneback ignores a constant offset, so what moves the flow
    is the 8-bit rounding of the brightened frame and clipping at 1, and a delta of a whole number
    of grey levels (0.2 = 51/255) rounds no pixel differently and moves the flow least."""
    claim = (f"Brightness barely changes the flow: at every listed delta the median relative flow change over "
             f"clips is below {FLOW_CHANGE_THRESHOLD:g} (Sec. 6.3, Fig. 8(a))")
    known = frame[np.isfinite(frame["flow_change_relative"].to_numpy(dtype=float))]
    if known.empty:
        return Finding(claim, None, "no brightness result")
    medians = known.groupby("delta")["flow_change_relative"].median()
    worst = float(medians.idxmax())
    top = known[known["delta"] == worst]
    median = float(medians.max())
    return Finding(claim, median < FLOW_CHANGE_THRESHOLD,
                   "median per delta: " + ", ".join(f"{d:g}: {m:.4f}" for d, m in medians.items())
                   + f"; at delta {worst:g}: "
                   + ", ".join(f"clip {c} {v:.4f}" for c, v in zip(top["clip"], top["flow_change_relative"],
                                                                  strict=True)))


def listed_safe_finding(frame: pd.DataFrame) -> Finding:
    """A check at the listed deltas, not a proof over the brightness interval between them."""
    claim = ("Every listed brightness change is safe: at each listed delta (a check at these points, not a proof over "
             "a brightness interval) the brightened clip, classified in float64, keeps its class and its flow lies "
             "inside the certified ball (Sec. 6.3)")
    if frame.empty:
        return Finding(claim, None, "no brightness result")
    failures, unchecked = [], []
    for r in frame.itertuples():
        if r.predicted_class != r.clip_class:
            failures.append(f"clip {r.clip} delta {r.delta:g}: class {r.clip_class} -> {r.predicted_class}")
        elif _is_false(r.inside_certified):
            failures.append(f"clip {r.clip} delta {r.delta:g}: flow outside the certified ball")
        elif not _is_true(r.inside_certified):
            # no certified ball to test against (its bound errored): undecided, not unsafe
            unchecked.append(f"clip {r.clip} delta {r.delta:g}")
    deltas = ", ".join(f"{d:g}" for d in sorted(set(frame["delta"])))
    if failures:
        return Finding(claim, False, "; ".join(failures))
    if unchecked:
        return Finding(claim, None, f"no failure, but not checked against a certified ball: {', '.join(unchecked)}")
    return Finding(claim, True, f"all {len(frame)} brightened clips keep their class inside the ball (deltas {deltas})")


def inside_keeps_class_finding(frame: pd.DataFrame) -> Finding:
    """Sanity check: a flow inside a certified ball cannot change the class; a failure is a bug in
    the certificate or in the check."""
    claim = "A brightened clip whose flow lies inside the certified ball keeps its class (the certificate is sound)"
    inside = frame[frame["inside_certified"].map(_is_true)]
    if inside.empty:
        return sanity(claim, None, "no brightened flow inside a certified ball")
    changed = inside[inside["predicted_class"] != inside["clip_class"]]
    return sanity(claim, changed.empty, f"{len(inside)} inside" + (
        "; changed: " + ", ".join(f"clip {r.clip} delta {r.delta:g}" for r in changed.itertuples())
        if len(changed) else ", none changed"))


def fig8_findings(frame: pd.DataFrame) -> list[Finding]:
    """The brightness findings of vd_fig8.compare.md."""
    return [flow_change_finding(frame), listed_safe_finding(frame), inside_keeps_class_finding(frame)]


def _magnitude(flow: np.ndarray) -> np.ndarray:
    """Per-pixel length of a (2, H, W) flow."""
    return np.hypot(flow[0], flow[1])


def _direction(flow: np.ndarray) -> np.ndarray:
    """Per-pixel angle of a (2, H, W) flow in (-pi, pi], 0 pointing right."""
    return np.arctan2(flow[1], flow[0])


def fig8(arrays: Mapping[str, np.ndarray], frame: pd.DataFrame, bold: int) -> plt.Figure:
    """(a) the brightened frame and its flow magnitude per delta (clip ``bold``); (b) flow change
    against pixel distance per clip beside the certified radius; (c) the lower bound per delta."""
    deltas = np.asarray(arrays["brightness_deltas"], dtype=float)
    k = len(deltas)
    fig = plt.figure(figsize=(max(3.0 * (k + 1), 9.0), 8.0))
    grid = fig.add_gridspec(3, max(k + 1, 2), height_ratios=[1, 1, 1.3])
    part = frame[frame["clip"] == bold].set_index("delta")
    known_frames = part["frame"].dropna() if len(part) else pd.Series(dtype=float)
    frame_index = int(known_frames.iloc[0]) if len(known_frames) else 0
    flows = np.asarray(arrays["flow"])
    last_flow = flows.shape[0] - 1
    # Each delta brightens the frame that moves the flow most, which may differ between deltas.
    indices = [int(part["frame"].get(float(d), frame_index)) if len(part) and pd.notna(part["frame"].get(float(d)))
               else frame_index for d in deltas]
    images = [(np.asarray(arrays["frames"])[frame_index], flows[min(frame_index, last_flow)], "original",
               frame_index)]
    images += [(np.asarray(arrays["brightened_frame"])[i],
                np.asarray(arrays["brightened_flow"])[i][min(indices[i], last_flow)], f"delta {deltas[i]:g}",
                indices[i]) for i in range(k)]
    top = max(float(_magnitude(f).max()) for _, f, _, _ in images) or 1.0
    for column, (image, flow, title, index) in enumerate(images):
        ax = fig.add_subplot(grid[0, column])
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"frame {index}, {title}", fontsize=8)
        ax.axis("off")
        ax = fig.add_subplot(grid[1, column])
        ax.imshow(_magnitude(flow), cmap="viridis", vmin=0, vmax=top)
        ax.set_title(f"flow {min(index, last_flow)} magnitude", fontsize=8)
        ax.axis("off")
    ax = fig.add_subplot(grid[2, : max(k + 1, 2) // 2])
    for clip, rows in frame.groupby("clip", sort=True):
        rows = rows.sort_values("pixel_distance")
        line = ax.plot(rows["pixel_distance"], rows["flow_change"], marker="o", label=f"clip {clip} flow change")[0]
        radius = rows["certified_radius"].iloc[0]
        if _finite(radius):
            ax.axhline(radius, color=line.get_color(), ls="--", lw=0.8, label=f"clip {clip} certified radius")
    ax.set_xlabel("pixel distance of the brightness change (L2)")
    ax.set_ylabel("flow change (L2)")
    ax.set_title("(b) flow change vs brightness", fontsize=9)
    ax.legend(fontsize=6)
    ax = fig.add_subplot(grid[2, max(k + 1, 2) // 2:])
    for clip, rows in frame.groupby("clip", sort=True):
        rows = rows.sort_values("delta")
        ax.plot(rows["delta"], rows["lower_bound"], marker="s", label=f"clip {clip}")
    ax.set_xlabel("brightness delta")
    ax.set_ylabel("lower bound of the MSR")
    ax.set_title("(c) brightness lower bound per delta", fontsize=9)
    if len(frame):
        ax.legend(fontsize=6)
    fig.suptitle(f"Brightness changes of clip {bold} (a) and of every clip (b, c)")
    fig.tight_layout()
    return fig


def fig8_compare(frame: pd.DataFrame, deltas: Sequence[float] = ()) -> str:
    """vd_fig8.compare.md; ``deltas``: the configured brightness deltas (video.brightness), so that a
    clip without a result for one of them is named."""
    paper = _paper("fig8").set_index("bound")
    lines = ["# vd_fig8 compared with the paper's Fig. 8", "",
             f"The paper ({_source('fig8')}): after {int(paper.loc['brightness_lower', 'iterations'])} iterations the "
             f"lower bound is {paper.loc['brightness_lower', 'value']:.2f} (L2), and the flow of a brightened frame is "
             "not significantly affected. Ours per clip and listed delta:", ""]
    if deltas:
        lacking = [f"clip {c} delta {d:g}" for c, part in frame.groupby("clip", sort=True) for d in deltas
                   if not np.isclose(part["delta"].to_numpy(dtype=float), float(d)).any()]
        lines[-1:-1] = [f"Configured deltas: {', '.join(f'{float(d):g}' for d in deltas)}"
                        + (f"; no result for {', '.join(lacking)}." if lacking else ".")]
    if frame.empty:
        lines.append("No brightness result.")
    else:
        shown = frame[["clip", "delta", "pixel_distance", "flow_change", "flow_change_relative", "predicted_class",
                       "inside_certified", "lower_bound", "certified_radius"]]
        lines.append(shown.to_markdown(index=False, floatfmt=".4g"))
    return "\n".join(lines) + "\n\n" + findings_markdown(fig8_findings(frame))


# --------------------------------------------------------------------------------------------
# flow pictures (vd_fig4, vd_fig5)


def fig4(arrays: Mapping[str, np.ndarray], clip: int, true_class: str) -> plt.Figure:
    """The frames of one clip with the Farneback flow of each adjacent pair as arrows, and the
    flow's magnitude and direction (Fig. 4)."""
    frames = np.asarray(arrays["frames"])
    flows = np.asarray(arrays["full_flow"])
    pairs = flows.shape[0]
    fig, axes = plt.subplots(3, pairs, figsize=(2.1 * pairs, 6.6), squeeze=False)
    top = float(_magnitude(flows.transpose(1, 0, 2, 3)).max()) or 1.0
    height, width = frames.shape[1:]
    step = max(1, min(height, width) // 8)
    ys, xs = np.mgrid[0:height:step, 0:width:step]
    for t in range(pairs):
        flow = flows[t]
        ax = axes[0, t]
        ax.imshow(frames[t], cmap="gray", vmin=0, vmax=1)
        ax.quiver(xs, ys, flow[0][::step, ::step], flow[1][::step, ::step], color="red", angles="xy",
                  scale_units="xy", scale=0.5)
        ax.set_title(f"frames {t}-{t + 1}", fontsize=8)
        magnitude = _magnitude(flow)
        axes[1, t].imshow(magnitude, cmap="viridis", vmin=0, vmax=top)
        axes[1, t].set_title("magnitude", fontsize=8)
        # direction is meaningless where nothing moves: hide it there
        direction = np.ma.masked_where(magnitude < 0.05 * top, _direction(flow))
        axes[2, t].imshow(direction, cmap="hsv", vmin=-np.pi, vmax=np.pi)
        axes[2, t].set_title("direction", fontsize=8)
        for row in range(3):
            axes[row, t].axis("off")
    fig.suptitle(f"Clip {clip} ({true_class}): frames and their Farneback optical flow")
    fig.tight_layout()
    return fig


def fig5_clip(documents: Sequence[Mapping[str, Any]], has_adversarial: Mapping[int, bool]) -> int | None:
    """The clip with the smallest relative upper bound (distance / norm of its flow), or None."""
    best, best_value = None, math.inf
    for d in documents:
        clip = int(d["clip"])
        if upper_status(d) != "found" or not has_adversarial.get(clip, False):
            continue
        norm = _number(d.get("flow_norm"))
        value = float(d["upper"]["distance"]) / norm if _finite(norm) and norm > 0 else float(d["upper"]["distance"])
        if value < best_value:
            best, best_value = clip, value
    return best


def fig5(arrays: Mapping[str, np.ndarray] | None, document: Mapping[str, Any] | None, shown: int = 3) -> plt.Figure:
    """Original flow, difference and perturbed flow (magnitude, direction) on the ``shown`` flows
    the adversarial perturbation changes most (Fig. 5)."""
    if arrays is None or document is None:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.text(0.5, 0.5, "no adversarial flow found for any clip", ha="center", va="center")
        ax.axis("off")
        return fig
    flow = np.asarray(arrays["flow"], dtype=float)
    perturbed = np.asarray(arrays["adversarial"], dtype=float)
    difference = perturbed - flow
    change = np.sqrt((difference ** 2).reshape(len(difference), -1).sum(axis=1))
    chosen = sorted(np.argsort(-change, kind="stable")[:shown].tolist())
    fig, axes = plt.subplots(len(chosen), 6, figsize=(13.0, 2.3 * len(chosen)), squeeze=False)
    top = max(float(_magnitude(flow.transpose(1, 0, 2, 3)).max()),
              float(_magnitude(perturbed.transpose(1, 0, 2, 3)).max())) or 1.0
    dtop = float(_magnitude(difference.transpose(1, 0, 2, 3)).max()) or 1.0
    for row, t in enumerate(chosen):
        panels = [(_magnitude(flow[t]), "viridis", 0, top, "magnitude: original"),
                  (_magnitude(difference[t]), "magma", 0, dtop, "magnitude: difference"),
                  (_magnitude(perturbed[t]), "viridis", 0, top, "magnitude: perturbed"),
                  (_direction(flow[t]), "hsv", -np.pi, np.pi, "direction: original"),
                  (_direction(difference[t]), "hsv", -np.pi, np.pi, "direction: difference"),
                  (_direction(perturbed[t]), "hsv", -np.pi, np.pi, "direction: perturbed")]
        for column, (image, cmap, low, high, title) in enumerate(panels):
            ax = axes[row, column]
            ax.imshow(image, cmap=cmap, vmin=low, vmax=high)
            ax.set_title(f"flow {t}, {title}", fontsize=7)
            ax.axis("off")
    upper = document["upper"]
    norm = _number(document.get("flow_norm"))
    relative = f", relative {upper['distance'] / norm:.3g}" if _finite(norm) and norm > 0 else ""
    fig.suptitle(f"Clip {document['clip']}: {document['true_class']} (predicted {document['predicted_class']}) -> "
                 f"{upper.get('adversarial_class')}, {NORM_LABEL.get(document['norm'], document['norm'])} distance "
                 f"{upper['distance']:.4g}{relative}")
    fig.tight_layout()
    return fig
