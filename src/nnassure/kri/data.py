"""The traffic-sign images of the KRI family (the stand-in for the paper's CIFAR10, Sec. 5).

The six classes of :data:`nnassure.data.signs.SIGN_CLASSES` are rendered as RGB images
(:func:`nnassure.data.signs.render_signs`, byte-identical for the same arguments), split
train/val/test stratified by class (:func:`nnassure.data.images.split_indices`) and written as an
image data set ``.npz`` (:func:`nnassure.data.images.save_image_dataset`, atomic). The KRI samples
are the first ``kri.samples`` test images in stored order, so the stored order is part of the
format: it is the renderer's (class order shuffled with the seed), never re-sorted here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnassure.data.images import save_image_dataset, split_indices
from nnassure.data.signs import SIGN_CLASSES, render_signs


@dataclass(frozen=True, eq=False)
class KriImages:
    """Rendered signs: uint8 ``(n, size, size, 3)`` images, int64 labels, a split name per image."""

    images: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    classes: tuple[str, ...]


def render_kri_images(images_per_class: int, image_size: int, seed: int,
                      split: Sequence[float] = (0.7, 0.1, 0.2), classes: Sequence[str] = SIGN_CLASSES,
                      progress: bool = False) -> KriImages:
    """``images_per_class`` signs of every class at ``image_size`` pixels, split by class in the
    (train, val, test) ``split`` fractions; the same arguments give the same arrays."""
    classes = tuple(classes)
    images, labels = render_signs(int(images_per_class) * len(classes), int(image_size), int(seed), classes,
                                  progress=progress)
    names = split_indices(labels, tuple(float(f) for f in split), int(seed))
    return KriImages(images, labels, names, classes)


def write_kri_images(path: str | Path, data: KriImages) -> None:
    """The images as an image data set ``.npz`` (float32 in [0, 1]), written atomically."""
    save_image_dataset(path, data.images, data.labels, data.split, data.classes)
