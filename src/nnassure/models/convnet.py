"""Small convolutional classifiers for the ensemble benchmarks (``mnist_0_1_2convs`` and
``_3convs`` of Gross et al., Sec. 6.1): convolutions with ReLU, one max-pooling layer, then a dense
ReLU layer and the logits.

Inputs are flat vectors in the data sets' HWC order (as every other model of the pipeline takes
them); the network reshapes them to NCHW itself, so the attack encodings and checks see one flat
input vector whatever the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ConvSpec:
    """``conv_layers`` x (Conv2d k x k, stride 1, no padding; ReLU), MaxPool2d(pool), then
    Linear(hidden) + ReLU and Linear(outputs)."""

    height: int
    width: int
    channels: int  # of the input image (1 grey, 3 RGB)
    conv_layers: int
    filters: int = 2
    kernel: int = 3
    pool: int = 2
    hidden: int = 8
    outputs: int = 2

    def __post_init__(self) -> None:
        values = (self.height, self.width, self.channels, self.conv_layers, self.filters, self.kernel, self.pool,
                  self.hidden, self.outputs)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
            raise ValueError(f"invalid conv spec {self}: every field must be a positive integer")
        if self.outputs < 2:
            raise ValueError(f"invalid conv spec {self}: a classifier needs at least 2 outputs")
        side = min(self.height, self.width) - self.conv_layers * (self.kernel - 1)
        if side < self.pool:
            raise ValueError(f"invalid conv spec {self}: a {self.height}x{self.width} image is too small for "
                             f"{self.conv_layers} {self.kernel}x{self.kernel} convolutions and {self.pool}x{self.pool} "
                             "pooling")

    @property
    def input_dim(self) -> int:
        return self.height * self.width * self.channels

    def feature_shape(self) -> tuple[int, int, int]:
        """(C, H, W) after the max-pooling layer."""
        shrink = self.conv_layers * (self.kernel - 1)
        return (self.filters, (self.height - shrink) // self.pool, (self.width - shrink) // self.pool)


class ConvNet(nn.Module):
    def __init__(self, spec: ConvSpec) -> None:
        super().__init__()
        self.spec = spec
        layers: list[nn.Module] = []
        in_channels = spec.channels
        for _ in range(spec.conv_layers):
            layers += [nn.Conv2d(in_channels, spec.filters, spec.kernel), nn.ReLU()]
            in_channels = spec.filters
        layers.append(nn.MaxPool2d(spec.pool))
        self.features = nn.Sequential(*layers)
        c, h, w = spec.feature_shape()
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, spec.hidden), nn.ReLU(),
                                        nn.Linear(spec.hidden, spec.outputs))

    def image(self, x: torch.Tensor) -> torch.Tensor:
        """Flat HWC inputs (n, d) as NCHW images."""
        spec = self.spec
        return x.reshape(-1, spec.height, spec.width, spec.channels).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.image(x)))
