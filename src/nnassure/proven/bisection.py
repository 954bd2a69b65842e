"""Largest eps certified in the worst case and by PROVEN at confidence gamma (Sec. 4, Methods).

The linear bounds of CROWN change with eps, so every bisection step recomputes them: one
batched auto_LiRPA call (``return_A=True``) for all rows of a step, each row with its own eps
and its own margin specification (predicted class against every other class). The bounded
module is built once per model and relaxation (:class:`~nnassure.certify.bounds.BoundEngine`).

Bisection is geometric (on log eps) between ``eps_min`` and ``eps_max``: the radii of interest
span several orders of magnitude (1e-3 on an image model, 1e-1 on a small digits net), and a
relative resolution is what the improvement percentages need. The radius reported is the last
one *certified during the search*, so it is certified whether or not the certificate is
monotone in eps.

Floating point: the linear bounds are CROWN's in float64, for the float64 network (the stored
float32 weights cast exactly), at the float64 eps that is reported. They hold up to the engine's
a-priori rounding bound (:meth:`~nnassure.certify.bounds.BoundEngine.rounding_slack`), so every
test is made at Theorem 3.1's level a = that slack (per row and target) plus
``BisectionSettings.level`` (0 by default); see :mod:`nnassure.proven.certificates`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from nnassure.certify.bounds import BoundEngine
from nnassure.proven.certificates import CERTIFICATES, certified_risk
from nnassure.proven.noise import noise_std

MAX_BISECTION_STEPS = 200  # a guard only: 64 halvings of log(eps_max / eps_min) reach float64 resolution

# Which noise case each certificate speaks of.
CERTIFICATE_NOISE = {"worst-case": "any", "hoeffding": "bounded"}


@dataclass(frozen=True)
class BisectionSettings:
    eps_min: float = 1e-4
    eps_max: float = 0.5
    tolerance: float = 5e-4  # relative: bisection stops when hi / lo <= 1 + tolerance
    guess_factor: float = 2.0  # PROVEN's first upper end: guess_factor x the worst-case eps
    batch_size: int = 256
    sigma_ratio: float = 3.0
    # Extra test level on top of the rounding slack (Theorem 3.1 holds for any a >= the slack).
    level: float = 0.0


@dataclass(frozen=True)
class Criterion:
    """One certificate to bisect: ``certificate`` for ``noise`` at confidence ``gamma``."""

    certificate: str
    noise: str
    gamma: float

    def __post_init__(self) -> None:
        if self.certificate not in CERTIFICATES:
            raise ValueError(f"unknown certificate {self.certificate!r}; expected one of {', '.join(CERTIFICATES)}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"confidence gamma must lie in (0, 1], got {self.gamma}")
        allowed = CERTIFICATE_NOISE.get(self.certificate, "gaussian-diagonal or gaussian-correlated")
        if self.noise not in allowed.split(" or "):
            raise ValueError(f"certificate {self.certificate!r} is for noise {allowed}, got {self.noise!r}")

    @property
    def allowed_risk(self) -> float:
        return 1.0 - self.gamma


def margin_specification(labels: np.ndarray, outputs: int) -> torch.Tensor:
    """C of shape (batch, targets, outputs) with rows e_c - e_t for every t != c (g_t = f_c - f_t).

    A one-logit binary model (class 1 iff logit >= 0) has one margin: +logit for class 1 and
    -logit for class 0.
    """
    labels = np.asarray(labels, np.int64)
    if outputs == 1:
        return torch.tensor(np.where(labels == 1, 1.0, -1.0), dtype=torch.float64).reshape(-1, 1, 1)
    eye = np.eye(outputs, dtype=np.float64)
    others = np.array([[t for t in range(outputs) if t != c] for c in labels], dtype=np.int64)
    return torch.tensor(eye[labels][:, None, :] - eye[others])


@dataclass
class RiskEvaluator:
    """Certified risk of rows (sample, criterion) at per-row eps, from batched float64 CROWN bounds,
    each test at level a = rounding slack + ``settings.level`` (Theorem 3.1)."""

    engine: BoundEngine
    x: np.ndarray
    labels: np.ndarray
    outputs: int
    settings: BisectionSettings
    correlation: np.ndarray | None = None
    calls: int = field(default=0, init=False)

    def __call__(self, samples: np.ndarray, eps: np.ndarray, certificates: Sequence[str]) -> np.ndarray:
        risk = np.empty(len(samples))
        certificates = np.asarray(certificates)
        for start in range(0, len(samples), self.settings.batch_size):
            part = slice(start, start + self.settings.batch_size)
            idx = samples[part]
            # float32 points cast exactly: the ball's centre is the data point.
            x = torch.as_tensor(self.x[idx].astype(np.float64))
            eps_part = torch.as_tensor(np.array(eps[part], np.float64))
            C = margin_specification(self.labels[idx], self.outputs)
            lA, lbias, _ = self.engine.linear_lower_bounds(x, eps_part, C)
            self.calls += 1
            # g_t(x') >= lA x' + lbias - slack on the ball, the slack also covering the float64
            # evaluation of mu below, so P[g > 0] >= P[g^L > slack] (Theorem 3.1 at a = slack).
            level = self.engine.rounding_slack(x, eps_part, C).double().numpy() + self.settings.level
            lA64 = lA.double().numpy()
            mu = np.einsum("rti,ri->rt", lA64, self.x[idx].astype(np.float64)) + lbias.double().numpy()
            part_risk = np.empty(len(idx))
            for certificate in np.unique(certificates[part]):
                rows = certificates[part] == certificate
                std = (noise_std(eps[part][rows], self.x.shape[1], self.settings.sigma_ratio)
                       if certificate.startswith("gaussian") else None)
                correlation = None
                if certificate.startswith("gaussian-correlated"):
                    if self.correlation is None:
                        raise ValueError("correlated Gaussian certificates need the evaluator's correlation matrix")
                    correlation = self.correlation
                part_risk[rows] = certified_risk(_certificate_kind(certificate), mu[rows], lA64[rows], eps[part][rows],
                                                 std, correlation, level[rows])
            risk[part] = part_risk
        return risk


def _certificate_kind(key: str) -> str:
    """Row keys name the noise of Gaussian certificates; the formula depends only on the kind."""
    return {"gaussian-diagonal": "gaussian-approx", "gaussian-correlated": "gaussian-approx",
            "gaussian-diagonal-rigorous": "gaussian-rigorous",
            "gaussian-correlated-rigorous": "gaussian-rigorous"}.get(key, key)


def _row_key(criterion: Criterion) -> str:
    if criterion.certificate.startswith("gaussian"):
        return criterion.noise + ("-rigorous" if criterion.certificate == "gaussian-rigorous" else "")
    return criterion.certificate


def bisect_largest_eps(
    risk_of: Callable[[np.ndarray, np.ndarray], np.ndarray],
    allowed_risk: np.ndarray,
    start_eps: np.ndarray,
    start_risk: np.ndarray,
    settings: BisectionSettings,
    guess_eps: np.ndarray | None = None,
    progress: bool = False,
    description: str = "bisection",
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the largest eps found with ``risk_of(rows, eps) <= allowed_risk``, and its risk.

    ``start_eps`` is a radius known to be certified (0: no noise, trivially certified) with risk
    ``start_risk``. Rows are bisected geometrically between max(start, eps_min) and eps_max until
    hi / lo <= 1 + tolerance; converged rows are not evaluated again. ``guess_eps`` (optional, per
    row, 0 for none) is tried first as the upper end: when the answer is known to lie close above
    the start (PROVEN's radius is rarely twice the worst-case one), this saves most of the steps;
    where the guess is certified the search goes on up to eps_max.
    """
    lo, lo_risk = start_eps.astype(np.float64).copy(), start_risk.astype(np.float64).copy()
    hi = np.full_like(lo, settings.eps_max)
    rows = np.arange(len(lo))

    def step(active: np.ndarray, eps: np.ndarray) -> None:
        risk = risk_of(rows[active], eps)
        ok = risk <= allowed_risk[active]
        lo[active] = np.where(ok, eps, lo[active])
        lo_risk[active] = np.where(ok, risk, lo_risk[active])
        hi[active] = np.where(ok, hi[active], eps)

    if guess_eps is not None:
        guessed = (guess_eps > lo) & (guess_eps < hi)
        if guessed.any():
            step(guessed, guess_eps[guessed])
            # A certified guess says nothing about eps_max: search on above it.
            hi[guessed] = np.where(lo[guessed] == guess_eps[guessed], settings.eps_max, hi[guessed])
    bar = tqdm(desc=description, unit="step", disable=not progress, leave=False)
    for _ in range(MAX_BISECTION_STEPS):
        floor = np.maximum(lo, settings.eps_min)
        active = hi > floor * (1.0 + settings.tolerance)
        if not active.any():
            break
        step(active, np.sqrt(floor[active] * hi[active]))
        bar.update()
    bar.close()
    return lo, lo_risk


def _bisect_rows(
    evaluate: RiskEvaluator,
    samples: np.ndarray,
    keys: np.ndarray,
    allowed: np.ndarray,
    start_eps: np.ndarray,
    start_risk: np.ndarray,
    progress: bool,
    description: str,
    guess_eps: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    return bisect_largest_eps(lambda rows, eps: evaluate(samples[rows], eps, keys[rows]), allowed, start_eps,
                              start_risk, evaluate.settings, guess_eps, progress, description)


def worst_case_eps(evaluate: RiskEvaluator, progress: bool = False) -> np.ndarray:
    """Largest eps with every margin's CROWN lower bound positive on the ball (Sec. 3.1)."""
    n = len(evaluate.x)
    samples = np.arange(n)
    eps, _ = _bisect_rows(evaluate, samples, np.full(n, "worst-case"), np.zeros(n), np.zeros(n), np.zeros(n),
                          progress, "worst-case eps")
    return eps


def proven_eps(
    evaluate: RiskEvaluator,
    criteria: Sequence[Criterion],
    worst_case: np.ndarray | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Largest eps certified by each criterion for every sample, in one batched bisection.

    With ``worst_case`` given, bisections whose certificate holds with risk 0 wherever the worst
    case does (Hoeffding and the paper's Gaussian approximation) start from it, so the PROVEN
    radius is never below the worst-case one. The rigorous Gaussian certificate starts from 0:
    at the worst-case radius it still loses the mass outside the ball.
    """
    n = len(evaluate.x)
    samples = np.tile(np.arange(n), len(criteria))
    keys = np.repeat([_row_key(c) for c in criteria], n)
    allowed = np.repeat([c.allowed_risk for c in criteria], n)
    starts_at_worst_case = np.repeat([c.certificate in ("hoeffding", "gaussian-approx", "worst-case")
                                      for c in criteria], n)
    start = np.zeros(len(samples))
    if worst_case is not None:
        start = np.where(starts_at_worst_case, np.tile(worst_case, len(criteria)), 0.0)
    guess = np.where(start > 0, start * evaluate.settings.guess_factor, 0.0)
    eps, risk = _bisect_rows(evaluate, samples, keys, allowed, start, np.zeros(len(samples)), progress, "PROVEN eps",
                             guess)
    return pd.DataFrame({
        "sample": samples,
        "certificate": np.repeat([c.certificate for c in criteria], n),
        "noise": np.repeat([c.noise for c in criteria], n),
        "gamma": np.repeat([c.gamma for c in criteria], n),
        "certified_eps": eps,
        "risk": risk,
        "certified_probability": 1.0 - risk,
    })
