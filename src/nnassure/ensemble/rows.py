"""The inputs of one benchmark row, read from the instance's data file and classifier files and
checked against each other: shared by the ensemble_row stage and the ensemble benchmark."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnassure.ensemble.benchmarks import Benchmark
from nnassure.ensemble.data import load_instance_data
from nnassure.ensemble.encoding import AttackProblem
from nnassure.ensemble.instances import attack_points, attack_problem
from nnassure.errors import InputFileError
from nnassure.models import load_model


@dataclass
class RowInputs:
    benchmark: Benchmark
    problem: AttackProblem
    points: np.ndarray  # indices into the instance data of the attacked points
    classifier_files: list[str]  # the weights files, as the row's result names them


def load_row_inputs(benchmark: Benchmark, data_file: str | Path, source: dict[str, Any],
                    classifier_stems: Sequence[Path], seed: int) -> RowInputs:
    """The row's attack problem on its first |C| classifiers and |X| seeded test points that every
    one of them classifies correctly. ``source``: the data source the settings expect
    (nnassure.ensemble.data.data_source). Files that are missing, corrupt or do not fit the row
    raise :class:`InputFileError` in one line."""
    row = benchmark.id
    models = [load_model(stem).model for stem in classifier_stems]
    data = load_instance_data(data_file, source)
    for stem, model in zip(classifier_stems, models, strict=True):
        if model.spec.input_dim != data.x.shape[1] or model.spec.outputs != 2:
            raise InputFileError(f"benchmark {row}: {stem} takes {model.spec.input_dim} inputs and gives "
                                 f"{model.spec.outputs} logits, the row needs {data.x.shape[1]} and 2: the classifiers "
                                 "do not fit the row; retrain them (ensemble_train)")
    try:
        points = attack_points(models, data, benchmark.points, seed)
    except ValueError as exc:
        raise InputFileError(f"benchmark {row}: {exc}; the classifiers in {classifier_stems[0].parent} do not fit "
                             "the data (retrain them)") from None
    try:
        problem = attack_problem(models, data, points, benchmark.attacks, benchmark.eps, benchmark.alpha)
    except ValueError as exc:
        raise InputFileError(f"benchmark {row}: the classifiers in {classifier_stems[0].parent} do not fit the row "
                             f"({exc}); retrain them (ensemble_train)") from None
    return RowInputs(benchmark, problem, points, [str(stem.with_suffix(".safetensors")) for stem in classifier_stems])
