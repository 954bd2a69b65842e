"""PROVEN's closed-form probabilistic certificates (Weng et al., Sec. 3.3).

Everything is computed from CROWN's linear lower bounds g_t^L(x) = A_t x + d_t of the margins
g_t = f_c - f_t, valid on the ball ||x - x0||_inf <= eps (Eq. 1-2). We work with *risk*, the
certified bound on the probability that a margin is not positive, rather than with gamma_L = 1 -
risk: the union bound over targets is then a sum, and a risk of exactly 0 (the worst case holds)
stays distinct from 1e-300 (Hoeffding), which float64 ``1 - gamma`` would not keep apart.

Written by hand because no library implements PROVEN; scipy supplies the normal tail.

Rounding: A and d come from float64 CROWN, and g_t(x) >= A_t x + d_t - s_t on the ball, where
s_t is the engine's a-priori bound on float64 rounding
(:meth:`nnassure.certify.bounds.BoundEngine.rounding_slack`, derived in
:mod:`nnassure.certify.bounds`; it also covers computing mu = A x0 + d in float64). So every test
is made at Theorem 3.1's level ``a = s`` rather than 0: P[g > 0] >= P[g^L > s], and the worst
case needs mu - eps ||A||_1 > s, the same slack as verification (Sec. 3.2). ``level`` is that
a, a scalar or an array broadcasting with ``mu`` (one per row and target); the default 0 is the
exact-arithmetic statement, for linear bounds known exactly.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

# Smallest risk reported for a margin the worst case does not prove positive. Hoeffding's tail
# can underflow to 0 in float64 (exp(-z) for z > 745) although it is positive; keeping it above 0
# keeps "certified with probability 1" equivalent to "certified in the worst case".
MIN_POSITIVE_RISK = 1e-300

NOISE_CASES = ("bounded", "gaussian-diagonal", "gaussian-correlated")
CERTIFICATES = ("worst-case", "hoeffding", "gaussian-approx", "gaussian-rigorous")


def worst_case_lower(mu: np.ndarray, a_l1: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """min over the Linf ball of A x + d = mu - eps ||A||_1 (the closed form of Sec. 3.1)."""
    return mu - eps * a_l1


def hoeffding_risk(mu: np.ndarray, a_l2_sq: np.ndarray, eps: np.ndarray, level: float | np.ndarray = 0.0) -> np.ndarray:
    """Corollary 3.2: P[g^L(X) <= a] <= exp(-(mu - a)^2 / (2 eps^2 ||A||_2^2)) when mu > a, else 1.

    X has independent coordinates, each symmetric about x0_i and within [x0_i - eps, x0_i + eps].
    Arrays broadcast; ``eps`` per row.
    """
    mu, a_l2_sq, eps, level = np.broadcast_arrays(np.asarray(mu, np.float64), np.asarray(a_l2_sq, np.float64),
                                                  np.asarray(eps, np.float64), np.asarray(level, np.float64))
    gap = mu - level
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = gap**2 / (2.0 * eps**2 * a_l2_sq)
    risk = np.exp(-np.where(np.isnan(exponent), np.inf, exponent))
    return np.where(gap > 0, risk, 1.0)


def gaussian_risk(mu: np.ndarray, sigma_sq: np.ndarray, level: float | np.ndarray = 0.0) -> np.ndarray:
    """Corollary 3.3: for X ~ N(x0, Sigma), g^L(X) ~ N(mu, A Sigma A^T), so
    P[g^L(X) <= a] = Phi((a - mu) / sigma_L). Exact for the linear function; see
    :func:`mass_outside_box` for why it is only an approximation of P[g(X) <= a]."""
    mu = np.asarray(mu, np.float64)
    sigma = np.sqrt(np.maximum(np.asarray(sigma_sq, np.float64), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (level - mu) / sigma
    # sigma = 0: the linear bound is the constant mu.
    return np.where(sigma > 0, ndtr(np.nan_to_num(z)), np.where(mu > level, 0.0, 1.0))


def mass_outside_box(eps: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Upper bound on P[||X - x0||_inf > eps] for X ~ N(x0, Sigma), std = sqrt(diag Sigma).

    Sidak's inequality (1967) gives P[all |X_i - x0_i| <= eps] >= prod_i P[|X_i - x0_i| <= eps]
    for any centred Gaussian vector, correlated or not, so the bound holds for both Gaussian cases.
    ``eps`` has shape (rows,), ``std`` shape (rows, n) (or broadcastable).
    """
    eps = np.asarray(eps, np.float64)[..., None]
    std = np.asarray(std, np.float64)
    with np.errstate(divide="ignore"):
        inside = 1.0 - 2.0 * ndtr(-eps / std)
    # log-sum keeps the product accurate when it is close to 1 for many coordinates.
    return -np.expm1(np.log(np.clip(inside, 1e-300, 1.0)).sum(axis=-1))


def classifier_risk(target_risk: np.ndarray, target_mask: np.ndarray | None = None) -> np.ndarray:
    """Union bound over targets: P[top-1 label changes] <= sum_t P[g_t <= 0], capped at 1.

    ``target_risk`` has shape (rows, targets); ``target_mask`` marks real targets (rows may be
    padded when classes differ in number).
    """
    risk = np.asarray(target_risk, np.float64)
    if target_mask is not None:
        risk = np.where(target_mask, risk, 0.0)
    return np.minimum(risk.sum(axis=-1), 1.0)


def certified_risk(
    certificate: str,
    mu: np.ndarray,
    lA: np.ndarray,
    eps: np.ndarray,
    noise_std: np.ndarray | None = None,
    noise_correlation: np.ndarray | None = None,
    level: float | np.ndarray = 0.0,
) -> np.ndarray:
    """Certified bound on the probability that the top-1 label changes, one value per row
    (the certified probability of Sec. 3 is one minus it).

    ``mu`` (rows, targets) is A_t x0 + d_t; ``lA`` (rows, targets, n) the rows A_t; ``eps``
    (rows,) the radius the bounds hold on. Gaussian certificates need ``noise_std`` (rows, n), the
    standard deviation of each coordinate, and ``noise_correlation`` (n, n) for correlated noise
    (None: independent). ``worst-case`` is 1 or 0; every other certificate is at least as large
    as it, because a margin proven positive on the whole ball has risk 0 (or, for the rigorous
    Gaussian certificate, only the mass outside the ball).
    """
    if certificate not in CERTIFICATES:
        raise ValueError(f"unknown certificate {certificate!r}; expected one of {', '.join(CERTIFICATES)}")
    mu = np.asarray(mu, np.float64)
    lA = np.asarray(lA, np.float64)
    eps = np.asarray(eps, np.float64).reshape(-1)
    proven = worst_case_lower(mu, np.abs(lA).sum(-1), eps[:, None]) > level
    all_proven = proven.all(axis=-1)
    if certificate == "worst-case":
        return np.where(all_proven, 0.0, 1.0)
    if certificate == "hoeffding":
        target = hoeffding_risk(mu, (lA**2).sum(-1), eps[:, None], level)
        target = np.where(proven, 0.0, np.maximum(target, MIN_POSITIVE_RISK))
        return classifier_risk(target)
    if noise_std is None:
        raise ValueError("Gaussian certificates need noise_std")
    std = np.asarray(noise_std, np.float64)
    scaled = lA * std[:, None, :]
    if noise_correlation is None:
        sigma_sq = (scaled**2).sum(-1)
    else:
        sigma_sq = np.einsum("rti,ij,rtj->rt", scaled, np.asarray(noise_correlation, np.float64), scaled)
    # A margin proven positive on the whole ball contributes no risk inside the ball.
    target = np.where(proven, 0.0, np.maximum(gaussian_risk(mu, sigma_sq, level), MIN_POSITIVE_RISK))
    risk = classifier_risk(target)
    if certificate == "gaussian-approx":
        # The paper's number (Cor. 3.3 with Remark 3.4): the linear bounds are used as if they
        # held everywhere, so the mass outside the ball is ignored. At the worst-case radius it
        # gives probability 1, as in Table 2.
        return risk
    # Rigorous: P[top-1 changes] <= P[X outside ball] + sum_t P[X in ball and g_t^L(X) <= a].
    return np.minimum(risk + mass_outside_box(eps, std), 1.0)
