"""Adam training with early stopping on the validation loss: the cost-weighted one-logit MLPs
(batch size 32, Sec. 4.2 of the verified-classification paper) and multi-class image classifiers."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from nnassure.models import MLP, ConvSpec, MLPSpec, build_model
from nnassure.training.loss import class_balance_weight, weighted_bce


@dataclass(frozen=True)
class Hyperparameters:
    depth: int
    width: int
    dropout: float
    lr: float
    weight_decay: float
    batch_size: int = 32
    max_epochs: int = 200
    patience: int = 15


@dataclass
class TrainResult:
    model: torch.nn.Module
    best_epoch: int
    best_val_loss: float
    history: list[dict[str, float]] = field(default_factory=list)


def predict_logits(model: torch.nn.Module, inputs: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        x = torch.tensor(inputs, dtype=torch.float32)
        out = [model(x[i : i + batch_size]).reshape(-1) for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()


def predict_labels(model: torch.nn.Module, inputs: np.ndarray) -> np.ndarray:
    """Class 1 when sigma(a) >= 0.5, i.e. a >= 0 (Sec. 3.1)."""
    return (predict_logits(model, inputs) >= 0).astype(np.int64)


def _fit(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    lr: float,
    weight_decay: float,
    batch_size: int,
    max_epochs: int,
    patience: int,
    seed: int,
    progress: bool,
    description: str,
    optimizer_name: str = "adam",
    validation: Callable[[torch.nn.Module], tuple[tuple[float, ...], dict[str, float]]] | None = None,
    batch_loss: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]
    | None = None,
    after_step: Callable[[torch.nn.Module], None] | None = None,
) -> TrainResult:
    """Adam (or SGD with momentum 0.9) with early stopping: keep the weights of the epoch with the
    best validation score, by default the lowest validation loss.

    ``validation(model)`` replaces that criterion: it returns the score (higher is better,
    compared as a tuple) and the metrics the history records, ``val_loss`` among them.

    ``batch_loss(model, x, y, idx, epoch)`` replaces ``loss_fn(model(x), y)`` as a mini-batch's
    training loss (``idx``: the batch's indices into the training set, ``epoch`` from 1), for
    training that perturbs the batch or changes the loss (the KRI zoo's robustifying measures);
    ``after_step(model)`` runs after every optimiser step (e.g. a projection of the weights).
    Without them the loop is unchanged."""
    xt, yt, xv, yv = data
    generator = torch.Generator().manual_seed(seed)
    if optimizer_name == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    elif optimizer_name == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    else:
        raise ValueError(f"unknown optimizer {optimizer_name!r}; expected adam or sgd")
    if validation is None:
        def validation(model: torch.nn.Module) -> tuple[tuple[float, ...], dict[str, float]]:
            with torch.no_grad():
                val_loss = float(loss_fn(model(xv), yv))
            return (-val_loss,), {"val_loss": val_loss}

    best_state = copy.deepcopy(model.state_dict())
    best_key: tuple[float, ...] = (float("-inf"),)
    best_loss, best_epoch, stale = float("inf"), 0, 0
    history: list[dict[str, float]] = []
    bar = tqdm(range(1, max_epochs + 1), desc=description, disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        order = torch.randperm(len(xt), generator=generator)
        total = 0.0
        for start in range(0, len(xt), batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad()
            if batch_loss is None:
                loss = loss_fn(model(xt[idx]), yt[idx])
            else:
                loss = batch_loss(model, xt[idx], yt[idx], idx, epoch)
            loss.backward()
            optimizer.step()
            if after_step is not None:
                after_step(model)
            total += float(loss.detach()) * len(idx)
        model.eval()
        key, metrics = validation(model)
        history.append({"epoch": epoch, "train_loss": total / len(xt), **metrics})
        bar.set_postfix({name: f"{value:.4f}" for name, value in metrics.items()})
        if key > best_key:
            best_key, best_loss, best_epoch, stale = key, metrics["val_loss"], epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model=model, best_epoch=best_epoch, best_val_loss=best_loss, history=history)


def train_mlp(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    hparams: Hyperparameters,
    cost_fn: float,
    cost_fp: float = 1.0,
    seed: int = 0,
    progress: bool = True,
    description: str = "train",
) -> TrainResult:
    """Train a one-logit MLP on Eq. (1); keep the weights of the epoch with the lowest validation loss."""
    torch.manual_seed(seed)
    model = MLP(MLPSpec(depth=hparams.depth, width=hparams.width, dropout=hparams.dropout,
                        input_dim=x_train.shape[1]))
    balance = class_balance_weight(y_train)
    data = (torch.tensor(x_train, dtype=torch.float32), torch.tensor(y_train, dtype=torch.float32),
            torch.tensor(x_val, dtype=torch.float32), torch.tensor(y_val, dtype=torch.float32))

    def loss_fn(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return weighted_bce(logits, labels, balance, cost_fn, cost_fp)

    return _fit(model, loss_fn, data, hparams.lr, hparams.weight_decay, hparams.batch_size, hparams.max_epochs,
                hparams.patience, seed, progress, description)


def train_classifier(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    spec: MLPSpec | ConvSpec,
    lr: float,
    weight_decay: float = 0.0,
    batch_size: int = 64,
    max_epochs: int = 100,
    patience: int = 10,
    seed: int = 0,
    progress: bool = True,
    description: str = "train",
    optimizer: str = "adam",
) -> TrainResult:
    """Train a multi-class MLP or ConvNet (``spec.outputs`` logits) with cross-entropy and early
    stopping (Adam, or SGD as some of the ensemble paper's classifiers)."""
    if spec.outputs < 2:
        raise ValueError(f"a classifier needs at least 2 outputs, got {spec.outputs}")
    if y_train.min() < 0 or y_train.max() >= spec.outputs:
        raise ValueError(f"labels must lie in 0..{spec.outputs - 1}, got {y_train.min()}..{y_train.max()}")
    torch.manual_seed(seed)
    model = build_model(spec)
    data = (torch.tensor(x_train, dtype=torch.float32), torch.tensor(y_train, dtype=torch.int64),
            torch.tensor(x_val, dtype=torch.float32), torch.tensor(y_val, dtype=torch.int64))
    return _fit(model, torch.nn.functional.cross_entropy, data, lr, weight_decay, batch_size, max_epochs, patience,
                seed, progress, description, optimizer)


def predict_classes(model: torch.nn.Module, inputs: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Top-1 class of a multi-class model (ties go to the lowest index, as argmax does)."""
    model.eval()
    with torch.no_grad():
        x = torch.tensor(inputs, dtype=torch.float32)
        out = [model(x[i : i + batch_size]).argmax(dim=1) for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()
