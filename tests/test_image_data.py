"""Image data: rendered traffic signs, scikit-learn's digits, the .npz format and the stratified split."""

import os
import zipfile

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from nnassure.data import images as images_module
from nnassure.data.images import (
    ImageDataset,
    load_digits_images,
    load_image_dataset,
    save_image_dataset,
    split_indices,
)
from nnassure.data.signs import SIGN_CLASSES, render_signs
from nnassure.errors import InputFileError


@pytest.fixture(scope="module")
def signs32():
    return render_signs(60, 32, seed=0)


@pytest.fixture(scope="module")
def signs16():
    """600 training and 300 held-out signs at 16x16, drawn with different seeds."""
    return render_signs(600, 16, seed=0), render_signs(300, 16, seed=1)


# ---------------------------------------------------------------------------------------------
# Traffic signs


def test_signs_shapes_dtypes_and_ranges(signs32):
    images, labels = signs32
    assert images.shape == (60, 32, 32, 3)
    assert images.dtype == np.uint8
    assert labels.shape == (60,)
    assert labels.dtype == np.int64
    assert labels.min() >= 0 and labels.max() < len(SIGN_CLASSES)
    # Not washed out to a constant: every image uses a good part of the 0..255 range.
    spans = images.reshape(60, -1).max(1).astype(int) - images.reshape(60, -1).min(1)
    assert spans.min() > 60


def test_signs_are_deterministic_for_a_seed():
    first = render_signs(30, 16, seed=5)
    again = render_signs(30, 16, seed=5)
    assert first[0].tobytes() == again[0].tobytes()
    assert first[1].tobytes() == again[1].tobytes()
    other = render_signs(30, 16, seed=6)
    assert first[0].tobytes() != other[0].tobytes()
    assert not np.array_equal(first[1], other[1])


def test_signs_do_not_depend_on_opencv_threads():
    import cv2

    before = cv2.getNumThreads()
    reference = render_signs(12, 20, seed=3)[0]
    try:
        cv2.setNumThreads(2)
        assert render_signs(12, 20, seed=3)[0].tobytes() == reference.tobytes()
        assert cv2.getNumThreads() == 2  # the caller's setting is restored
    finally:
        cv2.setNumThreads(before)


def test_signs_classes_are_balanced():
    _, labels = render_signs(100, 8, seed=1)
    # 100 = 6 * 16 + 4: the first four classes get one image more.
    assert np.bincount(labels, minlength=6).tolist() == [17, 17, 17, 17, 16, 16]
    assert labels[:20].tolist() != sorted(labels[:20].tolist())  # shuffled, not grouped by class


def test_signs_class_subset_indexes_the_given_classes():
    images, labels = render_signs(11, 10, seed=2, classes=("priority_road", "give_way"))
    assert images.shape == (11, 10, 10, 3)
    assert np.bincount(labels).tolist() == [6, 5]
    # Priority road signs are yellow (red and green high, blue low); give way signs have no yellow.
    yellow = (images[..., 0] > 170) & (images[..., 1] > 130) & (images[..., 2] < 90)
    share = yellow.reshape(11, -1).mean(1)
    assert share[labels == 0].mean() > 3 * share[labels == 1].mean()


def test_sign_class_means_differ(signs16):
    (images, labels), _ = signs16
    means = np.stack([images[labels == k].mean(0) for k in range(len(SIGN_CLASSES))]) / 255
    for a in range(len(means)):
        for b in range(a + 1, len(means)):
            rms = np.sqrt(((means[a] - means[b]) ** 2).mean())
            assert rms > 0.03, (SIGN_CLASSES[a], SIGN_CLASSES[b], rms)


def test_signs_are_learnable_by_a_linear_model(signs16):
    (x_train, y_train), (x_test, y_test) = signs16
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=1000))
    # One BLAS thread: with several, small fits slow down badly on a busy machine.
    with threadpool_limits(1):
        model.fit(x_train.reshape(len(x_train), -1) / 255, y_train)
        accuracy = model.score(x_test.reshape(len(x_test), -1) / 255, y_test)
    assert accuracy >= 0.8


def test_give_way_and_priority_road_are_separable_at_10x10():
    # The ensemble MILP stage's binary task.
    classes = ("give_way", "priority_road")
    (x_train, y_train), (x_test, y_test) = (render_signs(200, 10, seed, classes=classes) for seed in (0, 1))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=1000))
    with threadpool_limits(1):
        model.fit(x_train.reshape(200, -1) / 255, y_train)
        assert model.score(x_test.reshape(200, -1) / 255, y_test) >= 0.93


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"n": 0}, "n="),
        ({"n": 2.5}, "n="),
        ({"size": 5}, "size="),
        ({"seed": -1}, "seed="),
        ({"classes": ()}, "classes"),
        ({"classes": ("stop", "yield")}, "'yield'"),
        ({"classes": ("stop", "stop")}, "classes"),
        ({"classes": "stop"}, "classes"),
    ],
)
def test_render_signs_rejects_bad_arguments(kwargs, named):
    arguments = {"n": 4, "size": 8, "seed": 0} | kwargs
    with pytest.raises(ValueError, match="invalid") as info:
        render_signs(**arguments)
    assert named in str(info.value)


def test_unknown_class_message_lists_the_allowed_ones():
    with pytest.raises(ValueError) as info:
        render_signs(4, 8, 0, classes=("yield",))
    assert all(name in str(info.value) for name in SIGN_CLASSES)


# ---------------------------------------------------------------------------------------------
# Digits


def test_digits_at_size_8_are_sklearns_data_over_16():
    images, labels = load_digits_images()
    digits = load_digits()
    assert images.dtype == np.float32 and labels.dtype == np.int64
    assert images.shape == (1797, 8, 8)
    np.testing.assert_array_equal(images, (digits.data / 16).astype(np.float32).reshape(-1, 8, 8))
    np.testing.assert_array_equal(labels, digits.target)
    assert sorted(np.unique(labels).tolist()) == list(range(10))


@pytest.mark.parametrize("size", [6, 10])
def test_resized_digits_keep_shape_and_range(size):
    images, labels = load_digits_images(size)
    assert images.shape == (1797, size, size)
    assert images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert len(labels) == 1797
    # Resizing keeps the ink: the mean intensity stays close to the original's.
    original, _ = load_digits_images(8)
    assert abs(images.mean() - original.mean()) < 0.02


@pytest.mark.parametrize("size", [1, 0, 2.0, True])
def test_digits_reject_bad_size(size):
    with pytest.raises(ValueError, match="size"):
        load_digits_images(size)


# ---------------------------------------------------------------------------------------------
# The .npz format


def _small_dataset():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (12, 5, 4)).astype(np.float32)
    labels = np.arange(12, dtype=np.int64) % 3
    split = np.array(["train"] * 8 + ["val"] * 2 + ["test"] * 2)
    return images, labels, split, ("a", "b", "c")


def test_save_load_round_trip(tmp_path):
    images, labels, split, classes = _small_dataset()
    path = tmp_path / "digits.npz"
    save_image_dataset(path, images, labels, split, classes)
    data = load_image_dataset(path)
    assert isinstance(data, ImageDataset)
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
    np.testing.assert_array_equal(data.split, split)
    assert data.classes == classes
    assert data.images.dtype == np.float32 and data.labels.dtype == np.int64
    with np.load(path, allow_pickle=False) as raw:  # plain arrays only, split as fixed-width text
        assert raw["split"].dtype == np.dtype("<U5")
        assert raw["classes"].dtype.kind == "U"
    x, y = data.arrays("val")
    assert x.shape == (2, 20) and x.dtype == np.float32
    np.testing.assert_array_equal(y, labels[8:10])
    x, y = data.arrays(flatten=False)
    assert x.shape == (12, 5, 4) and len(y) == 12
    x[0] = 0.5  # fresh copies: the data set itself stays unchanged
    assert not data.images.flags.writeable
    with pytest.raises(ValueError, match="split"):
        data.arrays("dev")


def test_save_rendered_signs_scales_uint8_to_unit_range(tmp_path):
    images, labels = render_signs(6, 8, seed=0)
    path = tmp_path / "signs.npz"
    save_image_dataset(path, images, labels, np.array(["train"] * 6), SIGN_CLASSES)
    data = load_image_dataset(path)
    assert data.images.shape == (6, 8, 8, 3)
    np.testing.assert_allclose(data.images, images / 255, atol=1e-7)
    assert data.arrays("train")[0].shape == (6, 8 * 8 * 3)
    assert data.classes == SIGN_CLASSES


def _write_npz(path, **overrides):
    images, labels, split, classes = _small_dataset()
    arrays = {"images": images, "labels": labels, "split": split.astype("<U5"), "classes": np.array(classes)}
    arrays.update(overrides)
    arrays = {name: value for name, value in arrays.items() if value is not None}
    np.savez(path, **arrays)


def _write_npy(path):
    with open(path, "wb") as handle:  # np.save given a path would append ".npy"
        np.save(handle, np.zeros(3))


def _corrupt_member(path):
    """A zip whose directory is intact but whose array data is damaged (CRC mismatch)."""
    _write_npz(path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 3
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))


def _nan_images():
    images = _small_dataset()[0].copy()
    images[3, 1, 1] = np.nan
    return images


BAD_FILES = {
    "missing": (lambda path: None, "not found"),
    "not a zip": (lambda path: path.write_text("images,labels\n1,2\n"), "not an .npz archive"),
    "single npy": (_write_npy, "not an .npz archive"),
    "truncated zip": (lambda path: (_write_npz(path), path.write_bytes(path.read_bytes()[:300])), "not an .npz"),
    "corrupt member": (_corrupt_member, "not a readable .npz archive"),
    "missing arrays": (lambda path: _write_npz(path, labels=None, split=None), "missing array(s) labels, split"),
    "pickled objects": (
        lambda path: _write_npz(path, split=np.array(["train"] * 12, dtype=object)),
        "pickled",
    ),
    "nan image": (lambda path: _write_npz(path, images=_nan_images()), "NaN"),
    "image above 1": (lambda path: _write_npz(path, images=_small_dataset()[0] * 2), "[0, 1]"),
    "image below 0": (lambda path: _write_npz(path, images=_small_dataset()[0] - 0.5), "[0, 1]"),
    "integer images": (lambda path: _write_npz(path, images=np.zeros((12, 5, 4), np.uint8)), "float32"),
    "2-d images": (lambda path: _write_npz(path, images=np.zeros((12, 20), np.float32)), "(n, H, W)"),
    "label too large": (lambda path: _write_npz(path, labels=np.full(12, 3)), "expected 0..2"),
    "negative label": (lambda path: _write_npz(path, labels=np.full(12, -1)), "expected 0..2"),
    "float labels": (lambda path: _write_npz(path, labels=np.zeros(12)), "labels"),
    "length mismatch": (lambda path: _write_npz(path, labels=np.zeros(11, np.int64)), "length mismatch"),
    "unknown split": (lambda path: _write_npz(path, split=np.array(["train"] * 11 + ["dev"])), "'dev'"),
    "no classes": (lambda path: _write_npz(path, classes=np.array([], dtype="<U1")), "classes"),
    "duplicate classes": (lambda path: _write_npz(path, classes=np.array(["a", "a", "b"])), "unique"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_load_rejects_bad_files_naming_the_file(tmp_path, case):
    make, expected = BAD_FILES[case]
    path = tmp_path / "bad_data.npz"
    make(path)
    with pytest.raises(InputFileError) as info:
        load_image_dataset(path)
    message = str(info.value)
    assert str(path) in message
    assert expected in message
    assert "\n" not in message


def test_load_rejects_a_directory(tmp_path):
    with pytest.raises(InputFileError, match="not an .npz archive"):
        load_image_dataset(tmp_path)


def test_save_rejects_invalid_arrays_without_writing(tmp_path):
    images, labels, split, classes = _small_dataset()
    path = tmp_path / "out.npz"
    cases = [
        (images * 2, labels, split, classes),
        (images, labels + 1, split, classes),
        (images, labels, np.array(["train"] * 11 + ["dev"]), classes),
        (images, labels[:-1], split, classes),
        (images.astype(np.int32), labels, split, classes),
        (images, labels, split, "abc"),
    ]
    for arrays in cases:
        with pytest.raises(ValueError):
            save_image_dataset(path, *arrays)
    assert os.listdir(tmp_path) == []


def test_failed_save_leaves_no_partial_file(tmp_path, monkeypatch):
    images, labels, split, classes = _small_dataset()
    path = tmp_path / "out.npz"

    def fail_midway(handle, **arrays):
        handle.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(images_module.np, "savez_compressed", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        save_image_dataset(path, images, labels, split, classes)
    assert os.listdir(tmp_path) == []


def test_save_replaces_an_existing_file_atomically(tmp_path):
    images, labels, split, classes = _small_dataset()
    path = tmp_path / "out.npz"
    save_image_dataset(path, images, labels, split, classes)
    save_image_dataset(path, images[:4], labels[:4], split[:4], classes)
    assert len(load_image_dataset(path).labels) == 4
    assert os.listdir(tmp_path) == ["out.npz"]
    assert zipfile.is_zipfile(path)


# ---------------------------------------------------------------------------------------------
# Stratified split


def test_split_indices_is_stratified_and_deterministic():
    labels = np.repeat(np.arange(4), [100, 60, 40, 200])
    fractions = (0.7, 0.15, 0.15)
    names = split_indices(labels, fractions, seed=0)
    assert names.dtype == np.dtype("<U5") and names.shape == labels.shape
    assert set(names.tolist()) == {"train", "val", "test"}
    for cls in range(4):
        members = names[labels == cls]
        for split, share in zip(("train", "val", "test"), fractions, strict=True):
            assert abs((members == split).sum() - share * len(members)) <= 2
    np.testing.assert_array_equal(names, split_indices(labels, fractions, seed=0))
    assert not np.array_equal(names, split_indices(labels, fractions, seed=1))


def test_split_indices_with_an_empty_share():
    labels = np.repeat(np.arange(2), 50)
    names = split_indices(labels, (0.8, 0.0, 0.2), seed=0)
    assert set(names.tolist()) == {"train", "test"}
    assert (names == "test").sum() == 20


@pytest.mark.parametrize(
    "fractions",
    [(0.5, 0.3, 0.3), (0.0, 0.5, 0.5), (1.2, -0.1, -0.1), (0.8, 0.2), (float("nan"), 0.5, 0.5)],
)
def test_split_indices_rejects_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions"):
        split_indices(np.repeat(np.arange(2), 10), fractions, seed=0)


def test_split_indices_reports_too_small_classes():
    with pytest.raises(ValueError, match="cannot split"):
        split_indices(np.array([0, 0, 0, 0, 1]), (0.6, 0.2, 0.2), seed=0)
