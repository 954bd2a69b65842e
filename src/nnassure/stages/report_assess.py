"""The dependability report of an assessed model (:mod:`nnassure.assess.report`):
``results/<experiment>/assess/<name>/report/index.html``, with every VNN-LIB verdict gathered in
``vnnlib.parquet`` and VNN-COMP's ``results.csv`` beside it."""

from __future__ import annotations

import json

from omegaconf import DictConfig, OmegaConf

from nnassure.io import write_csv, write_parquet, write_text
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage


def main(cfg: DictConfig) -> None:
    import pandas as pd

    from nnassure.assess.experiment import resolve
    from nnassure.assess.report import build_report, read_results, vnncomp_results_csv

    paths = ExperimentPaths.from_config(cfg)
    assessment = resolve(cfg.assess)
    name = assessment.name
    manifest = json.loads(paths.assess_manifest(name).read_text())
    accuracy = json.loads(paths.assess_accuracy(name).read_text())
    certify = pd.read_parquet(paths.assess_certification(name))
    summary = pd.read_csv(paths.assess_certification(name).with_name("certify_summary.csv"))
    proven = json.loads(paths.assess_proven(name).read_text())
    kri = json.loads(paths.assess_kri(name).read_text())
    vnnlib = read_results([paths.vnnlib_result(name, stem) for stem in sorted(assessment.properties)])
    html = build_report(manifest, accuracy, certify, summary, proven, kri, vnnlib, OmegaConf.to_yaml(cfg.assess))
    target = paths.assess_report(name)
    columns = ["property", "file", "result", "vnncomp", "decided_by", "seconds", "cases", "note"]
    frame = pd.DataFrame([{k: r[k] for k in columns} for r in vnnlib], columns=columns)
    write_parquet(frame, target.with_name("vnnlib.parquet"))
    write_csv(vnncomp_results_csv(name, manifest, vnnlib), target.with_name("results.csv"), float_format="%.3f")
    write_text(html, target)
    print(f"report_assess {name}: {target}")


if __name__ == "__main__":
    run_stage("report_assess", main)
