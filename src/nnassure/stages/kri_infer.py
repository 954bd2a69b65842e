"""Inference stage of the KRI family (Schwerdtner et al., Sec. 4): one model of the zoo on one
scenario component, the logits of every perturbed sample with the draw's parameters
(``results/<experiment>/kri/infer/<variant>/<scenario>.nc``, :mod:`nnassure.kri.infer`).

It reads only its own scenario's entry (``kri.scenarios.{kri.scenario}``), ``kri.samples``,
``kri.draws`` and ``kri.seed``, so adding or editing another scenario does not rerun it. The
samples are the first ``kri.samples`` test images in stored order. The file records the SHA-256
of the model's ``.safetensors`` and of the image file, which kri_tensor checks against the current
files.
"""

from __future__ import annotations

import time

from omegaconf import DictConfig

from nnassure.errors import InputFileError
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    from nnassure.data.images import load_image_dataset
    from nnassure.io import file_sha256
    from nnassure.kri.infer import infer_scenario, write_inference
    from nnassure.kri.model import check_images, load_kri_model

    paths = ExperimentPaths.from_config(cfg)
    variant, name = cfg.kri.variant, cfg.kri.scenario
    if variant is None or name is None:
        raise InputFileError("kri_infer needs kri.variant=<variant> and kri.scenario=<scenario>")
    data = load_image_dataset(paths.kri_images)
    images, labels = data.arrays("test", flatten=False)
    samples = int(cfg.kri.samples)
    if len(images) < samples:
        raise InputFileError(f"{paths.kri_images}: {len(images)} test images, fewer than kri.samples={samples}")
    images, labels = images[:samples], labels[:samples]
    stem = paths.kri_model_stem(variant)
    model = load_kri_model(stem)
    check_images(model.model, images, f"{paths.kri_images} for model {stem}")
    model_classes = model.metadata.get("classes")
    if model.model.spec.classes != len(data.classes) or (model_classes is not None
                                                         and list(model_classes) != list(data.classes)):
        raise InputFileError(f"{stem}.json: the model has {model_classes or model.model.spec.classes} classes; "
                             f"{paths.kri_images} has {list(data.classes)}")
    scenario = cfg.kri.scenarios[name]
    with tracked_run(cfg, "kri_infer", f"{variant}/{name}") as tracker:
        started = time.perf_counter()
        ds = infer_scenario(model.model, images, labels, name, scenario, int(cfg.kri.draws), int(cfg.kri.seed),
                            data.classes, variant=variant, model_sha256=file_sha256(f"{stem}.safetensors"),
                            data_sha256=file_sha256(paths.kri_images))
        write_inference(ds, paths.kri_inference(variant, name))
        seconds = time.perf_counter() - started
        changed = (ds["logits"].argmax("class") != ds["clean_logits"].argmax("class")).mean().item()
        inferences = ds.sizes["sample"] * ds.sizes["draw"]
        summary = {"class_change_rate": changed, "inferences": inferences, "seconds": seconds,
                   "inferences_per_second": inferences / max(float(ds.attrs["seconds"]), 1e-9)}
        tracker.summary(summary)
        print(f"kri_infer {variant}/{name}: {inferences} inferences, class change {changed:.3f}, "
              f"{summary['inferences_per_second']:.0f} inferences/s, {seconds:.1f} s")


if __name__ == "__main__":
    run_stage("kri_infer", main)
