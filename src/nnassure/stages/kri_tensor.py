"""Tensor stage of the KRI family (Schwerdtner et al., Sec. 4): merges the inference files of
every model of ``kri.models`` on every scenario of ``kri.scenarios`` into the risk tensor R and
R_adv with the losses of ``kri.losses`` applied (``results/<experiment>/kri/tensor.nc``,
:mod:`nnassure.kri.tensor`). No model is evaluated: the losses come from the stored logits.

A stale inference file is refused in one line: its scenario entry, draws, seed or sample count
differ from the config, or it was computed from another model file (retrained or replaced) or
another image file than the current ones (SHA-256 recorded by kri_infer; each model file is hashed
once). The class names come from the image data set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from nnassure.errors import InputFileError
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    from nnassure.data.images import load_image_dataset
    from nnassure.io import file_sha256
    from nnassure.kri.infer import check_fresh, check_inputs, read_inference
    from nnassure.kri.tensor import merge_tensor, write_tensor

    paths = ExperimentPaths.from_config(cfg)
    data = load_image_dataset(paths.kri_images)
    k = cfg.kri
    data_sha256 = file_sha256(paths.kri_images)
    inferences = {}
    for variant in k.models:
        model_file = Path(f"{paths.kri_model_stem(variant)}.safetensors")
        if not model_file.exists():
            raise InputFileError(f"{model_file}: model file not found (run kri_train for {variant})")
        model_sha256 = file_sha256(model_file)
        for name, scenario in k.scenarios.items():
            path = paths.kri_inference(variant, name)
            ds = read_inference(path, variant=variant, scenario=name)
            check_fresh(ds, path, scenario, int(k.draws), int(k.seed), int(k.samples))
            check_inputs(ds, path, model_file, model_sha256, paths.kri_images, data_sha256)
            inferences[(variant, name)] = ds
    labels = data.arrays("test", flatten=False)[1][: int(k.samples)]
    first = next(iter(inferences.values()))
    if not np.array_equal(first["label"].values, labels):
        raise InputFileError(f"{paths.kri_inference(*next(iter(inferences)))}: stale inference file: its labels are "
                             f"not those of the first {int(k.samples)} test images of {paths.kri_images}; rerun "
                             "kri_infer")
    with tracked_run(cfg, "kri_tensor", "tensor") as tracker:
        tensor = merge_tensor(inferences, dict(k.scenarios), list(k.losses), k.severity, data.classes,
                              models=list(k.models))
        write_tensor(tensor, paths.kri_tensor)
        size = paths.kri_tensor.stat().st_size
        tracker.summary({"models": len(k.models), "scenarios": len(k.scenarios), "bytes": size})
        print(f"kri_tensor: {len(k.models)} models x {len(k.scenarios)} scenarios, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    run_stage("kri_tensor", main)
