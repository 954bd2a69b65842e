"""The KRI family's report (nnassure.report.kri, stage report_kri): findings that hold and that do
not hold on constructed tensors, every catalog file written from a synthetic store, and a
certified bound below its Monte-Carlo interval ending the stage in one line (exit 2, nothing written)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from nnassure.config import compose
from nnassure.errors import InputFileError
from nnassure.io import write_parquet
from nnassure.kri.indicators import components, kri_frame, replicates
from nnassure.kri.model import KriCNN, KriCNNSpec, save_kri_model
from nnassure.paths import ExperimentPaths
from nnassure.report import kri as report
from nnassure.report.catalog import family_files
from nnassure.stages import report_kri

SCENARIOS = {"brightness": ("sensor", "brightness"), "gaussian": ("random_noise", "gaussian"),
             "fog": ("weather", "fog")}
ATTACKS = {"fgsm": ("adversarial", "fgsm")}
LOSSES = ("class_change", "misclassification", "severity")


def build_tensor(rates: dict[str, dict[str, float]], samples: int = 40, draws: int = 4, classes: int = 3,
                 seed: int = 0) -> xr.Dataset:
    """A full risk tensor (the brief's format) whose class-change cells are Bernoulli(rate[model][component])."""
    rng = np.random.default_rng(seed)
    models = list(rates)
    risk = np.zeros((len(LOSSES), len(models), len(SCENARIOS), samples, draws))
    adv = np.zeros((len(LOSSES), len(models), len(ATTACKS), samples))
    for j, m in enumerate(models):
        for k, s in enumerate(SCENARIOS):
            risk[:, j, k] = (rng.random((samples, draws)) < rates[m][s])[None]
        for k, a in enumerate(ATTACKS):
            adv[:, j, k] = (rng.random(samples) < rates[m][a])[None]
    clean = rng.normal(size=(len(models), samples, classes)).astype(np.float32)
    return xr.Dataset(
        {"risk": (("loss", "model", "scenario", "sample", "draw"), risk),
         "risk_adv": (("loss", "model", "attack", "sample"), adv),
         "logits": (("model", "scenario", "sample", "draw", "class"),
                    np.zeros((len(models), len(SCENARIOS), samples, draws, classes), np.float32)),
         "logits_adv": (("model", "attack", "sample", "class"),
                        np.zeros((len(models), len(ATTACKS), samples, classes), np.float32)),
         "clean_logits": (("model", "sample", "class"), clean),
         "label": (("sample",), np.arange(samples) % classes),
         "severity_cost": (("true_class", "predicted_class"), 1.0 - np.eye(classes))},
        coords={"loss": list(LOSSES), "model": models, "scenario": list(SCENARIOS),
                "scenario_family": ("scenario", [f for f, _ in SCENARIOS.values()]),
                "scenario_kind": ("scenario", [k for _, k in SCENARIOS.values()]),
                "scenario_draws": ("scenario", [draws] * len(SCENARIOS)),
                "attack": list(ATTACKS), "attack_family": ("attack", [f for f, _ in ATTACKS.values()]),
                "attack_kind": ("attack", [k for _, k in ATTACKS.values()]),
                "sample": np.arange(samples), "draw": np.arange(draws), "class": [f"c{i}" for i in range(classes)],
                "true_class": [f"c{i}" for i in range(classes)], "predicted_class": [f"c{i}" for i in range(classes)]},
        attrs={"format": "nnassure-kri-tensor-1", "seed": 0, "samples": samples})


def rates(base: float, **changes: float) -> dict[str, float]:
    out = {"brightness": base, "gaussian": base, "fog": base, "fgsm": base}
    out.update(changes)
    return out


def reps_of(tensor: xr.Dataset):
    return replicates(components(tensor), 300, 0.95, seed=0)


VARIANTS = {"NNet": {"description": "baseline"},
            "Gauss09": {"description": "noise", "noise_sigma": 0.09},
            "GCE": {"description": "gce", "gce_alpha": 0.2},
            "NNetLarge": {"description": "large", "capacity": "large"}}


def test_pairs_found_from_the_variant_configs():
    models = list(VARIANTS)
    assert report.pairs(models, VARIANTS, report.AUGMENTATION) == [report.Pair("Gauss09", "NNet")]
    assert report.pairs(models, VARIANTS, report.LOSS_MEASURES) == [report.Pair("GCE", "NNet")]
    assert report.pairs(["NNetLarge", "GCE"], VARIANTS, report.LOSS_MEASURES) == []


def test_augmentation_finding_holds_and_does_not_hold():
    pair = [report.Pair("Gauss09", "NNet")]
    similar = build_tensor({"NNet": rates(0.5), "Gauss09": rates(0.5, gaussian=0.3, fgsm=0.25)}, samples=200)
    findings, _ = report.augmentation_findings(reps_of(similar), pair, 3.0)
    assert findings[0].verdict == "holds", findings
    only_random = build_tensor({"NNet": rates(0.5), "Gauss09": rates(0.5, gaussian=0.1, fgsm=0.48)}, samples=200)
    findings, _ = report.augmentation_findings(reps_of(only_random), pair, 3.0)
    assert findings[0].verdict == "does not hold", findings
    none, _ = report.augmentation_findings(reps_of(similar), [], 3.0)
    assert none[0].verdict == "not observable"


def test_loss_finding_holds_and_does_not_hold():
    pair = [report.Pair("GCE", "NNet")]
    same = build_tensor({"NNet": rates(0.4, fgsm=0.7), "GCE": rates(0.4, fgsm=0.3)}, samples=300, seed=1)
    findings, _ = report.loss_findings(reps_of(same), pair, 0.05)
    assert findings[0].verdict == "holds", findings
    everything = build_tensor({"NNet": rates(0.4, fgsm=0.7), "GCE": rates(0.2, fgsm=0.3)}, samples=300, seed=1)
    findings, _ = report.loss_findings(reps_of(everything), pair, 0.05)
    assert findings[0].verdict == "does not hold", findings
    nothing = build_tensor({"NNet": rates(0.4), "GCE": rates(0.4)}, samples=300, seed=1)
    findings, _ = report.loss_findings(reps_of(nothing), pair, 0.05)
    assert findings[0].verdict == "does not hold", findings


def verdict(text: str, claim: str) -> tuple[str, str]:
    """(kind, verdict) of the findings row whose claim contains ``claim``."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and claim in cells[1]:
            return cells[0], cells[2]
    raise AssertionError(f"no finding {claim!r} in\n{text}")


def test_least_final_risk_separated_or_not():
    separated = build_tensor({"A": rates(0.1), "B": rates(0.6), "C": rates(0.7)}, samples=200)
    kris = kri_frame(reps_of(separated))
    text = report.fig5_compare(report.final_frame(kris), kris)
    assert verdict(text, "A has the least final risk") == ("finding", "holds")
    close = build_tensor({"A": rates(0.40), "B": rates(0.41), "C": rates(0.7)}, samples=200)
    kris = kri_frame(reps_of(close))
    text = report.fig5_compare(report.final_frame(kris), kris)
    assert verdict(text, "its CI separates it from the next model")[1] == "does not hold"
    assert verdict(text, "The final risk is the mean of the model's family KRIs") == ("sanity check", "holds")


def test_brightness_ranking():
    tensor = build_tensor({"A": rates(0.5, brightness=0.05), "B": rates(0.5, brightness=0.6)}, samples=200)
    kris = kri_frame(reps_of(tensor))
    kinds = {name: kind for name, (_, kind) in {**SCENARIOS, **ATTACKS}.items()}
    text = report.fig2_compare(report.brightness_frame(kris, kinds))
    assert verdict(text, "A has the least brightness class-change risk") == ("finding", "holds")
    close = build_tensor({"A": rates(0.5, brightness=0.30), "B": rates(0.5, brightness=0.31)}, samples=200)
    kris = kri_frame(reps_of(close))
    text = report.fig2_compare(report.brightness_frame(kris, kinds))
    assert verdict(text, "brightness class-change risk (Fig. 2), and its CI separates")[1] == "does not hold"


def certificate_frame(clean: np.ndarray, bound: float | np.ndarray, mc_changes: int | np.ndarray = 0,
                      mc_draws: int = 2000, scenario: str = "{}", settings: str = "{}",
                      digest: str = "") -> pd.DataFrame:
    """A certificate file's frame (nnassure.kri.certified.COLUMNS) for the images of ``clean``."""
    n = len(clean)
    return pd.DataFrame({"sample": np.arange(n), "predicted": clean, "bound": np.broadcast_to(bound, n).astype(float),
                         "certificate": "gaussian-rigorous", "eps_box": 0.4, "seconds": 0.5,
                         "mc_changes": np.broadcast_to(mc_changes, n).astype(np.int64), "mc_draws": mc_draws,
                         "mc_seed": 2**32, "mc_seconds": 0.1, "scenario_config": scenario,
                         "certify_settings": settings, "model_sha256": digest})


def make_store(root, bound_scale: float = 1.0, mc_rate: float = 0.0):
    """Models, a tensor and certificates for experiment=smoke (models NNet, Gauss09, GCE; 24 samples);
    the certificates' own Monte Carlo saw ``mc_rate`` * 2000 class changes per image."""
    import json

    from nnassure.kri.certified import certify_settings, model_digest
    from nnassure.kri.infer import plain, scenario_json

    cfg = compose(["experiment=smoke", f"results_dir={root}", "tracking=disabled"])
    paths = ExperimentPaths.from_config(cfg)
    models = list(cfg.kri.models)
    torch.manual_seed(0)
    for m in models:
        save_kri_model(KriCNN(KriCNNSpec(16, (4,), 8, 3)), paths.kri_model_stem(m),
                       {"accuracy": {"train": 0.9, "val": 0.8, "test": 0.75}, "seconds": 12.5,
                        "description": str(cfg.kri.variants[m].description), "measures": {}})
    tensor = build_tensor({"NNet": rates(0.5), "Gauss09": rates(0.5, gaussian=0.3, fgsm=0.3),
                           "GCE": rates(0.5, fgsm=0.2)}, samples=int(cfg.kri.samples), draws=int(cfg.kri.draws))
    tensor.attrs["scenario_configs"] = json.dumps({s: json.loads(scenario_json(e)) for s, e in
                                                   cfg.kri.scenarios.items()}, sort_keys=True)
    paths.kri_tensor.parent.mkdir(parents=True, exist_ok=True)
    tensor.to_netcdf(paths.kri_tensor, engine="h5netcdf")
    n = int(cfg.kri.certify.samples)
    for m in models:
        clean = tensor["clean_logits"].sel(model=m).values[:n].argmax(-1)
        frame = certificate_frame(clean, bound_scale, int(mc_rate * 2000), 2000,
                                  scenario_json(cfg.kri.scenarios["gaussian"]),
                                  certify_settings(plain(cfg.kri.certify)), model_digest(paths.kri_model_stem(m)))
        write_parquet(frame, paths.kri_certificate(m, "gaussian"))
    return cfg


def run(root, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report_kri.run_stage("report_kri", report_kri.main,
                             ["experiment=smoke", f"results_dir={root}", "tracking=disabled"])
        raise SystemExit(0)
    return exit_info.value.code, capsys.readouterr().err


def test_stage_writes_every_catalog_file(tmp_path, capsys):
    cfg = make_store(tmp_path)
    code, err = run(tmp_path, capsys)
    assert code == 0, err
    files = family_files(cfg, "kri")
    assert files and all(f.exists() for f in files), [str(f) for f in files if not f.exists()]
    table3 = pd.read_csv(ExperimentPaths.from_config(cfg).tables / "kr_table3.csv")
    # the tensor's gaussian draws change class (rate 0.3-0.5), so every row tests its bound
    assert (table3["bound_at_least_cp_low"].astype(str) == "True").all() and len(table3) == 3
    fig3 = (ExperimentPaths.from_config(cfg).tables / "kr_fig3.compare.md").read_text()
    assert "Gauss09 against NNet" in fig3
    table1 = (ExperimentPaths.from_config(cfg).tables / "kr_table1.compare.md").read_text()
    # smoke trains 3 models, but its config defines the paper's 20 variants
    assert verdict(table1, "Every model of the paper's Table 1 is a variant of our zoo")[1] == "holds"
    fig4 = (ExperimentPaths.from_config(cfg).tables / "kr_fig4.compare.md").read_text()
    assert verdict(fig4, "GCE against NNet")[0] == "finding"


def test_certificate_below_the_interval_fails_in_one_line(tmp_path, capsys):
    cfg = make_store(tmp_path, bound_scale=0.01)
    code, err = run(tmp_path, capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "below its Monte-Carlo interval" in lines[0], err
    assert not any(f.exists() for f in family_files(cfg, "kri"))


def test_table3_catches_one_image_below_its_own_interval():
    tensor = build_tensor({"A": rates(0.5, gaussian=0.0)}, samples=8, draws=40)
    risk = tensor["risk"].values.copy()
    risk[:, 0, 1, 3, :] = 1.0  # image 3 changes class under every draw
    tensor["risk"] = (tensor["risk"].dims, risk)
    clean = tensor["clean_logits"].sel(model="A").values.argmax(-1)
    frame = certificate_frame(clean, 0.5)
    frame.loc[3, "bound"] = 1.0
    long, _ = report.table3(tensor, {("A", "gaussian"): frame}, 0.95)
    assert long["bound_at_least_cp_low"].iloc[0] == "True" and long["mc_estimate"].iloc[0] == pytest.approx(1 / 8)
    frame.loc[3, "bound"] = 0.0  # the mean (0.4375) stays above the pooled CP lower end, image 3 does not
    with pytest.raises(report.CertificateBelowEstimate, match=r"tensor: .*samples below their own: \[3\]"):
        report.table3(tensor, {("A", "gaussian"): frame}, 0.95)
    frame.loc[3, "bound"] = 1.0
    frame.loc[0, "predicted"] = (clean[0] + 1) % 3
    with pytest.raises(InputFileError, match="clean predictions differ"):
        report.table3(tensor, {("A", "gaussian"): frame}, 0.95)


def test_missing_pairs_are_said_not_errors():
    tensor = build_tensor({"A": rates(0.3), "B": rates(0.4)})
    text = report.fig3_compare(reps_of(tensor), [], 3.0)
    assert "No pair of configured models differs only in augmentation" in text
    assert verdict(text, "Augmentation lowers")[1] == "not observable"
    text = report.fig4_compare(reps_of(tensor), [], 0.05)
    assert verdict(text, "A robustifying loss")[1] == "not observable"
    report.fig4(reps_of(tensor), [])  # a figure saying so, not an error


def test_corrupt_certificate_file_fails_in_one_line(tmp_path, capsys):
    cfg = make_store(tmp_path)
    path = ExperimentPaths.from_config(cfg).kri_certificate("GCE", "gaussian")
    path.write_bytes(b"PAR1 half-written")
    code, err = run(tmp_path, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and str(path) in lines[0], err
    assert not any(f.exists() for f in family_files(cfg, "kri"))


def test_table3_checks_bounds_against_the_certificates_own_monte_carlo():
    """The tensor saw no class change (its lower end is 0 and any bound passes it); the certificate's
    2000 fresh draws per image did, so a bound scaled down by 10 is caught, and a row where neither
    saw a change is labelled uninformative instead of True."""
    tensor = build_tensor({"A": rates(0.5, gaussian=0.0), "B": rates(0.5, gaussian=0.0)}, samples=10, draws=8)
    clean_a, clean_b = (tensor["clean_logits"].sel(model=m).values.argmax(-1) for m in ("A", "B"))
    changes = np.array([600, 0, 0, 300, 0, 0, 0, 0, 0, 10])  # hot images near the boundary
    sound = changes / 2000 * 1.5 + 0.01
    quiet = certificate_frame(clean_b, 0.0)  # a bound 0 with nothing observed: nothing can refute it
    long, display = report.table3(tensor, {("A", "gaussian"): certificate_frame(clean_a, sound, changes),
                                           ("B", "gaussian"): quiet}, 0.95)
    assert list(long["bound_at_least_cp_low"]) == ["True", report.UNINFORMATIVE]
    assert list(long["informative"]) == [True, False] and list(long["images_with_change"]) == [3, 0]
    assert long["mc_changes"].iloc[0] == changes.sum() and long["mc_draws"].iloc[0] == 20000
    assert "uninformative (no class change observed)" in display.to_markdown()
    (finding,) = report.certificate_findings(long)
    assert finding.verdict == "holds" and "informative in 1 of 2 rows (A / gaussian)" in finding.evidence
    (finding,) = report.certificate_findings(long[~long.informative])
    assert finding.verdict == "not observable" and "informative in 0 of 1 rows" in finding.evidence
    with pytest.raises(report.CertificateBelowEstimate, match=r"certificate's Monte Carlo.*samples below their own: "
                                                              r"\[0, 3\]"):
        report.table3(tensor, {("A", "gaussian"): certificate_frame(clean_a, sound / 10, changes)}, 0.95)
    # the mean alone: each image's bound just above its own lower end (at the table's Bonferroni level,
    # 1e-3 over 2 * 11 comparisons), which pooling over the images narrows below the mean of those ends
    level = report.CHECK_LEVEL / 22
    own = np.array([report._cp_lower(int(c), 2000, level) for c in changes]) + 1e-6
    pooled = report._cp_lower(int(changes.sum()), 20000, level)
    assert own.mean() < pooled
    with pytest.raises(report.CertificateBelowEstimate, match=r"pooled lower end.*samples below their own: none"):
        report.table3(tensor, {("A", "gaussian"): certificate_frame(clean_a, own, changes)}, 0.95)


def test_vacuous_table3_of_the_review_is_no_longer_true():
    """The reviewer's repro: every bound set to 0 where no class change was observed in 160 draws
    used to print True; now the row says it is uninformative and no finding claims it holds."""
    tensor = build_tensor({"A": rates(0.5, gaussian=0.0)}, samples=20, draws=8)
    clean = tensor["clean_logits"].sel(model="A").values.argmax(-1)
    long, _ = report.table3(tensor, {("A", "gaussian"): certificate_frame(clean, 0.0)}, 0.95)
    assert long["bound_at_least_cp_low"].iloc[0] == report.UNINFORMATIVE
    assert report.certificate_findings(long)[0].verdict == "not observable"


def test_unperturbed_attacks_are_reported_as_gradient_masking():
    tensor = build_tensor({"A": rates(0.3), "B": rates(0.05)}, samples=40)
    norms = np.full((2, 1, 40), 0.03)
    tensor["perturbation_norm_adv"] = (("model", "attack", "sample"), norms)
    frame = report.unperturbed_frame(tensor, ["A", "B"])
    (finding,) = report.unperturbed_findings(frame)
    assert finding.verdict == "holds" and list(frame.share) == [0.0, 0.0]
    norms[1, 0, :38] = 0.0  # B's FGSM moved 2 of 40 samples: a saturated softmax, zero gradient
    tensor["perturbation_norm_adv"] = (("model", "attack", "sample"), norms)
    frame = report.unperturbed_frame(tensor, ["A", "B"])
    (finding,) = report.unperturbed_findings(frame)
    assert finding.verdict == "does not hold"
    assert "B fgsm: 38 of 40 unperturbed" in finding.evidence and "gradient masking" in finding.evidence
    kris = kri_frame(reps_of(tensor))
    text = report.fig5_compare(report.final_frame(kris), kris, frame)
    assert verdict(text, "Every attack perturbed (nearly) every sample")[1] == "does not hold"
    assert "95.0%" in text  # the share table


def test_stage_reports_unperturbed_share_and_informative_rows(tmp_path, capsys):
    cfg = make_store(tmp_path, bound_scale=0.9, mc_rate=0.2)
    code, err = run(tmp_path, capsys)
    assert code == 0, err
    text = (ExperimentPaths.from_config(cfg).tables / "kr_fig5.compare.md").read_text()
    assert verdict(text, "Every certified class-change bound")[1] == "holds"
    assert "informative in 3 of 3 rows" in text
    assert "Every attack perturbed (nearly) every sample" in text


def test_certificate_below_its_own_monte_carlo_fails_the_stage(tmp_path, capsys):
    cfg = make_store(tmp_path, bound_scale=0.05, mc_rate=0.5)  # the tensor's gaussian rate 0.3-0.5 too
    code, err = run(tmp_path, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "below its Monte-Carlo interval" in lines[0], err
    assert not any(f.exists() for f in family_files(cfg, "kri"))


@pytest.mark.parametrize(("override", "where", "what"), [
    ("kri.certify.box_sigmas=[3.0]", "certify/NNet/gaussian.parquet", "box_sigmas"),
    ("kri.certify.mc_draws=500", "certify/NNet/gaussian.parquet", "mc_draws"),
    ("kri.scenarios.gaussian.params.sigma=0.01", "tensor", "sigma"),
])
def test_stale_tensor_or_certificate_is_refused_in_one_line(tmp_path, capsys, override, where, what):
    cfg = make_store(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        report_kri.run_stage("report_kri", report_kri.main,
                             ["experiment=smoke", f"results_dir={tmp_path}", "tracking=disabled", override])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert exit_info.value.code == 2 and len(lines) == 1, err
    assert where in lines[0] and what in lines[0], lines[0]
    assert not any(f.exists() for f in family_files(cfg, "kri"))


def test_stale_scenario_entry_of_a_certificate_is_refused(tmp_path, capsys):
    """The tensor was merged again for a new sigma, the certificate was not."""
    import json

    from nnassure.kri.infer import scenario_json

    cfg = make_store(tmp_path)
    paths = ExperimentPaths.from_config(cfg)
    path = paths.kri_certificate("GCE", "gaussian")
    frame = pd.read_parquet(path)
    entry = json.loads(scenario_json(cfg.kri.scenarios["gaussian"]))
    entry["params"]["sigma"] = 0.002
    write_parquet(frame.assign(scenario_config=json.dumps(entry, sort_keys=True)), path)
    code, err = run(tmp_path, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and str(path) in lines[0] and "params" in lines[0], err


def test_certificate_of_another_model_file_is_refused(tmp_path, capsys):
    cfg = make_store(tmp_path)
    paths = ExperimentPaths.from_config(cfg)
    torch.manual_seed(1)  # retrained: other weights under the same name
    save_kri_model(KriCNN(KriCNNSpec(16, (4,), 8, 3)), paths.kri_model_stem("Gauss09"),
                   {"accuracy": {"train": 0.9, "val": 0.8, "test": 0.75}, "seconds": 12.5, "description": "x",
                    "measures": {}})
    code, err = run(tmp_path, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and str(paths.kri_certificate("Gauss09", "gaussian")) in lines[0], err
    assert "another model file" in lines[0]


def test_table1_compare_counts_the_configured_zoo_not_only_the_trained_models():
    from nnassure.report.paper_numbers import paper_table

    paper = paper_table(report.PAPER, "table1")
    long = pd.DataFrame([{"variant": "NNet", "what_differs": "-", "description": "baseline", "test_accuracy": 0.9,
                          "training_seconds": 1.25}])
    every = {label: {} for label in paper["label"]}
    text = report.table1_compare(long, paper, every)
    line = text.split("Every model of the paper's Table 1 is a variant of our zoo")[1].split("\n")[0]
    assert "| holds" in line and "20 variants configured, 1 trained" in line
    assert "1.2 s" in text or "1.3 s" in text
    fewer = {k: v for k, v in every.items() if k != "GCELarge"}
    line = report.table1_compare(long, paper, fewer).split("Every model of the paper's Table 1")[1].split("\n")[0]
    assert "does not hold" in line and "missing: GCELarge" in line
