"""The user's test data for an assessment: inputs and labels from ``.npz`` or Parquet, validated.

``.npz``: arrays ``x`` (or ``inputs``) of shape (n, *input_shape) or (n, prod(input_shape)), and
``y`` (or ``labels``) of shape (n,) with integer class indices. Parquet: a ``label`` column and
either one list column ``input`` (each row a flat list of prod(input_shape) numbers) or the
feature columns ``x0 .. x{d-1}`` (or, for two features, the pipeline's ``x1, x2``).

Checks (each a one-line :class:`InputFileError` naming the file): the file opens; both arrays are
there; at least one sample; the inputs reshape to the model's input; every value is finite; the
labels are whole numbers in [0, classes). Optional bounds of the input domain (``assess.domain``)
are checked too, so that a certificate clipped to the domain is about the user's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnassure.errors import InputFileError

INPUT_KEYS = ("x", "inputs")
LABEL_KEYS = ("y", "labels")


@dataclass
class AssessmentData:
    """Inputs (n, *input_shape) float32, labels (n,) int64, and where they came from."""

    x: np.ndarray
    labels: np.ndarray
    path: Path

    def __len__(self) -> int:
        return len(self.labels)


def _first(mapping: dict[str, np.ndarray], keys: tuple[str, ...], what: str, path: Path) -> np.ndarray:
    for key in keys:
        if key in mapping:
            return np.asarray(mapping[key])
    raise InputFileError(f"{path}: no {what} array; expected one named {' or '.join(repr(k) for k in keys)} "
                         f"(found {sorted(mapping) or 'none'})")


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as exc:
        raise InputFileError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
    return _first(arrays, INPUT_KEYS, "input", path), _first(arrays, LABEL_KEYS, "label", path)


def _read_parquet(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise InputFileError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    columns = table.column_names
    if "label" not in columns:
        raise InputFileError(f"{path}: no 'label' column (found {columns})")
    labels = table.column("label").to_numpy()
    if "input" in columns:
        rows = table.column("input").to_pylist()
        try:
            x = np.asarray(rows, dtype=np.float64)
        except (ValueError, TypeError):
            raise InputFileError(f"{path}: column 'input' does not hold lists of numbers of one length") from None
        return x, labels
    features = sorted((c for c in columns if c[:1] == "x" and c[1:].isdigit()), key=lambda c: int(c[1:]))
    if not features:
        raise InputFileError(f"{path}: no input columns; expected a list column 'input' or columns x0, x1, ...")
    start = int(features[0][1:])
    if [int(c[1:]) for c in features] != list(range(start, start + len(features))) or start not in (0, 1):
        raise InputFileError(f"{path}: input columns {features} are not x0..x{{d-1}} (or x1..x{{d}}) without gaps")
    x = np.stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in features], axis=1)
    return x, labels


def load_assessment_data(path: str | Path, input_shape: tuple[int, ...], classes: int,
                         domain: tuple[float, float] | None = None) -> AssessmentData:
    """Read and check the data of an assessment against the model (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: data file not found; expected a .npz or .parquet file")
    if path.suffix == ".npz":
        x, labels = _read_npz(path)
    elif path.suffix in (".parquet", ".pq"):
        x, labels = _read_parquet(path)
    else:
        raise InputFileError(f"{path}: unknown data format {path.suffix!r}; expected .npz or .parquet")
    if x.dtype.kind not in "fiu":
        raise InputFileError(f"{path}: inputs are of type {x.dtype}; expected numbers")
    if len(x) == 0:
        raise InputFileError(f"{path}: no samples")
    if labels.ndim != 1 or len(labels) != len(x):
        raise InputFileError(f"{path}: {len(x)} inputs but labels of shape {labels.shape}; expected ({len(x)},)")
    size = int(np.prod(input_shape))
    if x.shape[1:] != tuple(input_shape):
        if int(np.prod(x.shape[1:])) != size:
            raise InputFileError(f"{path}: inputs have shape {tuple(x.shape[1:])} per sample; the model expects "
                                 f"{tuple(input_shape)} ({size} values)")
        x = x.reshape(len(x), *input_shape)
    if not np.isfinite(x).all():
        flat = x.reshape(len(x), -1)
        bad = np.argwhere(~np.isfinite(flat))[0]
        raise InputFileError(f"{path}: sample {int(bad[0])} holds a non-finite value ({flat[tuple(bad)]})")
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or (labels != np.round(labels)).any():
            raise InputFileError(f"{path}: labels must be whole class indices")
    elif labels.dtype.kind not in "iu":
        raise InputFileError(f"{path}: labels are of type {labels.dtype}; expected integer class indices")
    labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() >= classes:
        raise InputFileError(f"{path}: labels range over [{labels.min()}, {labels.max()}]; the model has {classes} "
                             f"classes, so labels must lie in [0, {classes - 1}]")
    if domain is not None and (x.min() < domain[0] or x.max() > domain[1]):
        raise InputFileError(f"{path}: inputs range over [{x.min():.6g}, {x.max():.6g}], outside assess.domain "
                             f"[{domain[0]:g}, {domain[1]:g}]")
    return AssessmentData(x=np.ascontiguousarray(x, dtype=np.float32), labels=labels, path=path)
