"""Data set generation (Sec. 1.1), the stratified split (Sec. 4.2) and validated loading."""

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from nnassure.data import DATASET_COLUMNS, generate_dataset, load_dataset, split_arrays, stratified_split
from nnassure.errors import ConfigError, InputFileError

# name -> (reduced n_samples, minority_fraction, margin, seed); fractions/margins from conf/dataset/*.yaml.
SPECS = {
    "a": (1000, 0.3333, 0.002, 11),
    "b": (1000, 0.5, 0.004, 12),
    "c": (2000, 0.0909, 0.004, 13),
}
EXPECTED_MINORITY = {"a": 333, "b": 500, "c": 182}  # round(n * minority_fraction)


@pytest.fixture(scope="module")
def datasets():
    return {name: generate_dataset(name, n, frac, margin, seed) for name, (n, frac, margin, seed) in SPECS.items()}


@pytest.mark.parametrize("name", ["a", "b", "c"])
def test_generated_dataset_shape_and_balance(datasets, name):
    frame = datasets[name]
    n = SPECS[name][0]
    assert list(frame.columns) == ["sample_id", "x1", "x2", "label"]
    assert len(frame) == n
    assert frame["sample_id"].tolist() == list(range(n))
    assert set(frame["label"].unique()) == {0, 1}
    n1 = int(frame["label"].sum())
    assert n1 == EXPECTED_MINORITY[name]
    assert n1 < n - n1 or name == "b"  # class 0 is the majority (B is balanced)
    if name == "b":
        assert n1 == n - n1
    xs = frame[["x1", "x2"]].to_numpy()
    assert np.isfinite(xs).all()
    assert xs.min() >= 0.0 and xs.max() <= 1.0
    assert frame["label"].dtype == np.int64


def test_class_ratios_match_the_paper(datasets):
    assert datasets["a"]["label"].mean() == pytest.approx(1 / 3, abs=0.01)  # about 2 : 1
    assert datasets["b"]["label"].mean() == 0.5
    assert datasets["c"]["label"].mean() == pytest.approx(1 / 11, abs=0.01)  # about 10 : 1


@pytest.mark.parametrize("name", ["a", "b", "c"])
def test_classes_do_not_overlap(datasets, name):
    frame = datasets[name]
    xs = frame[["x1", "x2"]].to_numpy()
    labels = frame["label"].to_numpy()
    distances = cdist(xs[labels == 0], xs[labels == 1])
    assert distances.min() > 0.0
    # Labels are a function of the position: no duplicated point carries two labels.
    assert not frame.duplicated(["x1", "x2"]).any()


@pytest.mark.parametrize("name", ["b", "c"])
def test_margin_separates_opposite_classes(datasets, name):
    # For B (dense-polyline distance minus half the spacing) and C (homothety lower bound) the distance
    # to the boundary is a true lower bound, so two points of different labels, whose segment crosses
    # the boundary, are at least 2 * margin apart. (A only uses a first-order estimate: not checked.)
    frame = datasets[name]
    xs = frame[["x1", "x2"]].to_numpy()
    labels = frame["label"].to_numpy()
    margin = SPECS[name][2]
    assert cdist(xs[labels == 0], xs[labels == 1]).min() >= 2 * margin


@pytest.mark.parametrize("name", ["a", "c"])  # B is slow to generate; A and C cover the seeding path
def test_generation_is_seeded(datasets, name):
    n, frac, margin, seed = SPECS[name]
    again = generate_dataset(name, n, frac, margin, seed)
    pd.testing.assert_frame_equal(again, datasets[name])
    other = generate_dataset(name, n, frac, margin, seed + 1)
    assert not np.allclose(other[["x1", "x2"]].to_numpy(), datasets[name][["x1", "x2"]].to_numpy())


def test_unknown_dataset_name():
    with pytest.raises(ConfigError, match="dataset.name"):
        generate_dataset("d", 100, 0.5, 0.0, 0)


@pytest.mark.parametrize("name", ["a", "c"])
def test_stratified_split(datasets, name):
    frame = datasets[name]
    split = stratified_split(frame, 0.2, 0)
    assert list(split.columns) == list(DATASET_COLUMNS)
    assert set(split["split"].unique()) == {"train", "val"}
    val = split[split["split"] == "val"]
    assert len(val) == round(0.2 * len(frame))
    n1 = int(frame["label"].sum())
    assert abs(int(val["label"].sum()) - 0.2 * n1) <= 1
    assert abs(int((val["label"] == 0).sum()) - 0.2 * (len(frame) - n1)) <= 1
    # The split only adds a column; the data and its order are unchanged.
    pd.testing.assert_frame_equal(split.drop(columns="split"), frame)
    assert frame.columns.tolist() == ["sample_id", "x1", "x2", "label"]  # input not mutated
    pd.testing.assert_frame_equal(stratified_split(frame, 0.2, 0), split)


def test_small_frame_fixture(small_frame):
    assert len(small_frame) == 200
    assert (small_frame["split"] == "val").sum() == 40
    assert small_frame.loc[small_frame["split"] == "val", "label"].sum() == 20


@pytest.fixture
def valid_frame():
    return pd.DataFrame(
        {
            "sample_id": np.arange(4, dtype=np.int64),
            "x1": [0.0, 0.25, 0.5, 1.0],
            "x2": [0.1, 0.2, 0.9, 0.4],
            "label": np.array([0, 1, 0, 1], dtype=np.int64),
            "split": ["train", "train", "val", "val"],
        }
    )


def test_load_dataset_round_trip(tmp_path, valid_frame):
    path = tmp_path / "data.parquet"
    valid_frame.to_parquet(path, index=False)
    loaded = load_dataset(path)
    pd.testing.assert_frame_equal(loaded, valid_frame)
    x, y = split_arrays(loaded, "val")
    assert x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x, np.array([[0.5, 0.9], [1.0, 0.4]], np.float32))
    np.testing.assert_array_equal(y, [0, 1])
    assert len(split_arrays(loaded)[0]) == 4


def test_load_dataset_missing_file(tmp_path):
    path = tmp_path / "absent.parquet"
    with pytest.raises(InputFileError, match="not found") as info:
        load_dataset(path)
    assert str(path) in str(info.value)


def _write(frame, tmp_path):
    path = tmp_path / "data.parquet"
    frame.to_parquet(path, index=False)
    return path


def test_load_dataset_missing_column(tmp_path, valid_frame):
    path = _write(valid_frame.drop(columns="x2"), tmp_path)
    with pytest.raises(InputFileError, match="missing column.*x2") as info:
        load_dataset(path)
    assert str(path) in str(info.value)


def test_load_dataset_nan_row(tmp_path, valid_frame):
    valid_frame.loc[2, "x1"] = np.nan
    with pytest.raises(InputFileError, match="1 row.*NaN"):
        load_dataset(_write(valid_frame, tmp_path))


def test_load_dataset_bad_label(tmp_path, valid_frame):
    valid_frame.loc[1, "label"] = 2
    with pytest.raises(InputFileError, match="label must be 0 or 1"):
        load_dataset(_write(valid_frame, tmp_path))


@pytest.mark.parametrize("value", [1.5, -0.1, np.inf])
def test_load_dataset_input_outside_unit_square(tmp_path, valid_frame, value):
    valid_frame.loc[0, "x2"] = value
    with pytest.raises(InputFileError, match=r"\[0, 1\]"):
        load_dataset(_write(valid_frame, tmp_path))


def test_load_dataset_bad_split_and_duplicate_ids(tmp_path, valid_frame):
    bad_split = valid_frame.copy()
    bad_split.loc[0, "split"] = "test"
    with pytest.raises(InputFileError, match="split"):
        load_dataset(_write(bad_split, tmp_path))
    duplicated = valid_frame.copy()
    duplicated.loc[1, "sample_id"] = 0
    with pytest.raises(InputFileError, match="unique"):
        load_dataset(_write(duplicated, tmp_path))


@pytest.mark.parametrize("content", [b"this is not a parquet file" * 20, b"", b"PAR1" + bytes(range(256)) + b"PAR1"])
def test_load_dataset_corrupt_parquet(tmp_path, content):
    path = tmp_path / "data.parquet"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match="not a readable Parquet file") as info:
        load_dataset(path)
    assert str(path) in str(info.value)
