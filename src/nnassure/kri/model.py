"""The CNNs of the KRI model zoo (the paper's ResNets of Table 1, at a size CPU training and CROWN
can afford): 3x3 convolutions with ReLU, the first at stride 1 and the others at stride 2 (no
pooling layer, which keeps CROWN's bounds tight), then a dense ReLU layer and the logits.

Inputs are images in NCHW order, float in [0, 1] (``(n, 3, size, size)``); the image data sets
store NHWC, so :func:`to_model_input` converts. The model is a plain ``nn.Sequential`` of Conv2d,
ReLU, Flatten and Linear, which auto_LiRPA bounds, ART wraps, and the file format of every model of
the project (safetensors weights, JSON spec) stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nnassure.errors import InputFileError
from nnassure.models.mlp import read_model_files, write_model_files

FORMAT = "nnassure-kri-cnn-1"


@dataclass(frozen=True)
class KriCNNSpec:
    image_size: int
    channels: tuple[int, ...]
    hidden: int
    classes: int
    in_channels: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        values = (self.image_size, self.hidden, self.classes, self.in_channels, *self.channels)
        if not self.channels or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
            raise ValueError(f"invalid KRI CNN spec {self}: every size must be a positive integer")
        if self.classes < 2:
            raise ValueError(f"invalid KRI CNN spec {self}: a classifier needs at least 2 classes")
        if self.feature_side() < 1:
            raise ValueError(f"invalid KRI CNN spec {self}: {self.image_size}-pixel images are too small for "
                             f"{len(self.channels) - 1} stride-2 convolutions")

    def feature_side(self) -> int:
        side = self.image_size
        for _ in self.channels[1:]:
            side = (side + 1) // 2  # 3x3, padding 1, stride 2
        return side

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.image_size, self.image_size)


class KriCNN(nn.Sequential):
    def __init__(self, spec: KriCNNSpec) -> None:
        layers: list[nn.Module] = []
        previous = spec.in_channels
        for i, channels in enumerate(spec.channels):
            layers += [nn.Conv2d(previous, channels, 3, stride=1 if i == 0 else 2, padding=1), nn.ReLU()]
            previous = channels
        side = spec.feature_side()
        layers += [nn.Flatten(), nn.Linear(previous * side * side, spec.hidden), nn.ReLU(),
                   nn.Linear(spec.hidden, spec.classes)]
        super().__init__(*layers)
        self.spec = spec


@dataclass
class KriModelFile:
    model: KriCNN
    metadata: dict[str, Any] = field(default_factory=dict)


def to_model_input(images: np.ndarray) -> np.ndarray:
    """NHWC images (as stored) as the NCHW float32 array the model reads."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"images of shape {images.shape}: expected (n, height, width, channels)")
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


def save_kri_model(model: KriCNN, stem: str | Path, metadata: dict[str, Any] | None = None) -> None:
    """``<stem>.safetensors`` and ``<stem>.json``, each written atomically."""
    write_model_files(stem, model, FORMAT, metadata)


def load_kri_model(stem: str | Path) -> KriModelFile:
    """A model written by :func:`save_kri_model`, float32, in evaluation mode; a missing, corrupt
    or mismatched file raises :class:`InputFileError` naming it."""
    model, metadata = read_model_files(stem, FORMAT, KriCNNSpec, KriCNN, "KRI model", "kri_train")
    return KriModelFile(model, metadata)  # type: ignore[arg-type]


def check_images(model: KriCNN, images: np.ndarray, what: str) -> None:
    """Refuse NHWC images the model cannot read, naming both shapes."""
    spec = model.spec
    expected = (spec.image_size, spec.image_size, spec.in_channels)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise InputFileError(f"{what}: images have shape {tuple(images.shape)}; the model expects "
                             f"(n, {', '.join(map(str, expected))}) (height, width, channels)")


@torch.no_grad()
def predict_logits(model: nn.Module, inputs: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """float32 logits of NCHW ``inputs``, in batches."""
    model.eval()
    out = [model(torch.as_tensor(inputs[i:i + batch_size])).numpy() for i in range(0, len(inputs), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
