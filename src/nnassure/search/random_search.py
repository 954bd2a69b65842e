"""Seeded random architecture search (Sec. 4.2), selected by validation cost per sample.

Trials are drawn with scikit-learn's ``ParameterSampler`` (without replacement from the grid,
so a budget larger than the grid runs every configuration once). The winner is the trial with
the lowest validation cost per sample; ties go to the lower validation loss, then the earlier
trial, so the choice is reproducible.

Every trial trains with the same ``batch_size`` (the pipeline passes ``train.batch_size``), the
one the winner is then trained with, so the winner is retrained the way it was selected; the
batch size is not itself searched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import ParameterSampler
from tqdm import tqdm

from nnassure.metrics import classification_metrics
from nnassure.training import Hyperparameters, predict_labels, train_mlp


@dataclass(frozen=True)
class SearchSpace:
    depths: list[int]
    widths: list[int]
    lrs: list[float]
    weight_decays: list[float]
    dropouts: list[float]

    def grid(self) -> dict[str, list]:
        return {"depth": list(self.depths), "width": list(self.widths), "lr": list(self.lrs),
                "weight_decay": list(self.weight_decays), "dropout": list(self.dropouts)}

    def size(self) -> int:
        return int(np.prod([len(v) for v in self.grid().values()]))


@dataclass
class SearchResult:
    trials: pd.DataFrame
    best: Hyperparameters
    best_trial: int


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
    """Train ``n_trials`` sampled architectures and pick the lowest validation cost per sample."""
    n_trials = min(n_trials, space.size())
    candidates = list(ParameterSampler(space.grid(), n_iter=n_trials, random_state=seed))
    records: list[dict[str, float]] = []
    bar = tqdm(candidates, desc="search", disable=not progress, leave=False)
    for index, params in enumerate(bar):
        hparams = Hyperparameters(
            depth=int(params["depth"]), width=int(params["width"]), dropout=float(params["dropout"]),
            lr=float(params["lr"]), weight_decay=float(params["weight_decay"]),
            batch_size=batch_size, max_epochs=max_epochs, patience=patience,
        )
        result = train_mlp(x_train, y_train, x_val, y_val, hparams, cost_fn, cost_fp, seed=seed + index,
                           progress=False)
        train_m = classification_metrics(y_train, predict_labels(result.model, x_train), cost_fn, cost_fp)
        val_m = classification_metrics(y_val, predict_labels(result.model, x_val), cost_fn, cost_fp)
        record = {
            "trial": index,
            "seed": seed + index,
            **asdict(hparams),
            "best_epoch": result.best_epoch,
            "val_loss": result.best_val_loss,
            "train_accuracy": train_m.accuracy,
            "val_accuracy": val_m.accuracy,
            "val_f1_macro": val_m.f1_macro,
            "val_cost_per_sample": val_m.cost_per_sample,
        }
        records.append(record)
        bar.set_postfix(val_cost=f"{val_m.cost_per_sample:.4f}")
        if on_trial is not None:
            on_trial(record)
    trials = pd.DataFrame(records)
    best_row = trials.sort_values(["val_cost_per_sample", "val_loss", "trial"], kind="stable").iloc[0]
    best = Hyperparameters(
        depth=int(best_row["depth"]), width=int(best_row["width"]), dropout=float(best_row["dropout"]),
        lr=float(best_row["lr"]), weight_decay=float(best_row["weight_decay"]),
        batch_size=batch_size, max_epochs=max_epochs, patience=patience,
    )
    return SearchResult(trials=trials, best=best, best_trial=int(best_row["trial"]))
