"""Output bounds of a network over an Lp ball, from auto_LiRPA (IBP, CROWN, alpha-CROWN).

One :class:`BoundEngine` wraps one ``BoundedModule``, built once per network and reused for every
batch, norm and eps (the paper authors' code rebuilt it per batch; see ``make bench``).

Floating point. The network a model file defines is its stored float32 weights, cast exactly to
float64. The engine bounds that network in float64 (a float64 copy of the network, a float64
dummy input, float64 x, eps and C; torch's default dtype is float64 while auto_LiRPA runs, so
its own tables and results stay float64) and widens every bound by :func:`rounding_slack`, an
a-priori bound on the float64 rounding error, so that the bounds it returns hold for the real
function of those weights and for its float64 evaluation alike.

The rounding bound (u = 2**-53, gamma_K = K u / (1 - K u), the standard forward error bound of
floating-point sums, dot products and matrix products): a computed sum of products reached by
at most K roundings differs from the exact one by at most gamma_K times the same sum of the
terms' absolute values. Every
number CROWN/IBP computes for a bound (the backward matrices Lambda_k = C W_L D_{L-1} ... W_{k+1},
the bias and relaxation-intercept sums, the concretization Lambda_0 x0 -/+ eps ||Lambda_0||_q, and
every intermediate pre-activation bound it computes the same way) is such a sum of products of
entries of |C|, |W_k|, |b_k|, relaxation slopes in [0, 1] (ReLU, tanh, arctan; sigmoid <= 1/4),
intercepts and input magnitudes. Their absolute-value sums are all at most M, the magnitude
propagation of :func:`magnitude`: a_0 = |x0| + eps (the Lp ball, p >= 1, lies in the Linf box
of radius eps), z_k = |W_k| a_{k-1} + |b_k|, a_k = 2 z_k + 2 after an activation (it covers the
slope term <= z_k plus an intercept of magnitude <= z_k + 2: ReLU's -u l / (u - l) <= |l|, and
tangent/chord lines of tanh, sigmoid, arctan), and M = |C| z_L. K is the longest chain of
operations, sum_k (fan_in_k + 4) + d + outputs + 4. Rounding then moves

* the final bound by at most gamma_K M;
* every intermediate bound by at most gamma_K z_k; a relaxation built on a bound that is off by
  delta is violated by at most delta (ReLU's upper line has slope in [0, 1]) or 2 delta (S-shaped
  lines, slope and function both <= 1-Lipschitz), and that error reaches the output weighted by
  |Lambda_k|, with |Lambda_k| z_k <= M: at most 2 gamma_K M per layer, 2 L gamma_K M in all;
* the float64 forward pass, against which the bounds are checked, by at most gamma_K M.

So |error| <= (2 L + 2) gamma_K M, and :func:`rounding_slack` is ROUNDING_SAFETY = 4 times that
(second-order terms, the division in ReLU's upper slope, the square root of the L2 dual norm and
the few extra operations of auto_LiRPA's bookkeeping are each a few u relative, far below the
factor). For S-shaped activations auto_LiRPA 0.3 also replaces the chord of an interval narrower
than 1e-6 by the tangent at its upper end, a relaxation error of at most max|f''| w^2 <= 1e-12
per neuron (not a rounding error, but one the slack must cover too); it reaches the output with
weight |Lambda_k| 1 <= M / 2, so S_SHAPED_CHORD_ERROR * M is added for such networks.

On the smoke run's verified-classification models the slack is 5e-13 - 3e-11 (trained digits
MLPs: below 1e-8, see tests/test_float_soundness.py), against float32 errors of up to 6e-5 that
the former fixed 1e-5 tolerance did not cover. The same analysis at float32's unit roundoff
covers the measured float32 - float64 differences (tested), a check that the bound is a bound.

Other networks (the video CNN + LSTM of nnassure.video.model, input (batch, T, 2, g, g)). The
engine takes an input shape; a network that is not such a Sequential supplies its own bound (a
``rounding_slack(x, eps, C)`` method) or has one registered (:func:`register_rounding_bound`;
FlowLSTM: :func:`graph_rounding_slack`, the same analysis on auto_LiRPA's traced graph, with the
relaxations' slopes and the Mul nodes' McCormick coefficients read from the call's intermediate
bounds); anything else is refused as before. Balls may be restricted to a mask of coordinates
(Linf: a zero-width box off the mask; L2: :class:`MaskedL2Norm`, the dual norm on the mask).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from nnassure.lirpa_compat import auto_lirpa
from nnassure.models.mlp import Arctan

# auto_LiRPA's method names for the pipeline's method names.
LIRPA_METHODS = {"ibp": "IBP", "crown": "backward", "alpha-crown": "CROWN-Optimized"}
NORM_VALUES = {"linf": math.inf, "l2": 2.0}
# Linear relaxations of unstable ReLUs: CROWN's adaptive lower slope (0 or 1, whichever is
# tighter) or Fast-Lin's lower slope equal to the upper one, u / (u - l) (PROVEN Tables 2a/2b).
RELU_RELAXATIONS = {"crown": "adaptive", "fast-lin": "same-slope"}

# The input domain a Linf ball is intersected with: bounds for every coordinate, or a box per row.
Domain = tuple[float, float] | tuple[torch.Tensor, torch.Tensor]

UNIT_ROUNDOFF = 2.0**-53  # float64, round to nearest
ROUNDING_SAFETY = 4.0
S_SHAPED_CHORD_ERROR = 1e-12
S_SHAPED = (nn.Tanh, nn.Sigmoid, Arctan)
ACTIVATIONS = (nn.ReLU, *S_SHAPED)
# Modules that are the identity in evaluation mode, or only reshape.
PASS_THROUGH = (nn.Dropout, nn.Identity, nn.Flatten)


def sequential_layers(network: nn.Module) -> list[nn.Module]:
    """The leaf modules of ``network`` in order, which must be a tree of ``nn.Sequential`` (or of
    modules whose forward is their ``net`` Sequential) over Linear, activations and identities.

    The rounding bound is derived for such compositions only; anything else is refused rather than
    bounded by a slack that might not cover it.
    """
    if hasattr(network, "verification_network"):
        network = network.verification_network()
    if not isinstance(network, nn.Sequential):
        raise TypeError(f"no float64 rounding bound for a {type(network).__name__}: expected an nn.Sequential")
    layers: list[nn.Module] = []
    for module in network:
        if isinstance(module, nn.Sequential):
            layers += sequential_layers(module)
        elif isinstance(module, (nn.Linear, *ACTIVATIONS, *PASS_THROUGH)):
            layers.append(module)
        else:
            raise TypeError(f"no float64 rounding bound for layer {type(module).__name__}")
    return layers


def magnitude(layers: list[nn.Module], x: torch.Tensor, eps: torch.Tensor,
              C: torch.Tensor | None) -> tuple[torch.Tensor, int, int]:
    """M of the module docstring, shape (batch, specs), with K (operations) and L (layers).

    ``x`` (batch, d) and ``eps`` (batch, 1) in float64; ``C`` (batch, specs, outputs) or None.
    """
    a = x.abs() + eps.abs()
    operations, depth = x.shape[1] + 4, 0
    for layer in layers:
        if isinstance(layer, nn.Linear):
            weight = layer.weight.detach().to(torch.float64).abs()
            a = a @ weight.T
            if layer.bias is not None:
                a = a + layer.bias.detach().to(torch.float64).abs()
            operations += layer.in_features + 4
            depth += 1
        elif isinstance(layer, ACTIVATIONS):
            a = 2.0 * a + 2.0
            operations += 4
    if C is not None:
        a = torch.einsum("bso,bo->bs", C.to(torch.float64).abs(), a)
        operations += C.shape[-1]
    return a, operations, depth


def rounding_slack(layers: list[nn.Module], x: torch.Tensor, eps: torch.Tensor,
                   C: torch.Tensor | None) -> torch.Tensor:
    """An upper bound, per (sample, spec), on the error of a float64 IBP/CROWN/alpha-CROWN bound of
    ``C @ network`` (or of the network) over the ball, and of the float64 forward pass; see the
    module docstring for the derivation."""
    scale, operations, depth = magnitude(layers, x, eps, C)
    k_u = operations * UNIT_ROUNDOFF
    gamma = k_u / (1.0 - k_u)
    slack = ROUNDING_SAFETY * (2 * depth + 2) * gamma * scale
    if any(isinstance(layer, S_SHAPED) for layer in layers):
        slack = slack + S_SHAPED_CHORD_ERROR * scale
    return slack


# ------------------------------------------------------------------------------------------------
# Networks that are not Sequential MLPs: a rounding bound from the traced graph
# ------------------------------------------------------------------------------------------------

# A network class -> a function (engine, x, eps, C) -> slack, evaluated after each auto_LiRPA call
# (it may read the intermediate bounds that call left on the graph's nodes).
RoundingBound = Callable[["BoundEngine", torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]
ROUNDING_BOUNDS: dict[type, RoundingBound] = {}


def register_rounding_bound(cls: type, bound: RoundingBound) -> None:
    """Declare ``bound`` the float64 rounding bound of networks of class ``cls`` (a network not
    built of :func:`sequential_layers`); :class:`BoundEngine` refuses networks with none."""
    ROUNDING_BOUNDS[cls] = bound


def _registered_bound(network: nn.Module) -> RoundingBound | None:
    # The video network's bound is registered here, lazily: nnassure.video imports nothing of
    # nnassure.certify, so there is no import cycle, but the MLP engine should not pay for it.
    from nnassure.video.model import FlowLSTM

    ROUNDING_BOUNDS.setdefault(FlowLSTM, graph_rounding_slack)
    for cls in type(network).__mro__:
        if cls in ROUNDING_BOUNDS:
            return ROUNDING_BOUNDS[cls]
    return None


# auto_LiRPA node types (by class name, so that this table needs no auto_LiRPA import) whose
# magnitude is the node's own operation applied to the inputs' magnitudes: linear maps with
# nonnegative coefficients, or index/reshape operations.
_GRAPH_RESHAPES = ("BoundGather", "BoundFlatten", "BoundTranspose", "BoundReshape", "BoundUnsqueeze",
                   "BoundSqueeze", "BoundConcat")
_GRAPH_LEAVES = ("BoundParams", "BoundBuffers", "BoundConstant")
# max f' of the S-shaped activations; max |f(d) - f'(d) d| over tangent points d (tanh: 1 + max
# t sech^2 t = 1.449, sigmoid: 1 + max t s'(t) = 1.224) covers every line's intercept and |f| <= 1.
_S_INTERCEPT = 1.5


def _node_bounds(node: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if hasattr(node, "lower") and node.lower is not None:
        return node.lower.detach(), node.upper.detach()
    lower, upper = node.interval
    return lower.detach(), upper.detach()


def _max_slope(kind: str, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """max f' over [lower, upper] (f' is even and decreasing in |t|: its value at the point of the
    interval nearest 0)."""
    nearest = torch.where((lower <= 0) & (upper >= 0), torch.zeros_like(lower),
                          torch.minimum(lower.abs(), upper.abs()))
    if kind == "BoundSigmoid":
        s = torch.sigmoid(nearest)
        return s * (1 - s)
    return 1 - torch.tanh(nearest) ** 2


def graph_magnitude(engine: BoundEngine, x: torch.Tensor, eps: torch.Tensor,
                    C: torch.Tensor | None) -> tuple[torch.Tensor, int, int]:
    """M of :func:`graph_rounding_slack`, (batch, specs), with K (operations) and L (relaxed layers
    on the longest chain), from the graph and the intermediate bounds of the last bound call."""
    module = engine.module
    magnitude: dict[str, torch.Tensor] = {}
    chain: dict[str, tuple[int, int]] = {}  # node -> (operations, relaxed nodes) on its longest path
    nodes = {node.name: node for node in module._modules.values()}
    batch = len(x)
    eps_b = eps.reshape(batch, *([1] * (x.ndim - 1)))

    def visit(name: str) -> torch.Tensor:
        if name in magnitude:
            return magnitude[name]
        node = nodes[name]
        kind = type(node).__name__
        inputs = [visit(i.name) for i in node.inputs]
        ops = max((chain[i.name][0] for i in node.inputs), default=0)
        relaxed = max((chain[i.name][1] for i in node.inputs), default=0)
        # Back-substitution adds one contribution per consumer of a node.
        ops += 8 + len(getattr(node, "output_name", []))
        if kind == "BoundInput":
            m = x.abs() + eps_b
        elif kind in _GRAPH_LEAVES:
            value = node.forward().detach()
            # Index and shape constants (Gather's flow index) stay as they are.
            m = value.to(torch.float64).abs() if value.is_floating_point() else value
        elif kind == "BoundLinear":
            xm, w, b = node._preprocess(inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None)
            m = xm.matmul(w.t()) + (0 if b is None else b)
            ops += w.shape[-1]
        elif kind == "BoundMatMul":
            m = inputs[0].matmul(inputs[1])
            ops += inputs[0].shape[-1]
        elif kind == "BoundConv":
            bias = inputs[2] if len(inputs) > 2 else None
            m = torch.nn.functional.conv2d(inputs[0], inputs[1], bias, node.stride, node.padding,
                                           node.dilation, node.groups)
            ops += inputs[1][0].numel()
        elif kind == "BoundAdd":
            m = inputs[0] + inputs[1]
        elif kind in _GRAPH_RESHAPES:
            m = node.forward(*inputs)
        elif kind == "BoundRelu":
            lower, upper = _node_bounds(node.inputs[0])
            # slope <= 1 on the input's magnitude, intercept -u l / (u - l) <= |l| when unstable.
            m = inputs[0] + torch.where((lower < 0) & (upper > 0), lower.abs(), torch.zeros_like(lower))
            relaxed += 1
        elif kind in ("BoundSigmoid", "BoundTanh"):
            lower, upper = _node_bounds(node.inputs[0])
            m = _max_slope(kind, lower, upper) * inputs[0] + _S_INTERCEPT
            relaxed += 1
        elif kind == "BoundMul":
            # McCormick: x y >= y_l x + x_l y - x_l y_l (and the three others); the coefficient of
            # each factor is a bound of the other, the constant a product of bounds.
            (xl, xu), (yl, yu) = (_node_bounds(i) for i in node.inputs)
            bx, by = torch.maximum(xl.abs(), xu.abs()), torch.maximum(yl.abs(), yu.abs())
            m = by * inputs[0] + bx * inputs[1] + bx * by
            relaxed += 1
        else:
            raise TypeError(f"no float64 rounding bound for auto_LiRPA node {kind} ({name})")
        magnitude[name] = m
        chain[name] = (ops, relaxed)
        return m

    out = visit(module.final_name).reshape(batch, -1)
    operations, depth = chain[module.final_name]
    operations += x[0].numel() + out.shape[1] + 4  # the concretization's dot product and C
    if C is not None:
        out = torch.einsum("bso,bo->bs", C.to(torch.float64).abs(), out)
    return out, operations, depth


def graph_rounding_slack(engine: BoundEngine, x: torch.Tensor, eps: torch.Tensor,
                         C: torch.Tensor | None) -> torch.Tensor:
    """The float64 rounding bound of a bound computed on a traced graph of Linear, MatMul, Conv,
    Add, reshapes, ReLU, sigmoid, tanh and Mul nodes (the video CNN + LSTM of nnassure.video.model,
    Wu & Kwiatkowska Def. 9), read from the intermediate bounds of the call it follows.

    The argument of the module docstring, on a graph instead of a chain. Every number CROWN/IBP
    computes is a sum of products whose absolute-value sum is at most the node magnitude m
    propagated forward through the graph, per neuron and row, from a_0 = |x0| + eps (the ball,
    masked or not, lies in that box):

    * a linear map (Linear, MatMul, Conv2d: a linear map with fan-in 2*9 or c*9, one per flow),
      Add and index/reshape nodes: the same map with |weights| on the inputs' m, plus |bias|;
    * ReLU on [l, u]: slope <= 1, intercept <= |l| when unstable: m(z) + |l| [l < 0 < u];
    * sigmoid/tanh on [l, u]: slope <= max f' on [l, u] (every chord and tangent slope is f' at a
      point of the interval; 1/4 and 1 at 0), intercept |f(d) - f'(d) d| <= 1.5 for every tangent
      point d, which also bounds |f| <= 1: m = max f' m(z) + 1.5;
    * Mul x * y (the LSTM's gates times tanh(g), tanh(c) and c_{t-1}): the McCormick planes'
      coefficients are the other factor's bounds (X, Y: the largest |bound| auto_LiRPA computed,
      sigmoid/tanh outputs within about 1, c_t within about t), their constant X Y, which also
      bounds |x y|: m = Y m(x) + X m(y) + X Y.

    M = |C| m(logits), K = the longest chain of roundings (per node its fan-in and 8 + its
    consumers, the input dimension of the concretization's dot product, and the outputs; across
    the T steps the chain through h_t and c_t is the longest), L = the most relaxed nodes (ReLU,
    sigmoid, tanh, Mul) on one path (3 + 4 per step for the FlowLSTM). A relaxation built on an
    intermediate bound off by delta <= gamma_K m is violated by at most 2 delta (ReLU delta,
    S-shaped 2 delta as 1-Lipschitz lines, Mul 2 (X delta_y + Y delta_x) <= 2 gamma_K m(x y)), and
    the relaxed nodes split into at most L antichains, on each of which sum |Lambda_n| m(n) <= M;
    so the error is (2 L + 2) gamma_K M, times ROUNDING_SAFETY, plus L S_SHAPED_CHORD_ERROR M for
    auto_LiRPA 0.3's tangent in place of a chord narrower than 1e-6.

    Unlike :func:`rounding_slack` the slopes and factor bounds are those of the call (a-posteriori
    in the bounds, a-priori in the rounding): the a-priori constants (slope 1, factor bound 2 z + 2)
    compound over T steps to M ~ 1e15 on the default FlowLSTM (slack ~ 1e3), while these give
    slacks of about 1e-9 (measured in tests/test_video_lirpa.py).
    """
    scale, operations, depth = graph_magnitude(engine, x, eps, C)
    k_u = operations * UNIT_ROUNDOFF
    gamma = k_u / (1.0 - k_u)
    return ROUNDING_SAFETY * (2 * depth + 2) * gamma * scale + depth * S_SHAPED_CHORD_ERROR * scale


class MaskedL2Norm:
    """Factory of the L2 ball {x0 + d : ||d||_2 <= eps, d = 0 off the mask} for auto_LiRPA 0.3:
    its concretization sup_{d} A d = eps ||A restricted to the mask||_2 (the dual norm on the
    masked coordinates). Built lazily because auto_LiRPA is imported through auto_lirpa() only.

    Its input interval is the ball's bounding box x0 -/+ eps mask. auto_LiRPA 0.3's own L2 ball
    gives the input node the interval [x0, x0] (a point) and relies on the first Linear or Conv
    reading the norm from it; in the video network the first Conv is fed by a per-flow Gather,
    its intermediate bounds came out of IBP on that point (width 0), and CROWN's "bounds" over an
    L2 ball of radius 1 were above margins PGD reached (found by tests/test_video_lirpa.py). With
    the box, every IBP step sees a set containing the ball."""

    _cls: type | None = None

    @classmethod
    def make(cls, eps: torch.Tensor, mask: torch.Tensor) -> object:
        if cls._cls is None:
            base = auto_lirpa().PerturbationLpNorm

            class _Masked(base):  # type: ignore[misc, valid-type]
                def __init__(self, eps: torch.Tensor, mask: torch.Tensor) -> None:
                    super().__init__(eps=eps, norm=2.0)
                    self.mask = mask
                    # IBP reads the norm of the input's interval: as Linf it propagates the box
                    # below (which holds the ball), while auto_LiRPA's own L2 step through a
                    # Linear or Conv takes one scalar radius, not one per row. The bounds'
                    # concretization is the L2 one of concretize_matrix.
                    self.norm = math.inf

                def init(self, x: torch.Tensor, aux: Any = None, forward: bool = False) -> Any:
                    if forward:
                        raise NotImplementedError("masked L2 ball: backward (CROWN) and IBP only")
                    radius = self.eps.reshape(len(x), *([1] * (x.ndim - 1))) * self.mask
                    bound = auto_lirpa().perturbations.LinearBound(None, None, None, None, x - radius, x + radius)
                    return bound, x, None

                def concretize_matrix(self, x: torch.Tensor, A: Any, sign: int, extra_constr: Any) -> torch.Tensor:
                    if extra_constr is not None or not isinstance(A, torch.Tensor):
                        raise NotImplementedError("masked L2 ball: only plain matrix-mode concretization")
                    A = A.reshape(A.shape[0], A.shape[1], -1)
                    flat = x.reshape(x.shape[0], -1, 1)
                    masked = A * self.mask.reshape(self.mask.shape[0], 1, -1)
                    deviation = masked.norm(2, -1) * self.eps.reshape(-1, 1)
                    return (A.matmul(flat) + sign * deviation.unsqueeze(-1)).squeeze(-1)

            cls._cls = _Masked
        return cls._cls(eps, mask)


@contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """auto_LiRPA 0.3 builds its tanh/sigmoid/arctan tangent tables with torch's default dtype
    and casts alpha-CROWN's result to it: with float32 there, float64 inputs still get float32
    relaxations and a float32-rounded bound."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


class BoundEngine:
    """Bounds of a network's outputs over ``{x' : ||x' - x||_p <= eps}`` (optionally intersected
    with the input domain [lo, hi]^d for Linf, through auto_LiRPA's ``x_L``/``x_U``).

    With ``dtype=torch.float64`` (the default) the bounds are sound for the float64 network (see
    the module docstring); ``dtype=torch.float32`` is the former float32 computation, with no
    rounding slack and no soundness claim, kept for ``make bench``'s cost comparison.
    """

    def __init__(
        self, network: nn.Module, input_dim: int | tuple[int, ...], alpha_iterations: int = 20,
        relu_relaxation: str = "crown", dtype: torch.dtype = torch.float64,
        bound_opts: dict[str, Any] | None = None,
    ) -> None:
        """``input_dim``: the input size of a flat network, or the shape of one input (without the
        batch dimension), e.g. ``(flows, 2, grid, grid)`` for the video network. The float64
        rounding bound comes from :func:`sequential_layers` (a Sequential MLP), else from the
        network's own ``rounding_slack(x, eps, C)`` method (an a-priori bound it derives), else
        from a function registered with :func:`register_rounding_bound`; a network with none is
        refused. ``bound_opts`` are added to auto_LiRPA's (the video network needs
        ``{"conv_mode": "matrix"}``)."""
        if relu_relaxation not in RELU_RELAXATIONS:
            raise ValueError(f"unknown ReLU relaxation {relu_relaxation!r}; expected one of {sorted(RELU_RELAXATIONS)}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        lirpa = auto_lirpa()
        self.dtype = dtype
        self.sound = dtype == torch.float64
        # A copy: casting the caller's module in place would change the caller's network. float32
        # weights cast to float64 exactly, so the copy is the network the model file defines.
        self.network = copy.deepcopy(network).to(dtype).eval()
        self.input_shape = (input_dim,) if isinstance(input_dim, int) else tuple(input_dim)
        self.layers: list[nn.Module] = []
        self._network_bound: Callable[..., torch.Tensor] | None = None
        self._graph_bound: RoundingBound | None = None
        if self.sound:
            try:
                self.layers = sequential_layers(self.network)
            except TypeError:
                if callable(getattr(self.network, "rounding_slack", None)):
                    self._network_bound = self.network.rounding_slack
                else:
                    self._graph_bound = _registered_bound(self.network)
                    if self._graph_bound is None:
                        raise
        self._lirpa = lirpa
        # auto_LiRPA's tanh node; its sigmoid and arctan nodes derive from it.
        from auto_LiRPA.operators.activation import BoundTanh

        self._lirpa_s_shaped = BoundTanh
        options = {"optimize_bound_args": {"iteration": alpha_iterations}, "relu": RELU_RELAXATIONS[relu_relaxation]}
        options.update(bound_opts or {})
        with _default_dtype(dtype):
            self.module = lirpa.BoundedModule(
                self.network,
                torch.zeros(1, *self.input_shape, dtype=dtype),
                bound_opts=options,
                device="cpu",
                verbose=False,
            )
        self.input_dim = input_dim
        self.s_shaped = any(isinstance(n, BoundTanh) for n in self.module._modules.values())
        self.relu_relaxation = relu_relaxation

    def _tensor(self, value: torch.Tensor | np.ndarray | float) -> torch.Tensor:
        # float32 data cast to float64 exactly: the ball's centre and radius are not moved. Python
        # floats and NumPy arrays go through float64 (torch.as_tensor(0.03) would be float32, a
        # smaller ball than the one reported).
        if not isinstance(value, torch.Tensor):
            value = torch.as_tensor(np.array(value, np.float64))
        return value.to(self.dtype)

    def rounding_slack(self, x: torch.Tensor | np.ndarray, eps: torch.Tensor | np.ndarray | float,
                       C: torch.Tensor | None = None) -> torch.Tensor:
        """The bound on float64 rounding of the module docstring, (batch, specs) (specs = outputs
        without ``C``): every bound of this engine, and the float64 network, is within it of the
        exact value. Zero for a float32 engine, which makes no soundness claim."""
        x_t = self._tensor(x)
        eps_t = self._eps(eps, len(x_t))
        if not self.sound:
            outputs = C.shape[1] if C is not None else self.network(x_t[:1]).shape[1]
            return torch.zeros(len(x_t), outputs, dtype=self.dtype)
        C64 = None if C is None else C.to(torch.float64)
        if self._graph_bound is not None:
            # The graph bound reads the intermediate bounds of a bound computation: it is that of
            # a CROWN run on the (unmasked) ball, which contains every masked one.
            return self.bounds_and_slack(x_t, eps_t, "linf", "crown", C=C64)[2]
        return self._a_priori_slack(x_t, eps_t, C64)

    def _a_priori_slack(self, x: torch.Tensor, eps: torch.Tensor, C: torch.Tensor | None) -> torch.Tensor:
        if self._network_bound is not None:
            return self._network_bound(x, eps, C)
        return rounding_slack(self.layers, x, eps, C)

    def _eps(self, eps: torch.Tensor | np.ndarray | float, batch: int) -> torch.Tensor:
        # (batch, 1): one radius per row.
        eps_t = self._tensor(eps)
        eps_t = eps_t.reshape(-1, 1).expand(batch, 1) if eps_t.ndim else eps_t.expand(batch, 1)
        return eps_t.contiguous()

    def linear_lower_bounds(
        self, x: torch.Tensor | np.ndarray, eps: torch.Tensor | np.ndarray, C: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """CROWN's linear lower bounds of ``C @ network`` on the Linf ball of radius ``eps`` (one per row).

        Returns ``(lA, lbias, lower)``: lA (batch, specs, input_dim) and lbias (batch, specs) with
        lA x' + lbias >= C f(x') - slack for every x' in the ball (PROVEN Eq. 1-2; slack is
        :meth:`rounding_slack`, which the caller must subtract), and the concretized lower bound
        over the ball as computed (not widened).
        """
        x_t = self._tensor(x)
        eps_t = self._eps(eps, len(x_t))
        C = C.to(self.dtype)
        bounded = self._lirpa.BoundedTensor(x_t, self._perturbation(x_t, eps_t, "linf", None))
        output, inputs = self.module.final_name, self.module.input_name[0]
        with torch.no_grad(), _default_dtype(self.dtype):
            lower, _, a_dict = self.module.compute_bounds(
                x=(bounded,), C=C, method="backward", bound_lower=True, bound_upper=False,
                return_A=True, needed_A_dict={output: [inputs]},
            )
        coefficients = a_dict[output][inputs]
        lA = coefficients["lA"].reshape(len(x_t), C.shape[1], -1).detach()
        lbias = coefficients["lbias"].reshape(len(x_t), C.shape[1]).detach()
        lower = lower.detach()
        beyond = self._beyond_relaxation_range()
        if beyond is not None and bool(beyond.any()):
            # Those rows' linear bounds are not bounds (see _beyond_relaxation_range); the constant
            # IBP lower bound is, as a linear bound with zero slope.
            ibp_lower, _ = self._compute_lirpa(x_t, self._perturbation(x_t, eps_t, "linf", None), "ibp", C)
            lA = torch.where(beyond.reshape(-1, 1, 1), torch.zeros_like(lA), lA)
            lbias = torch.where(beyond.reshape(-1, 1), ibp_lower, lbias)
            lower = torch.where(beyond.reshape(-1, 1), ibp_lower, lower)
        return lA, lbias, lower

    def _perturbation(
        self, x: torch.Tensor, eps: torch.Tensor, norm: str, domain: Domain | None,
        mask: torch.Tensor | None = None,
    ) -> object:
        """The ball as auto_LiRPA's perturbation. ``mask`` (batch, *input_shape), 0/1: only the
        coordinates where it is 1 move (Linf: a box of zero width elsewhere; L2: the masked dual
        norm of :class:`MaskedL2Norm`). ``domain``: numbers, or tensors shaped like ``x`` (a box per
        row, :meth:`box_bounds`), that the Linf ball is intersected with."""
        radius = eps.reshape(len(x), *([1] * (x.ndim - 1)))
        if mask is not None:
            radius = radius * mask.to(x.dtype)
        if norm == "l2" and (mask is not None or self._graph_bound is not None or self._network_bound is not None):
            # Also unmasked: the box interval of MaskedL2Norm (see there) for non-Sequential networks.
            full = mask.to(x.dtype) if mask is not None else torch.ones_like(x)
            return MaskedL2Norm.make(eps.reshape(-1), full)
        if norm == "linf":
            x_lower, x_upper = x - radius, x + radius
            if domain is not None:
                x_lower = x_lower.clamp(min=domain[0])
                x_upper = x_upper.clamp(max=domain[1])
            return self._lirpa.PerturbationLpNorm(norm=math.inf, eps=eps, x_L=x_lower, x_U=x_upper)
        if norm == "l2":
            # auto_LiRPA 0.3 concretizes Lp balls (p < inf) through the dual norm and ignores
            # x_L/x_U; the bound over the whole ball remains valid for its part inside the domain.
            return self._lirpa.PerturbationLpNorm(norm=2.0, eps=eps)
        raise ValueError(f"unknown norm {norm!r}; expected one of {sorted(NORM_VALUES)}")

    def _ibp_perturbation(self, x: torch.Tensor, eps: torch.Tensor, norm: str,
                          domain: Domain | None, mask: torch.Tensor | None) -> object:
        """IBP's ball. auto_LiRPA 0.3 propagates an L2 ball by IBP only through a Linear or Conv
        fed directly by the input (elsewhere, e.g. after the video network's per-flow Gather, the
        input's interval is the centre point); for such networks and masked balls IBP bounds the
        Linf box of the same radius, which contains the L2 ball."""
        if norm == "l2" and (mask is not None or self._graph_bound is not None or self._network_bound is not None):
            return self._perturbation(x, eps, "linf", None, mask)
        return self._perturbation(x, eps, norm, domain, mask)

    def _beyond_relaxation_range(self) -> torch.Tensor | None:
        """Rows whose last bound computation fed a tanh, sigmoid or arctan a pre-activation bound
        beyond auto_LiRPA 0.3's ``x_limit`` (500), or ``None`` if the network has no such layer.

        auto_LiRPA clamps those bounds to [-500, 500] before it draws the activation's linear
        bounds (on the grounds that tanh(500) == 1 in floating point), but the lines are then used
        over the whole unclamped interval, where a tangent with positive slope climbs above the
        function: the bound is no longer a bound. IBP evaluates the activation at the interval's
        ends and is not affected."""
        rows = None
        for node in self.module._modules.values():
            if not isinstance(node, self._lirpa_s_shaped):
                continue
            source = node.inputs[0]
            extent = torch.maximum(source.lower.abs(), source.upper.abs()).reshape(len(source.lower), -1)
            beyond = (extent > node.x_limit).any(dim=1)
            rows = beyond if rows is None else rows | beyond
        return rows

    def _compute(
        self, x: torch.Tensor, eps: torch.Tensor, norm: str, domain: Domain | None,
        mask: torch.Tensor | None, method: str, C: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Bounds, and the graph rounding bound of the calls made (None without a graph bound)."""
        perturbation = (self._ibp_perturbation(x, eps, norm, domain, mask) if method == "ibp"
                        else self._perturbation(x, eps, norm, domain, mask))
        lower, upper = self._compute_lirpa(x, perturbation, method, C)
        slack = self._graph_slack(x, eps, C)
        if method == "ibp":
            return lower, upper, slack
        beyond = self._beyond_relaxation_range()
        if beyond is not None and bool(beyond.any()):
            ibp_lower, ibp_upper = self._compute_lirpa(x, self._ibp_perturbation(x, eps, norm, domain, mask), "ibp", C)
            keep = beyond.reshape(-1, *([1] * (lower.ndim - 1)))
            lower, upper = torch.where(keep, ibp_lower, lower), torch.where(keep, ibp_upper, upper)
            ibp_slack = self._graph_slack(x, eps, C)
            if slack is not None:
                slack = torch.maximum(slack, ibp_slack)
        return lower, upper, slack

    def _graph_slack(self, x: torch.Tensor, eps: torch.Tensor, C: torch.Tensor | None) -> torch.Tensor | None:
        if not self.sound or self._graph_bound is None:
            return None
        with torch.no_grad():
            return self._graph_bound(self, x, eps, None if C is None else C.to(torch.float64)).reshape(len(x), -1)

    def _compute_lirpa(
        self, x: torch.Tensor, perturbation: object, method: str, C: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        bounded = self._lirpa.BoundedTensor(x, perturbation)
        lirpa_method = LIRPA_METHODS[method]
        if method == "alpha-crown":
            if self.sound and (any(isinstance(layer, S_SHAPED) for layer in self.layers) or self.s_shaped):
                # auto_LiRPA 0.3 stores alpha-CROWN's tangent points in float32 whatever the
                # module's dtype; the slopes derived from them are not float64 tangents.
                raise ValueError("float64 alpha-CROWN is only sound for ReLU networks with auto_LiRPA 0.3")
            # Optimized bounds are computed one side at a time, with gradients on the slopes.
            with torch.enable_grad(), _default_dtype(self.dtype):
                lower, _ = self.module.compute_bounds(x=(bounded,), C=C, method=lirpa_method,
                                                      bound_lower=True, bound_upper=False)
                _, upper = self.module.compute_bounds(x=(bounded,), C=C, method=lirpa_method,
                                                      bound_lower=False, bound_upper=True)
        else:
            with torch.no_grad(), _default_dtype(self.dtype):
                lower, upper = self.module.compute_bounds(x=(bounded,), C=C, method=lirpa_method,
                                                          bound_lower=True, bound_upper=True)
        return lower.detach(), upper.detach()

    def bounds(
        self,
        x: torch.Tensor | np.ndarray,
        eps: float | torch.Tensor | np.ndarray,
        norm: str,
        method: str = "crown",
        domain: tuple[float, float] | None = None,
        C: torch.Tensor | None = None,
        mask: torch.Tensor | np.ndarray | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper bounds, shape (batch, outputs), of the network (or of ``C @ network``).

        ``eps`` is a scalar or one radius per sample (shape (batch,) or (batch, 1)). A float64
        engine's bounds are widened by :meth:`rounding_slack`: they hold for the float64 network
        (Sec. 3.2's verdicts rest on them) with no further tolerance.
        """
        lower, upper, _ = self.bounds_and_slack(x, eps, norm, method, domain, C, mask)
        return lower, upper

    def box_bounds(
        self, lower: torch.Tensor | np.ndarray, upper: torch.Tensor | np.ndarray, method: str = "crown",
        C: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Bounds (batch, outputs or specs) of the network, or of ``C @ network``, over the boxes
        ``[lower, upper]`` (batch, *input_shape), widened by the rounding slack like :meth:`bounds`.

        The box is auto_LiRPA's Linf ball with ``x_L = lower`` and ``x_U = upper`` exactly (a VNN-LIB
        input box); its centre and the largest half-width, rounded up, enter only the rounding
        bound, whose magnitudes a_0 = |x0| + eps then cover every point of the box."""
        if method not in LIRPA_METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {sorted(LIRPA_METHODS)}")
        lower_t, upper_t = self._tensor(lower), self._tensor(upper)
        if lower_t.shape != upper_t.shape or tuple(lower_t.shape[1:]) != self.input_shape:
            expected = ", ".join(map(str, self.input_shape))
            raise ValueError(f"boxes have shapes {tuple(lower_t.shape)} and {tuple(upper_t.shape)}; expected "
                             f"(batch, {expected}) for both")
        if bool((lower_t > upper_t).any()):
            raise ValueError("a box has a lower bound above its upper bound")
        centre = (lower_t + upper_t) / 2
        half = torch.maximum(upper_t - centre, centre - lower_t).reshape(len(centre), -1).amax(dim=1)
        # Rounded up, so that centre -/+ eps contains the box whatever the rounding of the centre.
        eps_t = self._eps(half * (1 + 8 * UNIT_ROUNDOFF) + 8 * UNIT_ROUNDOFF * centre.reshape(len(centre), -1).abs()
                          .amax(dim=1), len(centre))
        C_t = None if C is None else C.to(self.dtype)
        out_lower, out_upper, slack = self._compute(centre, eps_t, "linf", (lower_t, upper_t), None, method, C_t)
        if not self.sound:
            slack = torch.zeros_like(out_lower)
        elif slack is None:
            slack = self._a_priori_slack(centre, eps_t, C_t)
        return (out_lower - slack).detach(), (out_upper + slack).detach()

    def bounds_and_slack(
        self,
        x: torch.Tensor | np.ndarray,
        eps: float | torch.Tensor | np.ndarray,
        norm: str,
        method: str = "crown",
        domain: tuple[float, float] | None = None,
        C: torch.Tensor | None = None,
        mask: torch.Tensor | np.ndarray | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`bounds` (already widened) and the rounding slack they were widened by.

        ``mask`` (batch, *input_shape) or (*input_shape), 1 where the input may move: the ball
        is then ``{x' : ||x' - x||_p <= eps, x'_i = x_i off the mask}``. ``x`` has shape
        (batch, *input_shape) (a flat network: (batch, input_dim))."""
        if method not in LIRPA_METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {sorted(LIRPA_METHODS)}")
        if norm not in NORM_VALUES:
            raise ValueError(f"unknown norm {norm!r}; expected one of {sorted(NORM_VALUES)}")
        x_t = self._tensor(x)
        if tuple(x_t.shape[1:]) != self.input_shape:
            expected = ", ".join(map(str, self.input_shape))
            raise ValueError(f"x has shape {tuple(x_t.shape)}; expected (batch, {expected})")
        eps_t = self._eps(eps, len(x_t))
        mask_t = None
        if mask is not None:
            mask_t = self._tensor(mask)
            mask_t = (mask_t != 0).to(self.dtype).expand(len(x_t), *self.input_shape).contiguous()
        C_t = None if C is None else C.to(self.dtype)
        lower, upper, slack = self._compute(x_t, eps_t, norm, domain, mask_t, method, C_t)
        if domain is not None and norm == "linf" and method != "ibp":
            # A linear relaxation over a smaller box is not always tighter (the relaxation
            # changes with the box); the unclipped ball contains the clipped one, so its
            # bounds are valid too and the tighter of the two is kept.
            free_lower, free_upper, free_slack = self._compute(x_t, eps_t, norm, None, mask_t, method, C_t)
            lower, upper = torch.maximum(lower, free_lower), torch.minimum(upper, free_upper)
            if slack is not None:
                slack = torch.maximum(slack, free_slack)
        if not self.sound:
            slack = torch.zeros_like(lower)
        elif slack is None:
            slack = self._a_priori_slack(x_t, eps_t, C_t)
        lower, upper = lower - slack, upper + slack
        return lower.detach(), upper.detach(), slack.detach()
