"""Seeded random architecture search (Sec. 4.2), selected by validation cost per sample.

Trials are drawn with scikit-learn's ``ParameterSampler`` (without replacement from the grid,
so a budget larger than the grid runs every configuration once). The winner is the trial with
the lowest validation cost per sample; ties go to the lower validation loss, then the earlier
trial, so the choice is reproducible.

Every trial trains with the same ``batch_size`` (the pipeline passes ``train.batch_size``), the
one the winner is then trained with, so the winner is retrained the way it was selected; the
batch size is not itself searched.

The search is three steps so that each trial can be its own job, run in parallel on a cluster,
and a last job selects (issue 12): :func:`search_candidates` draws the configurations,
:func:`run_trial` trains one of them into a record, :func:`select_best` picks the winner from the
records of all trials. :func:`run_search` is the three in one process, with the same result.
A trial depends only on its own arguments (its configuration is redrawn from the seed, its
training is seeded with ``seed + trial``), so a trial run alone gives the record it gives here.

Each record holds, under ``"search"``, what identifies the search it belongs to: the number of
trials drawn, the seed, a digest of the grid, the two costs and a digest of the data. The
selection refuses a set of records that mixes searches, misses a trial or repeats one, since
any of these would silently choose from the wrong trials.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import ParameterSampler
from tqdm import tqdm

from nnassure.errors import ConfigError, InputFileError
from nnassure.metrics import classification_metrics
from nnassure.training import Hyperparameters, predict_labels, train_mlp

# The columns of the trials table, in order (one row per trial; the search stage's _trials.csv).
TRIAL_COLUMNS = ("trial", "seed", "depth", "width", "dropout", "lr", "weight_decay", "batch_size", "max_epochs",
                 "patience", "best_epoch", "val_loss", "train_accuracy", "val_accuracy", "val_f1_macro",
                 "val_cost_per_sample")
# The settings every trial shares with the winner's retraining (checked by select_best).
_SHARED = ("batch_size", "max_epochs", "patience")


@dataclass(frozen=True)
class SearchSpace:
    depths: list[int]
    widths: list[int]
    lrs: list[float]
    weight_decays: list[float]
    dropouts: list[float]

    @classmethod
    def from_section(cls, search: Any) -> SearchSpace:
        """The space of a ``search`` config section (``search.depths`` ... ``search.dropouts``)."""
        return cls(list(search.depths), list(search.widths), list(search.lrs), list(search.weight_decays),
                   list(search.dropouts))

    def grid(self) -> dict[str, list]:
        return {"depth": list(self.depths), "width": list(self.widths), "lr": list(self.lrs),
                "weight_decay": list(self.weight_decays), "dropout": list(self.dropouts)}

    def size(self) -> int:
        return int(np.prod([len(v) for v in self.grid().values()]))

    def digest(self) -> str:
        """A short hash of the grid: its values in order, as the sampler sees them (0 and 0.0 alike)."""
        kinds = {"depth": int, "width": int}
        grid = {name: [kinds.get(name, float)(v) for v in values] for name, values in self.grid().items()}
        return hashlib.sha256(json.dumps(grid, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class SearchResult:
    trials: pd.DataFrame
    best: Hyperparameters
    best_trial: int


def _data_digest(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def search_identity(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    space: SearchSpace,
    n_trials: int,
    seed: int,
    cost_fn: float,
    cost_fp: float = 1.0,
) -> dict[str, Any]:
    """What every record of one search carries under ``"search"``: two searches with the same
    identity draw the same trials and train them on the same data with the same costs."""
    return {"n_trials": min(int(n_trials), space.size()), "seed": int(seed), "space": space.digest(),
            "cost_fn": float(cost_fn), "cost_fp": float(cost_fp),
            "data": _data_digest(x_train, y_train, x_val, y_val)}


def search_candidates(space: SearchSpace, n_trials: int, seed: int) -> list[dict[str, Any]]:
    """The configurations of the trials, trial ``i`` at index ``i`` (at most ``space.size()``)."""
    n_trials = min(n_trials, space.size())
    return list(ParameterSampler(space.grid(), n_iter=n_trials, random_state=seed))


def run_trial(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    space: SearchSpace,
    n_trials: int,
    trial: int,
    cost_fn: float,
    cost_fp: float = 1.0,
    max_epochs: int = 60,
    patience: int = 8,
    seed: int = 0,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Train trial ``trial`` of the search and return its record: the :data:`TRIAL_COLUMNS` and,
    under ``"search"``, the search's identity (:func:`search_identity`)."""
    candidates = search_candidates(space, n_trials, seed)
    if not 0 <= trial < len(candidates):
        raise ConfigError(f"trial {trial} is not one of the search's trials: expected an integer in "
                          f"0..{len(candidates) - 1} (n_trials={n_trials}, at most the {space.size()} "
                          "configurations of the space)")
    params = candidates[trial]
    hparams = Hyperparameters(
        depth=int(params["depth"]), width=int(params["width"]), dropout=float(params["dropout"]),
        lr=float(params["lr"]), weight_decay=float(params["weight_decay"]),
        batch_size=batch_size, max_epochs=max_epochs, patience=patience,
    )
    result = train_mlp(x_train, y_train, x_val, y_val, hparams, cost_fn, cost_fp, seed=seed + trial, progress=False)
    train_m = classification_metrics(y_train, predict_labels(result.model, x_train), cost_fn, cost_fp)
    val_m = classification_metrics(y_val, predict_labels(result.model, x_val), cost_fn, cost_fp)
    return {
        "trial": trial,
        "seed": seed + trial,
        **asdict(hparams),
        "best_epoch": result.best_epoch,
        "val_loss": result.best_val_loss,
        "train_accuracy": train_m.accuracy,
        "val_accuracy": val_m.accuracy,
        "val_f1_macro": val_m.f1_macro,
        # Sec. 4.2: the search's criterion, the classification cost per sample.
        "val_cost_per_sample": val_m.cost_per_sample,
        "search": search_identity(x_train, y_train, x_val, y_val, space, n_trials, seed, cost_fn, cost_fp),
    }


def trial_row(record: dict[str, Any]) -> dict[str, Any]:
    """The record's row of the trials table (its :data:`TRIAL_COLUMNS`, in order)."""
    return {column: record[column] for column in TRIAL_COLUMNS}


def _indices(trials: Sequence[int]) -> str:
    return ", ".join(str(t) for t in trials)


def select_best(
    records: Sequence[dict[str, Any]],
    batch_size: int,
    max_epochs: int,
    patience: int,
    search: dict[str, Any] | None = None,
) -> SearchResult:
    """The winner of Sec. 4.2 among the records of one search's trials: the lowest validation
    cost per sample, then the lowest validation loss, then the earliest trial.

    ``records`` must be exactly one per trial ``0..n_trials - 1`` of one search: the identity of
    ``search`` (:func:`search_identity`) if given, else that of the first record. Every trial must
    have trained with ``batch_size``, ``max_epochs`` and ``patience``, the settings the winner is
    returned with (and retrained with). Anything else raises :class:`InputFileError`.
    """
    if not records:
        raise InputFileError("no trial records to select from: expected one record per trial of the search")
    for position, record in enumerate(records):
        missing = [key for key in (*TRIAL_COLUMNS, "search") if not isinstance(record, dict) or key not in record]
        if missing:
            raise InputFileError(f"trial record {position} lacks {', '.join(missing)}: expected a record of run_trial "
                                 f"with {', '.join(TRIAL_COLUMNS)} and search")
    expected = dict(search if search is not None else records[0]["search"])
    for record in records:
        theirs = record["search"]
        differing = [f"{key} {theirs.get(key)!r}, expected {value!r}" for key, value in expected.items()
                     if not isinstance(theirs, dict) or theirs.get(key) != value]
        if differing or not isinstance(theirs, dict) or set(theirs) != set(expected):
            why = "; ".join(differing) or f"fields {sorted(theirs)}, expected {sorted(expected)}"
            raise InputFileError(f"trial {record['trial']!r} belongs to another search ({why})")
    n_trials = expected["n_trials"]
    seen: dict[int, int] = {}
    for record in records:
        trial = record["trial"]
        if isinstance(trial, bool) or not isinstance(trial, int) or not 0 <= trial < n_trials:
            raise InputFileError(f"trial {trial!r} is not one of the search's trials: expected an integer in "
                                 f"0..{n_trials - 1}")
        seen[trial] = seen.get(trial, 0) + 1
    repeated = sorted(t for t, count in seen.items() if count > 1)
    if repeated:
        raise InputFileError(f"trial(s) {_indices(repeated)} recorded more than once: expected one record per trial "
                             f"0..{n_trials - 1}")
    absent = sorted(set(range(n_trials)) - set(seen))
    if absent:
        raise InputFileError(f"trial(s) {_indices(absent)} missing: expected one record per trial 0..{n_trials - 1}")
    wanted = {"batch_size": batch_size, "max_epochs": max_epochs, "patience": patience}
    for record in records:
        for key in _SHARED:
            if record[key] != wanted[key]:
                raise InputFileError(f"trial {record['trial']} trained with {key}={record[key]!r}: expected "
                                     f"{wanted[key]!r}, the {key} the winner is trained with")
    ordered = sorted(records, key=lambda r: r["trial"])
    trials = pd.DataFrame([trial_row(r) for r in ordered], columns=list(TRIAL_COLUMNS))
    best_row = trials.sort_values(["val_cost_per_sample", "val_loss", "trial"], kind="stable").iloc[0]
    best = Hyperparameters(
        depth=int(best_row["depth"]), width=int(best_row["width"]), dropout=float(best_row["dropout"]),
        lr=float(best_row["lr"]), weight_decay=float(best_row["weight_decay"]),
        batch_size=batch_size, max_epochs=max_epochs, patience=patience,
    )
    return SearchResult(trials=trials, best=best, best_trial=int(best_row["trial"]))


def run_search(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    space: SearchSpace,
    n_trials: int,
    cost_fn: float,
    cost_fp: float = 1.0,
    max_epochs: int = 60,
    patience: int = 8,
    seed: int = 0,
    batch_size: int = 32,
    on_trial: Callable[[dict[str, float]], None] | None = None,
    progress: bool = True,
) -> SearchResult:
    """Train ``n_trials`` sampled architectures and pick the lowest validation cost per sample
    (every trial in this process; the pipeline runs each trial as its own job)."""
    n_trials = min(n_trials, space.size())
    records: list[dict[str, Any]] = []
    bar = tqdm(range(n_trials), desc="search", disable=not progress, leave=False)
    for trial in bar:
        record = run_trial(x_train, y_train, x_val, y_val, space, n_trials, trial, cost_fn, cost_fp,
                           max_epochs=max_epochs, patience=patience, seed=seed, batch_size=batch_size)
        records.append(record)
        bar.set_postfix(val_cost=f"{record['val_cost_per_sample']:.4f}")
        if on_trial is not None:
            on_trial(trial_row(record))
    return select_best(records, batch_size, max_epochs, patience)
