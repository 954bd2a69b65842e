"""One VNN-LIB property decided on an assessed model (:mod:`nnassure.assess.decide`):
``results/<experiment>/assess/<name>/vnnlib/<property>.json`` with the verdict, the method that
decided it, the time and any counterexample (checked by onnxruntime), and ``<property>.txt`` in
VNN-COMP's result format. A property file with a syntax error stops the stage in one line."""

from __future__ import annotations

import json

from omegaconf import DictConfig

from nnassure.errors import InputFileError
from nnassure.io import write_json, write_text
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    import numpy as np

    from nnassure.assess.decide import DecideSettings, decide
    from nnassure.assess.experiment import resolve, vnncomp_result
    from nnassure.assess.milp import graph_layers
    from nnassure.assess.model import load_assessed_model
    from nnassure.assess.paths import property_files
    from nnassure.assess.vnnlib import read_vnnlib
    from nnassure.io import file_sha256

    paths = ExperimentPaths.from_config(cfg)
    name = resolve(cfg.assess).name
    stem = cfg.assess.property
    files = property_files([str(p) for p in cfg.assess.properties])
    if stem is None or stem not in files:
        raise InputFileError(f"vnnlib needs assess.property=<the stem of one of assess.properties: "
                             f"{', '.join(sorted(files)) or 'none given'}>")
    manifest = json.loads(paths.assess_manifest(name).read_text())
    model = load_assessed_model(manifest["model"]["path"])
    for path, digest in manifest["model"]["files"].items():
        if file_sha256(path) != digest:
            raise InputFileError(f"{path}: changed since assess_import checked it; rerun the assessment")
    size = int(np.prod(model.input_shape))
    prop = read_vnnlib(files[stem], size, model.outputs)
    layers, milp_note = None, ""
    try:
        layers = graph_layers(model.network, model.input_shape)
    except ValueError as exc:
        milp_note = f"no MILP: {exc}"
    settings = DecideSettings.from_config(cfg.assess.vnnlib, int(cfg.threads))
    with tracked_run(cfg, "vnnlib", f"{name}/{stem}") as tracker:
        decision = decide(model, prop, settings, layers=layers)
        document = {
            "property": stem, "file": str(files[stem]), "sha256": file_sha256(files[stem]),
            "result": decision.result, "vnncomp": vnncomp_result(decision).splitlines()[0],
            "decided_by": decision.decided_by, "seconds": decision.seconds, "cases": decision.cases,
            "closed": decision.closed, "note": "; ".join(n for n in (decision.note, milp_note) if n),
            "counterexample": None if decision.counterexample is None else
            [float(v) for v in decision.counterexample],
            "output": None if decision.output is None else [float(v) for v in decision.output],
            "methods": list(settings.methods), "time_limit": settings.time_limit,
        }
        target = paths.vnnlib_result(name, stem)
        write_text(vnncomp_result(decision), target.with_suffix(".txt"))
        write_json(document, target)
        tracker.summary({"result": decision.result, "seconds": decision.seconds})
    print(f"vnnlib {name}/{stem}: {decision.result} ({decision.decided_by or '-'}) in {decision.seconds:.2f} s"
          + (f"; {document['note']}" if document["note"] else ""))


if __name__ == "__main__":
    run_stage("vnnlib", main)
