"""Output bounds of a network over an Lp ball, from auto_LiRPA (IBP, CROWN, alpha-CROWN).

One :class:`BoundEngine` wraps one ``BoundedModule``, built once per network and reused for every
batch, norm and eps (the paper authors' code rebuilt it per batch; see ``make bench``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from nnassure.lirpa_compat import auto_lirpa

# auto_LiRPA's method names for the pipeline's method names.
LIRPA_METHODS = {"ibp": "IBP", "crown": "backward", "alpha-crown": "CROWN-Optimized"}
NORM_VALUES = {"linf": math.inf, "l2": 2.0}
# Linear relaxations of unstable ReLUs: CROWN's adaptive lower slope (0 or 1, whichever is
# tighter) or Fast-Lin's lower slope equal to the upper one, u / (u - l) (PROVEN Tables 2a/2b).
RELU_RELAXATIONS = {"crown": "adaptive", "fast-lin": "same-slope"}


class BoundEngine:
    """Bounds of a network's outputs over ``{x' : ||x' - x||_p <= eps}`` (optionally intersected
    with the input domain [lo, hi]^d for Linf, through auto_LiRPA's ``x_L``/``x_U``)."""

    def __init__(
        self, network: nn.Module, input_dim: int, alpha_iterations: int = 20, relu_relaxation: str = "crown"
    ) -> None:
        if relu_relaxation not in RELU_RELAXATIONS:
            raise ValueError(f"unknown ReLU relaxation {relu_relaxation!r}; expected one of {sorted(RELU_RELAXATIONS)}")
        lirpa = auto_lirpa()
        self.network = network.eval()
        self._lirpa = lirpa
        self.module = lirpa.BoundedModule(
            self.network,
            torch.zeros(1, input_dim),
            bound_opts={"optimize_bound_args": {"iteration": alpha_iterations},
                        "relu": RELU_RELAXATIONS[relu_relaxation]},
            device="cpu",
            verbose=False,
        )
        self.input_dim = input_dim
        self.relu_relaxation = relu_relaxation

    def linear_lower_bounds(
        self, x: torch.Tensor, eps: torch.Tensor, C: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """CROWN's linear lower bounds of ``C @ network`` on the Linf ball of radius ``eps`` (one per row).

        Returns ``(lA, lbias, lower)``: lA (batch, specs, input_dim) and lbias (batch, specs) with
        lA x' + lbias <= C f(x') for every x' in the ball (PROVEN Eq. 1-2), and the concretized
        lower bound over the ball.
        """
        eps = eps.reshape(-1, 1).to(torch.float32).contiguous()
        bounded = self._lirpa.BoundedTensor(x, self._perturbation(x, eps, "linf", None))
        output, inputs = self.module.final_name, self.module.input_name[0]
        with torch.no_grad():
            lower, _, a_dict = self.module.compute_bounds(
                x=(bounded,), C=C, method="backward", bound_lower=True, bound_upper=False,
                return_A=True, needed_A_dict={output: [inputs]},
            )
        coefficients = a_dict[output][inputs]
        lA = coefficients["lA"].reshape(len(x), C.shape[1], -1)
        return lA.detach(), coefficients["lbias"].reshape(len(x), C.shape[1]).detach(), lower.detach()

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

    def _compute(
        self, x: torch.Tensor, perturbation: object, method: str, C: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        bounded = self._lirpa.BoundedTensor(x, perturbation)
        lirpa_method = LIRPA_METHODS[method]
        if method == "alpha-crown":
            # Optimized bounds are computed one side at a time, with gradients on the slopes.
            with torch.enable_grad():
                lower, _ = self.module.compute_bounds(x=(bounded,), C=C, method=lirpa_method,
                                                      bound_lower=True, bound_upper=False)
                _, upper = self.module.compute_bounds(x=(bounded,), C=C, method=lirpa_method,
                                                      bound_lower=False, bound_upper=True)
        else:
            with torch.no_grad():
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

        ``eps`` is a scalar or one radius per sample (shape (batch,) or (batch, 1)).
        """
        if method not in LIRPA_METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {sorted(LIRPA_METHODS)}")
        x = torch.as_tensor(np.array(x, np.float32) if isinstance(x, np.ndarray) else x, dtype=torch.float32)
        eps_t = torch.as_tensor(np.array(eps, np.float32) if isinstance(eps, np.ndarray) else eps,
                                dtype=torch.float32)
        eps_t = eps_t.reshape(-1, 1).expand(len(x), 1) if eps_t.ndim else eps_t.expand(len(x), 1)
        eps_t = eps_t.contiguous()
        lower, upper = self._compute(x, self._perturbation(x, eps_t, norm, domain), method, C)
        if domain is not None and norm == "linf" and method != "ibp":
            # A linear relaxation over a smaller box is not always tighter (the relaxation
            # changes with the box); the unclipped ball contains the clipped one, so its
            # bounds are valid too and the tighter of the two is kept.
            free_lower, free_upper = self._compute(x, self._perturbation(x, eps_t, norm, None), method, C)
            lower, upper = torch.maximum(lower, free_lower), torch.minimum(upper, free_upper)
        return lower.detach(), upper.detach()
