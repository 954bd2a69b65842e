"""The KRI family's sign images: rendered and split reproducibly, stratified, written by the kri_data stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnassure.data.images import load_image_dataset
from nnassure.data.signs import SIGN_CLASSES
from nnassure.kri.data import render_kri_images
from nnassure.paths import ExperimentPaths
from nnassure.stages import kri_data
from nnassure.stages._common import run_stage


def test_rendering_is_reproducible_and_split_by_class() -> None:
    first = render_kri_images(20, 16, seed=3, split=(0.5, 0.25, 0.25))
    again = render_kri_images(20, 16, seed=3, split=(0.5, 0.25, 0.25))
    assert np.array_equal(first.images, again.images) and np.array_equal(first.split, again.split)
    assert first.images.shape == (120, 16, 16, 3) and first.classes == SIGN_CLASSES
    for label in range(6):
        names = first.split[first.labels == label]
        assert len(names) == 20 and (names == "train").sum() == 10 and (names == "test").sum() == 5
    other = render_kri_images(20, 16, seed=4, split=(0.5, 0.25, 0.25))
    assert not np.array_equal(first.images, other.images)


def test_stage_writes_the_configured_images(tmp_path: Path) -> None:
    run_stage("kri_data", kri_data.main, ["experiment=smoke", f"results_dir={tmp_path}", "tracking=disabled",
                                          "kri.data.images_per_class=15", "kri.data.image_size=16"])
    data = load_image_dataset(ExperimentPaths(tmp_path, "smoke").kri_images)
    assert data.images.shape == (90, 16, 16, 3) and data.classes == SIGN_CLASSES
    assert data.images.dtype == np.float32 and 0 <= data.images.min() and data.images.max() <= 1
    expected = render_kri_images(15, 16, seed=0, split=(0.7, 0.1, 0.2))
    assert np.array_equal(data.labels, expected.labels) and np.array_equal(data.split, expected.split)
    assert np.array_equal(data.images, expected.images.astype(np.float32) / np.float32(255))
