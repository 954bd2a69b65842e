"""Image data sets: scikit-learn's digits, a NumPy ``.npz`` file format, and a stratified split.

The certification papers use MNIST-like digits, which cannot be downloaded here; scikit-learn
ships its 8x8 digits (1,797 images) with the package, so they stand in for MNIST, resized with
OpenCV where a paper uses 6x6 to 10x10 inputs. Rendered traffic signs (:mod:`nnassure.data.signs`)
are the second source. Both are written to one file format, an ``.npz`` archive of plain arrays:

* ``images``: float32 in [0, 1], shape ``(n, H, W)`` or ``(n, H, W, C)``;
* ``labels``: int64, each an index into ``classes``;
* ``split``: fixed-width unicode (``<U5``), each ``train``, ``val`` or ``test``;
* ``classes``: unicode class names.

Nothing is pickled (the loader passes ``allow_pickle=False``), so opening a data set file cannot
run code, and every problem a stage would trip over later is reported by the loader as one line
naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from nnassure.errors import InputFileError
from nnassure.io import atomic_path, read_npz

SPLITS: tuple[str, ...] = ("train", "val", "test")
IMAGE_ARRAYS: tuple[str, ...] = ("images", "labels", "split", "classes")


def load_digits_images(size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as float32 images in [0, 1] of shape ``(1797, size, size)``, and int64 labels 0..9.

    At ``size`` 8 the pixels are exactly the original values 0..16 divided by 16. Other sizes are
    resized with area interpolation when shrinking (it averages, so strokes do not vanish) and
    bilinear interpolation when enlarging.
    """
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 2:
        raise ValueError(f"invalid size={size!r}: expected an integer >= 2")
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    if size != 8:
        interpolation = cv2.INTER_AREA if size < 8 else cv2.INTER_LINEAR
        images = np.stack([cv2.resize(image, (int(size), int(size)), interpolation=interpolation) for image in images])
        images = np.clip(images, 0.0, 1.0)
    return images, digits.target.astype(np.int64)


def _problem(images: np.ndarray, labels: np.ndarray, split: np.ndarray, classes: np.ndarray) -> str | None:
    """What is wrong with these arrays as an image data set, or None; shared by the writer and the loader."""
    if images.ndim not in (3, 4):
        return f"images have shape {images.shape}; expected (n, H, W) or (n, H, W, C)"
    if not np.issubdtype(images.dtype, np.floating):
        return f"images have dtype {images.dtype}; expected float32 in [0, 1]"
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        return f"labels have dtype {labels.dtype} and shape {labels.shape}; expected one integer per image"
    if split.ndim != 1 or split.dtype.kind != "U":
        return f"split has dtype {split.dtype} and shape {split.shape}; expected one of {', '.join(SPLITS)} per image"
    if classes.ndim != 1 or classes.dtype.kind != "U":
        return f"classes have dtype {classes.dtype} and shape {classes.shape}; expected a list of names"
    if len(classes) == 0:
        return "classes is empty; expected at least one class name"
    if len(set(classes.tolist())) != len(classes):
        return "class names are not unique; expected each name once"
    n = len(images)
    if n == 0:
        return "the data set has no images; expected at least one"
    if len(labels) != n or len(split) != n:
        return f"length mismatch: {n} images, {len(labels)} labels, {len(split)} split entries; expected equal lengths"
    if not np.isfinite(images).all():
        return "images contain NaN or infinite values; expected finite values in [0, 1]"
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        return f"image values span [{low:g}, {high:g}]; expected values in [0, 1]"
    if labels.min() < 0 or labels.max() >= len(classes):
        return (
            f"labels span {labels.min()}..{labels.max()}; expected 0..{len(classes) - 1} "
            f"(indices into {len(classes)} classes)"
        )
    unknown = sorted(set(split.tolist()) - set(SPLITS))
    if unknown:
        return f"unknown split name(s) {', '.join(map(repr, unknown))}; expected {', '.join(SPLITS)}"
    return None


def save_image_dataset(
    path: str | Path, images: np.ndarray, labels: np.ndarray, split: np.ndarray, classes: Sequence[str]
) -> None:
    """Write an image data set ``.npz`` atomically: the file appears complete or not at all.

    ``images`` are float in [0, 1], or uint8 0..255 (then divided by 255, as rendered signs are);
    they are stored as float32. Raises ValueError, before writing anything, for arrays that
    :func:`load_image_dataset` would refuse.
    """
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / np.float32(255)
    elif np.issubdtype(images.dtype, np.floating):
        images = images.astype(np.float32)
    else:
        raise ValueError(f"invalid images dtype {images.dtype}: expected float in [0, 1] or uint8")
    labels = np.asarray(labels)
    split = np.asarray(split)
    if split.dtype.kind == "O":
        split = split.astype(str)
    if isinstance(classes, str):
        raise ValueError(f"invalid classes={classes!r}: expected a sequence of class names, not one string")
    class_names = np.asarray([str(c) for c in classes], dtype=str)
    problem = _problem(images, labels, split, class_names)
    if problem:
        raise ValueError(f"cannot save image data set to {path}: {problem}")
    arrays = {
        "images": images,
        "labels": labels.astype(np.int64),
        "split": split.astype("<U5"),
        "classes": class_names,
    }
    # Writing through a file handle: given a path, numpy would append ".npz" to the temporary name.
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """A loaded, checked image data set; arrays are read-only. ``eq=False``: arrays have no single truth value."""

    images: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    classes: tuple[str, ...]

    def arrays(self, split: str | None = None, flatten: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Inputs (float32) and int64 labels of one split, or of all images if ``split`` is None.

        With ``flatten`` the inputs have shape ``(m, H * W * C)`` in row-major (H, W, C) order;
        otherwise the stored image shape. Both are fresh writable copies.
        """
        if split is None:
            images, labels = self.images, self.labels
        elif split in SPLITS:
            mask = self.split == split
            images, labels = self.images[mask], self.labels[mask]
        else:
            raise ValueError(f"invalid split={split!r}: expected one of {', '.join(SPLITS)} or None")
        x = np.array(images, dtype=np.float32)
        if flatten:
            x = x.reshape(len(x), -1)
        return x, np.array(labels, dtype=np.int64)


def load_image_dataset(path: str | Path) -> ImageDataset:
    """Read and check an image data set ``.npz``; raises :class:`InputFileError` naming the file and the problem."""
    path = Path(path)
    arrays = read_npz(path, IMAGE_ARRAYS, "expected an image data set written by save_image_dataset: run the "
                                          "images stage")
    problem = _problem(arrays["images"], arrays["labels"], arrays["split"], arrays["classes"])
    if problem:
        raise InputFileError(f"{path}: {problem}")
    images = arrays["images"].astype(np.float32, copy=False)
    labels = arrays["labels"].astype(np.int64, copy=False)
    split = arrays["split"]
    for array in (images, labels, split):
        array.setflags(write=False)
    return ImageDataset(images, labels, split, tuple(arrays["classes"].tolist()))


def split_indices(labels: np.ndarray, fractions: tuple[float, float, float], seed: int) -> np.ndarray:
    """A stratified split name (``train``, ``val`` or ``test``) per sample, as a ``<U5`` array.

    ``fractions`` are the (train, val, test) shares, non-negative and summing to 1, train > 0.
    The test part is drawn first, then val from the rest (scikit-learn's ``train_test_split``
    with ``stratify``, so each class is split in about the same proportions); the same labels,
    fractions and seed always give the same split.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"invalid labels of shape {labels.shape}: expected a non-empty 1-D array")
    if len(fractions) != 3:
        raise ValueError(f"invalid fractions={fractions!r}: expected three shares (train, val, test)")
    train, val, test = (float(f) for f in fractions)
    if not all(np.isfinite([train, val, test])) or min(train, val, test) < 0 or train <= 0:
        raise ValueError(f"invalid fractions={fractions!r}: expected non-negative shares with train > 0")
    if abs(train + val + test - 1.0) > 1e-6:
        raise ValueError(f"invalid fractions={fractions!r}: expected shares summing to 1")
    names = np.full(len(labels), "train", dtype="<U5")
    rest = np.arange(len(labels))
    try:
        if test > 0:
            rest, test_ids = train_test_split(rest, test_size=test, stratify=labels, random_state=seed)
            names[test_ids] = "test"
        if val > 0:
            _, val_ids = train_test_split(rest, test_size=val / (train + val), stratify=labels[rest], random_state=seed)
            names[val_ids] = "val"
    except ValueError as exc:  # too few samples of a class for the requested shares
        raise ValueError(f"cannot split {len(labels)} labels with fractions {fractions!r}: {exc}") from None
    return names
