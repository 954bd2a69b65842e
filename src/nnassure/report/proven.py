"""PROVEN's tables and figure (pv_table2a..e, pv_table3, pv_table4, pv_fig1, pv_table5) and their
comparison with the paper. Every number is computed from the per-sample Parquet files.

Not certified. The proven stage stores ``certified_eps = 0`` for a sample whose certificate holds
at no eps > 0. The rigorous Gaussian certificate at 99.99 % is the usual case: under the 3-sigma
rule of Remark 3.4 each input leaves the ball with probability 0.27 %, so for the 64 inputs of a
digits model about 16 % of the Gaussian mass lies outside the ball whatever eps is, far above the
allowed risk of 0.01 %. Such a sample is *not certified*; it is not "certified at radius 0", so it
never enters a mean as a 0. Here:

- a mean eps is over the samples that are certified; a cell shows "m (k/n)" when only k of the n
  samples are, and "not certified" when none is;
- an improvement over the worst case (Sec. 4, Table 2's last column) is the ratio of the two
  mean radii over the samples both certify, "(k/n)" when that is not all of them;
- a finding that compares improvements ranks "not certified" below every certified radius (it
  certifies less than any eps > 0) and says so in its evidence; two curves that certify nothing
  are not compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory
from numpy.typing import ArrayLike

from nnassure.report.findings import Finding, findings_markdown, sanity
from nnassure.report.paper_numbers import paper_numbers, paper_table

# Tables 2a-2e: which (activation, relaxation) each shows.
TABLE2 = {
    "pv_table2a": ("relu", "fast-lin", "ReLU, fixed slopes (Fast-Lin)"),
    "pv_table2b": ("relu", "crown", "ReLU, adaptive slopes (CROWN)"),
    "pv_table2c": ("tanh", "crown", "tanh"),
    "pv_table2d": ("sigmoid", "crown", "sigmoid"),
    "pv_table2e": ("arctan", "crown", "arctan"),
}
TABLE3_COLUMNS = {"Relu": ("relu", "fast-lin"), "Relu-ada": ("relu", "crown"), "tanh": ("tanh", "crown"),
                  "sigmoid": ("sigmoid", "crown"), "arctan": ("arctan", "crown")}
DATASET_LABEL = {"digits": "digits", "signs": "signs"}
NOT_CERTIFIED = "not certified"


def _pct(gamma: float) -> str:
    return f"{gamma * 100:g}%"


def _row_name(frame: pd.DataFrame) -> str:
    first = frame.iloc[0]
    return f"{DATASET_LABEL[first['dataset']]} {first['architecture']}"


def certified_mask(eps: ArrayLike) -> np.ndarray:
    """True where a radius was certified: eps > 0 (0, and NaN should a stage ever write it, mean
    that the certificate holds at no eps)."""
    values = np.asarray(eps, dtype=float)
    return np.isfinite(values) & (values > 0)


def eps_text(mean: float, certified: int, samples: int, digits: int = 4) -> str:
    """A mean radius cell: the mean over the certified samples, "(k/n)" when not all are."""
    if samples == 0:
        return "—"
    if certified == 0:
        return NOT_CERTIFIED
    text = f"{mean:.{digits}f}"
    return text if certified == samples else f"{text} ({certified}/{samples})"


@dataclass(frozen=True)
class Gain:
    """One certificate against the worst case on the same samples (Sec. 4, Tables 2-4, Fig. 1)."""

    samples: int  # samples with a row of this certificate
    certified: int  # of them, certified by this certificate (eps > 0)
    worst_certified: int  # of them, certified by the worst case
    compared: int  # certified by both: the improvement is over these
    mean_eps: float  # mean over the `certified` samples; NaN when none
    worst_mean_eps: float  # mean worst-case eps over the `worst_certified` samples; NaN when none
    improvement_pct: float  # 100 (mean eps / mean worst-case eps - 1) over the `compared` samples

    FIELDS = ("samples", "certified", "worst_certified", "compared", "mean_eps", "worst_mean_eps",
              "improvement_pct")

    @classmethod
    def of(cls, worst_eps: ArrayLike, eps: ArrayLike) -> Gain:
        """From paired per-sample radii (the worst case's and this certificate's)."""
        worst, eps = np.asarray(worst_eps, dtype=float), np.asarray(eps, dtype=float)
        ok_worst, ok = certified_mask(worst), certified_mask(eps)
        both = ok_worst & ok
        # The paper's improvement is a ratio of average radii (Sec. 4); averaging over the samples
        # both certify keeps a sample that one of them does not certify from counting as a 0.
        gain = 100.0 * (eps[both].mean() / worst[both].mean() - 1.0) if both.any() else np.nan
        return cls(len(eps), int(ok.sum()), int(ok_worst.sum()), int(both.sum()),
                   float(eps[ok].mean()) if ok.any() else np.nan,
                   float(worst[ok_worst].mean()) if ok_worst.any() else np.nan, float(gain))

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Gain:
        """From a row of a long frame (a CSV row holds the counts as floats)."""
        return cls(int(record["samples"]), int(record["certified"]), int(record["worst_certified"]),
                   int(record["compared"]), float(record["mean_eps"]), float(record["worst_mean_eps"]),
                   float(record["improvement_pct"]))

    def record(self) -> dict[str, float | int]:
        return asdict(self)

    @property
    def rank(self) -> float | None:
        """The improvement as an ordinal for comparisons: -inf when nothing is certified (less than
        any certified eps, yet not an improvement of 0 or -100 %), +inf when only this certificate
        certifies the samples, None when there is no sample."""
        if self.samples == 0:
            return None
        if self.certified == 0:
            return -np.inf
        if self.compared == 0:
            return np.inf
        return self.improvement_pct

    def text(self, digits: int = 1, unit: str = "") -> str:
        """The improvement as a cell: "not certified" when no sample is, "(k/n)" over k of n."""
        if self.samples == 0:
            return "—"
        if self.certified == 0:
            return NOT_CERTIFIED
        if self.compared == 0:
            return "worst case not certified"
        text = f"{self.improvement_pct:.{digits}f}{unit}"
        return text if self.compared == self.samples else f"{text} ({self.compared}/{self.samples})"

    def beats_worst_case(self) -> bool | None:
        """Whether this certificate certifies more than the worst case: a larger mean radius and
        every sample the worst case certifies (None without a sample either certifies)."""
        if self.samples == 0 or (self.certified == 0 and self.worst_certified == 0):
            return None
        if self.compared < self.worst_certified:
            return False  # includes "not certified" where the worst case certifies
        rank = self.rank
        return rank is not None and bool(rank > 0)


def beats(a: Gain, b: Gain) -> bool | None:
    """a's improvement is larger than b's; None when either has no sample or both are infinite
    alike (e.g. neither certifies anything)."""
    ra, rb = a.rank, b.rank
    if ra is None or rb is None or (np.isinf(ra) and ra == rb):
        return None
    return bool(ra > rb)


def every(verdicts: Iterable[bool | None]) -> bool | None:
    """A claim "on every model": False if one fails, None if none fails but one is undecidable."""
    verdicts = list(verdicts)
    if not verdicts:
        return None
    if any(v is False for v in verdicts):
        return False
    return None if any(v is None for v in verdicts) else True


def _paired(frame: pd.DataFrame, certificate: str, noise: str | None, gamma: float) -> pd.DataFrame:
    """Rows of one certificate (and noise) at ``gamma``, one per sample, with the sample's
    worst-case eps beside its certified eps (every row of the proven stage carries both)."""
    mask = (frame["certificate"] == certificate) & np.isclose(frame["gamma"], gamma)
    if noise is not None:
        mask &= frame["noise"] == noise
    return frame.loc[mask, ["sample", "worst_case_eps", "certified_eps"]]


def _gain(frame: pd.DataFrame, certificate: str, noise: str | None, gamma: float) -> Gain:
    rows = _paired(frame, certificate, noise, gamma)
    return Gain.of(rows["worst_case_eps"], rows["certified_eps"])


TABLE2_COLUMNS = ["model", "row", "certificate", "gamma", *Gain.FIELDS]


def table2(results: pd.DataFrame, activation: str, relaxation: str, gammas: list[float],
           n_samples: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean eps over the first ``n_samples`` samples of each model: worst case, PROVEN (Case (i))
    at each gamma, and the improvement at the first gamma (the paper's 99.99 %), Sec. 4, Table 2.
    Means are over the certified samples (see the module docstring)."""
    chosen = results[(results["activation"] == activation) & (results["relaxation"] == relaxation)]
    long_rows = []
    for model, frame in chosen.groupby("model", sort=False):
        samples = np.sort(frame["sample"].unique())[:n_samples]
        frame = frame[frame["sample"].isin(samples)]
        name = _row_name(frame)
        worst = _gain(frame, "worst-case", None, 1.0)
        # the worst case against itself: its improvement is not a number anyone reads
        long_rows.append({"model": model, "row": name, "certificate": "worst-case", "gamma": 1.0,
                          **{**worst.record(), "improvement_pct": np.nan}})
        for gamma in gammas:
            long_rows.append({"model": model, "row": name, "certificate": "hoeffding", "gamma": gamma,
                              **_gain(frame, "hoeffding", "bounded", gamma).record()})
    long = pd.DataFrame(long_rows, columns=TABLE2_COLUMNS)
    return long, table2_display(long, gammas)


def table2_display(long: pd.DataFrame, gammas: list[float]) -> pd.DataFrame:
    """The table as printed: a radius cell per certificate and gamma, then the improvement."""
    columns = ["worst-case (100%)"] + [f"PROVEN {_pct(g)}" for g in gammas] + ["improvement (%)"]
    rows: dict[str, dict[str, str]] = {}
    for name, frame in long.groupby("row", sort=False):
        worst = Gain.from_record(frame[frame["certificate"] == "worst-case"].iloc[0])
        row = {"worst-case (100%)": eps_text(worst.mean_eps, worst.certified, worst.samples)}
        for gamma in gammas:
            g = Gain.from_record(frame[(frame["certificate"] == "hoeffding")
                                       & np.isclose(frame["gamma"], gamma)].iloc[0])
            row[f"PROVEN {_pct(gamma)}"] = eps_text(g.mean_eps, g.certified, g.samples)
        row["improvement (%)"] = table2_gains(frame)[str(name)].text(digits=4)
        rows[str(name)] = row
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)


def table2_gains(long: pd.DataFrame) -> dict[str, Gain]:
    """Each row's PROVEN improvement at the first gamma (the table's last column)."""
    gains = {}
    for name, frame in long.groupby("row", sort=False):
        bounded = frame[frame["certificate"] == "hoeffding"]
        if len(bounded):
            gains[str(name)] = Gain.from_record(bounded.iloc[0])
    return gains


TABLE3_LONG_COLUMNS = ["row", "column", *Gain.FIELDS]


def table3(tables2: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Improvement at the first gamma per architecture (rows) and activation (columns), from the
    long frames of Tables 2a-2e (Sec. 4, Table 3)."""
    rows = []
    for column, (activation, relaxation) in TABLE3_COLUMNS.items():
        table_id = next(t for t, (a, r, _) in TABLE2.items() if (a, r) == (activation, relaxation))
        for name, gain in table2_gains(tables2[table_id]).items():
            rows.append({"row": name, "column": column, **gain.record()})
    long = pd.DataFrame(rows, columns=TABLE3_LONG_COLUMNS)
    return long, table3_display(long)


def table3_display(long: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    order = list(dict.fromkeys(long["row"]))
    display = pd.DataFrame("", index=order, columns=list(TABLE3_COLUMNS))
    for record in long.to_dict("records"):
        display.loc[record["row"], record["column"]] = Gain.from_record(record).text(digits)
    return display


def _table3_gains(long: pd.DataFrame) -> dict[tuple[str, str], Gain]:
    return {(r["row"], r["column"]): Gain.from_record(r) for r in long.to_dict("records")}


def _trial_statistics(values: np.ndarray) -> tuple[float, float]:
    """Mean and std (ddof 1) over the trials where the value is defined."""
    finite = values[np.isfinite(values)]
    mean = float(finite.mean()) if len(finite) else np.nan
    return mean, float(finite.std(ddof=1)) if len(finite) > 1 else np.nan


TABLE4_VALUES = ("worst_case_eps", "proven_eps", "improvement_pct", "certified_fraction")


def table4(results: pd.DataFrame, models: list[str], gamma: float, sizes: list[int], trials: int,
           seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """100 random trials of k samples: mean and std over trials of the average worst-case eps,
    PROVEN eps at ``gamma`` and improvement (Table 4; CROWN relaxation), and of the fraction of
    the k samples PROVEN certifies. A trial's averages are over its certified samples, and a trial
    in which none is certified adds no value to the mean and std (see the module docstring)."""
    long_rows = []
    rng = np.random.default_rng(seed)
    for model in models:
        pool = np.sort(results.loc[results["model"] == model, "sample"].unique())
        frame = results[(results["model"] == model) & (results["relaxation"] == "crown")]
        paired = _paired(frame, "hoeffding", "bounded", gamma).set_index("sample")
        for size in sizes:
            if size > len(pool):
                long_rows.append({"model": model, "samples": size, "statistic": "n/a",
                                  **dict.fromkeys(TABLE4_VALUES, np.nan), "pool": len(pool)})
                continue
            draws = []
            for _ in range(trials):
                part = paired.loc[rng.choice(pool, size, replace=False)]
                g = Gain.of(part["worst_case_eps"], part["certified_eps"])
                draws.append((g.worst_mean_eps, g.mean_eps, g.improvement_pct, g.certified / g.samples))
            values = np.array(draws, dtype=float)
            stats = [_trial_statistics(values[:, i]) for i in range(len(TABLE4_VALUES))]
            for k, statistic in enumerate(("mean", "std")):
                long_rows.append({"model": model, "samples": size, "statistic": statistic,
                                  **{name: stats[i][k] for i, name in enumerate(TABLE4_VALUES)},
                                  "pool": len(pool)})
    long = pd.DataFrame(long_rows, columns=["model", "samples", "statistic", *TABLE4_VALUES, "pool"])
    return long, table4_display(long)


def _table4_cell(row: pd.Series, value: str, fraction: float) -> str:
    if row["statistic"] == "n/a":
        return ""
    if not fraction > 0:  # no trial certified a sample (NaN fraction: no trial at all)
        return NOT_CERTIFIED
    number = row[value]
    if not np.isfinite(number):
        return "—"
    text = f"{number:.4f}"
    # the fraction goes on the mean row; its std is in the CSV
    return text if fraction >= 1.0 or row["statistic"] != "mean" else f"{text} ({fraction:.0%} certified)"


def table4_display(long: pd.DataFrame) -> pd.DataFrame:
    index = list(dict.fromkeys(zip(long["model"], long["statistic"], strict=True)))
    sizes = sorted(long["samples"].unique())
    columns = [f"{k} samples: {v}" for k in sizes for v in ("worst_case_eps", "proven_eps", "improvement_pct")]
    display = pd.DataFrame("", index=pd.MultiIndex.from_tuples(index, names=["model", "statistic"]), columns=columns)
    for _, row in long.iterrows():
        mean = long[(long["model"] == row["model"]) & (long["samples"] == row["samples"])
                    & (long["statistic"] == "mean")]
        fraction = float(mean["certified_fraction"].iloc[0]) if len(mean) else np.nan
        for value in ("worst_case_eps", "proven_eps", "improvement_pct"):
            cell = f"{row[value]:.4f}" if value == "worst_case_eps" and np.isfinite(row[value]) else \
                _table4_cell(row, value, fraction)
            display.loc[(row["model"], row["statistic"]), f"{row['samples']} samples: {value}"] = cell
    return display


FIG1_CURVES = [("hoeffding", "bounded", "bounded (i)", "-"),
               ("gaussian-approx", "gaussian-diagonal", "Gaussian independent (paper)", "--"),
               ("gaussian-approx", "gaussian-correlated", "Gaussian correlated (paper)", "--"),
               ("gaussian-rigorous", "gaussian-diagonal", "Gaussian independent (rigorous)", ":"),
               ("gaussian-rigorous", "gaussian-correlated", "Gaussian correlated (rigorous)", ":")]


def fig1_frame(results: pd.DataFrame, models: list[str], gammas: list[float]) -> pd.DataFrame:
    """Fig. 1's points: per model, curve and gamma, the improvement over the worst case on the
    samples the curve's certificate was run on (the Gaussian ones only on the first few)."""
    rows = []
    for model in models:
        frame = results[(results["model"] == model) & (results["relaxation"] == "crown")]
        for certificate, noise, label, _ in FIG1_CURVES:
            for gamma in gammas:
                rows.append({"model": model, "curve": label, "gamma": gamma,
                             **_gain(frame, certificate, noise, gamma).record()})
    return pd.DataFrame(rows, columns=["model", "curve", "gamma", *Gain.FIELDS])


def fig1(curves: pd.DataFrame) -> plt.Figure:
    """Fig. 1 (Sec. 4): improvement versus gamma. A gamma at which a curve certifies no sample has
    no point (an improvement of 0 would be a lie) but an x at the bottom of the axes; a hollow
    point is a mean over only some of the samples."""
    models = list(dict.fromkeys(curves["model"]))
    figure, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.6), squeeze=False, sharey=True)
    marks = set()
    for ax, model in zip(axes[0], models, strict=True):
        bottom = blended_transform_factory(ax.transData, ax.transAxes)
        for _, _, label, style in FIG1_CURVES:
            line = curves[(curves["model"] == model) & (curves["curve"] == label)]
            x = line["gamma"].to_numpy() * 100
            y = np.where(line["compared"] > 0, line["improvement_pct"], np.nan)
            (drawn,) = ax.plot(x, y, style, label=label)
            colour = drawn.get_color()
            full = (line["compared"] == line["samples"]).to_numpy() & (line["samples"] > 0).to_numpy()
            partial = (line["compared"] > 0).to_numpy() & ~full
            none = (line["certified"] == 0).to_numpy() & (line["samples"] > 0).to_numpy()
            ax.plot(x[full], y[full], "o", color=colour)
            ax.plot(x[partial], y[partial], "o", color=colour, markerfacecolor="none")
            ax.plot(x[none], np.full(none.sum(), 0.04), "x", color=colour, transform=bottom, clip_on=False)
            marks |= {"partial"} if partial.any() else set()
            marks |= {"none"} if none.any() else set()
        ax.set_title(model)
        ax.set_xlabel("gamma_L (%)")
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("improvement over worst-case eps (%)")
    if "none" in marks:
        # a band below the data for the x marks, so that no x sits on a certified point
        low, high = axes[0][0].get_ylim()
        axes[0][0].set_ylim(low - 0.12 * (high - low), high)
    handles, _ = axes[0][-1].get_legend_handles_labels()
    if "partial" in marks:
        handles.append(Line2D([], [], ls="none", marker="o", markerfacecolor="none", color="grey",
                              label="over the samples certified only"))
    if "none" in marks:
        handles.append(Line2D([], [], ls="none", marker="x", color="grey", label=NOT_CERTIFIED))
    axes[0][-1].legend(handles=handles, fontsize=7)
    figure.tight_layout()
    return figure


def verified_table(frames: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """2-D models: accuracy, verified accuracy (worst case) and PROVEN-certified accuracy per eps."""
    rows = []
    for name, frame in frames.items():
        dataset, cost = name
        for eps, part in frame.groupby("eps"):
            rows.append({"dataset": dataset, "cost": cost, "eps": eps, "gamma": part["gamma"].iloc[0],
                         "accuracy": part["correct"].mean(),
                         "verified_accuracy": (part["verified"] & part["correct"]).mean(),
                         "proven_accuracy": (part["proven_certified"] & part["correct"]).mean(),
                         "proven_only": (part["proven_certified"] & part["correct"] & ~part["verified"]).mean()})
    long = pd.DataFrame(rows)
    return long, long.set_index(["dataset", "cost", "eps"])


# ---------------------------------------------------------------------------------------------
# Comparison with the paper (the .compare.md files)
# ---------------------------------------------------------------------------------------------

PAPER = "proven-probabilistic-certificates"
PAPER_TABLE4_ACTIVATION = {"relu": "relu-ada", "tanh": "tanh", "arctan": "arctan"}  # Table 4 uses CROWN


def _fmt(value: float | None, digits: int = 5) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _paper_row(table_id: str, ours: str) -> tuple[str, pd.Series] | None:
    """The paper's row for our row: the same architecture on MNIST; the signs model stands for the
    paper's first CIFAR model (a different architecture: compare improvements, not radii)."""
    paper = paper_table(PAPER, table_id.removeprefix("pv_")).set_index("model")
    arch = ours.split(" ", 1)[1]
    if ours.startswith("digits"):
        name = f"MNIST {arch}"
        return (name, paper.loc[name]) if name in paper.index else None
    return next(((k, row) for k, row in paper.iterrows() if str(k).startswith("CIFAR")), None)


def table2_findings(table_id: str, long: pd.DataFrame, other: pd.DataFrame | None) -> list[Finding]:
    """Sec. 4 ("Result on small and large ReLU networks"), Tables 2a-2e: PROVEN at 99.99% certifies
    more than the worst case; the gain shrinks with depth; adaptive bounds (2b) gain more than
    fixed slopes (2a). ``long`` and ``other`` (Table 2a, beside 2b) are :func:`table2`'s long frames."""
    gains = table2_gains(long)
    larger = "PROVEN at the highest gamma certifies a larger eps than the worst case on every model (Sec. 4, Table 2)"
    if not gains:
        return [Finding(larger, None, "no model of this kind is configured (proven.models)")]
    # A model PROVEN does not certify is a model where it certifies less, shown as such.
    findings = [Finding(larger, every(g.beats_worst_case() for g in gains.values()),
                        "improvements: " + ", ".join(f"{n} {g.text(1, '%')}" for n, g in gains.items()))]
    by_width: dict[tuple[str, str], list[tuple[int, Gain]]] = {}
    for name, gain in gains.items():
        dataset, arch = name.split(" ", 1)
        depth, width = arch.split("x")
        by_width.setdefault((dataset, width), []).append((int(depth), gain))
    series = {k: sorted(v, key=lambda p: p[0]) for k, v in by_width.items() if len(v) > 1}
    shrinks = "The gain shrinks with depth at a fixed width (Sec. 4, Tables 2a-2e)"
    if not series:
        findings.append(Finding(shrinks, None, "no two models of one width and different depths are configured"))
    for (dataset, width), points in series.items():
        ranked = [(d, g.rank) for d, g in points if g.rank is not None]
        # "not certified" ranks below every gain: a deeper model that certifies nothing has shrunk
        holds = all(b <= a for (_, a), (_, b) in zip(ranked, ranked[1:], strict=False)) if len(ranked) > 1 else None
        findings.append(Finding(f"{shrinks}: {dataset}, width {width}", holds,
                                ", ".join(f"{d} layers {g.text(1, '%')}" for d, g in points)))
    if other is not None:
        theirs = table2_gains(other)
        shared = [n for n in gains if n in theirs]
        wins = [beats(gains[n], theirs[n]) for n in shared]
        findings.append(Finding(
            "The gain is larger with adaptive ReLU bounds (Table 2b) than with fixed slopes (Table 2a) on every "
            "model (Sec. 4)", every(wins),
            f"larger on {sum(w is True for w in wins)} of {len(shared)} models: " + ", ".join(
                f"{n} {gains[n].text(1, '%')} vs {theirs[n].text(1, '%')}" for n in shared)
            if shared else "no model is in both tables"))
    return findings


def table2_compare(table_id: str, long: pd.DataFrame, other: pd.DataFrame | None) -> str:
    """Our Table 2 row by row beside the paper's, and the findings of :func:`table2_findings`."""
    title = TABLE2[table_id][2]
    first = long.loc[long["certificate"] == "hoeffding", "gamma"]
    proven_column = f"PROVEN {_pct(first.iloc[0])}" if len(first) else "PROVEN"
    lines = [f"# {table_id} ({title}) compared with the paper's Table 2", "",
             "Digits stand in for MNIST and the rendered traffic signs for CIFAR; architectures of the",
             "same name are compared (the paper's models were trained elsewhere, so radii differ in scale).",
             "Means are over the certified samples: \"(k/n)\" when only k of n are, \"not certified\" when none;",
             "the improvement is over the samples both certify.", "",
             f"| model | ours: worst case | ours: {proven_column} | ours: improvement | paper model | "
             "paper: worst case | paper: PROVEN 99.99% | paper: improvement |", "|---|---|---|---|---|---|---|---|"]
    for name, frame in long.groupby("row", sort=False):
        worst = Gain.from_record(frame[frame["certificate"] == "worst-case"].iloc[0])
        gain = table2_gains(frame)[str(name)]
        match = _paper_row(table_id, str(name))
        paper_name, p = match if match is not None else ("—", pd.Series(dtype=float))
        lines.append(f"| {name} | {eps_text(worst.mean_eps, worst.certified, worst.samples, 5)} | "
                     f"{eps_text(gain.mean_eps, gain.certified, gain.samples, 5)} | {gain.text(1, '%')} | "
                     f"{paper_name} | {_fmt(p.get('worst_case'))} | {_fmt(p.get('proven_99.99'))} | "
                     f"{_fmt(p.get('improvement_pct'), 1)}% |")
    return "\n".join(lines) + "\n\n" + findings_markdown(table2_findings(table_id, long, other))


def table3_findings(long: pd.DataFrame) -> list[Finding]:
    """Table 3 and Sec. 4 ("Results on large networks with general activations"); ``long`` is
    :func:`table3`'s long frame."""
    gains = _table3_gains(long)
    rows = list(dict.fromkeys(long["row"]))
    findings = []
    adaptive = "Adaptive ReLU bounds give a larger gain than fixed slopes on every architecture (Sec. 4, Table 3)"
    both = [n for n in rows if (n, "Relu") in gains and (n, "Relu-ada") in gains]
    if not both:
        findings.append(Finding(adaptive, None, "no architecture has both ReLU tables"))
    else:
        evidence = ", ".join(f"{n}: {gains[n, 'Relu-ada'].text(1, '%')} vs {gains[n, 'Relu'].text(1, '%')}"
                             for n in both)
        findings.append(Finding(adaptive, every(beats(gains[n, "Relu-ada"], gains[n, "Relu"]) for n in both),
                                evidence))
    pairs = [(n, c, beats(gains[n, c], gains[n, "Relu"])) for n in rows for c in ("tanh", "sigmoid", "arctan")
             if (n, c) in gains and (n, "Relu") in gains]
    claim = ("Non-ReLU activations gain more than ReLU with fixed slopes in general, i.e. on most "
             "architecture/activation pairs (Sec. 4)")
    decided = [p for p in pairs if p[2] is not None]
    if not decided:
        findings.append(Finding(claim, None, "no architecture has a non-ReLU model and a fixed-slope ReLU model"
                                + (" that can be compared (neither certifies anything)" if pairs else "")))
    else:
        wins = sum(w for _, _, w in decided)
        findings.append(Finding(claim, wins > len(decided) / 2, f"more on {wins} of {len(decided)}: " + ", ".join(
            f"{n} {c} {gains[n, c].text(1, '%')} vs {gains[n, 'Relu'].text(1, '%')}" for n, c, _ in pairs)))
    # The proven stage stores radii, not run times, so the overhead claim cannot be decided here.
    findings.append(Finding("PROVEN's overhead over the worst-case computation is small (Sec. 4)", None,
                            "the proven stage records no run time per certificate"))
    return findings


def table3_compare(long: pd.DataFrame) -> str:
    paper = paper_table(PAPER, "table3").set_index("model")
    return "\n".join([
        "# pv_table3 compared with the paper's Table 3", "",
        "Improvement at the highest gamma (%), ours (\"not certified\" where PROVEN certifies no sample,",
        "\"(k/n)\" over the k of n samples both certify):", "",
        table3_display(long, 1).to_markdown(), "",
        f"The paper's Table 3 (improvement at 99.99%, %; {paper_numbers(PAPER).tables['table3'].source}):", "",
        paper.map(lambda v: _fmt(v, 1)).to_markdown(), "", findings_markdown(table3_findings(long))])


def _paper_table4(model: str) -> pd.DataFrame:
    """The paper's Table 4 part for our model id (<dataset>_<activation>_<depth>x<width>), if any."""
    dataset, activation, arch = model.split("_", 2)
    paper = paper_table(PAPER, "table4")
    name = f"{'MNIST' if dataset == 'digits' else 'CIFAR'} {arch.replace('x', 'x[', 1)}]"
    part = paper[(paper["model"] == name) & (paper["activation"] == PAPER_TABLE4_ACTIVATION.get(activation, ""))]
    return part[part["part"] == part["part"].min()] if len(part) else part


def table4_findings(long: pd.DataFrame) -> list[Finding]:
    """Sec. 4 on Table 4: (a) the 10-sample average of Table 2 varies by less than ~10%; (b) the
    averages deviate less with 50 or 100 samples."""
    findings = []
    for model, frame in long[long["statistic"].isin(["mean", "std"])].groupby("model", sort=False):
        stats = frame.pivot_table(index="samples", columns="statistic", values="proven_eps",
                                  dropna=False).sort_index()
        fractions = frame[frame["statistic"] == "mean"].set_index("samples")["certified_fraction"]
        pool = int(frame["pool"].iloc[0])
        smallest = int(stats.index[0])
        varies = f"{model}: the average PROVEN eps over {smallest} samples varies by less than ~10% (Sec. 4, Table 4)"
        mean, std = stats.loc[smallest].get("mean", np.nan), stats.loc[smallest].get("std", np.nan)
        if not fractions.loc[smallest] > 0:
            findings.append(Finding(varies, None, f"{NOT_CERTIFIED}: PROVEN certifies none of the drawn samples, "
                                    "so there is no average to vary"))
        elif not (np.isfinite(mean) and np.isfinite(std)):
            findings.append(Finding(varies, None, "fewer than two trials certified a sample"))
        else:
            partial = "" if fractions.loc[smallest] >= 1 else (
                f" (averages over the certified samples only, {fractions.loc[smallest]:.0%} of those drawn)")
            findings.append(Finding(varies, bool(std / mean < 0.10),
                                    f"std / mean of the {smallest}-sample average: {std / mean:.1%}{partial}"))
        stds = frame[frame["statistic"] == "std"].sort_values("samples")[["samples", "improvement_pct"]].to_numpy()
        known = stds[np.isfinite(stds[:, 1])]
        note = (f"; trials of {int(stds[-1][0])} samples draw from a pool of only {pool}, so their std understates "
                "the paper's (which draws from the whole test set)" if stds[-1][0] > pool / 2 else "")
        missing = [int(k) for k, s in stds if not np.isfinite(s)]
        if missing:
            note += f"; no improvement at {', '.join(map(str, missing))} samples ({NOT_CERTIFIED} in every trial)"
        # The std of an average of k draws falls like 1/sqrt(k) (faster without replacement): this
        # checks the trials, not PROVEN.
        findings.append(sanity(
            f"{model}: the std of the improvement over trials falls as samples grow (Sec. 4, Table 4)",
            all(b[1] <= a[1] for a, b in zip(known, known[1:], strict=False)) if len(known) > 1 else None,
            ", ".join(f"{int(k)} samples {s:.2f}%" for k, s in known) + note))
    for row in long[long["statistic"] == "n/a"].itertuples():
        findings.append(Finding(f"{row.model}: {row.samples} samples", None,
                                f"not computed, the pool holds {row.pool} samples (raise proven.samples)"))
    return findings


def _table4_improvement(part: pd.DataFrame, statistic: str) -> str:
    rows = part[part["statistic"] == statistic]
    if rows.empty:
        return "—"
    row = rows.iloc[0]
    fraction = float(part.loc[part["statistic"] == "mean", "certified_fraction"].iloc[0])
    if not fraction > 0:
        return NOT_CERTIFIED
    return f"{_fmt(row['improvement_pct'], 2)}%"


def table4_compare(long: pd.DataFrame) -> str:
    lines = ["# pv_table4 compared with the paper's Table 4", "",
             "Mean and std over trials of the improvement at the first gamma (%), ours beside the paper's part",
             "of Table 4 with the same architecture and activation (CROWN bounds), where it has one. A trial's",
             "averages are over its certified samples (\"certified\": the mean fraction of the drawn samples",
             "PROVEN certifies); \"not certified\" when no trial certifies any.", "",
             "| model | samples | ours: mean | ours: std | ours: certified | paper part | paper: mean | paper: std |",
             "|---|---|---|---|---|---|---|---|"]
    for model, frame in long[long["statistic"].isin(["mean", "std"])].groupby("model", sort=False):
        paper = _paper_table4(model)
        for samples, part in frame.groupby("samples"):
            fraction = float(part.loc[part["statistic"] == "mean", "certified_fraction"].iloc[0])
            ref = paper[paper["samples"] == samples].set_index("statistic")["improvement_pct"]
            name = f"({paper['part'].iloc[0]}) {paper['model'].iloc[0]}" if len(paper) else "—"
            lines.append(f"| {model} | {samples} | {_table4_improvement(part, 'mean')} | "
                         f"{_table4_improvement(part, 'std')} | {_fmt(100 * fraction, 0)}% | "
                         f"{name} | {_fmt(ref.get('mean'), 2)}% | {_fmt(ref.get('std'), 2)}% |")
    return "\n".join(lines) + "\n\n" + findings_markdown(table4_findings(long))


RIGOROUS_REASON = ("certifies no sample (the mass outside the ball under the sigma = eps / sigma_ratio rule "
                   "exceeds the allowed risk)")


def fig1_findings(curves: pd.DataFrame) -> list[Finding]:
    """Figure 1 (Sec. 4, Case (ii)): Gaussian noise gives a larger improvement than bounded noise."""
    findings = []
    empty = Gain(0, 0, 0, 0, np.nan, np.nan, np.nan)
    for model, frame in curves.groupby("model", sort=False):
        top = {r["curve"]: Gain.from_record(r) for r in frame[frame["gamma"] == frame["gamma"].max()]
               .to_dict("records")}
        gauss = top.get("Gaussian independent (paper)", empty)
        bounded = top.get("bounded (i)", empty)
        rigorous = top.get("Gaussian independent (rigorous)", empty)
        rigorous_text = f"{NOT_CERTIFIED}: {RIGOROUS_REASON}" if rigorous.samples and not rigorous.certified else \
            rigorous.text(1, "%")
        # A curve that certifies nothing has the smaller improvement (see beats); both empty: undecided.
        findings.append(Finding(
            f"{model}: at the highest gamma Gaussian noise (the paper's approximation) gives a larger improvement "
            "than bounded noise (Sec. 4, Fig. 1)", beats(gauss, bounded),
            f"Gaussian {gauss.text(1, '%')}, bounded {bounded.text(1, '%')}; rigorous Gaussian {rigorous_text}"))
        # A lower confidence asks less of the same bound, so the certified eps cannot shrink.
        line = [Gain.from_record(r) for r in frame[frame["curve"] == "bounded (i)"]
                .sort_values("gamma", ascending=False).to_dict("records")]
        ranks = [g.rank for g in line if g.rank is not None]
        findings.append(sanity(f"{model}: the bounded-noise improvement grows as gamma falls (Fig. 1)",
                               all(b >= a - 1e-9 for a, b in zip(ranks, ranks[1:], strict=False))
                               if len(ranks) > 1 else None,
                               ", ".join(g.text(1, "%") for g in line) + " from the highest gamma down"))
    return findings


def fig1_compare(curves: pd.DataFrame) -> str:
    cells = curves.assign(cell=[Gain.from_record(r).text(1) for r in curves.to_dict("records")])
    return "\n".join([
        "# pv_fig1 compared with the paper's Figure 1", "",
        "The paper: Gaussian noise (Case (ii), 3-sigma rule) gives a larger improvement than bounded noise,",
        "and the improvement grows as gamma falls. 'rigorous' subtracts the Gaussian mass outside the ball",
        "(Sidak's bound), which the paper's approximation ignores. The figure prints no numbers. Each",
        "improvement is over the samples both the curve and the worst case certify (\"(k/n)\" when not all);",
        "\"not certified\" where the curve certifies no sample.", "",
        cells.pivot_table(index=["model", "curve"], columns="gamma", values="cell", aggfunc="first", sort=False)
        .to_markdown(), "", findings_markdown(fig1_findings(curves))])


def verified_findings(long: pd.DataFrame, inputs: int = 2) -> list[Finding]:
    """Whether PROVEN certifies points the worst case misses on the 2-D data sets.

    Hoeffding's bound (Case (i)) certifies a margin mu when mu >= eps ‖A‖_2 sqrt(2 ln(1 / (1 -
    gamma))); the worst case needs only mu > eps ‖A‖_1 <= sqrt(d) eps ‖A‖_2. When the first
    factor is at least sqrt(d), every point PROVEN certifies is certified by the worst case too,
    so "no extra point" is a sanity check; otherwise extra points are a finding."""
    if long.empty:
        return [Finding("PROVEN certifies points the worst case misses", None, "no 2-D model was run")]
    findings = []
    for gamma in sorted(long["gamma"].unique(), reverse=True):
        factor = float(np.sqrt(2 * np.log(1 / (1 - gamma)))) if gamma < 1 else np.inf
        part = long[long["gamma"] == gamma]
        share = float(part["proven_only"].max())
        evidence = (f"largest fraction certified by PROVEN but not by the worst case: {share:.4f}; at gamma = "
                    f"{gamma * 100:g}% PROVEN needs mu >= {factor:.2f} eps ‖A‖_2, the worst case mu > eps ‖A‖_1 "
                    f"<= {np.sqrt(inputs):.2f} eps ‖A‖_2")
        if factor >= np.sqrt(inputs):
            findings.append(sanity(f"With {inputs} inputs PROVEN at gamma = {gamma * 100:g}% certifies no point the "
                                   "worst case misses (Hoeffding's factor exceeds sqrt(d))", share == 0, evidence))
        else:
            findings.append(Finding(f"PROVEN at gamma = {gamma * 100:g}% certifies points the worst case misses",
                                    share > 0, evidence))
    return findings


def verified_compare(long: pd.DataFrame) -> str:
    return ("# pv_table5: PROVEN beside verified accuracy on the 2-D data sets\n\n"
            "Not a table of the paper: what fraction of points PROVEN certifies, with the first configured\n"
            "gamma, at an eps where the worst case fails. PROVEN's gain comes from concentration over many\n"
            "input dimensions, which two inputs do not have.\n\n" + findings_markdown(verified_findings(long)))
