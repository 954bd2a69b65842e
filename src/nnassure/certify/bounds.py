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
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager

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
        self, network: nn.Module, input_dim: int, alpha_iterations: int = 20, relu_relaxation: str = "crown",
        dtype: torch.dtype = torch.float64,
    ) -> None:
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
        self.layers = sequential_layers(self.network) if self.sound else []
        self._lirpa = lirpa
        # auto_LiRPA's tanh node; its sigmoid and arctan nodes derive from it.
        from auto_LiRPA.operators.activation import BoundTanh

        self._lirpa_s_shaped = BoundTanh
        with _default_dtype(dtype):
            self.module = lirpa.BoundedModule(
                self.network,
                torch.zeros(1, input_dim, dtype=dtype),
                bound_opts={"optimize_bound_args": {"iteration": alpha_iterations},
                            "relu": RELU_RELAXATIONS[relu_relaxation]},
                device="cpu",
                verbose=False,
            )
        self.input_dim = input_dim
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
        return rounding_slack(self.layers, x_t, eps_t, None if C is None else C.to(torch.float64))

    def _eps(self, eps: torch.Tensor | np.ndarray | float, batch: int) -> torch.Tensor:
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
        self, x: torch.Tensor, eps: torch.Tensor, norm: str, domain: tuple[float, float] | None
    ) -> object:
        if norm == "linf":
            x_lower, x_upper = x - eps, x + eps
            if domain is not None:
                x_lower = x_lower.clamp(min=domain[0])
                x_upper = x_upper.clamp(max=domain[1])
            return self._lirpa.PerturbationLpNorm(norm=math.inf, eps=eps, x_L=x_lower, x_U=x_upper)
        if norm == "l2":
            # auto_LiRPA 0.3 concretizes Lp balls (p < inf) through the dual norm and ignores
            # x_L/x_U; the bound over the whole ball remains valid for its part inside the domain.
            return self._lirpa.PerturbationLpNorm(norm=2.0, eps=eps)
        raise ValueError(f"unknown norm {norm!r}; expected one of {sorted(NORM_VALUES)}")

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
        self, x: torch.Tensor, perturbation: object, method: str, C: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        lower, upper = self._compute_lirpa(x, perturbation, method, C)
        if method == "ibp":
            return lower, upper
        beyond = self._beyond_relaxation_range()
        if beyond is not None and bool(beyond.any()):
            ibp_lower, ibp_upper = self._compute_lirpa(x, perturbation, "ibp", C)
            keep = beyond.reshape(-1, *([1] * (lower.ndim - 1)))
            lower, upper = torch.where(keep, ibp_lower, lower), torch.where(keep, ibp_upper, upper)
        return lower, upper

    def _compute_lirpa(
        self, x: torch.Tensor, perturbation: object, method: str, C: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        bounded = self._lirpa.BoundedTensor(x, perturbation)
        lirpa_method = LIRPA_METHODS[method]
        if method == "alpha-crown":
            if self.sound and any(isinstance(layer, S_SHAPED) for layer in self.layers):
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
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper bounds, shape (batch, outputs), of the network (or of ``C @ network``).

        ``eps`` is a scalar or one radius per sample (shape (batch,) or (batch, 1)). A float64
        engine's bounds are widened by :meth:`rounding_slack`: they hold for the float64 network
        (Sec. 3.2's verdicts rest on them) with no further tolerance.
        """
        if method not in LIRPA_METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {sorted(LIRPA_METHODS)}")
        x_t = self._tensor(x)
        eps_t = self._eps(eps, len(x_t))
        C_t = None if C is None else C.to(self.dtype)
        lower, upper = self._compute(x_t, self._perturbation(x_t, eps_t, norm, domain), method, C_t)
        if domain is not None and norm == "linf" and method != "ibp":
            # A linear relaxation over a smaller box is not always tighter (the relaxation
            # changes with the box); the unclipped ball contains the clipped one, so its
            # bounds are valid too and the tighter of the two is kept.
            free_lower, free_upper = self._compute(x_t, self._perturbation(x_t, eps_t, norm, None), method, C_t)
            lower, upper = torch.maximum(lower, free_lower), torch.minimum(upper, free_upper)
        if self.sound:
            slack = rounding_slack(self.layers, x_t, eps_t, C_t)
            lower, upper = lower - slack, upper + slack
        return lower.detach(), upper.detach()
