"""Report stage of the KRI family (Schwerdtner et al.): kr_table1..4 and kr_fig2..5 with the
``.compare.md`` files of the catalog, from the model files' metadata, the risk tensor and the
certificate files (:mod:`nnassure.report.kri`, :mod:`nnassure.kri.indicators`).

Everything is read and computed before anything is written: a missing or mismatched input, or a
certified bound below its Monte-Carlo interval (a bug), ends in one line with exit code 2 and no
output file. Stale inputs are refused: the tensor's recorded scenario entries (attrs
``scenario_configs``) must equal the config's, and each certificate's recorded scenario entry,
certify settings and model sha256 the current config's and model file's. The bootstrap is
seeded with ``kri.seed``, the experiment's KRI seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from nnassure.errors import ConfigError, InputFileError
from nnassure.io import write_text
from nnassure.paths import ExperimentPaths
from nnassure.report.catalog import family_files
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run

CERTIFICATE_COLUMNS = ("sample", "predicted", "bound", "certificate", "eps_box", "seconds", "mc_changes", "mc_draws",
                       "scenario_config", "certify_settings", "model_sha256")


def kri_outputs(cfg: DictConfig) -> list[Path]:
    """Every file this stage writes (the Snakefile's targets; ids and captions in report.catalog)."""
    return family_files(cfg, "kri")


def read_certificate(path: Path, samples: int) -> pd.DataFrame:
    if not path.exists():
        raise InputFileError(f"{path}: certificate file not found (run kri_certify)")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a truncated or foreign file
        raise InputFileError(f"{path}: not a readable Parquet file ({type(exc).__name__}): run kri_certify again") \
            from None
    missing = [c for c in CERTIFICATE_COLUMNS if c not in frame.columns]
    if missing:
        raise InputFileError(f"{path}: no column {missing[0]!r}: not a certificate file of kri_certify")
    if len(frame) != samples or list(frame["sample"]) != list(range(samples)):
        raise InputFileError(f"{path}: certifies samples {list(frame['sample'])[:5]}..., expected 0..{samples - 1} "
                             "(kri.certify.samples): run kri_certify again")
    return frame


def _differences(recorded: dict, current: dict) -> str:
    keys = sorted(set(recorded) | set(current), key=str)
    return ", ".join(f"{key}: {recorded.get(key)!r} recorded, {current.get(key)!r} configured" for key in keys
                     if recorded.get(key) != current.get(key))


def check_certificate_provenance(path: Path, frame: pd.DataFrame, scenario_json: str, settings_json: str,
                                 digest: str) -> None:
    """Refuse (one line naming the file and what differs) a certificate computed for another
    scenario entry, other certify settings or another model file."""
    import json

    for column, current, what in (("scenario_config", scenario_json, "scenario entry"),
                                  ("certify_settings", settings_json, "kri.certify settings")):
        values = set(frame[column].astype(str))
        recorded = values.pop() if len(values) == 1 else None
        if recorded is None or json.loads(recorded) != json.loads(current):
            diff = "several values" if recorded is None else _differences(json.loads(recorded), json.loads(current))
            raise InputFileError(f"{path}: certificate of another {what} ({diff}): run kri_certify again")
    digests = set(frame["model_sha256"].astype(str))
    if digests != {digest}:
        raise InputFileError(f"{path}: certificate of another model file (sha256 {sorted(digests)[0][:12]}... "
                             f"recorded, {digest[:12]}... now): run kri_certify again")


def check_tensor_scenarios(path: Path, tensor: Any, scenarios: Any) -> None:
    """Refuse a tensor whose recorded scenario entries (attrs ``scenario_configs``) differ from the config's."""
    import json

    from nnassure.kri.infer import scenario_json

    if "scenario_configs" not in tensor.attrs:
        raise InputFileError(f"{path}: no recorded scenario_configs: run kri_tensor again")
    recorded = json.loads(tensor.attrs["scenario_configs"])
    for name in scenarios:
        current = json.loads(scenario_json(scenarios[name]))
        if recorded.get(name) != current:
            diff = _differences(recorded.get(name) or {}, current)
            raise InputFileError(f"{path}: scenario {name!r} was merged with another entry ({diff}): run kri_infer "
                                 "and kri_tensor again")


def open_kri_tensor(path: Path) -> Any:
    """The risk tensor through nnassure.kri.tensor.open_tensor (lazy, validated)."""
    from nnassure.kri.tensor import open_tensor

    return open_tensor(path)


def main(cfg: DictConfig) -> None:
    from nnassure.kri.certified import certify_settings, model_digest
    from nnassure.kri.indicators import components, deployment_frame, kri_frame, replicates
    from nnassure.kri.infer import plain, scenario_json
    from nnassure.kri.kinds import certified_scenarios
    from nnassure.kri.model import load_kri_model
    from nnassure.report import kri as report
    from nnassure.report.paper_numbers import paper_table
    from nnassure.report.render import save_figure, write_table

    k = cfg.kri
    paths = ExperimentPaths.from_config(cfg)
    models = [str(m) for m in k.models]
    if "class_change" not in list(k.losses):
        raise ConfigError("kri.losses: the report's figures and certificates are about class_change; include it")
    variants: dict[str, Any] = OmegaConf.to_container(k.variants, resolve=True)
    # Read everything first: a missing or broken input fails before any output is written.
    metadata = {m: load_kri_model(paths.kri_model_stem(m)).metadata for m in models}
    tensor = open_kri_tensor(paths.kri_tensor)
    if int(tensor.sizes["sample"]) != int(k.samples):
        raise InputFileError(f"{paths.kri_tensor}: {tensor.sizes['sample']} samples, kri.samples is {k.samples}: "
                             "run kri_tensor again")
    tensor_losses = {str(v) for v in tensor["loss"].values}
    if "class_change" not in tensor_losses:
        raise InputFileError(f"{paths.kri_tensor}: no class_change loss: run kri_tensor again")
    in_tensor = {str(s) for s in tensor["scenario"].values} | {str(a) for a in tensor["attack"].values}
    missing = sorted(set(k.scenarios) - in_tensor)
    if missing:
        raise InputFileError(f"{paths.kri_tensor}: no scenario {missing[0]!r} of kri.scenarios: run kri_tensor again")
    check_tensor_scenarios(paths.kri_tensor, tensor, k.scenarios)
    comps = components(tensor, models)
    reps = replicates(comps, int(k.bootstrap), float(k.confidence), int(k.seed))
    kris = kri_frame(reps)
    deployments = deployment_frame(reps, OmegaConf.to_container(k.deployments, resolve=True))
    certified = certified_scenarios(k)
    certificates = {(m, s): read_certificate(paths.kri_certificate(m, s), int(k.certify.samples))
                    for m in models for s in certified}
    settings = certify_settings(plain(k.certify))
    digests = {m: model_digest(paths.kri_model_stem(m)) for m in models}
    for (m, s), frame in certificates.items():
        check_certificate_provenance(paths.kri_certificate(m, s), frame, scenario_json(k.scenarios[s]), settings,
                                     digests[m])
    long3, display3 = report.table3(tensor, certificates, float(k.confidence))  # raises on an unsound bound
    long1, display1 = report.table1(metadata, variants)
    compare1 = report.table1_compare(long1, paper_table(report.PAPER, "table1"), variants)
    long2, display2 = report.table2(kris)
    long4, display4 = report.table4(deployments)
    kinds = dict(zip(comps.names, comps.kinds, strict=True))
    bright = report.brightness_frame(kris, kinds)
    final = report.final_frame(kris)
    augmented = report.pairs(models, variants, report.AUGMENTATION)
    gce = report.pairs(models, variants, report.LOSS_MEASURES)
    texts = {
        "kr_table1": compare1,
        "kr_fig2": report.fig2_compare(bright),
        "kr_fig3": report.fig3_compare(reps, augmented, float(k.report.similar_ratio)),
        "kr_fig4": report.fig4_compare(reps, gce, float(k.report.unchanged)),
        "kr_fig5": report.fig5_compare(final, kris, report.unperturbed_frame(tensor, models), long3),
    }
    with tracked_run(cfg, "report_kri", "report_kri") as tracker:
        for table_id, (long, display) in {"kr_table1": (long1, display1), "kr_table2": (long2, display2),
                                          "kr_table3": (long3, display3), "kr_table4": (long4, display4)}.items():
            write_table(long, display, paths.tables, table_id)
            tracker.log_table(table_id, display.reset_index())
        save_figure(report.fig2(bright), paths.figures, "kr_fig2")
        save_figure(report.fig3(reps, augmented), paths.figures, "kr_fig3")
        save_figure(report.fig4(reps, gce), paths.figures, "kr_fig4")
        save_figure(report.fig5(final), paths.figures, "kr_fig5")
        for figure_id, text in texts.items():
            write_text(text, paths.tables / f"{figure_id}.compare.md")
    missing_files = [str(f) for f in kri_outputs(cfg) if not f.exists()]
    if missing_files:
        raise RuntimeError(f"report_kri did not write {missing_files}")


if __name__ == "__main__":
    run_stage("report_kri", main)
