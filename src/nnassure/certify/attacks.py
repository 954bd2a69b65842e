"""Counterexample hunts inside an Lp ball: PGD and uniform random sampling.

They are used by the soundness tests (and anyone auditing a certificate): a sample reported
verified must have no point in its ball whose predicted class differs from the label.

Both work in the network's own dtype and, for :func:`sample_ball`, in float64 by default: the
certificates of Sec. 3.2 are for the float64 network, and a point rounded to float32 can leave
the ball it was drawn from.
"""

from __future__ import annotations

import numpy as np
import torch


def _project(delta: torch.Tensor, eps: torch.Tensor, norm: str) -> torch.Tensor:
    if norm == "linf":
        return torch.maximum(torch.minimum(delta, eps), -eps)
    norms = delta.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return delta * torch.clamp(eps / norms, max=1.0)


def sample_ball(center: np.ndarray, eps: float, norm: str, n: int, rng: np.random.Generator,
                dtype: type[np.floating] = np.float64) -> np.ndarray:
    """``n`` points uniformly distributed in the ``norm`` ball of radius ``eps`` around ``center``,
    as ``dtype`` (float64: inside the ball up to one rounding of each coordinate)."""
    dim = center.shape[-1]
    if norm == "linf":
        offsets = rng.uniform(-eps, eps, size=(n, dim))
    else:
        direction = rng.normal(size=(n, dim))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        offsets = direction * eps * rng.uniform(0, 1, size=(n, 1)) ** (1 / dim)
    return (np.asarray(center, np.float64) + offsets).astype(dtype)


def pgd_worst_logits(
    network: torch.nn.Module,
    x: np.ndarray,
    labels: np.ndarray,
    eps: float | np.ndarray,
    norm: str,
    steps: int = 50,
    restarts: int = 3,
    seed: int = 0,
) -> np.ndarray:
    """Signed logit s * a(x') at the worst point PGD finds (s = +1 for label 1, -1 for label 0).

    For label 1 a value below 0 is a counterexample (class 1 iff a >= 0); for label 0 a value
    <= 0, i.e. a >= 0, is one. Computed in the dtype of the network's parameters (float64 for a
    float64 copy, the network the certificates speak of).
    """
    dtype = next(network.parameters()).dtype
    generator = torch.Generator().manual_seed(seed)
    x_t = torch.as_tensor(np.asarray(x, np.float64)).to(dtype)
    sign = torch.as_tensor(np.where(np.asarray(labels) == 1, 1.0, -1.0)).to(dtype)
    eps_t = torch.as_tensor(np.broadcast_to(np.asarray(eps, np.float64), (len(x),)).copy()).to(dtype).reshape(-1, 1)
    step = 2.5 * eps_t / steps
    best = torch.full((len(x),), float("inf"), dtype=dtype)
    for _ in range(restarts):
        noise = torch.rand(x_t.shape, generator=generator, dtype=torch.float64).to(dtype)
        delta = _project((noise * 2 - 1) * eps_t, eps_t, norm)
        for _ in range(steps):
            delta.requires_grad_(True)
            score = sign * network(x_t + delta)[:, 0]
            (grad,) = torch.autograd.grad(score.sum(), delta)
            with torch.no_grad():
                if norm == "linf":
                    update = grad.sign()
                else:
                    update = grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12)
                delta = _project(delta - step * update, eps_t, norm)
                best = torch.minimum(best, sign * network(x_t + delta)[:, 0])
    return best.numpy()
