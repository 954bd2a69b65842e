"""PROVEN's certified upper bound on the class-change probability of the certifiable KRI scenarios.

The KRI of a certifiable scenario (Schwerdtner et al., Sec. 5: i.i.d. Gaussian noise N(0, sigma^2)
or i.i.d. uniform noise U[-a, a] per pixel and channel, the sum clipped to [0, 1]) is the
class-change probability P[argmax f(clip01(x + delta)) != argmax f(x)], estimated by Monte Carlo
in the risk tensor. PROVEN (Weng et al., Sec. 3.3) bounds it from above with no sampling, from
CROWN's linear lower bounds g_t^L(x') = A_t x' + d_t of the margins g_t = logit_c - logit_t
(c the model's clean prediction) on an Linf ball around x.

The network certified is g = f o clip01, with clip01(z) = relu(z) - relu(z - 1) written as two
1x1 convolutions around a ReLU (:class:`ClippedKriCNN`): a piecewise-linear network that CROWN
bounds soundly, so the clipping of the scenarios is part of what is proven (the unclipped
noise X = x + delta is the random variable; Gaussian and uniform laws are those of PROVEN).

- uniform (amplitude a): X lies in the box of radius a, coordinates independent and symmetric
  about x: Hoeffding's bound (Cor. 3.2) at eps = a;
- gaussian (sigma): unbounded, so the rigorous certificate: P[X outside the box of radius
  k sigma] (Sidak's product) + the union over targets of P[g_t^L(X) <= level] (Cor. 3.3, exact
  for the linear function), for each k of ``kri.certify.box_sigmas``; every such bound is valid,
  the smallest is reported.

Both reuse :func:`nnassure.proven.certificates.certified_risk` and
:func:`nnassure.proven.bisection.margin_specification`; the loop is not
:class:`~nnassure.proven.bisection.RiskEvaluator` because the ball CROWN bounds is wider than the
noise box by the storage rounding below, and the test level carries a term per target.

Floating point. Two terms make up Theorem 3.1's level a_t, so that the bound holds for the
exact network of the model file (its float32 weights as reals) applied to the *stored* float32
perturbed image:

1. CROWN in float64: :func:`nnassure.certify.bounds.graph_rounding_slack` of the CROWN call
   itself (the bounds module's analysis on auto_LiRPA's traced graph of Conv, ReLU, Flatten and
   Linear nodes, with the relaxations' slopes read from that call's intermediate bounds; computed
   right after the call, so it costs no second CROWN run). The engine itself needs an a-priori
   bound to accept g (it is not a Sequential of Linear layers): :meth:`ClippedKriCNN.rounding_slack`,
   the analysis of :func:`nnassure.certify.bounds.rounding_slack` with each convolution a linear
   map of fan-in in_channels * kh * kw, used for IBP. On the base CNN (channels [16, 32, 32],
   hidden 64, 32x32x3, eps 0.03) the graph bound is 1.7e-6 and the a-priori one 1.2e-4 (tested:
   the a-priori one is never below the graph one);
2. the stored image: the scenario stores y = clip01(X~) with X~ the float32 (or float64) sum
   x + delta, |X~ - X| <= r = 2^-22 (1 + eps) for |delta| <= eps (two or three roundings of
   unit roundoff 2^-24 of numbers of magnitude <= 1 + eps, times a margin; clipping is exact and
   commutes with rounding to float32). So f(y) = g(X~) with X~ in the ball of radius eps + r,
   on which CROWN's bounds are computed, and A X~ + d >= A X + d - r ||A_t||_1: the level gains
   r ||A_t||_1.

Not covered: the float32 *inference* of the risk tensor. Its logits differ from the exact ones by
about 1e-6 in practice, but the a-priori forward-error bound (gamma_K(2^-24) times the magnitude
propagation |W| a + |b| from |y| <= 1) is about 7 logits on the base CNN (measured at init), which
would make every bound 1. A float32 class change the exact network does not make needs a margin
within that rounding of 0; the Monte-Carlo soundness tests (float32 inference, as the tensor)
would see it if it mattered.

Cost (measured on 2 shared cores, one thread, base CNN [16, 32, 32] / 64 on 32x32x3, 8 classes):
one CROWN call costs 0.4-0.8 s per image at batch 1 (RSS 0.55-0.73 GB), 1.1 s per image at batch 5
(1.2 GB) and 1.2 s at batch 10 (1.9 GB): batching does not pay, ``kri.certify.batch_size: 1`` is
the setting to use. IBP costs 5 ms per image but proves nothing CROWN does not. A Gaussian
certificate makes one call per box (a box whose Sidak mass alone reaches the best bound so far is
skipped). What the bounds say at the paper's noise levels: at sigma = 0.08 on 3072 coordinates the
Sidak mass outside the box is 1.0 at 3 sigma, 0.18 at 4 and 0.0018 at 5 sigma, and CROWN proves
nothing on an Linf box of 0.32-0.4, so the rigorous bound is 1; at sigma = 0.003 it is 0.0018 (the
mass outside 5 sigma), and uniform noise of amplitude 0.01 is certified with bound 0 (smoke-trained
model).

A margin counts as positive only above its level, so a sample the worst case proves keeps its
class on the whole box.

The certificate's own Monte Carlo (:func:`monte_carlo_changes`). The risk tensor's few draws per
image (8 in the quick run) at faint noise almost never see a class change, so its Clopper-Pearson
lower end is 0 and no bound can fall below it. kri_certify therefore draws ``kri.certify.mc_draws``
fresh perturbations of each certified image through the scenario's own path
(:func:`nnassure.kri.scenarios.corrupt`, albumentations, float32 inference as in the tensor) and
stores the class-change count beside the bound. Fresh: the cells are seeded with
``kri.seed + MC_SEED_OFFSET`` (2^32) instead of ``kri.seed``, so each cell's entropy
``[seed + 2^32, crc32(name), sample, draw]`` is a different word sequence from every tensor cell's
``[seed, crc32(name), sample, draw]``. Measured (quick, 32x32x3, one thread): 2000 draws of one
image take 0.16 s to corrupt and 0.33 s to infer; the quick run's 10 jobs of 20 images took 6-17 s
each (101 s in all, 2 shared cores), beside CROWN's 10-16 s per job. At the quick run's faint
noise (Gaussian sigma 0.004, uniform 0.015) they saw no class change in any of the 10 x 40,000
draws, so kr_table3 calls those rows uninformative: the bounds are not refuted, nor tested.

Provenance. The certificate file records the scenario entry it was computed for
(:func:`nnassure.kri.infer.scenario_json`), the certify settings (:func:`certify_settings`) and
the sha256 of the model's ``.safetensors`` (:func:`model_digest`) in constant columns, so the
report refuses a certificate of another noise level, box or model.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from nnassure.certify.bounds import ROUNDING_SAFETY, UNIT_ROUNDOFF, BoundEngine, graph_rounding_slack
from nnassure.kri.kinds import kind as scenario_kind
from nnassure.kri.model import KriCNN
from nnassure.proven.bisection import margin_specification
from nnassure.proven.certificates import certified_risk, mass_outside_box

STORAGE_ROUNDING = 2.0**-22  # r = STORAGE_ROUNDING * (1 + eps): see the module docstring, term 2

MC_SEED_OFFSET = 2**32  # the certificate's Monte Carlo seeds its cells with kri.seed + this (fresh draws)

BOUND_COLUMNS = ("sample", "predicted", "bound", "certificate", "eps_box", "seconds")
MC_COLUMNS = ("mc_changes", "mc_draws", "mc_seed", "mc_seconds")
PROVENANCE_COLUMNS = ("scenario_config", "certify_settings", "model_sha256")
COLUMNS = BOUND_COLUMNS + MC_COLUMNS + PROVENANCE_COLUMNS
DESCRIPTIONS = {
    "sample": "KRI sample id (position among the first kri.samples test images)",
    "predicted": "the model's clean float32 prediction (the class a change is measured against)",
    "bound": "certified upper bound on P[argmax f(clip01(x + delta)) != predicted] under the scenario's noise",
    "certificate": "hoeffding (uniform noise, Cor. 3.2) or gaussian-rigorous (box + Sidak mass outside)",
    "eps_box": "Linf radius of the noise box the reported bound was proven on",
    "seconds": "CPU seconds of the CROWN calls of this sample",
    "mc_changes": "class changes among mc_draws fresh draws of the scenario (nnassure.kri.scenarios.corrupt)",
    "mc_draws": "Monte-Carlo draws of this image (kri.certify.mc_draws)",
    "mc_seed": "seed of the Monte-Carlo cells: kri.seed + 2**32 (never the risk tensor's)",
    "mc_seconds": "wall seconds of this image's Monte Carlo (perturbation and float32 inference)",
    "scenario_config": "JSON of the scenario entry certified (nnassure.kri.infer.scenario_json)",
    "certify_settings": "JSON of kri.certify's method, box_sigmas, batch_size, samples, mc_draws",
    "model_sha256": "sha256 of the model's .safetensors file",
}


def clip01_layers(channels: int) -> list[nn.Module]:
    """clip01(z) = relu(z) - relu(z - 1) per channel, as Conv1x1 (z, z - 1) -> ReLU -> Conv1x1 (a - b)."""
    up = nn.Conv2d(channels, 2 * channels, 1)
    down = nn.Conv2d(2 * channels, channels, 1)
    eye = torch.eye(channels)
    with torch.no_grad():
        up.weight.copy_(torch.cat([eye, eye]).reshape(2 * channels, channels, 1, 1))
        up.bias.copy_(torch.cat([torch.zeros(channels), -torch.ones(channels)]))
        down.weight.copy_(torch.cat([eye, -eye], dim=1).reshape(channels, 2 * channels, 1, 1))
        down.bias.zero_()
    return [up, nn.ReLU(), down]


def _layer_magnitudes(layers: list[nn.Module], a: torch.Tensor, relaxed: bool) -> tuple[torch.Tensor, int, int]:
    """Magnitude propagation through Conv2d / Linear / ReLU / Flatten: (M of the outputs, K, L).

    ``relaxed``: CROWN's analysis (after an activation a = 2 z + 2, covering slope and intercept);
    otherwise the plain forward pass (|relu(z)| <= |z|)."""
    operations, depth = 0, 0
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            weight = layer.weight.detach().to(torch.float64).abs()
            bias = None if layer.bias is None else layer.bias.detach().to(torch.float64).abs()
            a = nn.functional.conv2d(a, weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups)
            operations += weight[0].numel() + 4
            depth += 1
        elif isinstance(layer, nn.Linear):
            a = a @ layer.weight.detach().to(torch.float64).abs().T
            if layer.bias is not None:
                a = a + layer.bias.detach().to(torch.float64).abs()
            operations += layer.in_features + 4
            depth += 1
        elif isinstance(layer, nn.ReLU):
            if relaxed:
                a = 2.0 * a + 2.0
            operations += 4
        elif isinstance(layer, nn.Flatten):
            a = a.flatten(1)
        else:
            raise TypeError(f"no rounding bound for layer {type(layer).__name__}")
    return a, operations, depth


class ClippedKriCNN(nn.Sequential):
    """g = f o clip01 for a :class:`KriCNN` f, with its own float64 rounding bound for the engine."""

    def __init__(self, model: KriCNN) -> None:
        super().__init__(*clip01_layers(model.spec.in_channels), *list(model))
        self.spec = model.spec

    def rounding_slack(self, x: torch.Tensor, eps: torch.Tensor, C: torch.Tensor | None) -> torch.Tensor:
        """A bound on the float64 rounding error of CROWN/IBP bounds of ``C @ g`` on the Linf ball
        (batch, specs): :func:`nnassure.certify.bounds.rounding_slack` with convolutions."""
        a0 = x.abs() + eps.reshape(len(x), *([1] * (x.ndim - 1))).abs()
        scale, operations, depth = _layer_magnitudes(list(self), a0, relaxed=True)
        operations += x[0].numel() + 4
        if C is not None:
            scale = torch.einsum("bso,bo->bs", C.to(torch.float64).abs(), scale)
            operations += C.shape[-1]
        k_u = operations * UNIT_ROUNDOFF
        return ROUNDING_SAFETY * (2 * depth + 2) * (k_u / (1.0 - k_u)) * scale


def certifiable(kind_name: str) -> bool:
    return scenario_kind(kind_name).certifiable


@dataclass(frozen=True)
class NoiseModel:
    """The certifiable noise of a scenario: ``kind`` gaussian (``scale`` = sigma) or uniform (amplitude)."""

    kind: str
    scale: float

    @classmethod
    def of_scenario(cls, kind_name: str, params: dict) -> NoiseModel:
        if kind_name == "gaussian":
            return cls("gaussian", float(params["sigma"]))
        if kind_name == "uniform":
            return cls("uniform", float(params["amplitude"]))
        raise ValueError(f"scenario kind {kind_name!r} is not certifiable: PROVEN covers gaussian and uniform noise")

    def boxes(self, box_sigmas: list[float]) -> list[tuple[str, float]]:
        """(certificate, box radius) pairs, each a valid bound."""
        if self.kind == "uniform":
            return [("hoeffding", self.scale)]
        # widest box first: its mass outside is the smallest, and a narrower box whose mass alone
        # reaches the best bound so far cannot improve on it (certify_samples skips it)
        return [("gaussian-rigorous", float(k) * self.scale) for k in sorted(box_sigmas, reverse=True)]

    def sample(self, rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray:
        """delta of this law in float64 (the scenarios' law; X = x + delta, then clipped)."""
        if self.kind == "uniform":
            return rng.uniform(-self.scale, self.scale, size=size)
        return rng.normal(0.0, self.scale, size=size)


class KriCertifier:
    """CROWN (float64, through :class:`BoundEngine`) on g = f o clip01, built once per model."""

    def __init__(self, model: KriCNN, method: str = "crown", batch_size: int = 10) -> None:
        if method not in ("crown", "ibp"):
            raise ValueError(f"unknown certify method {method!r}: expected crown or ibp")
        self.model = model.eval()
        self.spec = model.spec
        self.method = method
        self.batch_size = int(batch_size)
        self.network = ClippedKriCNN(model).eval()
        self.engine = BoundEngine(self.network, tuple(self.spec.input_shape))

    def _linear_bounds(self, x: torch.Tensor, radius: torch.Tensor, C: torch.Tensor
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lA, lbias, slack): lA x' + lbias - slack <= C g(x') on the ball (float64 rounding covered)."""
        if self.method == "crown":
            lA, lbias, _ = self.engine.linear_lower_bounds(x, radius, C)
            # read from the intermediate bounds the call just left on the graph
            slack = graph_rounding_slack(self.engine, x, radius.reshape(-1, 1), C)
            return lA.double().numpy(), lbias.double().numpy(), slack.double().numpy()
        # IBP: a constant lower bound (zero slope) is a linear bound too.
        lower, _, slack = self.engine.bounds_and_slack(x, radius, "linf", "ibp", C=C)
        lower = lower + slack  # bounds() widened it; the level subtracts the slack once
        return np.zeros((len(x), C.shape[1], x[0].numel())), lower.double().numpy(), slack.double().numpy()

    def risks(self, x: np.ndarray, predicted: np.ndarray, eps: np.ndarray, certificates: list[str],
              std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Certified class-change bound per row (and CROWN seconds per row): ``x`` (rows, C, H, W)
        float32 centres, ``predicted`` the class, ``eps`` the noise box, ``certificates`` per row,
        ``std`` per row (the Gaussian sigma; unused for Hoeffding)."""
        x64 = np.asarray(x, np.float64)
        rows = len(x64)
        risk = np.empty(rows)
        seconds = np.empty(rows)
        certificates = np.asarray(certificates)
        for start in range(0, rows, self.batch_size):
            part = slice(start, start + self.batch_size)
            xt = torch.as_tensor(x64[part])
            box = np.asarray(eps[part], np.float64)
            radius = box + STORAGE_ROUNDING * (1.0 + box)
            C = margin_specification(predicted[part], self.spec.classes)
            started = time.process_time()
            lA, lbias, slack = self._linear_bounds(xt, torch.as_tensor(radius), C)
            seconds[part] = (time.process_time() - started) / len(xt)
            flat = x64[part].reshape(len(xt), -1)
            mu = np.einsum("rti,ri->rt", lA, flat) + lbias
            level = slack + (radius - box)[:, None] * np.abs(lA).sum(-1)
            for certificate in np.unique(certificates[part]):
                chosen = certificates[part] == certificate
                noise_std = None
                if certificate.startswith("gaussian"):
                    noise_std = np.broadcast_to(np.asarray(std[part], np.float64)[chosen][:, None],
                                                (int(chosen.sum()), flat.shape[1]))
                idx = np.arange(start, min(start + self.batch_size, rows))[chosen]
                risk[idx] = certified_risk(str(certificate), mu[chosen], lA[chosen], box[chosen], noise_std, None,
                                           level[chosen])
        return risk, seconds


def certify_samples(certifier: KriCertifier, images: np.ndarray, noise: NoiseModel,
                    box_sigmas: list[float], predicted: np.ndarray | None = None,
                    progress: bool = False) -> pd.DataFrame:
    """The certificate frame (:data:`COLUMNS`), one row per image of ``images`` (NCHW float32 in
    [0, 1]): the smallest valid bound over the noise boxes. ``predicted``: the clean float32
    prediction (computed here if None)."""
    from tqdm import tqdm

    images = np.asarray(images, np.float32)
    n = len(images)
    if predicted is None:
        with torch.no_grad():
            predicted = certifier.model(torch.as_tensor(images)).argmax(1).numpy()
    predicted = np.asarray(predicted, np.int64)
    boxes = noise.boxes(box_sigmas)
    best = np.full(n, math.inf)
    best_box = np.zeros(n)
    best_certificate = np.array([boxes[0][0]] * n, dtype=object)
    seconds = np.zeros(n)
    if noise.scale == 0.0:
        # No noise: the class changes with probability 0 unless rounding alone could change it.
        boxes = [("worst-case", 0.0)]
    step = certifier.batch_size
    for start in tqdm(range(0, n, step), desc="certify", unit="batch", disable=None if progress else True):
        part = slice(start, min(start + step, n))
        for certificate, box in boxes:
            k = part.stop - part.start
            if certificate == "gaussian-rigorous":
                outside = float(mass_outside_box(np.array([box]), np.full((1, images[0].size), noise.scale))[0])
                if outside >= best[part].max():
                    continue
            risk, sec = certifier.risks(images[part], predicted[part], np.full(k, box), [certificate] * k,
                                        np.full(k, noise.scale))
            seconds[part] += sec
            better = risk < best[part]
            best[part] = np.where(better, risk, best[part])
            best_box[part] = np.where(better, box, best_box[part])
            best_certificate[part] = np.where(better, certificate, best_certificate[part])
    return pd.DataFrame({"sample": np.arange(n, dtype=np.int64), "predicted": predicted, "bound": best,
                         "certificate": best_certificate.astype(str), "eps_box": best_box, "seconds": seconds})


def certify_settings(certify: Mapping[str, Any]) -> str:
    """The canonical JSON of the settings a certificate depends on (``kri.certify``'s method,
    box_sigmas, batch_size, samples, mc_draws)."""
    return json.dumps({"method": str(certify["method"]), "box_sigmas": [float(v) for v in certify["box_sigmas"]],
                       "batch_size": int(certify["batch_size"]), "samples": int(certify["samples"]),
                       "mc_draws": int(certify["mc_draws"])}, sort_keys=True)


def model_digest(stem: str | Path) -> str:
    """sha256 of ``<stem>.safetensors`` (the weights a certificate is about)."""
    digest = hashlib.sha256()
    with open(f"{stem}.safetensors", "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def monte_carlo_changes(model: KriCNN, name: str, scenario: Mapping[str, Any], images: np.ndarray,
                        predicted: np.ndarray, draws: int, seed: int, sample_ids: Sequence[int] | None = None,
                        progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(class changes, wall seconds) per NHWC image of ``draws`` perturbations by scenario ``name``
    through :func:`nnassure.kri.scenarios.corrupt` (cells seeded with ``seed``; pass kri.seed +
    :data:`MC_SEED_OFFSET` for draws independent of the risk tensor's), float32 inference, a
    class change meaning argmax != ``predicted``. One image at a time: all draws of all images at
    once would hold samples x draws images in memory."""
    from tqdm import tqdm

    from nnassure.kri.model import predict_logits, to_model_input
    from nnassure.kri.scenarios import corrupt

    images = np.asarray(images, np.float32)
    ids = np.arange(len(images)) if sample_ids is None else np.asarray(sample_ids, np.int64)
    changes = np.zeros(len(images), np.int64)
    seconds = np.zeros(len(images))
    for i in tqdm(range(len(images)), desc=f"monte carlo {name}", disable=None if progress else True):
        started = time.perf_counter()
        perturbed = corrupt(name, scenario, images[i:i + 1], int(draws), int(seed), ids[i:i + 1], progress=False)
        with torch.no_grad():
            logits = predict_logits(model, to_model_input(perturbed.images[0]))
        changes[i] = int((logits.argmax(1) != int(predicted[i])).sum())
        seconds[i] = time.perf_counter() - started
    return changes, seconds
