"""Benchmark instances of the ensemble paper (Sec. 6.1): binary image classifiers and the data
points X they are attacked on.

- Digit pairs (0/1, 0/2, 3/6, 4/5, 7/8) from scikit-learn's 8x8 digits, resized with OpenCV to
  the benchmark's size; traffic signs "give way" vs "priority road" rendered in code (the
  shared generator of nnassure.data.signs), RGB.
- |C| ReLU classifiers with two logits, dense or with 1-3 convolutions and max-pooling, trained
  alternately with Adam and SGD on different seeds (the paper used both optimizers but does not
  say which classifier used which).
- X: |X| test points that every classifier gets right (seeded choice), so a value measures
  what the attack does rather than errors already there; the paper does not say how X was
  chosen. Inputs are in [0, 1] and, as in the paper, x + delta is not clipped to that range.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnassure.data.images import load_digits_images, split_indices
from nnassure.data.signs import render_signs
from nnassure.ensemble.encoding import AttackProblem
from nnassure.ensemble.layers import network_layers
from nnassure.errors import NnassureError
from nnassure.models import MLP, ConvNet, ConvSpec, MLPSpec
from nnassure.training import predict_classes, train_classifier

SIGN_PAIR = ("give_way", "priority_road")


@dataclass
class PairData:
    x: np.ndarray  # (n, d) float32 in [0, 1], images flattened in HWC order
    labels: np.ndarray  # 0 / 1
    split: np.ndarray  # train / val / test
    shape: tuple[int, int, int]  # (H, W, C) of one image


def digit_pair(digits: tuple[int, int], size: int, seed: int = 0) -> PairData:
    images, labels = load_digits_images(size)
    keep = np.isin(labels, digits)
    x = images[keep].reshape(keep.sum(), -1).astype(np.float32)
    y = (labels[keep] == digits[1]).astype(np.int64)
    return PairData(x, y, split_indices(y, (0.6, 0.2, 0.2), seed), (size, size, 1))


def sign_pair(size: int, per_class: int = 300, seed: int = 0) -> PairData:
    images, labels = render_signs(2 * per_class, size, seed, SIGN_PAIR)
    x = (images.astype(np.float32) / 255.0).reshape(len(images), -1)
    return PairData(x, labels.astype(np.int64), split_indices(labels, (0.6, 0.2, 0.2), seed), (size, size, 3))


@dataclass(frozen=True)
class ClassifierShape:
    """The architecture of every classifier of an ensemble: dense ReLU layers, or convolutions
    (``conv_layers`` > 0) with max-pooling and one dense ReLU layer (nnassure.models.ConvSpec)."""

    conv_layers: int = 0
    depth: int = 2  # dense: hidden layers
    width: int = 10  # dense: units per hidden layer; conv: units of the dense layer
    filters: int = 2
    kernel: int = 3
    pool: int = 2

    def spec(self, image: tuple[int, int, int]) -> MLPSpec | ConvSpec:
        height, width, channels = image
        if self.conv_layers:
            return ConvSpec(height, width, channels, self.conv_layers, self.filters, self.kernel, self.pool,
                            self.width, 2)
        return MLPSpec(depth=self.depth, width=self.width, input_dim=height * width * channels, outputs=2)


def train_ensemble(data: PairData, n_classifiers: int, shape: ClassifierShape, seed: int = 0,
                   max_epochs: int = 100, progress: bool = False, first_optimizer: int = 0
                   ) -> tuple[list[MLP | ConvNet], list[float], list[str]]:
    """|C| classifiers, their test accuracies and optimizers, alternately Adam (lr 5e-3) and SGD
    with momentum (lr 0.05), starting with Adam (``first_optimizer`` 0) or SGD (1)."""
    x_train, y_train = data.x[data.split == "train"], data.labels[data.split == "train"]
    x_val, y_val = data.x[data.split == "val"], data.labels[data.split == "val"]
    x_test, y_test = data.x[data.split == "test"], data.labels[data.split == "test"]
    models, accuracies, optimizers = [], [], []
    for c in range(n_classifiers):
        optimizer, lr = ("adam", 5e-3) if (c + first_optimizer) % 2 == 0 else ("sgd", 0.05)
        result = train_classifier(x_train, y_train, x_val, y_val, shape.spec(data.shape), lr, max_epochs=max_epochs,
                                  patience=10, seed=seed + c, progress=progress, optimizer=optimizer,
                                  description=f"classifier {c + 1}/{n_classifiers}")
        models.append(result.model)
        accuracies.append(float(np.mean(predict_classes(result.model, x_test) == y_test)))
        optimizers.append(optimizer)
    return models, accuracies, optimizers


class AccuracyBarError(NnassureError):
    """No seed gave a classifier that reaches the test-accuracy bar."""


@dataclass
class TrainedClassifier:
    model: MLP | ConvNet
    accuracy: float  # on the test split
    optimizer: str  # adam | sgd
    seed: int  # the seed of the attempt that gave this classifier


def train_to_bar(data: PairData, shape: ClassifierShape, index: int, bar: float, attempts: int, seed: int = 0,
                 max_epochs: int = 100, progress: bool = False,
                 on_attempt: Callable[[dict[str, Any]], None] | None = None) -> TrainedClassifier:
    """Classifier ``index`` (1-based) of an ensemble, trained until its test accuracy reaches ``bar``.

    Attempt k (0-based) trains on seed ``seed + index + 1000 k``: classifiers of one ensemble get
    different seeds, and the 1000 stride keeps a retry of one from repeating another's seed.
    Odd indices use Adam, even ones SGD, so that the ensemble alternates the paper's two
    optimizers. Returns the first classifier at the bar; raises :class:`AccuracyBarError` (with the
    best accuracy reached) if none of the ``attempts`` gets there. ``on_attempt`` receives
    ``{"attempt", "seed", "test_accuracy"}`` after each attempt (e.g. to log it).
    """
    best: TrainedClassifier | None = None
    for attempt in range(attempts):
        attempt_seed = seed + index + 1000 * attempt
        models, accuracies, optimizers = train_ensemble(data, 1, shape, seed=attempt_seed, max_epochs=max_epochs,
                                                        progress=progress, first_optimizer=(index - 1) % 2)
        if on_attempt is not None:
            on_attempt({"attempt": attempt, "seed": attempt_seed, "test_accuracy": accuracies[0]})
        if best is None or accuracies[0] > best.accuracy:
            best = TrainedClassifier(models[0], accuracies[0], optimizers[0], attempt_seed)
        if accuracies[0] >= bar:
            break
    if best is None or best.accuracy < bar:
        reached = f"{best.accuracy:.3f}" if best is not None else "no"
        raise AccuracyBarError(f"classifier {index} reached {reached} test accuracy with {attempts} seeds, "
                               f"below the bar {bar}")
    return best


def attack_points(models: Sequence[MLP | ConvNet], data: PairData, n_points: int, seed: int = 0) -> np.ndarray:
    """Indices of ``n_points`` test points every classifier classifies correctly."""
    test = np.flatnonzero(data.split == "test")
    correct = np.all([predict_classes(m, data.x[test]) == data.labels[test] for m in models], axis=0)
    candidates = test[correct]
    if len(candidates) < n_points:
        raise ValueError(f"only {len(candidates)} test points are classified correctly by every classifier")
    return np.sort(np.random.default_rng(seed).choice(candidates, n_points, replace=False))


def attack_problem(models: Sequence[MLP | ConvNet], data: PairData, points: np.ndarray, attacks: int, eps: float,
                   alpha: float) -> AttackProblem:
    return AttackProblem([network_layers(m) for m in models], data.x[points].astype(np.float64), data.labels[points],
                         attacks, eps, alpha)
