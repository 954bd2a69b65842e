"""Reading a data set file and checking that it is what the stages expect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nnassure.errors import InputFileError

DATASET_COLUMNS = ("sample_id", "x1", "x2", "label", "split")
FEATURES = ("x1", "x2")


def check_dataset(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Raise :class:`InputFileError` unless ``frame`` is a valid data set table."""
    missing = [c for c in DATASET_COLUMNS if c not in frame.columns]
    if missing:
        raise InputFileError(
            f"{source}: missing column(s) {', '.join(missing)}; expected columns {', '.join(DATASET_COLUMNS)}"
        )
    values = frame[list(FEATURES)]
    if not np.issubdtype(values.to_numpy().dtype, np.number):
        raise InputFileError(f"{source}: columns x1, x2 must be numeric")
    nan_rows = int(frame[list(DATASET_COLUMNS)].isna().any(axis=1).sum())
    if nan_rows:
        raise InputFileError(f"{source}: {nan_rows} row(s) contain NaN or missing values; expected none")
    if ((values < 0) | (values > 1)).to_numpy().any():
        raise InputFileError(f"{source}: inputs x1, x2 must lie in [0, 1]")
    if not frame["label"].isin([0, 1]).all():
        raise InputFileError(f"{source}: label must be 0 or 1")
    if not frame["split"].isin(["train", "val"]).all():
        raise InputFileError(f"{source}: split must be 'train' or 'val'")
    if frame["sample_id"].duplicated().any():
        raise InputFileError(f"{source}: sample_id values must be unique")
    return frame


def load_dataset(path: str | Path) -> pd.DataFrame:
    """Read and check a data set Parquet file written by the data stage."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: data set file not found (run the data stage first)")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        raise InputFileError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    frame = check_dataset(frame, str(path))
    return frame.astype({"label": np.int64}).reset_index(drop=True)


def split_arrays(frame: pd.DataFrame, split: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (n, 2) float32 and labels (n,) int64 of one split, or of all rows if ``split`` is None."""
    part = frame if split is None else frame[frame["split"] == split]
    return part[list(FEATURES)].to_numpy(np.float32), part["label"].to_numpy(np.int64)
