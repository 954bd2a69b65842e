"""Classifiers as the exact layer lists the MILP, SMT and float64 checks share.

A classifier is a sequence of :class:`DenseLayer` (an affine map, optionally followed by a ReLU)
and :class:`MaxPoolLayer` (the maximum over index groups of its input). Convolutions are affine
maps too: :func:`network_layers` unrolls each ``Conv2d`` into its dense matrix by evaluating it on
the unit vectors in float64, which is exact (a convolution is linear, and each output is a single
product-sum), so the encodings never re-implement strides or channel order and always agree with
torch's own layer. Written by hand: no library exports a torch network in this form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class DenseLayer:
    weight: np.ndarray  # (out, in), float64
    bias: np.ndarray  # (out,)
    relu: bool  # a ReLU follows


@dataclass(frozen=True)
class MaxPoolLayer:
    groups: np.ndarray  # (out, window): output u is max(input[groups[u]])


Layer = DenseLayer | MaxPoolLayer


def _as_float64(module: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(module).double().eval()


def _unrolled(module: nn.Module, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """The affine map of ``module`` on inputs of ``shape`` (C, H, W) as (weight, bias, output shape)."""
    size = int(np.prod(shape))
    module = _as_float64(module)
    with torch.no_grad():
        bias = module(torch.zeros((1, *shape), dtype=torch.float64))
        images = module(torch.eye(size, dtype=torch.float64).reshape(size, *shape))
    weight = (images - bias).reshape(size, -1).T.numpy().copy()
    return weight, bias.reshape(-1).numpy().copy(), tuple(bias.shape[1:])


def _pool_groups(pool: nn.MaxPool2d, shape: tuple[int, int, int]) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Which flat (C, H, W) inputs each output of ``pool`` takes the maximum of."""
    if pool.padding not in (0, (0, 0)) or pool.dilation not in (1, (1, 1)) or pool.ceil_mode:
        raise ValueError(f"cannot encode {pool!r}: only max-pooling without padding, dilation or ceil_mode")
    channels = shape[0]
    index = torch.arange(int(np.prod(shape)), dtype=torch.float64).reshape(1, *shape)
    kernel, stride = pool.kernel_size, pool.stride
    windows = nn.functional.unfold(index.reshape(channels, 1, *shape[1:]), kernel_size=kernel, stride=stride)
    # windows: (C, k*k, L), one column per output position, in row-major output order
    groups = windows.permute(0, 2, 1).reshape(-1, windows.shape[1]).round().long().numpy()
    with torch.no_grad():
        out_shape = tuple(pool(torch.zeros(1, *shape)).shape[1:])
    return groups, out_shape


def network_layers(network: nn.Module) -> list[Layer]:
    """The exact float64 layer list of an MLP, a ConvNet or a plain ``nn.Sequential`` of Linear/ReLU.

    The network must end in a Linear layer with one logit per class (at least 2); any other
    module (other activations, padding in pooling, ...) is refused with its name.
    """
    from nnassure.models import ConvNet

    layers: list[Layer] = []

    def add_relu(module: nn.Module) -> None:
        if not layers or not isinstance(layers[-1], DenseLayer) or layers[-1].relu:
            raise ValueError(f"cannot encode layer {module!r}: a ReLU must follow a Linear or Conv2d layer")
        last = layers[-1]
        layers[-1] = DenseLayer(last.weight, last.bias, True)

    if isinstance(network, ConvNet):
        spec = network.spec
        shape: tuple[int, ...] = (spec.channels, spec.height, spec.width)
        # the first layer also carries the HWC -> CHW permutation of the flat input
        hwc = np.arange(spec.height * spec.width * spec.channels).reshape(spec.height, spec.width, spec.channels)
        permutation = hwc.transpose(2, 0, 1).reshape(-1)  # CHW position -> HWC input index
        first = True
        for module in network.features:
            if isinstance(module, nn.Conv2d):
                weight, bias, shape = _unrolled(module, shape)
                if first:
                    reordered = np.zeros_like(weight)
                    reordered[:, permutation] = weight
                    weight, first = reordered, False
                layers.append(DenseLayer(weight, bias, False))
            elif isinstance(module, nn.ReLU):
                add_relu(module)
            elif isinstance(module, nn.MaxPool2d):
                if first:
                    raise ValueError("cannot encode a ConvNet that pools before its first convolution")
                groups, shape = _pool_groups(module, shape)  # type: ignore[arg-type]
                layers.append(MaxPoolLayer(groups))
            else:
                raise ValueError(f"cannot encode layer {module!r}: only Conv2d, ReLU and MaxPool2d in features")
        modules = [m for m in network.classifier if not isinstance(m, nn.Flatten)]
    else:
        modules = list(network.net if hasattr(network, "net") else network)
    for module in modules:
        if isinstance(module, nn.Dropout):
            continue
        if isinstance(module, nn.Linear):
            layers.append(DenseLayer(module.weight.detach().double().numpy().copy(),
                                     module.bias.detach().double().numpy().copy(), False))
        elif isinstance(module, nn.ReLU):
            add_relu(module)
        else:
            raise ValueError(f"cannot encode layer {module!r}: only Linear and ReLU layers are supported")
    if not layers or not isinstance(layers[-1], DenseLayer) or layers[-1].relu:
        raise ValueError("the network must end in a Linear layer giving the logits")
    if len(layers[-1].bias) < 2:
        # A one-logit model decides by a threshold, not by argmax; Def. 4's tie rule needs logits.
        raise ValueError("the network has one output; the ensemble encoding needs one logit per class (>= 2)")
    return layers


def input_dim(layers: Sequence[Layer]) -> int:
    first = layers[0]
    if not isinstance(first, DenseLayer):
        raise ValueError("a classifier must start with a Linear or Conv2d layer")
    return first.weight.shape[1]


def forward(layers: Sequence[Layer], inputs: np.ndarray) -> np.ndarray:
    """The network's logits in float64 for inputs (m, d)."""
    out = np.asarray(inputs, dtype=np.float64)
    for layer in layers:
        if isinstance(layer, MaxPoolLayer):
            out = out[:, layer.groups].max(axis=2)
        else:
            out = out @ layer.weight.T + layer.bias
            if layer.relu:
                out = np.maximum(out, 0.0)
    return out


def interval_bounds(layers: Sequence[Layer], lower: np.ndarray, upper: np.ndarray) -> list[tuple[np.ndarray,
                                                                                                  np.ndarray]]:
    """Bounds of every layer's output (before its ReLU) over the box [lower, upper] (interval arithmetic)."""
    bounds = []
    for layer in layers:
        if isinstance(layer, MaxPoolLayer):
            lower, upper = lower[layer.groups].max(axis=1), upper[layer.groups].max(axis=1)
            bounds.append((lower, upper))
            continue
        positive, negative = np.maximum(layer.weight, 0), np.minimum(layer.weight, 0)
        pre_lower = positive @ lower + negative @ upper + layer.bias
        pre_upper = positive @ upper + negative @ lower + layer.bias
        bounds.append((pre_lower, pre_upper))
        lower, upper = (np.maximum(pre_lower, 0), np.maximum(pre_upper, 0)) if layer.relu else (pre_lower, pre_upper)
    return bounds
