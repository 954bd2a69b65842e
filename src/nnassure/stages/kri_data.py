"""Data stage of the KRI family: the traffic-sign images (``kri.data``), split train/val/test,
as ``kri/data/signs.npz``; the tracker gets the counts per split and class."""

from __future__ import annotations

from omegaconf import DictConfig

from nnassure.data.images import SPLITS
from nnassure.kri.data import render_kri_images, write_kri_images
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    path = ExperimentPaths.from_config(cfg).kri_images
    c = cfg.kri.data
    with tracked_run(cfg, "kri_data", "signs") as tracker:
        data = render_kri_images(int(c.images_per_class), int(c.image_size), int(c.seed), list(c.split),
                                 progress=True)
        write_kri_images(path, data)
        summary: dict[str, int] = {"n": len(data.labels), "image_size": int(c.image_size)}
        for split in SPLITS:
            summary[f"{split}/n"] = int((data.split == split).sum())
        for label, name in enumerate(data.classes):
            for split in SPLITS:
                summary[f"{name}/{split}/n"] = int(((data.labels == label) & (data.split == split)).sum())
        tracker.summary(summary)


if __name__ == "__main__":
    run_stage("kri_data", main)
