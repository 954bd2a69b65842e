"""Tables, figures and findings of the KRI family (Schwerdtner et al., "Risk Assessment for Machine
Learning Models"): kr_table1..4 and kr_fig2..5 of :mod:`nnassure.report.catalog`, from the model
files (their metadata), the risk tensor and the certificate files.

Findings are computed on the class-change loss (the paper's KRIs, Sec. 5), with the bootstrap of
:mod:`nnassure.kri.indicators`; differences between two models use the *paired* bootstrap (the
same resample of test images for both), so "a drop beyond its CI" means the CI of the difference
excludes 0.

Comparison pairs are found in ``kri.variants``: a model is "augmented" against another configured
model when every field of their variants except the augmentation measures (``standard_augment``,
``noise_sigma``, ``adversarial``) and the description is equal and it has more of them; among
several such others, the one with the fewest augmentation measures is its baseline. Likewise for
the loss: ``gce_alpha`` set against unset, everything else equal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from nnassure.errors import InputFileError, NnassureError  # noqa: E402
from nnassure.kri.indicators import Replicates, clopper_pearson, kri_frame  # noqa: E402
from nnassure.report.findings import Finding, findings_markdown, sanity  # noqa: E402

PAPER = "risk-assessment-kri-tensor"
LOSS = "class_change"
AUGMENTATION = ("standard_augment", "noise_sigma", "adversarial")
LOSS_MEASURES = ("gce_alpha",)
MEASURES = ("capacity", "standard_augment", "noise_sigma", "gce_alpha", "parseval_beta", "distillation_temperature",
            "adversarial")


class CertificateBelowEstimate(NnassureError):
    """A certified upper bound below the lower end of its Monte-Carlo interval: a bug, never reported as data."""


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def _ci(estimate: float, low: float, high: float) -> str:
    return f"{estimate:.4f} [{low:.4f}, {high:.4f}]"


# ------------------------------------------------------------------------------------------------
# kr_table1: the zoo
# ------------------------------------------------------------------------------------------------

def what_differs(variant: Mapping[str, Any]) -> str:
    """The measures of a variant in words (Table 1's reg./augment./defense columns)."""
    parts = []
    if variant.get("capacity", "base") != "base":
        parts.append(f"capacity {variant['capacity']}")
    if variant.get("standard_augment"):
        parts.append("std. image augmentations")
    if variant.get("noise_sigma") is not None:
        parts.append(f"Gaussian noise (sigma = {variant['noise_sigma']})")
    if variant.get("gce_alpha") is not None:
        parts.append(f"gce loss (alpha = {variant['gce_alpha']})")
    if variant.get("parseval_beta") is not None:
        parts.append(f"parseval (beta = {variant['parseval_beta']})")
    if variant.get("distillation_temperature") is not None:
        parts.append(f"distillation (T = {variant['distillation_temperature']})")
    adversarial = variant.get("adversarial")
    if adversarial:
        parts.append(f"adv. training ({adversarial['attack']}, eps = {adversarial['eps']})")
    return ", ".join(parts) or "-"


def table1(metadata: Mapping[str, Mapping[str, Any]], variants: Mapping[str, Mapping[str, Any]]
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for name, meta in metadata.items():
        accuracy = meta.get("accuracy", {})
        if "test" not in accuracy or "seconds" not in meta:
            raise InputFileError(f"model {name}: its metadata has no test accuracy or training seconds "
                                 "(run kri_train again)")
        rows.append({"variant": name, "what_differs": what_differs(variants[name]),
                     "description": str(meta.get("description", variants[name].get("description", ""))),
                     "test_accuracy": float(accuracy["test"]), "training_seconds": float(meta["seconds"])})
    long = pd.DataFrame(rows)
    display = long.set_index("variant")[["what_differs", "test_accuracy", "training_seconds"]]
    display.columns = ["what differs", "clean test accuracy", "training seconds"]
    return long, display


def table1_compare(long: pd.DataFrame, paper: pd.DataFrame, variants: Mapping[str, Any] | None = None) -> str:
    """Our zoo beside the paper's Table 1; ``variants`` are every configured variant (``kri.variants``),
    trained in this experiment or not."""
    paper = paper.set_index("label")
    rows = []
    for _, row in long.iterrows():
        p = paper.loc[row["variant"]] if row["variant"] in paper.index else None
        rows.append({"variant": row["variant"], "ours: what differs": row["what_differs"],
                     "ours: clean test accuracy": _fmt(row["test_accuracy"]),
                     "ours: training time": f"{row['training_seconds']:.1f} s",
                     "paper: layers": "-" if p is None else p["layers"],
                     "paper: reg. / augment. / defense": "not in the paper" if p is None else
                     f"{p['regularisation']} / {p['augmentation']} / {p['defense']}"})
    defined = set(variants) if variants is not None else set(long["variant"])
    missing = [label for label in paper.index if label not in defined]
    untrained = [label for label in paper.index if label in defined and label not in set(long["variant"])]
    findings = [
        Finding("Every model of the paper's Table 1 is a variant of our zoo (Sec. 5: 20 ResNets)", not missing,
                f"{len(defined)} variants configured, {len(long)} trained in this experiment; missing: "
                f"{', '.join(missing) or 'none'}; not trained here: {', '.join(untrained) or 'none'}"),
        sanity("Every clean test accuracy is a fraction in [0, 1]",
               bool(((long["test_accuracy"] >= 0) & (long["test_accuracy"] <= 1)).all()),
               f"range {long['test_accuracy'].min():.4f} - {long['test_accuracy'].max():.4f}"),
    ]
    return ("# kr_table1 — Table 1 (Sec. 5): the model zoo\n\nOur traffic-sign CNNs (two capacities) beside the "
            "paper's CIFAR-10 ResNets (72 and 114 layers); the paper prints no accuracies or times.\n\n"
            + pd.DataFrame(rows).to_markdown(index=False) + "\n\n" + findings_markdown(findings))


# ------------------------------------------------------------------------------------------------
# kr_table2 / kr_table4: KRIs and deployment risks
# ------------------------------------------------------------------------------------------------

def table2(kris: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    long = kris.copy()
    shown = long.assign(value=[_ci(k, lo, hi) for k, lo, hi in zip(long.kri, long.ci_low, long.ci_high, strict=True)],
                        column=[n if lv != "family" else f"{n} (family)" for lv, n in zip(long.level, long.name,
                                                                                          strict=True)])
    order = list(dict.fromkeys(shown["column"]))
    display = shown.pivot(index=["model", "loss"], columns="column", values="value")[order]
    display = display.reindex(pd.MultiIndex.from_frame(long[["model", "loss"]].drop_duplicates()))
    return long, display


def table4(deployments: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    long = deployments.copy()
    if long.empty:
        return long, pd.DataFrame({"note": ["no deployment scenario configured (kri.deployments)"]})
    shown = long.assign(value=[_ci(r, lo, hi) for r, lo, hi in zip(long.risk, long.ci_low, long.ci_high,
                                                                     strict=True)])
    models = list(dict.fromkeys(long["model"]))
    display = shown.pivot(index=["deployment", "loss"], columns="model", values="value")[models]
    return long, display


# ------------------------------------------------------------------------------------------------
# kr_table3: certified bounds against Monte Carlo
# ------------------------------------------------------------------------------------------------

UNINFORMATIVE = "uninformative (no class change observed)"
# Family-wise level of kr_table3's soundness checks, split by Bonferroni over every comparison of
# the table (each image's bound and each row's mean bound, against the tensor's draws and against
# the certificate's own Monte Carlo): a sound certificate fails the stage with probability <= 1e-3.
CHECK_LEVEL = 1e-3


def _cp_lower(successes: int, trials: int, level: float) -> float:
    """One-sided Clopper-Pearson lower end at ``level`` (the two-sided interval at 1 - 2 level)."""
    return clopper_pearson(int(successes), int(trials), 1.0 - 2.0 * level)[0]


def table3(tensor: Any, certificates: Mapping[tuple[str, str], pd.DataFrame], confidence: float
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (model, certifiable scenario): the mean certified bound over the certified images, the MC
    estimate of the risk tensor on the same images with its Clopper-Pearson interval at
    ``confidence`` (conditional on the images), and the certificate's own Monte Carlo (columns
    ``mc_changes`` / ``mc_draws``: fresh draws of the scenario, many more than the tensor's).

    Soundness: every image's bound and the mean bound are compared with the one-sided CP lower end
    of each source's counts (the pooled count for the mean: see :mod:`nnassure.kri.indicators`) at
    the level :data:`CHECK_LEVEL` / (number of comparisons); a bound below raises
    :class:`CertificateBelowEstimate`. Where neither source observed a class change the lower ends are
    0 and the check proves nothing: the verdict is :data:`UNINFORMATIVE`, not True."""
    tests = sum(2 * (len(frame) + 1) for frame in certificates.values())
    level = CHECK_LEVEL / max(tests, 1)
    rows = []
    for (model, scenario), frame in certificates.items():
        samples = frame["sample"].to_numpy(np.int64)
        clean = tensor["clean_logits"].sel(model=model, sample=list(samples)).values.argmax(-1)
        if not np.array_equal(clean, frame["predicted"].to_numpy()):
            raise InputFileError(f"certificate of {model} under {scenario}: its clean predictions differ from the "
                                 "risk tensor's (model or images changed): run kri_certify again")
        cells = tensor["risk"].sel(loss=LOSS, model=model, scenario=scenario, sample=list(samples)).values
        finite = np.isfinite(cells)
        sources = {"tensor": (np.where(finite, cells, 0).sum(-1).astype(np.int64), finite.sum(-1).astype(np.int64)),
                   "certificate's Monte Carlo": (frame["mc_changes"].to_numpy(np.int64),
                                                 frame["mc_draws"].to_numpy(np.int64))}
        bounds = frame["bound"].to_numpy(np.float64)
        bound = float(bounds.mean())
        problems = []
        for source, (per_k, per_n) in sources.items():
            below = [int(s) for s, b, ks, ns in zip(samples, bounds, per_k, per_n, strict=True)
                     if ks > 0 and b < _cp_lower(ks, ns, level)]
            pooled_low = _cp_lower(int(per_k.sum()), int(per_n.sum()), level)
            if below or bound < pooled_low:
                problems.append(f"{source}: mean bound {bound:.6g} vs pooled lower end {pooled_low:.6g} "
                                f"({int(per_k.sum())} of {int(per_n.sum())}), samples below their own: "
                                f"{below or 'none'}")
        if problems:
            raise CertificateBelowEstimate(
                f"certified class-change bound of {model} under {scenario} is below its Monte-Carlo interval "
                f"(one-sided CP at level {level:.2g}; " + "; ".join(problems) + "): the certificate is unsound")
        k, n = (int(v.sum()) for v in sources["tensor"])
        mc_k, mc_n = (int(v.sum()) for v in sources["certificate's Monte Carlo"])
        low, high = clopper_pearson(k, n, confidence)
        mc_low, mc_high = clopper_pearson(mc_k, mc_n, confidence)
        informative = k + mc_k > 0
        rows.append({"model": model, "scenario": scenario, "samples": len(samples), "draws": n,
                     "certified_bound": bound, "mc_estimate": k / n, "cp_low": low, "cp_high": high,
                     "mc_changes": mc_k, "mc_draws": mc_n, "mc_rate": mc_k / mc_n, "mc_cp_low": mc_low,
                     "mc_cp_high": mc_high, "images_with_change": int(((sources["tensor"][0]
                                                                        + sources["certificate's Monte Carlo"][0])
                                                                       > 0).sum()),
                     "informative": bool(informative),
                     "bound_at_least_cp_low": "True" if informative else UNINFORMATIVE,
                     "certificate": ", ".join(sorted(set(frame["certificate"]))),
                     "bound_below_1": int((frame["bound"] < 1).sum()), "crown_seconds": float(frame["seconds"].sum()),
                     "mc_seconds": float(frame["mc_seconds"].sum()) if "mc_seconds" in frame else float("nan")})
    columns = ["model", "scenario", "samples", "draws", "certified_bound", "mc_estimate", "cp_low", "cp_high",
               "mc_changes", "mc_draws", "mc_rate", "mc_cp_low", "mc_cp_high", "images_with_change", "informative",
               "bound_at_least_cp_low", "certificate", "bound_below_1", "crown_seconds", "mc_seconds"]
    long = pd.DataFrame(rows, columns=columns)
    if long.empty:
        return long, pd.DataFrame({"note": ["no certifiable scenario (gaussian, uniform) configured"]})
    display = long.assign(**{
        "MC estimate [CP]": [_ci(e, lo, hi) for e, lo, hi in zip(long.mc_estimate, long.cp_low, long.cp_high,
                                                                 strict=True)],
        "certificate's MC [CP]": [f"{k} / {n}: " + _ci(k / n, lo, hi) for k, n, lo, hi in
                                  zip(long.mc_changes, long.mc_draws, long.mc_cp_low, long.mc_cp_high, strict=True)]})
    display = display.set_index(["model", "scenario"])[["samples", "certified_bound", "MC estimate [CP]",
                                                        "certificate's MC [CP]", "images_with_change",
                                                        "bound_at_least_cp_low", "bound_below_1"]]
    display.columns = ["images", "certified bound", "MC estimate [CP]", "certificate's MC (changes / draws) [CP]",
                       "images with a class change", "bound >= CP lower end", "images bound < 1"]
    return long, display


def certificate_findings(long3: pd.DataFrame) -> list[Finding]:
    """What kr_table3's soundness check showed: how many rows it could test at all."""
    claim = ("Every certified class-change bound is at least the Monte-Carlo lower end of its image and of its "
             "row (kr_table3), on rows where a class change was observed")
    if long3.empty:
        return [sanity(claim, None, "no certifiable scenario configured")]
    informative = int(long3["informative"].sum())
    if informative == 0:
        return [sanity(claim, None, f"informative in 0 of {len(long3)} rows: no class change observed in "
                                     f"{int(long3['draws'].sum() + long3['mc_draws'].sum())} draws, so every lower "
                                     "end is 0 and any bound passes")]
    # a bound below its interval raises before the report is written, so a row shown here passed
    rows = ", ".join(f"{m} / {s}" for m, s, i in zip(long3.model, long3.scenario, long3.informative, strict=True)
                     if i)
    return [sanity(claim, True, f"informative in {informative} of {len(long3)} rows ({rows}); the others saw no "
                                 "class change in their draws")]


# ------------------------------------------------------------------------------------------------
# Attacks that left samples unperturbed (gradient masking)
# ------------------------------------------------------------------------------------------------

UNPERTURBED_TOLERANCE = 0.05  # "nearly every sample": at most this share left at norm 0


def unperturbed_frame(tensor: Any, models: Sequence[str]) -> pd.DataFrame:
    """Per (model, attack): the share of samples whose adversarial perturbation has norm exactly 0
    (``perturbation_norm_adv``): the attack changed nothing there, so its KRI measured nothing."""
    columns = ["model", "attack", "kind", "samples", "unperturbed", "share"]
    if "perturbation_norm_adv" not in tensor or not tensor.sizes.get("attack", 0):
        return pd.DataFrame(columns=columns)
    norms = tensor["perturbation_norm_adv"].sel(model=list(models)).transpose("model", "attack", "sample").values
    rows = []
    for i, model in enumerate(models):
        for j, (attack, kind) in enumerate(zip(tensor["attack"].values, tensor["attack_kind"].values, strict=True)):
            zero = int((norms[i, j] == 0).sum())
            rows.append({"model": str(model), "attack": str(attack), "kind": str(kind), "samples": norms.shape[-1],
                         "unperturbed": zero, "share": zero / norms.shape[-1]})
    return pd.DataFrame(rows, columns=columns)


def unperturbed_findings(frame: pd.DataFrame) -> list[Finding]:
    claim = (f"Every attack perturbed (nearly) every sample of every model (at most {UNPERTURBED_TOLERANCE:.0%} "
             "left at perturbation norm 0), so a low adversarial KRI is robustness, not a silent attack")
    if frame.empty:
        return [Finding(claim, None, "the tensor has no attack (or no perturbation_norm_adv)")]
    bad = frame[frame.share > UNPERTURBED_TOLERANCE]
    if bad.empty:
        return [Finding(claim, True, f"largest share unperturbed {frame.share.max():.1%} "
                                     f"({len(frame)} model-attack pairs)")]
    parts = []
    for _, row in bad.iterrows():
        why = ("gradient masking: the loss gradient is zero there (e.g. a saturated softmax), so the gradient "
               "attack does not move" if row["kind"] in ("fgsm", "pgd") else "the attack returned the clean image")
        parts.append(f"{row['model']} {row['attack']}: {row['unperturbed']} of {row['samples']} unperturbed ({why})")
    return [Finding(claim, False, "; ".join(parts) + "; these KRIs are low because nothing was attacked")]


def unperturbed_section(frame: pd.DataFrame) -> str:
    if frame.empty:
        return ""
    table = frame.pivot(index="model", columns="attack", values="share")
    table = table.reindex(index=list(dict.fromkeys(frame.model)), columns=list(dict.fromkeys(frame.attack)))
    return ("Share of samples each attack left unperturbed (perturbation norm 0; the attack's KRI measured "
            "nothing there):\n\n" + table.map(lambda v: f"{v:.1%}").to_markdown())


# ------------------------------------------------------------------------------------------------
# Comparison pairs
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pair:
    treated: str  # the model with the measure
    baseline: str  # the model without it


def _norm(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _norm(v)) for k, v in value.items()))
    return value


def _fields(variant: Mapping[str, Any], keep: Sequence[str]) -> tuple:
    return tuple((m, _norm(variant.get(m))) for m in MEASURES if m in keep)


def _set(variant: Mapping[str, Any], measures: Sequence[str]) -> int:
    return sum(1 for m in measures if variant.get(m) not in (None, False))


def pairs(models: Sequence[str], variants: Mapping[str, Mapping[str, Any]], measures: Sequence[str]) -> list[Pair]:
    """(treated, baseline) pairs of configured models that differ only in ``measures``, the treated
    one having more of them set; the baseline is the candidate with the fewest set."""
    others = [m for m in MEASURES if m not in measures]
    found = []
    for treated in models:
        t = variants[treated]
        candidates = [b for b in models if b != treated and _fields(variants[b], others) == _fields(t, others)
                      and _fields(variants[b], measures) != _fields(t, measures)
                      and _set(variants[b], measures) < _set(t, measures)]
        if candidates:
            baseline = min(candidates, key=lambda b: (_set(variants[b], measures), list(models).index(b)))
            found.append(Pair(treated, baseline))
    return found


@dataclass(frozen=True)
class Difference:
    """baseline - treated KRI (a drop when positive) with its paired bootstrap CI."""

    family: str
    baseline: float
    treated: float
    drop: float
    low: float
    high: float


def family_differences(reps: Replicates, pair: Pair) -> dict[str, Difference]:
    comps = reps.comps
    li = comps.losses.index(LOSS)
    bi, ti = comps.models.index(pair.baseline), comps.models.index(pair.treated)
    tail = (1.0 - reps.confidence) / 2.0
    result = {}
    for family in comps.family_names:
        alpha = comps.weights("family", family)
        est = np.einsum("mk,k->m", reps.estimate[li], alpha)
        rep = np.einsum("mkb,k->mb", reps.replicates[li], alpha)
        diff = rep[bi] - rep[ti]
        low, high = np.quantile(diff, [tail, 1 - tail])
        result[family] = Difference(family, float(est[bi]), float(est[ti]), float(est[bi] - est[ti]), float(low),
                                    float(high))
    return result


def _pairs_figure(reps: Replicates, found: list[Pair], title: str, none_text: str) -> plt.Figure:
    kris = kri_frame(reps)
    kris = kris[(kris.loss == LOSS) & (kris.level == "family")]
    families = list(reps.comps.family_names)
    if not found:
        fig, ax = plt.subplots(figsize=(6, 2.5))
        ax.axis("off")
        ax.text(0.5, 0.5, none_text, ha="center", va="center", wrap=True)
        ax.set_title(title)
        return fig
    fig, axes = plt.subplots(1, len(found), figsize=(4.5 * len(found), 3.6), squeeze=False, sharey=True)
    width = 0.38
    for ax, pair in zip(axes[0], found, strict=True):
        for offset, model in ((-width / 2, pair.baseline), (width / 2, pair.treated)):
            part = kris[kris.model == model].set_index("name").loc[families]
            err = np.vstack([part.kri - part.ci_low, part.ci_high - part.kri])
            ax.bar(np.arange(len(families)) + offset, part.kri, width, yerr=err, capsize=3, label=model)
        ax.set_xticks(np.arange(len(families)), [f.replace("_", " ") for f in families], rotation=20)
        ax.set_title(f"{pair.treated} vs {pair.baseline}", fontsize=9)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("class-change KRI")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _differences_table(found: list[Pair], diffs: Mapping[Pair, Mapping[str, Difference]]) -> str:
    rows = [{"treated": p.treated, "baseline": p.baseline, "family": d.family, "baseline KRI": _fmt(d.baseline),
             "treated KRI": _fmt(d.treated), "drop [paired CI]": _ci(d.drop, d.low, d.high)}
            for p in found for d in diffs[p].values()]
    return pd.DataFrame(rows).to_markdown(index=False) if rows else ""


def _paper_finding(figure: str) -> str:
    from nnassure.report.paper_numbers import paper_table

    table = paper_table(PAPER, "findings").set_index("figure")
    return str(table.loc[figure, "finding"]) if figure in table.index else ""


def _compare(figure_id: str, reproduces: str, figure: str, body: str, findings: list[Finding]) -> str:
    paper = _paper_finding(figure)
    text = f"# {figure_id} — {reproduces}\n\n"
    if paper:
        text += f"The paper: {paper}.\n\n"
    return text + (body + "\n\n" if body else "") + findings_markdown(findings)


# ------------------------------------------------------------------------------------------------
# kr_fig3: augmentation
# ------------------------------------------------------------------------------------------------

def augmentation_findings(reps: Replicates, found: list[Pair], similar_ratio: float
                          ) -> tuple[list[Finding], dict[Pair, dict[str, Difference]]]:
    claim = ("Augmentation lowers random-noise and adversarial risk by similar amounts (Fig. 3): both drops "
             f"positive, larger / smaller <= {similar_ratio:g}")
    diffs = {p: family_differences(reps, p) for p in found}
    families = set(reps.comps.family_names)
    if not found:
        return [Finding(claim, None, "no pair of configured models differs only in augmentation (standard_augment, "
                                     "noise_sigma, adversarial)")], diffs
    if not {"random_noise", "adversarial"} <= families:
        return [Finding(claim, None, f"the tensor lacks a family: it has {', '.join(sorted(families))}")], diffs
    findings = []
    verdicts = []
    for p in found:
        r, a = diffs[p]["random_noise"].drop, diffs[p]["adversarial"].drop
        holds = r > 0 and a > 0 and max(r, a) / min(r, a) <= similar_ratio
        verdicts.append(holds)
        findings.append(Finding(f"{claim}: {p.treated} against {p.baseline}", holds,
                                f"random-noise drop {r:.4f}, adversarial drop {a:.4f}"
                                + (f", ratio {max(r, a) / min(r, a):.2f}" if r > 0 and a > 0 else "")))
    findings.insert(0, Finding(claim + ", for every augmented model", all(verdicts),
                               f"holds for {sum(verdicts)} of {len(verdicts)} pairs"))
    return findings, diffs


def fig3(reps: Replicates, found: list[Pair]) -> plt.Figure:
    return _pairs_figure(reps, found, "Effect of augmentation per noise family (class change)",
                         "No pair of configured models differs only in augmentation\n"
                         "(standard_augment, noise_sigma, adversarial)")


def fig3_compare(reps: Replicates, found: list[Pair], similar_ratio: float) -> str:
    findings, diffs = augmentation_findings(reps, found, similar_ratio)
    body = _differences_table(found, diffs) or ("No pair of configured models differs only in augmentation "
                                                "measures: nothing to compare.")
    return _compare("kr_fig3", "Fig. 3 (Sec. 5)", "fig3", body, findings)


# ------------------------------------------------------------------------------------------------
# kr_fig4: the loss
# ------------------------------------------------------------------------------------------------

def loss_findings(reps: Replicates, found: list[Pair], unchanged: float
                  ) -> tuple[list[Finding], dict[Pair, dict[str, Difference]]]:
    claim = ("A robustifying loss (guided complement entropy) lowers adversarial risk only (Fig. 4): the "
             f"adversarial drop's paired CI excludes 0, every other family changes by less than {unchanged:g}")
    diffs = {p: family_differences(reps, p) for p in found}
    if not found:
        return [Finding(claim, None, "no pair of configured models differs only in gce_alpha")], diffs
    if "adversarial" not in reps.comps.family_names:
        return [Finding(claim, None, "the tensor has no adversarial family")], diffs
    findings, verdicts = [], []
    for p in found:
        adv = diffs[p]["adversarial"]
        others = {f: d.drop for f, d in diffs[p].items() if f != "adversarial"}
        holds = adv.low > 0 and all(abs(v) < unchanged for v in others.values())
        verdicts.append(holds)
        findings.append(Finding(f"{claim}: {p.treated} against {p.baseline}", holds,
                                f"adversarial drop {_ci(adv.drop, adv.low, adv.high)}; other families: "
                                + (", ".join(f"{f} {v:+.4f}" for f, v in others.items()) or "none")))
    findings.insert(0, Finding(claim + ", for every such pair", all(verdicts),
                               f"holds for {sum(verdicts)} of {len(verdicts)} pairs"))
    return findings, diffs


def fig4(reps: Replicates, found: list[Pair]) -> plt.Figure:
    return _pairs_figure(reps, found, "Effect of the loss per noise family (class change)",
                         "No pair of configured models differs only in the loss (gce_alpha)")


def fig4_compare(reps: Replicates, found: list[Pair], unchanged: float) -> str:
    findings, diffs = loss_findings(reps, found, unchanged)
    body = _differences_table(found, diffs) or ("No pair of configured models differs only in gce_alpha: nothing "
                                                "to compare.")
    return _compare("kr_fig4", "Fig. 4 (Sec. 5)", "fig4", body, findings)


# ------------------------------------------------------------------------------------------------
# kr_fig2: brightness; kr_fig5: final risk
# ------------------------------------------------------------------------------------------------

def _bars(frame: pd.DataFrame, title: str, ylabel: str, none_text: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * max(len(frame), 1) + 2), 3.6))
    if frame.empty:
        ax.axis("off")
        ax.text(0.5, 0.5, none_text, ha="center", va="center")
    else:
        err = np.vstack([frame.kri - frame.ci_low, frame.ci_high - frame.kri])
        ax.bar(np.arange(len(frame)), frame.kri, yerr=err, capsize=3,
               color=["C0" if lv != "component" else "C1" for lv in frame.get("level", ["final"] * len(frame))])
        ax.set_xticks(np.arange(len(frame)), frame.label, rotation=45, ha="right")
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def brightness_frame(kris: pd.DataFrame, comps_kinds: Mapping[str, str]) -> pd.DataFrame:
    names = [n for n, k in comps_kinds.items() if k == "brightness"]
    part = kris[(kris.loss == LOSS) & (kris.level == "component") & kris.name.isin(names)].copy()
    part["label"] = [m if len(names) == 1 else f"{m} / {n}" for m, n in zip(part.model, part.name, strict=True)]
    return part


def _ranking_findings(part: pd.DataFrame, what: str, figure: str) -> list[Finding]:
    ranked = part.sort_values("kri")
    best = ranked.iloc[0]
    findings = []
    if len(ranked) > 1:
        nxt = ranked.iloc[1]
        findings.append(Finding(
            f"{best['label']} has the least {what} ({figure}), and its CI separates it from the next model",
            bool(best.ci_high < nxt.ci_low),
            f"{best['label']} {_ci(best.kri, best.ci_low, best.ci_high)}; next {nxt['label']} "
            f"{_ci(nxt.kri, nxt.ci_low, nxt.ci_high)}"))
    else:
        findings.append(Finding(f"A model of least {what} can be chosen ({figure})", None, "only one model"))
    findings.append(sanity(f"Every bootstrap CI of the {what} contains its estimate",
                           bool(((part.ci_low <= part.kri + 1e-12) & (part.kri <= part.ci_high + 1e-12)).all()),
                           f"{len(part)} intervals"))
    return findings


def fig2(part: pd.DataFrame) -> plt.Figure:
    return _bars(part, "Class-change risk under brightness perturbations", "class-change KRI",
                 "No brightness component configured")


def fig2_compare(part: pd.DataFrame) -> str:
    if part.empty:
        findings = [Finding("The brightness KRI ranks the models (Fig. 2)", None, "no brightness component")]
        body = "No scenario of kind brightness is configured."
    else:
        ranked = part.sort_values("kri")
        body = "Ranking, least risk first:\n\n" + pd.DataFrame(
            {"model": ranked.label, "brightness KRI [CI]": [_ci(k, lo, hi) for k, lo, hi in
                                                           zip(ranked.kri, ranked.ci_low, ranked.ci_high, strict=True)]}
        ).to_markdown(index=False)
        findings = _ranking_findings(part, "brightness class-change risk", "Fig. 2")
    return _compare("kr_fig2", "Fig. 2 (Sec. 5)", "fig2", body, findings)


def final_frame(kris: pd.DataFrame) -> pd.DataFrame:
    part = kris[(kris.loss == LOSS) & (kris.level == "final")].copy()
    part["label"] = part.model
    return part


def fig5(part: pd.DataFrame) -> plt.Figure:
    return _bars(part, "Final risk (mean of the family KRIs, class change)", "final risk", "no model")


def fig5_compare(part: pd.DataFrame, kris: pd.DataFrame, unperturbed: pd.DataFrame | None = None,
                 long3: pd.DataFrame | None = None) -> str:
    """Fig. 5's ranking and findings, with the checks behind the numbers: the share of samples each
    attack left unperturbed (``unperturbed``, :func:`unperturbed_frame`) and how many of
    kr_table3's rows could test their certificate (``long3``, :func:`table3`)."""
    ranked = part.sort_values("kri")
    body = "Ranking, least risk first:\n\n" + pd.DataFrame(
        {"model": ranked.label, "final risk [CI]": [_ci(k, lo, hi) for k, lo, hi in
                                                   zip(ranked.kri, ranked.ci_low, ranked.ci_high, strict=True)]}
    ).to_markdown(index=False)
    findings = _ranking_findings(part, "final risk", "Fig. 5")
    if unperturbed is not None:
        section = unperturbed_section(unperturbed)
        body += ("\n\n" + section) if section else ""
        findings += unperturbed_findings(unperturbed)
    if long3 is not None:
        findings += certificate_findings(long3)
    families = kris[(kris.loss == LOSS) & (kris.level == "family")].groupby("model")["kri"].mean()
    gap = float(np.max(np.abs(families.loc[part.model].to_numpy() - part.kri.to_numpy())))
    findings.append(sanity("The final risk is the mean of the model's family KRIs (Eq. 2)", gap < 1e-12,
                           f"largest difference {gap:.2e}"))
    return _compare("kr_fig5", "Fig. 5 (Sec. 5)", "fig5", body, findings)
