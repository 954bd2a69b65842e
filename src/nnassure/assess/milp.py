"""The exact MILP of one VNN-LIB case: is some input of the box mapped into the polytope?

The network is the ensemble stages' exact layer list (:mod:`nnassure.ensemble.layers`: dense and
unrolled convolutional layers, each maybe followed by a ReLU) and is encoded by
:func:`nnassure.ensemble.encoding.encode_network`. For an onnx2torch graph the list is read off
the graph here (:func:`graph_layers`), which must be a chain of Linear/Conv2d/ReLU/Flatten
modules; anything else is refused with the module's name, and the case stays to the bounds.

Big-M constants: interval arithmetic over the box intersected, for every layer whose outputs
feed a ReLU or are the logits, with CROWN's bounds of that layer's outputs on the prefix network
ending there (float64, widened by the bound engine's rounding bound), then widened by the
encoding's BOUND_SLACK like the ensemble's. Both are sound enclosures, so is their intersection.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nnassure.assess.vnnlib import Polytope, Region
from nnassure.ensemble.encoding import encode_network
from nnassure.ensemble.layers import DenseLayer, Layer, _unrolled, interval_bounds
from nnassure.ensemble.milp import LinearModel

_FLATTEN_NAMES = ("Flatten", "OnnxFlatten")
_IDENTITY_NAMES = ("Identity", "Dropout", "OnnxDropoutDynamic")


def graph_layers(network: nn.Module, input_shape: tuple[int, ...]) -> list[Layer]:
    """The exact float64 layer list of a chain network (an onnx2torch GraphModule or a Sequential)."""
    if isinstance(network, nn.Sequential):
        modules = list(network)
    elif isinstance(network, torch.fx.GraphModule):
        named = dict(network.named_modules())
        modules = []
        previous = None
        for node in network.graph.nodes:
            if node.op == "placeholder":
                previous = node
                continue
            if node.op == "output":
                if node.args[0] is not previous:
                    raise ValueError("cannot encode the graph for the MILP: its output is not its last module's")
                break
            if node.op != "call_module":
                raise ValueError(f"cannot encode graph node {node.name} ({node.op} {node.target}) for the MILP: "
                                 "only a chain of modules")
            if len(node.args) != 1 or node.args[0] is not previous:
                raise ValueError(f"cannot encode graph node {node.name} for the MILP: the network is not a chain")
            modules.append(named[str(node.target)])
            previous = node
    else:
        raise ValueError(f"cannot encode a {type(network).__name__} for the MILP")
    layers: list[Layer] = []
    shape: tuple[int, ...] = tuple(input_shape)
    for module in modules:
        name = type(module).__name__
        if isinstance(module, nn.Linear):
            weight = module.weight.detach().double().numpy().copy()
            bias = (module.bias.detach().double().numpy().copy() if module.bias is not None
                    else np.zeros(weight.shape[0]))
            if int(np.prod(shape)) != weight.shape[1]:
                raise ValueError(f"cannot encode {module!r}: its input has {int(np.prod(shape))} values")
            layers.append(DenseLayer(weight, bias, False))
            shape = (weight.shape[0],)
        elif isinstance(module, nn.Conv2d):
            if len(shape) != 3:
                raise ValueError(f"cannot encode {module!r}: its input has shape {shape}, not (C, H, W)")
            weight, bias, shape = _unrolled(module, shape)
            layers.append(DenseLayer(weight, bias, False))
        elif isinstance(module, nn.ReLU):
            if not layers or not isinstance(layers[-1], DenseLayer) or layers[-1].relu:
                raise ValueError(f"cannot encode {module!r}: a ReLU must follow a Linear or Conv2d layer")
            last = layers[-1]
            layers[-1] = DenseLayer(last.weight, last.bias, True)
        elif name in _FLATTEN_NAMES:
            if getattr(module, "start_dim", getattr(module, "axis", 1)) not in (1, -len(shape)):
                raise ValueError(f"cannot encode {module!r}: only a flatten after the batch axis")
            shape = (int(np.prod(shape)),)
        elif name in _IDENTITY_NAMES:
            continue
        else:
            raise ValueError(f"cannot encode module {name} for the MILP: only Linear, Conv2d, ReLU and Flatten")
    if not layers or layers[-1].relu:
        raise ValueError("cannot encode the network for the MILP: it must end in a Linear or Conv2d layer")
    return layers


def _prefix_network(layers: Sequence[Layer]) -> nn.Sequential:
    modules: list[nn.Module] = []
    for position, layer in enumerate(layers):
        linear = nn.Linear(layer.weight.shape[1], layer.weight.shape[0], dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(layer.weight))
            linear.bias.copy_(torch.as_tensor(layer.bias))
        modules.append(linear)
        if layer.relu and position < len(layers) - 1:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules).eval()


def layer_bounds(layers: Sequence[Layer], lower: np.ndarray, upper: np.ndarray, tighten: bool = True
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Sound bounds of every layer's output before its ReLU over the box (module docstring)."""
    from nnassure.certify.bounds import BoundEngine
    from nnassure.ensemble.encoding import _widened

    boxes = interval_bounds(layers, lower, upper)
    result = []
    for position, (layer_lower, layer_upper) in enumerate(boxes):
        if tighten and (layers[position].relu or position == len(layers) - 1) and position > 0:
            engine = BoundEngine(_prefix_network(layers[: position + 1]), len(lower))
            crown_lower, crown_upper = engine.box_bounds(lower[None], upper[None], "crown")
            layer_lower = np.maximum(layer_lower, crown_lower[0].numpy())
            layer_upper = np.minimum(layer_upper, crown_upper[0].numpy())
        result.append(_widened(layer_lower, layer_upper))
    return result


def encode_case(layers: Sequence[Layer], region: Region, polytope: Polytope, slack: float,
                tighten: bool = True) -> tuple[LinearModel, np.ndarray]:
    """The feasibility MILP of one case and the variable indices of the inputs.

    Rows: every layer exactly (ReLUs by big-M), and A_i y <= b_i + slack (1 + |b_i|) for every row
    of the polytope: relaxed towards the counterexample side, so that infeasible is a proof."""
    lower, upper = np.asarray(region.lower, np.float64), np.asarray(region.upper, np.float64)
    model = LinearModel(maximize=False)
    inputs = np.array([model.add_variables(1, float(lo), float(hi), name=f"x{k}")[0]
                       for k, (lo, hi) in enumerate(zip(lower, upper, strict=True))])
    expressions = [(np.array([inputs[k]]), np.array([1.0]), 0.0) for k in range(len(lower))]
    bounds = layer_bounds(layers, lower, upper, tighten)
    logits, _ = encode_network(model, layers, expressions, (lower, upper), bounds)
    for row, limit in zip(polytope.A, polytope.b, strict=True):
        nonzero = np.flatnonzero(row)
        model.add_row(logits[nonzero], row[nonzero], upper=float(limit) + slack * (1 + abs(float(limit))))
    return model, inputs
