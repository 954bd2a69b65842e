"""An ensemble instance's data set as one file, made once and read by every job of the instance.

Every row of an instance (``<name>-<H>x<W>``) trains on, and attacks points of, the same binary
data set (nnassure.ensemble.instances.PairData). Rendering the signs or resizing the digits in
each training and row job would repeat the same work |C| + rows times and tie the jobs' results
to the generator staying bit-stable between them; one ``.npz`` written by the ensemble_data stage
removes both. The file records what it was made from (instance, data set, digits, size, seed,
signs per class) so that a file made for other settings is refused instead of silently used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from nnassure.ensemble.benchmarks import Benchmark
from nnassure.ensemble.instances import PairData
from nnassure.errors import InputFileError
from nnassure.io import atomic_path, read_npz

DATA_FORMAT = "nnassure.ensemble-data/1"
ARRAYS = ("x", "labels", "split", "shape", "source")
SPLITS = ("train", "val", "test")


def data_source(benchmark: Benchmark, signs_per_class: int, seed: int) -> dict[str, Any]:
    """What an instance's data is made from; equal sources give equal data."""
    return {"format": DATA_FORMAT, "instance": benchmark.instance, "dataset": benchmark.dataset,
            "digits": list(benchmark.digits) if benchmark.digits else None, "height": benchmark.height,
            "width": benchmark.width,
            # The signs' count only matters for signs; recording it for digits too would refuse a
            # digits file after an unrelated change of ensemble.signs_per_class.
            "signs_per_class": int(signs_per_class) if benchmark.dataset == "signs" else None,
            "seed": int(seed)}


def save_instance_data(data: PairData, source: dict[str, Any], path: str | Path) -> None:
    """Write ``data`` and its ``source`` (:func:`data_source`) to ``path`` atomically."""
    arrays = {"x": np.asarray(data.x, dtype=np.float32), "labels": np.asarray(data.labels, dtype=np.int64),
              "split": np.asarray(data.split).astype("<U5"), "shape": np.asarray(data.shape, dtype=np.int64),
              "source": np.array(json.dumps(source, sort_keys=True))}
    # Through a file handle: given a path, numpy would append ".npz" to the temporary name.
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def _problem(arrays: dict[str, np.ndarray]) -> str | None:
    x, labels, split, shape = arrays["x"], arrays["labels"], arrays["split"], arrays["shape"]
    if x.ndim != 2 or x.dtype != np.float32:
        return f"x has shape {x.shape} and dtype {x.dtype}; expected (n, d) float32"
    if labels.shape != (len(x),) or not np.issubdtype(labels.dtype, np.integer) or not np.isin(labels, (0, 1)).all():
        return f"labels must be {len(x)} integers 0 or 1"
    if split.shape != (len(x),) or split.dtype.kind != "U" or not np.isin(split, SPLITS).all():
        return f"split must be {len(x)} names among {', '.join(SPLITS)}"
    if shape.shape != (3,) or not np.issubdtype(shape.dtype, np.integer) or int(np.prod(shape)) != x.shape[1]:
        return f"shape {shape.tolist()} is not (H, W, C) of the {x.shape[1]} inputs"
    if not np.isfinite(x).all():
        return "x holds NaN or infinite values"
    return None


def load_instance_data(path: str | Path, expected: dict[str, Any]) -> PairData:
    """Read and check the data written by :func:`save_instance_data`.

    ``expected`` is the :func:`data_source` the caller's settings give; a file made from another
    source is refused. Every problem raises :class:`InputFileError` naming the file, in one line.
    """
    path = Path(path)
    remedy = f"run the ensemble_data stage for ensemble.instance={expected['instance']}"
    arrays = read_npz(path, ARRAYS, remedy)
    try:
        source = json.loads(str(arrays["source"]))
    except ValueError as exc:
        raise InputFileError(f"{path}: the array 'source' is not JSON ({exc}; {remedy} again)") from None
    if not isinstance(source, dict):
        raise InputFileError(f"{path}: the array 'source' is not a JSON mapping ({remedy} again)")
    if source != expected:
        changed = sorted(k for k in set(source) | set(expected) if source.get(k) != expected.get(k))
        raise InputFileError(f"{path}: made for other settings ({', '.join(changed)} differ); {remedy} again")
    problem = _problem(arrays)
    if problem:
        raise InputFileError(f"{path}: {problem} ({remedy} again)")
    height, width, channels = (int(v) for v in arrays["shape"])
    return PairData(arrays["x"], arrays["labels"].astype(np.int64, copy=False), arrays["split"],
                    (height, width, channels))
