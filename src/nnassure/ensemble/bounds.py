"""Pre-activation bounds over the L1 ball for the big-M constants of the ensemble MILP.

Two sound sources: interval arithmetic over the ball's Linf box (``encoding.interval_bounds``)
and CROWN through auto_LiRPA with an L1 perturbation (its Lp concretization uses the dual norm,
Linf, for p = 1). Both enclose every pre-activation reachable from the ball, so their
intersection does too, and it is what the tightened encoding uses: every ReLU it proves stable
needs no binary variable, and smaller M's give a tighter LP relaxation.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nnassure.ensemble.layers import DenseLayer, Layer, MaxPoolLayer, input_dim, interval_bounds
from nnassure.lirpa_compat import auto_lirpa


def _pool_as_relus(groups: np.ndarray, size: int) -> tuple[list[np.ndarray], np.ndarray]:
    """max over each group of an input u in R^size written with ReLUs only, exactly:
    max(a, b) = ReLU(a - b) + ReLU(b) - ReLU(-b), pairwise in a tree. Returns the matrices of the
    Linear layers before each ReLU and the final matrix giving the maxima from the last ReLUs."""
    items = [[np.eye(size)[r] for r in group] for group in groups]  # linear forms in the current vector
    linears: list[np.ndarray] = []
    while any(len(group) > 1 for group in items):
        rows: list[np.ndarray] = []
        next_items: list[list[tuple[int, ...]]] = []
        for group in items:
            merged = []
            for start in range(0, len(group), 2):
                if start + 1 < len(group):
                    a, b = group[start], group[start + 1]
                    first = len(rows)
                    rows += [a - b, b, -b]
                    merged.append((first, first + 1, -(first + 2) - 1))
                else:
                    first = len(rows)
                    rows += [group[start], -group[start]]
                    merged.append((first, -(first + 1) - 1))
            next_items.append(merged)
        linears.append(np.array(rows))
        width = len(rows)

        def form(terms: tuple[int, ...], width: int = width) -> np.ndarray:
            vector = np.zeros(width)
            for term in terms:
                if term >= 0:
                    vector[term] += 1.0
                else:
                    vector[-term - 1] -= 1.0
            return vector

        items = [[form(terms) for terms in group] for group in next_items]
    if not linears:  # every window has one input: the pool is a selection
        return [], np.array([group[0] for group in items])
    return linears, np.array([group[0] for group in items])


def _torch_network(layers: Sequence[Layer]) -> tuple[nn.Sequential, list[int | None]]:
    """A Linear/ReLU network computing the same function (max-pooling rewritten with ReLUs), and
    for each layer the index of the Linear module whose output is that layer's output before its
    ReLU (None where no module computes it alone)."""
    matrices: list[tuple[np.ndarray, np.ndarray, bool]] = []  # weight, bias, ReLU after
    owner: list[int | None] = []
    pending: np.ndarray | None = None  # a linear map waiting to be folded into the next Linear

    def linear(weight: np.ndarray, bias: np.ndarray, relu: bool) -> int:
        nonlocal pending
        if pending is not None:
            weight, pending = weight @ pending, None
        matrices.append((weight, bias, relu))
        return len(matrices) - 1

    for position, layer in enumerate(layers):
        if isinstance(layer, MaxPoolLayer):
            if pending is not None or position == 0 or not getattr(layers[position - 1], "relu", False):
                raise ValueError("CROWN bounds through max-pooling need a ReLU layer before it")
            size = matrices[-1][0].shape[0]
            linears, final = _pool_as_relus(layer.groups, size)
            for matrix in linears:
                linear(matrix, np.zeros(len(matrix)), True)
            pending = final
            owner.append(None)
        else:
            owner.append(linear(layer.weight, layer.bias, layer.relu))
    modules: list[nn.Module] = []
    for weight, bias, relu in matrices:
        # float64 from the start: a float32 module would round the weights before CROWN sees them
        module = nn.Linear(weight.shape[1], weight.shape[0], dtype=torch.float64)
        with torch.no_grad():
            module.weight.copy_(torch.as_tensor(weight))
            module.bias.copy_(torch.as_tensor(bias))
        modules.append(module)
        if relu:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules).double().eval(), owner


class L1BoundEngine:
    """CROWN pre-activation bounds of one network over L1 balls, the bounded module built once."""

    def __init__(self, layers: Sequence[Layer]) -> None:
        lirpa = auto_lirpa()
        self._lirpa = lirpa
        self.layers = list(layers)
        self.network, self._owner = _torch_network(layers)
        self.module = lirpa.BoundedModule(self.network, torch.zeros(1, input_dim(layers), dtype=torch.float64),
                                          device="cpu", verbose=False)
        # The bounded module's nodes for the Linear modules, in order. CROWN computes the bounds
        # of a Linear node that feeds a ReLU or is the output; a layer's bounds come from its node
        # when it is one of those, and from interval arithmetic otherwise.
        self._linear_nodes = [node.name for node in self.module._modules.values()
                              if type(node).__name__ == "BoundLinear"]
        n_linear = sum(isinstance(m, nn.Linear) for m in self.network)
        if len(self._linear_nodes) != n_linear:
            raise RuntimeError(f"expected {n_linear} linear nodes, auto_LiRPA built {self._linear_nodes}")
        last = len(self.layers) - 1
        self._read = [index is not None and (position == last or isinstance(self.layers[position], DenseLayer)
                                             and self.layers[position].relu)
                      for position, index in enumerate(self._owner)]

    def crown_bounds(self, x: np.ndarray, eps: float) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """CROWN's bounds of every layer's output before its ReLU over {x' : ||x' - x||_1 <= eps}
        (None for a layer CROWN gives no bounds of its own: max-pooling, or an affine layer with no
        ReLU after it that is not the output)."""
        point = torch.as_tensor(np.asarray(x, np.float64)[None])
        with torch.no_grad(), warnings.catch_warnings():
            # auto_LiRPA computes the dual norm of p = 1 as 1 / (1 - 1/p) = inf with a warning.
            warnings.simplefilter("ignore", RuntimeWarning)
            perturbation = self._lirpa.PerturbationLpNorm(norm=1.0, eps=float(eps))
            bounded = self._lirpa.BoundedTensor(point, perturbation)
            self.module.compute_bounds(x=(bounded,), method="backward")
        result: list[tuple[np.ndarray, np.ndarray] | None] = []
        for index, read in zip(self._owner, self._read, strict=True):
            if not read:
                result.append(None)
                continue
            node = self.module[self._linear_nodes[index]]
            result.append((node.lower.detach().numpy()[0].copy(), node.upper.detach().numpy()[0].copy()))
        return result

    def bounds(self, x: np.ndarray, eps: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """The intersection of CROWN's and interval arithmetic's bounds (both sound)."""
        x = np.asarray(x, np.float64)
        crown = self.crown_bounds(x, eps)
        # Interval arithmetic restarted from the tighter bounds at every layer (sound: each step
        # encloses the image of an enclosure).
        lower, upper = x - eps, x + eps
        result = []
        for layer, tight in zip(self.layers, crown, strict=True):
            (box_lower, box_upper), = interval_bounds([layer], lower, upper)
            if tight is not None:
                lower_cut, upper_cut = np.maximum(box_lower, tight[0]), np.minimum(box_upper, tight[1])
                # Both enclose the true range; where rounding makes the intersection empty (eps = 0),
                # keep their union instead.
                crossed = lower_cut > upper_cut
                box_lower = np.where(crossed, np.minimum(box_lower, tight[0]), lower_cut)
                box_upper = np.where(crossed, np.maximum(box_upper, tight[1]), upper_cut)
            result.append((box_lower, box_upper))
            relu = isinstance(layer, DenseLayer) and layer.relu
            lower, upper = (np.maximum(box_lower, 0), np.maximum(box_upper, 0)) if relu else (box_lower, box_upper)
        return result
