"""Images stage: the digits and traffic-sign data sets, split train/val/test, as .npz files."""

from __future__ import annotations

from omegaconf import DictConfig

from nnassure.data import load_digits_images, render_signs, save_image_dataset, split_indices
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    paths = ExperimentPaths.from_config(cfg)
    c = cfg.images
    fractions = tuple(float(f) for f in c.split)
    with tracked_run(cfg, "images", "images") as tracker:
        digits, digit_labels = load_digits_images(c.digits_size)
        save_image_dataset(paths.image_dataset("digits"), digits, digit_labels,
                           split_indices(digit_labels, fractions, c.seed), [str(d) for d in range(10)])
        classes = list(c.sign_classes)
        signs, sign_labels = render_signs(c.signs_per_class * len(classes), c.signs_size, c.seed, classes,
                                          progress=True)
        save_image_dataset(paths.image_dataset("signs"), signs, sign_labels,
                           split_indices(sign_labels, fractions, c.seed), classes)
        tracker.summary({"digits/n": len(digits), "digits/size": c.digits_size, "signs/n": len(signs),
                         "signs/size": c.signs_size})


if __name__ == "__main__":
    run_stage("images", main)
