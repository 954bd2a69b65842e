"""Verified samples, verified accuracy (Eqs. 3-4) and largest certified radii (Sec. 3.2).

A sample is verified at radius eps when every input of its eps-ball gets its true label: the
logit's lower bound is on class 1's side (a >= 0) for label 1, the upper bound on class 0's
side (a < 0) for label 0.

The bounds come from a float64 :class:`BoundEngine`, already widened by its a-priori bound on
float64 rounding (:func:`nnassure.certify.bounds.rounding_slack`): they hold for the float64
network the model file defines, so they are compared with 0 exactly, and a tie at 0 is class 1.
(The former float32 bounds cleared 0 by a fixed 1e-5, which float32 rounding could exceed.)
Bounds and certified radii are float64.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from nnassure.certify.bounds import BoundEngine

INPUT_DOMAIN = (0.0, 1.0)


def is_verified(lower: np.ndarray, upper: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """True where the whole ball is classified as the label (class 1 iff logit >= 0).

    ``lower``/``upper`` must be sound bounds of the logit (a float64 engine's, which include the
    rounding slack): no tolerance is applied here.
    """
    lower, upper, labels = np.asarray(lower), np.asarray(upper), np.asarray(labels)
    return np.where(labels == 1, lower >= 0.0, upper < 0.0)


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def batched_bounds(
    engine: BoundEngine,
    x: np.ndarray,
    eps: float | np.ndarray,
    norm: str,
    method: str,
    batch_size: int,
    domain: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Logit bounds of every sample, ``batch_size`` samples per auto_LiRPA call (float64, sound for
    the float64 network with a float64 engine)."""
    lower = np.empty(len(x), np.float64)
    upper = np.empty(len(x), np.float64)
    # float64 radii: a float32 one would be a different (slightly larger or smaller) ball.
    eps_all = np.broadcast_to(np.asarray(eps, np.float64), (len(x),))
    for part in _batches(len(x), batch_size):
        lo, up = engine.bounds(x[part], eps_all[part], norm, method, domain)
        lower[part], upper[part] = lo[:, 0].numpy(), up[:, 0].numpy()
    return lower, upper


def certified_radius(
    engine: BoundEngine,
    x: np.ndarray,
    labels: np.ndarray,
    norm: str,
    method: str = "crown",
    radius_max: float = 0.5,
    steps: int = 16,
    batch_size: int = 4096,
    domain: tuple[float, float] | None = None,
) -> np.ndarray:
    """Largest radius at which each sample was verified, by bisection on [0, radius_max].

    All samples are bisected together, each at its own radius. The returned radius is always
    one at which the sample *was* verified (0 for a misclassified sample), so it is a sound
    certificate whatever the monotonicity of the relaxation; it is within
    radius_max / 2**steps of the bisection's boundary. Radii are float64, the radius the bounds
    were computed at (a float32 copy could round above it).
    """
    labels = np.asarray(labels)
    low = np.zeros(len(x), np.float64)
    high = np.full(len(x), radius_max, np.float64)
    lower, upper = batched_bounds(engine, x, high, norm, method, batch_size, domain)
    done = is_verified(lower, upper, labels)
    low[done] = radius_max
    for _ in range(steps):
        mid = (low + high) / 2
        lower, upper = batched_bounds(engine, x, mid, norm, method, batch_size, domain)
        ok = is_verified(lower, upper, labels) & ~done
        low = np.where(ok, mid, low)
        high = np.where(ok | done, high, mid)
    # A radius of 0 means "correctly classified at the centre" or less; misclassified samples
    # are not certified at any radius. The centre's class is the engine's network's (float64 for
    # a float64 engine), the network the certificate speaks of.
    with torch.no_grad():
        logits = engine.network(torch.as_tensor(np.asarray(x, np.float64)).to(engine.dtype))[:, 0].numpy()
    correct = (logits >= 0).astype(np.int64) == labels
    return np.where(correct, low, 0.0)


@dataclass
class CertificationResult:
    """Per-sample rows (one per sample, norm, eps and method) and the verified accuracies."""

    samples: pd.DataFrame
    summary: pd.DataFrame


def certify_dataset(
    network: torch.nn.Module,
    frame: pd.DataFrame,
    norms: list[str],
    eps_values: list[float],
    methods: list[str],
    radius_method: str = "crown",
    clip_to_domain: bool = False,
    batch_size: int = 4096,
    alpha_batch_size: int = 20,
    alpha_iterations: int = 20,
    radius_max: float = 0.5,
    radius_steps: int = 16,
    progress: bool = True,
    radius: bool = True,
) -> CertificationResult:
    """Verify every sample of ``frame`` (the full data, Sec. 3.2) for each norm, eps and method.

    The largest certified radius is computed for ``radius_method`` and stored on its rows
    (NaN on the rows of the other methods, and on every row when ``radius`` is False). Bounds are
    computed in float64 and are sound for the float64 network (stored float32 weights cast exactly);
    ``lower``, ``upper`` and ``certified_radius`` are float64, and ``prediction`` is that network's
    class at the sample.
    """
    # The balls are centred on the stored (float64) points themselves: a float32 copy would move
    # each centre by up to ~3e-8 and certify a ball around another point than the sample's.
    x = frame[["x1", "x2"]].to_numpy(np.float64)
    labels = frame["label"].to_numpy(np.int64)
    engine = BoundEngine(network, x.shape[1], alpha_iterations=alpha_iterations)
    with torch.no_grad():
        logits = engine.network(torch.as_tensor(x).to(engine.dtype))[:, 0].numpy()
    predictions = (logits >= 0).astype(np.int64)
    domain = INPUT_DOMAIN if clip_to_domain else None

    jobs = [(norm, method, eps) for norm in norms for method in methods for eps in eps_values]
    rows: list[pd.DataFrame] = []
    summary: list[dict[str, object]] = []
    radii: dict[str, np.ndarray] = {}
    bar = tqdm(total=len(jobs) + len(norms) * radius, desc="certify", disable=not progress, leave=False)
    for norm in norms:
        if not radius:
            radii[norm] = np.full(len(x), np.nan, np.float64)
            continue
        bar.set_postfix(norm=norm, step="radius")
        radii[norm] = certified_radius(engine, x, labels, norm, radius_method, radius_max, radius_steps,
                                       batch_size, domain)
        bar.update()
    for norm, method, eps in jobs:
        bar.set_postfix(norm=norm, method=method, eps=eps)
        size = alpha_batch_size if method == "alpha-crown" else batch_size
        lower, upper = batched_bounds(engine, x, eps, norm, method, size, domain)
        verified = is_verified(lower, upper, labels)
        radius = radii[norm] if method == radius_method else np.full(len(x), np.nan, np.float64)
        rows.append(
            pd.DataFrame(
                {
                    "sample_id": frame["sample_id"].to_numpy(),
                    "split": frame["split"].to_numpy(),
                    "x1": x[:, 0],
                    "x2": x[:, 1],
                    "label": labels,
                    "prediction": predictions,
                    "norm": norm,
                    "eps": np.float64(eps),
                    "method": method,
                    "lower": lower,
                    "upper": upper,
                    "verified": verified,
                    "certified_radius": radius,
                }
            )
        )
        summary.append({"norm": norm, "method": method, "eps": eps, "verified_accuracy": float(verified.mean()),
                         "misclassification_error": float(1 - verified.mean())})
        bar.update()
    bar.close()
    return CertificationResult(samples=pd.concat(rows, ignore_index=True), summary=pd.DataFrame(summary))
