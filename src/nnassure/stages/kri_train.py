"""Train stage of the KRI family: one model of the zoo (Table 1 of Schwerdtner et al.), the variant
``kri.variant`` with its capacity and measures, trained on the sign images of kri_data with the
shared ``kri.train`` settings, saved as ``models/kri/<variant>.{safetensors,json}``.

The CNN's input size comes from the images (so the model always matches its data set), its widths
from ``kri.capacities``; the metadata records the clean accuracies, the training time (the teacher's
included for distillation), the epochs and the measures used.
"""

from __future__ import annotations

from dataclasses import asdict

from omegaconf import DictConfig, OmegaConf

from nnassure.data.images import load_image_dataset
from nnassure.data.signs import SIGN_CLASSES
from nnassure.errors import InputFileError
from nnassure.kri.model import KriCNN, KriCNNSpec, check_images, save_kri_model
from nnassure.kri.training import Measures, TrainSettings, train_variant
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    paths = ExperimentPaths.from_config(cfg)
    name = cfg.kri.variant
    if name is None:
        raise InputFileError("kri_train needs kri.variant=<name> (one of kri.variants)")
    variant = OmegaConf.to_container(cfg.kri.variants[name], resolve=True)
    capacity = cfg.kri.capacities[variant.get("capacity", "base")]
    data = load_image_dataset(paths.kri_images)
    if tuple(data.classes) != SIGN_CLASSES:
        raise InputFileError(f"{paths.kri_images}: classes {', '.join(data.classes)}; the KRI zoo expects "
                             f"{', '.join(SIGN_CLASSES)} (rerun kri_data)")
    size = int(data.images.shape[1]) if data.images.ndim >= 2 else 0
    try:
        spec = KriCNNSpec(image_size=max(size, 1), channels=tuple(int(c) for c in capacity.channels),
                          hidden=int(capacity.hidden), classes=len(SIGN_CLASSES))
    except ValueError as exc:
        raise InputFileError(f"{paths.kri_images}: images of shape {tuple(data.images.shape)} do not fit the "
                             f"{variant.get('capacity', 'base')} CNN ({exc})") from None
    splits = {split: data.arrays(split, flatten=False) for split in ("train", "val", "test")}
    probe = KriCNN(spec)
    for split, (images, _) in splits.items():
        check_images(probe, images, f"{paths.kri_images} ({split} split)")
    measures = Measures.from_config(variant)
    settings = TrainSettings.from_config(cfg.kri.train)
    with tracked_run(cfg, "kri_train", name) as tracker:
        result = train_variant(splits["train"], splits["val"], spec, measures, settings, test=splits["test"],
                               description=f"train {name}")
        if result.teacher is not None:
            for record in result.teacher["history"]:
                tracker.log({f"teacher/{key}": value for key, value in record.items()})
        for record in result.history:
            tracker.log(record)
        metadata = {"variant": name, "description": str(variant["description"]),
                    "capacity": str(variant.get("capacity", "base")), "accuracy": result.accuracy,
                    "seconds": result.seconds, "epochs": result.epochs, "best_epoch": result.best_epoch,
                    "classes": list(data.classes), "image_size": spec.image_size, "measures": measures.as_dict(),
                    "spec": asdict(spec), "train": asdict(settings), "optimizer": "adam"}
        if result.teacher is not None:
            metadata["teacher"] = {key: value for key, value in result.teacher.items() if key != "history"}
        save_kri_model(result.model, paths.kri_model_stem(name), metadata)
        tracker.summary({**{f"accuracy/{k}": v for k, v in result.accuracy.items()}, "epochs": result.epochs,
                         "best_epoch": result.best_epoch, "seconds": result.seconds})


if __name__ == "__main__":
    run_stage("kri_train", main)
