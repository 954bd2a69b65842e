"""PROVEN's tables and figure (pv_table2a..e, pv_table3, pv_table4, pv_fig1, pv_table5) and their
comparison with the paper. Every number is computed from the per-sample Parquet files."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

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

def _pct(gamma: float) -> str:
    return f"{gamma * 100:g}%"


def _row_name(frame: pd.DataFrame) -> str:
    first = frame.iloc[0]
    return f"{DATASET_LABEL[first['dataset']]} {first['architecture']}"


def table2(results: pd.DataFrame, activation: str, relaxation: str, gammas: list[float],
           n_samples: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean eps over the first ``n_samples`` samples of each model: worst case, PROVEN (Case (i))
    at each gamma, and the improvement at the first (highest) gamma."""
    chosen = results[(results["activation"] == activation) & (results["relaxation"] == relaxation)]
    long_rows, display_rows = [], {}
    for model, frame in chosen.groupby("model", sort=False):
        samples = np.sort(frame["sample"].unique())[:n_samples]
        frame = frame[frame["sample"].isin(samples)]
        worst = frame.loc[frame["certificate"] == "worst-case", "certified_eps"].mean()
        row = {"worst-case (100%)": worst}
        long_rows.append({"model": model, "certificate": "worst-case", "gamma": 1.0, "mean_eps": worst,
                          "samples": len(samples)})
        bounded = frame[frame["certificate"] == "hoeffding"]
        for gamma in gammas:
            eps = bounded.loc[np.isclose(bounded["gamma"], gamma), "certified_eps"].mean()
            row[f"PROVEN {_pct(gamma)}"] = eps
            long_rows.append({"model": model, "certificate": "hoeffding", "gamma": gamma, "mean_eps": eps,
                              "samples": len(samples)})
        row["improvement (%)"] = 100.0 * (row[f"PROVEN {_pct(gammas[0])}"] / worst - 1.0) if worst > 0 else np.nan
        display_rows[_row_name(frame)] = row
    columns = ["worst-case (100%)"] + [f"PROVEN {_pct(g)}" for g in gammas] + ["improvement (%)"]
    display = pd.DataFrame.from_dict(display_rows, orient="index", columns=columns)
    long = pd.DataFrame(long_rows, columns=["model", "certificate", "gamma", "mean_eps", "samples"])
    return long, display


def improvement(results: pd.DataFrame, model: str, relaxation: str, gamma: float, samples: np.ndarray,
                certificate: str = "hoeffding", noise: str = "bounded") -> tuple[float, float, float]:
    """(mean worst-case eps, mean PROVEN eps, improvement %) over ``samples`` (Sec. 4, Table 4)."""
    frame = results[(results["model"] == model) & (results["relaxation"] == relaxation)
                    & results["sample"].isin(samples)]
    worst = frame.loc[frame["certificate"] == "worst-case", "certified_eps"].mean()
    proven = frame.loc[(frame["certificate"] == certificate) & (frame["noise"] == noise)
                       & np.isclose(frame["gamma"], gamma), "certified_eps"].mean()
    return worst, proven, (100.0 * (proven / worst - 1.0) if worst > 0 else np.nan)


def table3(tables2: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Improvement at the highest gamma per architecture (rows) and activation (columns)."""
    columns = {}
    for column, (activation, relaxation) in TABLE3_COLUMNS.items():
        table_id = next(t for t, (a, r, _) in TABLE2.items() if (a, r) == (activation, relaxation))
        columns[column] = tables2[table_id]["improvement (%)"]
    order = list(dict.fromkeys(name for table in tables2.values() for name in table.index))
    return pd.DataFrame(columns).reindex(order)


def table4(results: pd.DataFrame, models: list[str], gamma: float, sizes: list[int], trials: int,
           seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """100 random trials of k samples: mean and std over trials of the average worst-case eps,
    PROVEN eps at ``gamma`` and improvement (Table 4; CROWN relaxation)."""
    long_rows = []
    rng = np.random.default_rng(seed)
    for model in models:
        pool = np.sort(results.loc[results["model"] == model, "sample"].unique())
        for size in sizes:
            if size > len(pool):
                long_rows.append({"model": model, "samples": size, "statistic": "n/a", "worst_case_eps": np.nan,
                                  "proven_eps": np.nan, "improvement_pct": np.nan, "pool": len(pool)})
                continue
            draws = np.array([improvement(results, model, "crown", gamma, rng.choice(pool, size, replace=False))
                              for _ in range(trials)])
            for statistic, values in (("mean", draws.mean(axis=0)), ("std", draws.std(axis=0, ddof=1))):
                long_rows.append({"model": model, "samples": size, "statistic": statistic,
                                  "worst_case_eps": values[0], "proven_eps": values[1],
                                  "improvement_pct": values[2], "pool": len(pool)})
    long = pd.DataFrame(long_rows)
    display = long.pivot_table(index=["model", "statistic"], columns="samples",
                               values=["worst_case_eps", "proven_eps", "improvement_pct"], sort=False)
    display.columns = [f"{k} samples: {v}" for v, k in display.columns]
    return long, display[sorted(display.columns, key=lambda c: int(c.split()[0]))]


FIG1_CURVES = [("hoeffding", "bounded", "bounded (i)", "-"),
               ("gaussian-approx", "gaussian-diagonal", "Gaussian independent (paper)", "--"),
               ("gaussian-approx", "gaussian-correlated", "Gaussian correlated (paper)", "--"),
               ("gaussian-rigorous", "gaussian-diagonal", "Gaussian independent (rigorous)", ":"),
               ("gaussian-rigorous", "gaussian-correlated", "Gaussian correlated (rigorous)", ":")]


def fig1_frame(results: pd.DataFrame, models: list[str], gammas: list[float]) -> pd.DataFrame:
    rows = []
    for model in models:
        frame = results[results["model"] == model]
        samples = frame["sample"].unique()
        for certificate, noise, label, _ in FIG1_CURVES:
            for gamma in gammas:
                worst, proven, gain = improvement(results, model, "crown", gamma, samples, certificate, noise)
                # No radius certified at all is not a -100% improvement; leave the point out.
                rows.append({"model": model, "curve": label, "gamma": gamma,
                             "improvement_pct": gain if proven > 0 else np.nan, "mean_eps": proven})
    return pd.DataFrame(rows)


def fig1(curves: pd.DataFrame) -> plt.Figure:
    models = list(dict.fromkeys(curves["model"]))
    figure, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.6), squeeze=False, sharey=True)
    for ax, model in zip(axes[0], models, strict=True):
        for _, _, label, style in FIG1_CURVES:
            line = curves[(curves["model"] == model) & (curves["curve"] == label)]
            ax.plot(line["gamma"] * 100, line["improvement_pct"], style, marker="o", label=label)
        ax.set_title(model)
        ax.set_xlabel("gamma_L (%)")
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("improvement over worst-case eps (%)")
    axes[0][-1].legend(fontsize=7)
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


def table2_findings(table_id: str, display: pd.DataFrame, other: pd.DataFrame | None) -> list[Finding]:
    """Sec. 4 ("Result on small and large ReLU networks"), Tables 2a-2e: PROVEN at 99.99% certifies
    more than the worst case; the gain shrinks with depth; adaptive bounds (2b) gain more than
    fixed slopes (2a)."""
    gains = display["improvement (%)"]
    larger = "PROVEN at the highest gamma certifies a larger eps than the worst case on every model (Sec. 4, Table 2)"
    if display.empty:
        return [Finding(larger, None, "no model of this kind is configured (proven.models)")]
    findings = [Finding(larger, bool((gains > 0).all()),
                        "improvements: " + ", ".join(f"{n} {g:.1f}%" for n, g in gains.items()))]
    by_width: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for name, gain in gains.items():
        dataset, arch = name.split(" ", 1)
        depth, width = arch.split("x")
        by_width.setdefault((dataset, width), []).append((int(depth), gain))
    series = {k: sorted(v) for k, v in by_width.items() if len(v) > 1}
    shrinks = "The gain shrinks with depth at a fixed width (Sec. 4, Tables 2a-2e)"
    if not series:
        findings.append(Finding(shrinks, None, "no two models of one width and different depths are configured"))
    for (dataset, width), points in series.items():
        findings.append(Finding(f"{shrinks}: {dataset}, width {width}",
                                all(b[1] <= a[1] for a, b in zip(points, points[1:], strict=False)),
                                ", ".join(f"{d} layers {g:.1f}%" for d, g in points)))
    if other is not None:
        shared = display.index.intersection(other.index)
        wins = [display.loc[n, "improvement (%)"] > other.loc[n, "improvement (%)"] for n in shared]
        findings.append(Finding(
            "The gain is larger with adaptive ReLU bounds (Table 2b) than with fixed slopes (Table 2a) on every "
            "model (Sec. 4)", bool(all(wins)) if wins else None,
            f"larger on {sum(wins)} of {len(shared)} models: " + ", ".join(
                f"{n} {display.loc[n, 'improvement (%)']:.1f}% vs {other.loc[n, 'improvement (%)']:.1f}%"
                for n in shared) if len(shared) else "no model is in both tables"))
    return findings


def table2_compare(table_id: str, display: pd.DataFrame, other: pd.DataFrame | None) -> str:
    """Our Table 2 row by row beside the paper's, and the findings of :func:`table2_findings`."""
    title = TABLE2[table_id][2]
    lines = [f"# {table_id} ({title}) compared with the paper's Table 2", "",
             "Digits stand in for MNIST and the rendered traffic signs for CIFAR; architectures of the",
             "same name are compared (the paper's models were trained elsewhere, so radii differ in scale).", "",
             f"| model | ours: worst case | ours: {display.columns[1]} | ours: improvement | paper model | "
             "paper: worst case | paper: PROVEN 99.99% | paper: improvement |", "|---|---|---|---|---|---|---|---|"]
    for name, row in display.iterrows():
        match = _paper_row(table_id, name)
        paper_name, p = match if match is not None else ("—", pd.Series(dtype=float))
        lines.append(f"| {name} | {_fmt(row.iloc[0])} | {_fmt(row.iloc[1])} | {_fmt(row['improvement (%)'], 1)}% | "
                     f"{paper_name} | {_fmt(p.get('worst_case'))} | {_fmt(p.get('proven_99.99'))} | "
                     f"{_fmt(p.get('improvement_pct'), 1)}% |")
    return "\n".join(lines) + "\n\n" + findings_markdown(table2_findings(table_id, display, other))


def table3_findings(display: pd.DataFrame) -> list[Finding]:
    """Table 3 and Sec. 4 ("Results on large networks with general activations")."""
    findings = []
    adaptive = "Adaptive ReLU bounds give a larger gain than fixed slopes on every architecture (Sec. 4, Table 3)"
    both = display[["Relu", "Relu-ada"]].dropna() if {"Relu", "Relu-ada"} <= set(display.columns) else None
    if both is None or both.empty:
        findings.append(Finding(adaptive, None, "no architecture has both ReLU tables"))
    else:
        evidence = ", ".join(f"{n}: {r['Relu-ada']:.1f}% vs {r['Relu']:.1f}%" for n, r in both.iterrows())
        findings.append(Finding(adaptive, bool((both["Relu-ada"] > both["Relu"]).all()), evidence))
    general = [c for c in ("tanh", "sigmoid", "arctan") if c in display.columns]
    pairs = [(name, c, display.loc[name, c], display.loc[name, "Relu"]) for name in display.index for c in general
             if "Relu" in display.columns and np.isfinite(display.loc[name, c])
             and np.isfinite(display.loc[name, "Relu"])]
    claim = ("Non-ReLU activations gain more than ReLU with fixed slopes in general, i.e. on most "
             "architecture/activation pairs (Sec. 4)")
    if not pairs:
        findings.append(Finding(claim, None, "no architecture has a non-ReLU model and a fixed-slope ReLU model"))
    else:
        wins = sum(g > r for _, _, g, r in pairs)
        findings.append(Finding(claim, wins > len(pairs) / 2, f"more on {wins} of {len(pairs)}: " + ", ".join(
            f"{n} {c} {g:.1f}% vs {r:.1f}%" for n, c, g, r in pairs)))
    # The proven stage stores radii, not run times, so the overhead claim cannot be decided here.
    findings.append(Finding("PROVEN's overhead over the worst-case computation is small (Sec. 4)", None,
                            "the proven stage records no run time per certificate"))
    return findings


def table3_compare(display: pd.DataFrame) -> str:
    paper = paper_table(PAPER, "table3").set_index("model")
    return "\n".join([
        "# pv_table3 compared with the paper's Table 3", "",
        "Improvement at the highest gamma (%), ours:", "", display.map(lambda v: _fmt(v, 1)).to_markdown(), "",
        f"The paper's Table 3 (improvement at 99.99%, %; {paper_numbers(PAPER).tables['table3'].source}):", "",
        paper.map(lambda v: _fmt(v, 1)).to_markdown(), "", findings_markdown(table3_findings(display))])


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
        stats = frame.pivot_table(index="samples", columns="statistic", values="proven_eps").sort_index()
        pool = int(frame["pool"].iloc[0])
        smallest = int(stats.index[0])
        relative = stats.loc[smallest, "std"] / stats.loc[smallest, "mean"]
        findings.append(Finding(
            f"{model}: the average PROVEN eps over {smallest} samples varies by less than ~10% (Sec. 4, Table 4)",
            bool(relative < 0.10), f"std / mean of the {smallest}-sample average: {relative:.1%}"))
        stds = frame[frame["statistic"] == "std"].sort_values("samples")[["samples", "improvement_pct"]].to_numpy()
        note = (f"; trials of {int(stds[-1][0])} samples draw from a pool of only {pool}, so their std understates "
                "the paper's (which draws from the whole test set)" if stds[-1][0] > pool / 2 else "")
        # The std of an average of k draws falls like 1/sqrt(k) (faster without replacement): this
        # checks the trials, not PROVEN.
        findings.append(sanity(
            f"{model}: the std of the improvement over trials falls as samples grow (Sec. 4, Table 4)",
            all(b[1] <= a[1] for a, b in zip(stds, stds[1:], strict=False)),
            ", ".join(f"{int(k)} samples {s:.2f}%" for k, s in stds) + note))
    for row in long[long["statistic"] == "n/a"].itertuples():
        findings.append(Finding(f"{row.model}: {row.samples} samples", None,
                                f"not computed, the pool holds {row.pool} samples (raise proven.samples)"))
    return findings


def table4_compare(long: pd.DataFrame) -> str:
    lines = ["# pv_table4 compared with the paper's Table 4", "",
             "Mean and std over trials of the improvement at the first gamma (%), ours beside the paper's part",
             "of Table 4 with the same architecture and activation (CROWN bounds), where it has one.", "",
             "| model | samples | ours: mean | ours: std | paper part | paper: mean | paper: std |",
             "|---|---|---|---|---|---|---|"]
    for model, frame in long[long["statistic"].isin(["mean", "std"])].groupby("model", sort=False):
        paper = _paper_table4(model)
        for samples, part in frame.groupby("samples"):
            ours = part.set_index("statistic")["improvement_pct"]
            ref = paper[paper["samples"] == samples].set_index("statistic")["improvement_pct"]
            name = f"({paper['part'].iloc[0]}) {paper['model'].iloc[0]}" if len(paper) else "—"
            lines.append(f"| {model} | {samples} | {_fmt(ours.get('mean'), 2)}% | {_fmt(ours.get('std'), 2)}% | "
                         f"{name} | {_fmt(ref.get('mean'), 2)}% | {_fmt(ref.get('std'), 2)}% |")
    return "\n".join(lines) + "\n\n" + findings_markdown(table4_findings(long))


def fig1_findings(curves: pd.DataFrame) -> list[Finding]:
    """Figure 1 (Sec. 4, Case (ii)): Gaussian noise gives a larger improvement than bounded noise."""
    findings = []
    for model, frame in curves.groupby("model", sort=False):
        top = frame[frame["gamma"] == frame["gamma"].max()].set_index("curve")["improvement_pct"]
        gauss = top.get("Gaussian independent (paper)", np.nan)
        bounded = top.get("bounded (i)", np.nan)
        rigorous = top.get("Gaussian independent (rigorous)", np.nan)
        rigorous_text = (f"{rigorous:.1f}%" if np.isfinite(rigorous) else
                         "certifies no eps (the mass outside the ball under the sigma = eps / sigma_ratio rule "
                         "exceeds the allowed risk)")
        decidable = bool(np.isfinite(gauss) and np.isfinite(bounded))
        findings.append(Finding(
            f"{model}: at the highest gamma Gaussian noise (the paper's approximation) gives a larger improvement "
            "than bounded noise (Sec. 4, Fig. 1)", bool(gauss > bounded) if decidable else None,
            f"Gaussian {_fmt(gauss, 1)}%, bounded {_fmt(bounded, 1)}%; rigorous Gaussian {rigorous_text}"))
        # A lower confidence asks less of the same bound, so the certified eps cannot shrink.
        line = frame[frame["curve"] == "bounded (i)"].sort_values("gamma", ascending=False)["improvement_pct"]
        values = line.dropna().to_numpy()
        findings.append(sanity(f"{model}: the bounded-noise improvement grows as gamma falls (Fig. 1)",
                               bool(np.all(np.diff(values) >= -1e-9)) if len(values) > 1 else None,
                               ", ".join(f"{v:.1f}%" for v in values) + " from the highest gamma down"))
    return findings


def fig1_compare(curves: pd.DataFrame) -> str:
    return "\n".join([
        "# pv_fig1 compared with the paper's Figure 1", "",
        "The paper: Gaussian noise (Case (ii), 3-sigma rule) gives a larger improvement than bounded noise,",
        "and the improvement grows as gamma falls. 'rigorous' subtracts the Gaussian mass outside the ball",
        "(Sidak's bound), which the paper's approximation ignores. The figure prints no numbers.", "",
        curves.pivot_table(index=["model", "curve"], columns="gamma", values="improvement_pct", sort=False)
        .map(lambda v: _fmt(v, 1)).to_markdown(), "", findings_markdown(fig1_findings(curves))])


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
