"""The noise models PROVEN certifies against (Sec. 3.3 and 4), and samplers for checking them.

- ``bounded``: independent coordinates, symmetric about x0_i, within [x0_i - eps, x0_i + eps]
  (Case (i)). Any such law is covered; :func:`sample_noise` draws the uniform law and the
  two-point law +-eps (the extreme case of Hoeffding's inequality).
- ``gaussian-diagonal`` / ``gaussian-correlated``: N(x0, Sigma) with sqrt(Sigma_ii) = eps / k,
  k = 3 by the 3-sigma rule of Remark 3.4 (Case (ii)). The correlated Sigma is
  (eps / k)^2 * R with R a spatial correlation of the image: exp(-distance / length) between
  pixels, times a constant correlation between the colour channels of one pixel. Both factors
  are positive semi-definite (the exponential kernel is, and so is a Kronecker product of PSD
  matrices), so Sigma is a covariance with the paper's diagonal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnassure.proven.certificates import NOISE_CASES


def spatial_correlation(
    input_shape: Sequence[int], length: float = 1.0, channel_correlation: float = 0.5
) -> np.ndarray:
    """Correlation matrix R (n x n) of noise on an input of shape (H, W), (H, W, C) or (n,).

    Coordinates are flattened row-major, as the models see them. A 1-D input is treated as
    points on a line.
    """
    if length <= 0 or not 0.0 <= channel_correlation <= 1.0:
        raise ValueError(f"need length > 0 and channel_correlation in [0, 1], got {length}, {channel_correlation}")
    shape = tuple(int(s) for s in input_shape)
    spatial, channels = (shape[:2], shape[2]) if len(shape) == 3 else (shape, 1)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in spatial], indexing="ij"), axis=-1).reshape(-1, len(spatial))
    distance = np.sqrt(((grid[:, None, :] - grid[None, :, :]) ** 2).sum(-1))
    correlation = np.exp(-distance / length)
    if channels > 1:
        between = np.full((channels, channels), channel_correlation) + (1 - channel_correlation) * np.eye(channels)
        correlation = np.kron(correlation, between)
    return correlation


def noise_std(eps: np.ndarray, input_dim: int, sigma_ratio: float) -> np.ndarray:
    """Per-coordinate standard deviation eps / k of the Gaussian cases, shape (rows, input_dim)."""
    eps = np.asarray(eps, np.float64).reshape(-1, 1)
    return np.broadcast_to(eps / sigma_ratio, (len(eps), input_dim))


def sample_noise(
    noise: str,
    eps: float,
    input_dim: int,
    draws: int,
    rng: np.random.Generator,
    sigma_ratio: float = 3.0,
    correlation: np.ndarray | None = None,
    bounded_law: str = "uniform",
) -> np.ndarray:
    """``draws`` perturbations delta (draws, input_dim) of the stated law; X = x0 + delta."""
    if noise not in NOISE_CASES:
        raise ValueError(f"unknown noise case {noise!r}; expected one of {', '.join(NOISE_CASES)}")
    if noise == "bounded":
        if bounded_law == "uniform":
            return rng.uniform(-eps, eps, size=(draws, input_dim))
        if bounded_law == "two-point":
            return eps * rng.choice(np.array([-1.0, 1.0]), size=(draws, input_dim))
        raise ValueError(f"unknown bounded law {bounded_law!r}; expected uniform or two-point")
    std = eps / sigma_ratio
    standard = rng.standard_normal(size=(draws, input_dim))
    if noise == "gaussian-diagonal":
        return std * standard
    if correlation is None:
        raise ValueError("gaussian-correlated noise needs a correlation matrix")
    # Eigendecomposition rather than Cholesky: R may be singular (PSD, not PD).
    values, vectors = np.linalg.eigh(correlation)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    return std * standard @ root.T
