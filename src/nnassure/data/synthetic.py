"""Seeded analogues of the challenge data sets A, B and C (verified-classification paper, Sec. 1.1).

The original data are not public. Each generator draws points uniformly in [0, 1]^2, labels them
with a fixed decision function, and keeps only points at least ``margin`` away from the decision
boundary, so the two classes never overlap (the paper states that labels are correct and
classes do not overlap). Exact class counts give the paper's balance:

* A: about 1,000 points, class 0 : class 1 about 2 : 1, an irregular boundary from a sum of
  random Gaussian bumps, so that several green and red points lie close to each other;
* B: about 5,000 points, balanced, a sine-like boundary;
* C: about 10,000 points, about 10 : 1, class 1 inside several ellipses.

The distance to the boundary is computed exactly for B's curve sampled densely and C's ellipses
(a lower bound through homothety), and to first order (|f| / |grad f|) for A's smooth field.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from nnassure.errors import ConfigError

# A decision function maps points (n, 2) to (label (n,), distance to the boundary (n,)).
DecisionFunction = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _bumps_decision(rng: np.random.Generator, minority_fraction: float) -> DecisionFunction:
    """Data set A: class 1 where a sum of random Gaussian bumps exceeds its (1 - minority) quantile."""
    n_bumps = 14
    centres = rng.uniform(0.05, 0.95, size=(n_bumps, 2))
    widths = rng.uniform(0.06, 0.16, size=n_bumps)
    amplitudes = rng.uniform(0.5, 1.0, size=n_bumps) * rng.choice([-1.0, 1.0], size=n_bumps)

    def field(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        diff = x[:, None, :] - centres[None, :, :]
        g = amplitudes * np.exp(-(diff**2).sum(-1) / (2 * widths**2))
        value = g.sum(1)
        grad = -(g[:, :, None] * diff / widths[None, :, None] ** 2).sum(1)
        return value, grad

    reference = np.random.default_rng(0).uniform(0, 1, size=(200_000, 2))
    threshold = float(np.quantile(field(reference)[0], 1 - minority_fraction))

    def decide(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        value, grad = field(x)
        level = value - threshold
        distance = np.abs(level) / np.maximum(np.linalg.norm(grad, axis=1), 1e-12)
        return (level > 0).astype(np.int64), distance

    return decide


def _sine_decision(rng: np.random.Generator) -> DecisionFunction:
    """Data set B: class 1 above the curve x2 = 0.5 + a sin(2 pi k x1 + phase)."""
    amplitude = rng.uniform(0.18, 0.25)
    frequency = rng.uniform(1.2, 1.6)
    phase = rng.uniform(0, 2 * np.pi)
    curve_x = np.linspace(-0.1, 1.1, 4001)
    curve = np.stack([curve_x, 0.5 + amplitude * np.sin(2 * np.pi * frequency * curve_x + phase)], 1)

    def decide(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boundary = 0.5 + amplitude * np.sin(2 * np.pi * frequency * x[:, 0] + phase)
        label = (x[:, 1] > boundary).astype(np.int64)
        distance = np.empty(len(x))
        for start in range(0, len(x), 2048):
            chunk = x[start : start + 2048]
            distance[start : start + 2048] = np.sqrt(
                ((chunk[:, None, :] - curve[None, :, :]) ** 2).sum(-1).min(1)
            )
        # The dense polyline over-estimates the distance by at most half its spacing.
        spacing = np.sqrt(((curve[1:] - curve[:-1]) ** 2).sum(1)).max()
        return label, np.maximum(distance - spacing / 2, 0.0)

    return decide


def _ellipses_decision(rng: np.random.Generator) -> DecisionFunction:
    """Data set C: class 1 inside any of several ellipses."""
    n_ellipses = 5
    centres = rng.uniform(0.15, 0.85, size=(n_ellipses, 2))
    axes = rng.uniform(0.05, 0.13, size=(n_ellipses, 2))
    angles = rng.uniform(0, np.pi, size=n_ellipses)
    cos, sin = np.cos(angles), np.sin(angles)

    def decide(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = x[:, None, :] - centres[None, :, :]
        u = d[..., 0] * cos + d[..., 1] * sin
        v = -d[..., 0] * sin + d[..., 1] * cos
        scale = np.sqrt((u / axes[:, 0]) ** 2 + (v / axes[:, 1]) ** 2)
        # Points on the ellipse scaled by s are at least |s - 1| * min axis from the ellipse.
        signed = (1 - scale) * axes.min(1)
        inside = signed.max(1)
        label = (inside > 0).astype(np.int64)
        distance = np.where(label == 1, inside, -inside)
        return label, distance

    return decide


def _decision_function(name: str, rng: np.random.Generator, minority_fraction: float) -> DecisionFunction:
    if name == "a":
        return _bumps_decision(rng, minority_fraction)
    if name == "b":
        return _sine_decision(rng)
    if name == "c":
        return _ellipses_decision(rng)
    raise ConfigError(f"invalid config value dataset.name={name!r}: expected one of a, b, c")


def generate_dataset(
    name: str, n_samples: int, minority_fraction: float, margin: float, seed: int
) -> pd.DataFrame:
    """Draw ``n_samples`` labelled points of data set ``name`` in [0, 1]^2.

    Returns a frame with columns ``sample_id, x1, x2, label``; exactly
    ``round(n_samples * minority_fraction)`` points have label 1, and every point is at least
    ``margin`` from the decision boundary.
    """
    rng = np.random.default_rng(seed)
    decide = _decision_function(name, rng, minority_fraction)
    n_minority = int(round(n_samples * minority_fraction))
    wanted = {0: n_samples - n_minority, 1: n_minority}
    kept: dict[int, list[np.ndarray]] = {0: [], 1: []}
    counts = {0: 0, 1: 0}
    for _ in range(1000):
        candidates = rng.uniform(0.0, 1.0, size=(20_000, 2))
        label, distance = decide(candidates)
        for cls in (0, 1):
            chosen = candidates[(label == cls) & (distance >= margin)]
            take = chosen[: wanted[cls] - counts[cls]]
            kept[cls].append(take)
            counts[cls] += len(take)
        if counts == wanted:
            break
    else:
        raise ConfigError(
            f"could not draw {wanted} points for data set {name!r} with margin {margin}: "
            "expected a smaller dataset.margin"
        )
    points = np.concatenate(kept[0] + kept[1])
    labels = np.concatenate([np.zeros(wanted[0], np.int64), np.ones(wanted[1], np.int64)])
    order = rng.permutation(n_samples)
    return pd.DataFrame(
        {
            "sample_id": np.arange(n_samples, dtype=np.int64),
            "x1": points[order, 0],
            "x2": points[order, 1],
            "label": labels[order],
        }
    )


def stratified_split(frame: pd.DataFrame, val_fraction: float, seed: int) -> pd.DataFrame:
    """Add a ``split`` column (``train``/``val``), stratified by label (Sec. 4.2: 20% validation)."""
    train_ids, _ = train_test_split(
        frame["sample_id"].to_numpy(), test_size=val_fraction, stratify=frame["label"], random_state=seed
    )
    out = frame.copy()
    out["split"] = np.where(out["sample_id"].isin(train_ids), "train", "val")
    return out
