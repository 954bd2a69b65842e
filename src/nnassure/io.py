"""Atomic file writing: an output appears complete or not at all, so a stage killed midway leaves
no file that looks finished and Snakemake reruns it."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnassure.errors import InputFileError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_parquet(frame: pd.DataFrame, path: str | Path, descriptions: Mapping[str, str] | None = None) -> None:
    """Write ``frame`` without its index; ``descriptions`` (column -> sentence) go into the schema.

    Each description is stored as the field metadata ``b"description"`` of its column, so that
    whoever opens the file (``pyarrow.parquet.read_schema(path).field(name).metadata``) reads what
    the column means beside the data. Every key must be a column of ``frame``: a description of a
    column that is not there is a stale schema, refused rather than dropped.
    """
    if not descriptions:
        with atomic_path(path) as tmp:
            frame.to_parquet(tmp, index=False)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    unknown = sorted(set(descriptions) - {str(c) for c in frame.columns})
    if unknown:
        raise ValueError(f"descriptions of columns not in the frame: {', '.join(unknown)}")
    # from_pandas(preserve_index=False) is what to_parquet(index=False) does; the pandas metadata
    # (dtypes) stays in the schema's own metadata, so read_parquet gives the same frame back.
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = [field.with_metadata({**(field.metadata or {}), b"description": descriptions[field.name].encode()})
              if field.name in descriptions else field for field in table.schema]
    table = table.cast(pa.schema(fields, metadata=table.schema.metadata))
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(document: Any, path: str | Path) -> None:
    write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", path)


def write_csv(frame: pd.DataFrame, path: str | Path, float_format: str = "%.4f") -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format=float_format, lineterminator="\n")


def read_npz(path: str | Path, names: tuple[str, ...], remedy: str) -> dict[str, np.ndarray]:
    """The arrays ``names`` of an ``.npz`` file, read without pickle.

    Every problem (missing file, not a zip archive, a missing or pickled array, a damaged archive)
    raises :class:`InputFileError` in one line naming the file, the problem and ``remedy`` (what the
    user should do, e.g. "run the data stage first").
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: file not found ({remedy})")
    # np.load takes any file that is not .npy or zip for a pickle and then blames pickling: check the
    # zip signature first so that the message says what the file really is.
    if not path.is_file() or not zipfile.is_zipfile(path):
        raise InputFileError(f"{path}: not an .npz archive ({remedy})")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in names if name not in archive.files]
            if missing:
                raise InputFileError(f"{path}: missing array(s) {', '.join(missing)}; expected arrays "
                                     f"{', '.join(names)} ({remedy})")
            for name in names:
                try:
                    arrays[name] = archive[name]
                except ValueError as exc:
                    if "allow_pickle" not in str(exc):
                        raise
                    raise InputFileError(f"{path}: array {name!r} holds pickled Python objects; expected plain "
                                         f"numeric or text arrays ({remedy})") from None
    except InputFileError:
        raise
    except Exception as exc:  # a damaged archive raises several unrelated types (zip, zlib, numpy header)
        reason = " ".join(str(exc).split())
        raise InputFileError(f"{path}: not a readable .npz archive ({type(exc).__name__}: {reason}; {remedy})") \
            from None
    return arrays
