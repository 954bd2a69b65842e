"""Pre-activation bounds over the L1 ball for the big-M constants of the ensemble MILP.

Two sound sources: interval arithmetic over the ball's Linf box (``encoding.interval_bounds``)
and CROWN through auto_LiRPA with an L1 perturbation (its Lp concretization uses the dual norm,
Linf, for p = 1). Both enclose every pre-activation reachable from the ball, so their
intersection does too, and it is what the tightened encoding uses: every ReLU it proves stable
needs no binary variable, and smaller M's give a tighter LP relaxation.

Rounding. Both are computed in float64 on float64 weights (the stored float32 ones cast
exactly), and the encoding widens every bound by ``encoding.BOUND_SLACK`` (1 + |bound|) =
1e-9 (1 + |bound|). :meth:`L1BoundEngine.bounds` checks that widening against a stated bound
on the rounding error of each bound: for CROWN, the a-priori bound of
:mod:`nnassure.certify.bounds` (gamma_K = K u / (1 - K u) times the magnitude propagation a_0 = |x| +
eps, z = |W| a + |b|, a = 2 z after a ReLU, times ROUNDING_SAFETY (2 L + 2) for the
intermediate bounds CROWN builds on) on the CROWN network (pooling rewritten with ReLUs); for
interval arithmetic, the error it inherits from the enclosure it restarts from plus its own
rounding, gamma_{n+2} (|W| max(|l|, |u|) + |b|) per step. The intersection of two enclosures is
within the larger of their errors of an enclosure. On dense ensemble networks every such bound is
1e-13 - 1e-10, below the encoding's widening, and nothing changes. Where it is not (CROWN through
a pooling layer's ReLU rewrite, whose worst-case absolute sums grow 8x per level of the max
tree: up to ~1e-7 on the tests' convolutional nets), that bound is widened by its rounding bound
before the intersection; the interval bound is then usually the tighter one, so the big-M
constants stay valid and are still never looser than interval arithmetic's.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nnassure.certify.bounds import ROUNDING_SAFETY, UNIT_ROUNDOFF
from nnassure.ensemble.encoding import BOUND_SLACK
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

    def _magnitudes(self, x: np.ndarray, eps: float) -> tuple[list[np.ndarray], int, int]:
        """The magnitude propagation z of every Linear module of the CROWN network (module
        docstring), the longest chain of roundings K and the number of Linear modules L."""
        a = np.abs(np.asarray(x, np.float64)) + abs(float(eps))  # the L1 ball lies in this Linf box
        magnitudes = []
        operations, depth = len(a) + 4, 0
        for module in self.network:
            if isinstance(module, nn.Linear):
                a = np.abs(module.weight.detach().numpy()) @ a + np.abs(module.bias.detach().numpy())
                magnitudes.append(a)
                operations, depth = operations + module.in_features + 4, depth + 1
            else:  # ReLU: slope term <= z plus the intercept -u l / (u - l), at most |l| <= z
                a = 2.0 * a
        return magnitudes, operations, depth

    def crown_rounding_error(self, x: np.ndarray, eps: float) -> list[np.ndarray | None]:
        """Per layer, an a-priori bound on the float64 rounding error of CROWN's bounds of it over
        the L1 ball (None where CROWN gives none): ROUNDING_SAFETY (2 L + 2) gamma_K z, with the
        magnitudes z of the CROWN network, pooling rewritten with ReLUs (module docstring)."""
        magnitudes, operations, depth = self._magnitudes(x, eps)
        factor = ROUNDING_SAFETY * (2 * depth + 2) * _gamma(operations)
        return [factor * magnitudes[index] if read else None
                for index, read in zip(self._owner, self._read, strict=True)]

    def margin_lower_bounds(self, x: np.ndarray, eps: float, label: int) -> np.ndarray:
        """Sound lower bounds of y_t - y_o (t = ``label``, every o != t) over the L1 ball, by CROWN
        on the specification C = e_t - e_o (tighter than subtracting the logits' bounds), minus
        the rounding bound of the module docstring for one more linear layer: the rows of C add
        z_t + z_o to the magnitudes and one level and two roundings to the chain. A positive
        entry proves that the network classifies every point of the ball as ``label`` for that o."""
        point = torch.as_tensor(np.asarray(x, np.float64)[None])
        n_outputs = self.network[-1].out_features
        others = [o for o in range(n_outputs) if o != label]
        spec = torch.zeros(1, len(others), n_outputs, dtype=torch.float64)
        for row, other in enumerate(others):
            spec[0, row, label], spec[0, row, other] = 1.0, -1.0
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the dual norm of p = 1, as in crown_bounds
            perturbation = self._lirpa.PerturbationLpNorm(norm=1.0, eps=float(eps))
            bounded = self._lirpa.BoundedTensor(point, perturbation)
            lower, _ = self.module.compute_bounds(x=(bounded,), C=spec, method="backward", bound_upper=False)
        magnitudes, operations, depth = self._magnitudes(x, eps)
        logits = magnitudes[-1]
        factor = ROUNDING_SAFETY * (2 * (depth + 1) + 2) * _gamma(operations + 6)
        error = factor * np.array([logits[label] + logits[other] for other in others])
        return lower.detach().numpy()[0] - error

    def bounds(self, x: np.ndarray, eps: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """The intersection of CROWN's and interval arithmetic's bounds (both sound), each widened
        by its rounding bound only where the encoding's widening would not cover it.

        The error of every bound is tracked: interval arithmetic's is |W| delta_in (the error of
        the enclosure it restarts from; ReLU and max pass it through) plus its own rounding,
        ROUNDING_SAFETY gamma_{n+2} (|W| max(|lower|, |upper|) + |b|) (a dot product's error bound), CROWN's
        is :meth:`crown_rounding_error`. A bound whose error exceeds encoding.BOUND_SLACK (1 +
        |bound|) is widened by it here; so the intersection is never looser than the interval
        bound unless that one must be widened itself.
        """
        x = np.asarray(x, np.float64)
        crown = self.crown_bounds(x, eps)
        crown_errors = self.crown_rounding_error(x, eps)
        # Interval arithmetic restarted from the tighter bounds at every layer (sound: each step
        # encloses the image of an enclosure).
        lower, upper = x - eps, x + eps
        # x -/+ eps is rounded: the box may miss the ball by one rounding of |x| + eps.
        error = UNIT_ROUNDOFF * (np.abs(x) + abs(float(eps)))
        result = []
        for layer, tight, crown_error in zip(self.layers, crown, crown_errors, strict=True):
            (box_lower, box_upper), = interval_bounds([layer], lower, upper)
            if isinstance(layer, MaxPoolLayer):
                box_error = error[layer.groups].max(axis=1)
            else:
                own = np.abs(layer.weight) @ np.maximum(np.abs(lower), np.abs(upper)) + np.abs(layer.bias)
                box_error = np.abs(layer.weight) @ error + ROUNDING_SAFETY * _gamma(layer.weight.shape[1] + 2) * own
            box_lower, box_upper, box_error = _covered(box_lower, box_upper, box_error)
            error = box_error
            if tight is not None:
                tight_lower, tight_upper, tight_error = _covered(tight[0], tight[1], crown_error)
                lower_cut, upper_cut = np.maximum(box_lower, tight_lower), np.minimum(box_upper, tight_upper)
                # Both enclose the true range; where rounding makes the intersection empty (eps = 0),
                # keep their union instead.
                crossed = lower_cut > upper_cut
                box_lower = np.where(crossed, np.minimum(box_lower, tight_lower), lower_cut)
                box_upper = np.where(crossed, np.maximum(box_upper, tight_upper), upper_cut)
                error = np.maximum(box_error, tight_error)
            result.append((box_lower, box_upper))
            relu = isinstance(layer, DenseLayer) and layer.relu
            lower, upper = (np.maximum(box_lower, 0), np.maximum(box_upper, 0)) if relu else (box_lower, box_upper)
        return result


def _gamma(operations: int) -> float:
    """gamma_K = K u / (1 - K u), u the float64 unit roundoff: the relative error bound of a sum of
    products reached by at most K roundings."""
    k_u = operations * UNIT_ROUNDOFF
    return k_u / (1.0 - k_u)


def _covered(lower: np.ndarray, upper: np.ndarray, error: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bounds that are enclosures up to a rounding error that encoding.BOUND_SLACK (1 + |bound|)
    covers, and that remaining error: where ``error`` exceeds the encoding's widening, the bound
    is widened by ``error`` here and is then an enclosure (remaining error 0 on that side)."""
    short_lower = error > BOUND_SLACK * (1 + np.abs(lower))
    short_upper = error > BOUND_SLACK * (1 + np.abs(upper))
    lower = np.where(short_lower, lower - error, lower)
    upper = np.where(short_upper, upper + error, upper)
    return lower, upper, np.where(short_lower & short_upper, 0.0, error)
