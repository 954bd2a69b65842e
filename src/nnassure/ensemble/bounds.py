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

from nnassure.ensemble.encoding import DenseLayer, interval_bounds
from nnassure.lirpa_compat import auto_lirpa


def _torch_network(layers: Sequence[DenseLayer]) -> nn.Sequential:
    modules: list[nn.Module] = []
    for layer in layers:
        linear = nn.Linear(layer.weight.shape[1], layer.weight.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(layer.weight))
            linear.bias.copy_(torch.as_tensor(layer.bias))
        modules.append(linear)
        if layer.relu:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules).double().eval()


class L1BoundEngine:
    """CROWN pre-activation bounds of one network over L1 balls, the bounded module built once."""

    def __init__(self, layers: Sequence[DenseLayer]) -> None:
        lirpa = auto_lirpa()
        self._lirpa = lirpa
        self.layers = list(layers)
        self.network = _torch_network(layers)
        dim = self.layers[0].weight.shape[1]
        self.module = lirpa.BoundedModule(self.network, torch.zeros(1, dim, dtype=torch.float64), device="cpu",
                                          verbose=False)
        # The bounded module's nodes for the Linear layers, in order (their outputs are the
        # pre-activations the MILP needs).
        self._linear_nodes = [node.name for node in self.module._modules.values()
                              if type(node).__name__ == "BoundLinear"]
        if len(self._linear_nodes) != len(self.layers):
            raise RuntimeError(f"expected {len(self.layers)} linear nodes, auto_LiRPA built {self._linear_nodes}")

    def crown_bounds(self, x: np.ndarray, eps: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """CROWN's bounds of every layer's pre-activation over {x' : ||x' - x||_1 <= eps}."""
        point = torch.as_tensor(np.asarray(x, np.float64)[None])
        with torch.no_grad(), warnings.catch_warnings():
            # auto_LiRPA computes the dual norm of p = 1 as 1 / (1 - 1/p) = inf with a warning.
            warnings.simplefilter("ignore", RuntimeWarning)
            perturbation = self._lirpa.PerturbationLpNorm(norm=1.0, eps=float(eps))
            bounded = self._lirpa.BoundedTensor(point, perturbation)
            self.module.compute_bounds(x=(bounded,), method="backward")
        result = []
        for name in self._linear_nodes:
            node = self.module[name]
            result.append((node.lower.detach().numpy()[0].copy(), node.upper.detach().numpy()[0].copy()))
        return result

    def bounds(self, x: np.ndarray, eps: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """The intersection of CROWN's and interval arithmetic's bounds (both sound)."""
        x = np.asarray(x, np.float64)
        crown = self.crown_bounds(x, eps)
        box = interval_bounds(self.layers, x - eps, x + eps)
        return [(np.maximum(cl, il), np.minimum(cu, iu)) for (cl, cu), (il, iu) in zip(crown, box, strict=True)]
