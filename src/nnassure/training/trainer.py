"""Adam training with batch size 32 and early stopping on the validation loss (Sec. 4.2)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from nnassure.models import MLP, MLPSpec
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
    model: MLP
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
    """Train an MLP on Eq. (1); keep the weights of the epoch with the lowest validation loss."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = MLP(MLPSpec(depth=hparams.depth, width=hparams.width, dropout=hparams.dropout,
                        input_dim=x_train.shape[1]))
    optimizer = torch.optim.Adam(model.parameters(), lr=hparams.lr, weight_decay=hparams.weight_decay)
    balance = class_balance_weight(y_train)
    xt, yt = torch.tensor(x_train, dtype=torch.float32), torch.tensor(y_train, dtype=torch.float32)
    xv, yv = torch.tensor(x_val, dtype=torch.float32), torch.tensor(y_val, dtype=torch.float32)

    best_state = copy.deepcopy(model.state_dict())
    best_loss, best_epoch, stale = float("inf"), 0, 0
    history: list[dict[str, float]] = []
    bar = tqdm(range(1, hparams.max_epochs + 1), desc=description, disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        order = torch.randperm(len(xt), generator=generator)
        total = 0.0
        for start in range(0, len(xt), hparams.batch_size):
            idx = order[start : start + hparams.batch_size]
            optimizer.zero_grad()
            loss = weighted_bce(model(xt[idx]), yt[idx], balance, cost_fn, cost_fp)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        with torch.no_grad():
            val_loss = float(weighted_bce(model(xv), yv, balance, cost_fn, cost_fp))
        history.append({"epoch": epoch, "train_loss": total / len(xt), "val_loss": val_loss})
        bar.set_postfix(val_loss=f"{val_loss:.4f}")
        if val_loss < best_loss:
            best_loss, best_epoch, stale = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= hparams.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model=model, best_epoch=best_epoch, best_val_loss=best_loss, history=history)
