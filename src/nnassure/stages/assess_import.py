"""Import stage of an assessment: read the user's model and data, check them, and record what was
assessed (``results/<experiment>/assess/<name>/import.json``, :mod:`nnassure.assess.model`).

An ONNX model is converted by onnx2torch and compared with onnxruntime on every sample of the
data (``assess.tolerance``, relative to the largest logit); an operator the conversion or the
bound engine does not support, data of the wrong shape, a non-finite value or a label outside the
model's classes stops the stage in one line (exit 2) before anything is written.
"""

from __future__ import annotations

import platform

from omegaconf import DictConfig, OmegaConf

from nnassure.io import write_json
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    import numpy as np
    import onnxruntime
    import torch

    from nnassure.assess.experiment import load_checked, resolve
    from nnassure.assess.model import check_against_onnxruntime
    from nnassure.io import file_sha256

    assessment = resolve(cfg.assess)
    model, data = load_checked(cfg.assess)
    agreement = None
    if model.source == "onnx":
        agreement = check_against_onnxruntime(model, data.x, float(cfg.assess.tolerance))
    counts = np.bincount(data.labels, minlength=model.classes)
    manifest = {
        "name": assessment.name,
        "model": {"path": str(assessment.model), "source": model.source, "files": model.files,
                  "input_shape": list(model.input_shape), "outputs": model.outputs, "classes": model.classes,
                  "operators": model.operators, "activations": model.activations, "relu_only": model.relu_only},
        "data": {"path": str(assessment.data), "sha256": file_sha256(assessment.data), "samples": len(data),
                 "label_counts": counts.tolist(), "min": float(data.x.min()), "max": float(data.x.max())},
        "properties": {stem: {"path": str(path), "sha256": file_sha256(path)}
                       for stem, path in assessment.properties.items()},
        "agreement": None if agreement is None else {
            "max_abs": agreement.max_abs, "max_rel": agreement.max_rel, "tolerance": agreement.tolerance,
            "largest_logit": agreement.scale, "prediction_mismatches": agreement.prediction_mismatches},
        "config": OmegaConf.to_container(cfg.assess, resolve=True),
        "software": {"python": platform.python_version(), "torch": torch.__version__,
                     "onnxruntime": onnxruntime.__version__},
    }
    with tracked_run(cfg, "assess_import", assessment.name) as tracker:
        write_json(manifest, ExperimentPaths.from_config(cfg).assess_manifest(assessment.name))
        tracker.summary({"samples": len(data), **({} if agreement is None else {"max_abs_vs_onnxruntime":
                                                                                agreement.max_abs})})
    print(f"assess_import {assessment.name}: {model.source} model, input {model.input_shape}, {model.classes} "
          f"classes, {len(data)} samples" + ("" if agreement is None else
                                              f", max |torch - onnxruntime| {agreement.max_abs:.3g}"))


if __name__ == "__main__":
    run_stage("assess_import", main)
