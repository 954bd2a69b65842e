"""Training of the flow classifier (Wu & Kwiatkowska, Sec. 6: a CNN + LSTM on the optical flow).

Adam on the cross-entropy of the motion classes, seeded mini-batches, early stopping: the weights
kept are those of the epoch with the best validation accuracy, ties broken by the lower validation
loss. Accuracy is what the bounds stages need (they analyse correctly classified clips), and on
the easy synthetic motions it saturates early while the loss keeps moving, so the loss alone
would keep training long after the classifier stopped changing its decisions, and accuracy
alone could not tell the saturated epochs apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from nnassure.training import predict_classes
from nnassure.training.trainer import _fit
from nnassure.video.model import FlowLSTM, FlowLSTMSpec


@dataclass
class VideoTrainResult:
    """The trained model (best epoch's weights, evaluation mode) and how it got there."""

    model: FlowLSTM
    accuracy: dict[str, float]  # "train", "val" and (when given) "test"
    epochs: int  # epochs run (early stopping may end before max_epochs)
    best_epoch: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def _accuracy_and_loss(model: FlowLSTM, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float, float]:
    model.eval()
    correct, total = 0, 0.0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(x[start : start + batch_size])
            labels = y[start : start + batch_size]
            total += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
            correct += int((logits.argmax(dim=1) == labels).sum())
    return correct / len(x), total / len(x)


def train_flow_lstm(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    spec: FlowLSTMSpec,
    lr: float,
    weight_decay: float = 0.0,
    batch_size: int = 32,
    max_epochs: int = 60,
    patience: int = 8,
    seed: int = 0,
    test: tuple[np.ndarray, np.ndarray] | None = None,
    progress: bool = True,
    description: str = "train flow_lstm",
) -> VideoTrainResult:
    """Train a :class:`FlowLSTM` of ``spec`` on ``(flows, labels)`` pairs; deterministic for a seed.

    ``flows`` are float32 ``(n, flows, 2, grid, grid)``, labels int64 in ``0..classes-1``. Training
    stops after ``patience`` epochs without a better validation (accuracy, -loss); the returned
    accuracies are those of the kept weights on every split given.
    """
    splits = {"train": train, "val": val, **({"test": test} if test is not None else {})}
    for name, (x, y) in splits.items():
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"{name} split: {len(x)} flow sequences but {len(y)} labels (need at least one)")
        if x.ndim != 5 or tuple(x.shape[1:]) != spec.input_shape:
            raise ValueError(f"{name} split: flows of shape {tuple(x.shape[1:])}, the spec expects {spec.input_shape}")
        if y.min() < 0 or y.max() >= spec.classes:
            raise ValueError(f"{name} split: labels must lie in 0..{spec.classes - 1}, got {y.min()}..{y.max()}")
    started = time.perf_counter()
    # One seed fixes the initial weights (drawn right after it) and, through its own generator,
    # the batch order, so two runs with the same seed give the same weights bit for bit on CPU.
    torch.manual_seed(seed)
    model = FlowLSTM(spec)
    xt, yt = torch.tensor(train[0], dtype=torch.float32), torch.tensor(train[1], dtype=torch.int64)
    xv, yv = torch.tensor(val[0], dtype=torch.float32), torch.tensor(val[1], dtype=torch.int64)

    def validation(model: torch.nn.Module) -> tuple[tuple[float, ...], dict[str, float]]:
        # Accuracy first: on these easy classes it saturates early while the loss keeps moving.
        accuracy, loss = _accuracy_and_loss(model, xv, yv, 1024)
        return (accuracy, -loss), {"val_loss": loss, "val_accuracy": accuracy}

    fitted = _fit(model, torch.nn.functional.cross_entropy, (xt, yt, xv, yv), lr, weight_decay, batch_size,
                  max_epochs, patience, seed, progress, description, validation=validation)
    model, history, best_epoch, epochs = fitted.model, fitted.history, fitted.best_epoch, len(fitted.history)
    accuracy = {name: float(np.mean(predict_classes(model, x) == y)) for name, (x, y) in splits.items()}
    return VideoTrainResult(model=model, accuracy=accuracy, epochs=epochs, best_epoch=best_epoch,
                            seconds=time.perf_counter() - started, history=history)
