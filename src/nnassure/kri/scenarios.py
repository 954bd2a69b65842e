"""The perturbations delta_{k,l} of the scenario components (Schwerdtner et al., Sec. 4 and 5):
corruptions by albumentations 2.0.8, attacks by ART 1.20.1, each cell seeded on its own.

Seeding. Cell (sample j, draw l) of scenario ``name`` uses the generator
``np.random.default_rng([seed, zlib.crc32(name.encode()), j, l])`` (:func:`cell_rng`): first the
``range`` / ``int_range`` parameters of the kind are drawn from it, uniformly, in the order of
:data:`nnassure.kri.kinds.KINDS` (these are the draw's coordinates ``param_<name>``; fixed
``number`` / ``int`` parameters are recorded too, constant), then one integer from it seeds the
albumentations transform (``A.Compose(..., seed=...)``), built with degenerate ranges such as
``brightness_limit=(b, b)`` so that it applies exactly the drawn value, with p=1 (the two
certifiable noises instead draw their noise from the cell's generator directly, below). A cell therefore
depends on nothing but (seed, name, j, l) and the image: :func:`perturb_cell` recomputes any one.

Corruptions. Images are float32 NHWC in [0, 1]. Every transform used declares ``uint8, float32``
support in 2.0.8 and is given float32 directly. Brightness, contrast, rotation and salt-and-pepper
noise compute in float32. RandomShadow, RandomRain and RandomFog are decorated
``@uint8_io`` in 2.0.8: they convert a float32 image to uint8 themselves (values on the 1/255 grid),
draw in uint8 and convert back, so their outputs lie on the 1/255 grid; we let the library do that
rather than convert by hand. Every output is clipped to [0, 1] by albumentations (and checked).
Rain keeps RandomRain's defaults beyond the configured parameters (drop width 1, blur 7, drop colour
(200, 200, 200)); rotation reflects the border (``cv2.BORDER_REFLECT_101``) so no black corners
appear.

The certifiable noises (what PROVEN's certificates assume; checked in tests/test_kri_scenarios.py)
are written by hand, not taken from albumentations, because a certificate holds only for the exact
law it assumes, i.i.d. noise per pixel and channel, and the library's samplers do not draw that law:
``GaussNoise`` in 2.0.8 seeds OpenCV with ``integers(0, 2**16)`` and draws with ``cv2.randn``, so
every Gaussian draw is one of 65,536 fixed noise maps times sigma (a KriCNN aligned with 50 of them
changed class with frequency 8.1e-4 against a certified bound of 6.1e-6 for the i.i.d. law; the
std also reaches cv2 as float32), and
``AdditiveNoise``'s Gaussian path uses ``cv2.randn`` as well. Both noises come from the cell's own
generator, after its drawn parameters (none for these kinds: sigma and the amplitude are fixed):

- ``gaussian``: n = ``rng.normal(0.0, sigma, (H, W, C))`` in float64, x' = clip(fl32(x + n), 0, 1)
  with the sum taken in float64: n ~ N(0, sigma^2) i.i.d. per pixel and channel;
- ``uniform``: u = ``rng.uniform(-a, a, (H, W, C))`` in float64, x' = clip(fl32(x + u), 0, 1):
  u ~ U[-a, a] i.i.d. per pixel and channel, |u| <= a exactly (NumPy computes -a + 2a U with U
  in [0, 1), and monotone rounding keeps it in [-a, a]).

Rounding: the float64 sum is within 2^-53 of x + n where |x + n| < 2 (beyond, both clip alike), and the
cast to float32 adds at most half a float32 ulp of a value in [0, 1], 2^-25 (values outside [0, 1]
are clipped, which only brings them closer to x). So the stored image is within 2^-25 + 2^-53 of
clip01(x + n) per component, well inside the storage radius r = 2^-22 (1 + eps) of
:mod:`nnassure.kri.certified`, and for uniform noise |x' - x| <= a + 2^-25 + 2^-53.

Attacks. White box on the model under test via ART ``PyTorchClassifier(loss=CrossEntropyLoss,
clip_values=(0, 1))``, untargeted, with y = the model's own clean prediction, so each attack aims at
a class change (the class-change loss), not at the label. One draw per sample; each sample is
attacked on its own (a batch of one), so its adversarial example does not depend on which other
samples share its batch and :func:`perturb_cell` reproduces it exactly. ART's global-generator use
is seeded per cell (``np.random.seed``) and the previous global state restored. The budget: an
Linf attack satisfies ||x_adv - x||_inf <= eps; Carlini-L2 and DeepFool look for a minimal
perturbation, which is scaled back onto the L2 ball of radius eps when longer (delta * min(1,
eps / ||delta||_2), then clipped to [0, 1], which only shortens it). After the cast to float32 the
norm is re-computed in float64 and the point moved towards x until it is within budget (float32
rounding can push it just past eps); ``perturbation_norm`` is that float64 norm.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from nnassure.kri.kinds import KINDS, kind

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
import albumentations as A  # noqa: E402
import cv2  # noqa: E402

SEED_BOUND = 2**32


def cell_rng(seed: int, name: str, sample_id: int, draw: int) -> np.random.Generator:
    """The generator of cell (sample, draw) of scenario ``name`` (the project's per-cell seeding)."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode()), int(sample_id), int(draw)])


def draw_values(kind_name: str, params: Mapping[str, Any], rng: np.random.Generator) -> dict[str, float]:
    """The parameter values of one draw: ranges drawn uniformly from ``rng`` (kind order), fixed ones as given."""
    values: dict[str, float] = {}
    for pname, spec in kind(kind_name).params.items():
        value = params[pname]
        if spec.type == "range":
            lo, hi = (float(v) for v in value)
            values[pname] = float(rng.uniform(lo, hi))
        elif spec.type == "int_range":
            lo, hi = (int(v) for v in value)
            values[pname] = float(rng.integers(lo, hi + 1))
        else:
            values[pname] = float(value)
    return values


def corruption_transform(kind_name: str, v: Mapping[str, float]) -> A.BasicTransform:
    """The albumentations transform applying exactly the drawn values ``v`` (degenerate ranges, p=1)."""
    if kind_name == "brightness":
        return A.RandomBrightnessContrast(brightness_limit=(v["limit"], v["limit"]), contrast_limit=(0.0, 0.0), p=1.0)
    if kind_name == "contrast":
        return A.RandomBrightnessContrast(brightness_limit=(0.0, 0.0), contrast_limit=(v["limit"], v["limit"]), p=1.0)
    if kind_name == "shadow":
        k = int(v["shadows"])
        return A.RandomShadow(shadow_roi=(0.0, 0.0, 1.0, 1.0), num_shadows_limit=(k, k),
                              shadow_dimension=int(v["dimension"]),
                              shadow_intensity_range=(v["intensity"], v["intensity"]), p=1.0)
    if kind_name == "rotation":
        return A.Rotate(limit=(v["degrees"], v["degrees"]), border_mode=cv2.BORDER_REFLECT_101, p=1.0)
    if kind_name == "salt_and_pepper":
        return A.SaltAndPepper(amount=(v["amount"], v["amount"]), p=1.0)
    if kind_name == "rain":
        return A.RandomRain(slant_range=(v["slant"], v["slant"]), drop_length=int(v["drop_length"]),
                            brightness_coefficient=v["brightness"], p=1.0)
    if kind_name == "fog":
        return A.RandomFog(fog_coef_range=(v["coefficient"], v["coefficient"]), alpha_coef=v["alpha"], p=1.0)
    raise ValueError(f"{kind_name!r} is not a corruption kind")


def _add_noise(image: np.ndarray, noise: np.ndarray) -> np.ndarray:
    # the sum in float64, one rounding to float32, then clipping (exact: 0 and 1 are float32 numbers)
    return np.clip((np.asarray(image, np.float64) + noise).astype(np.float32), np.float32(0.0), np.float32(1.0))


def gaussian_noise(image: np.ndarray, v: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    """clip01(fl32(x + n)), n ~ N(0, sigma^2) i.i.d. per pixel and channel, from the cell's generator."""
    return _add_noise(image, rng.normal(0.0, float(v["sigma"]), np.shape(image)))


def uniform_noise(image: np.ndarray, v: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    """clip01(fl32(x + u)), u ~ U[-a, a] i.i.d. per pixel and channel, from the cell's generator."""
    a = float(v["amplitude"])
    return _add_noise(image, rng.uniform(-a, a, np.shape(image)))


# the certifiable noises, written by hand so that their law is the certificate's (module docstring)
HAND_WRITTEN = {"gaussian": gaussian_noise, "uniform": uniform_noise}


def _corrupt_one(kind_name: str, params: Mapping[str, Any], image: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, dict[str, float]]:
    values = draw_values(kind_name, params, rng)
    if kind_name in HAND_WRITTEN:
        return HAND_WRITTEN[kind_name](image, values, rng), values
    compose = A.Compose([corruption_transform(kind_name, values)], seed=int(rng.integers(0, SEED_BOUND)))
    out = compose(image=np.ascontiguousarray(image, dtype=np.float32))["image"]
    out = np.asarray(out, dtype=np.float32)
    if out.shape != image.shape or not (np.all(out >= 0.0) and np.all(out <= 1.0)):
        raise RuntimeError(f"{kind_name}: albumentations returned shape {out.shape} or values outside [0, 1]")
    return out, values


def is_attack(scenario: Mapping[str, Any]) -> bool:
    return kind(str(scenario["kind"])).adversarial


def scenario_draws(scenario: Mapping[str, Any], default_draws: int) -> int:
    """Draws per sample: ``scenario.draws`` if set, else ``kri.draws``; an attack makes one."""
    if is_attack(scenario):
        return 1
    draws = scenario.get("draws")
    return int(default_draws if draws is None else draws)


@dataclass
class Perturbation:
    """The perturbed images of samples x draws and what was applied to each."""

    images: np.ndarray  # (n, d, H, W, C) float32 in [0, 1]
    values: dict[str, np.ndarray]  # parameter name -> (n, d) float64
    norm: np.ndarray | None = None  # (n, d) float64, attacks only, in the attack's norm


def corrupt(name: str, scenario: Mapping[str, Any], images: np.ndarray, draws: int, seed: int,
            sample_ids: np.ndarray | None = None, progress: bool | None = None) -> Perturbation:
    """``draws`` corruptions of each NHWC image by scenario ``name`` (a non-adversarial kind)."""
    kind_name = str(scenario["kind"])
    if kind(kind_name).adversarial:
        raise ValueError(f"{name}: {kind_name} is an attack; use attack()")
    images = np.asarray(images, dtype=np.float32)
    ids = np.arange(len(images)) if sample_ids is None else np.asarray(sample_ids)
    out = np.empty((len(images), draws, *images.shape[1:]), np.float32)
    values = {p: np.empty((len(images), draws), np.float64) for p in KINDS[kind_name].params}
    params = scenario["params"]
    # OpenCV's own threads would only contend with the stage's one thread.
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        for i in tqdm(range(len(images)), desc=f"corrupt {name}", disable=progress is False or None, leave=False):
            for d in range(draws):
                out[i, d], v = _corrupt_one(kind_name, params, images[i], cell_rng(seed, name, int(ids[i]), d))
                for p, value in v.items():
                    values[p][i, d] = value
    finally:
        cv2.setNumThreads(threads)
    return Perturbation(out, values)


# --- attacks -----------------------------------------------------------------------------------


def art_classifier(model: nn.Module, image_shape: tuple[int, int, int], classes: int) -> Any:
    """ART's white-box wrapper of ``model`` (NCHW input in [0, 1], logits)."""
    from art.estimators.classification import PyTorchClassifier

    height, width, channels = image_shape
    return PyTorchClassifier(model=model.eval(), loss=nn.CrossEntropyLoss(), input_shape=(channels, height, width),
                             nb_classes=classes, clip_values=(0.0, 1.0), device_type="cpu")


def art_attack(kind_name: str, classifier: Any, v: Mapping[str, float]) -> Any:
    """The ART attack of ``kind_name`` with the scenario's fixed parameters ``v``."""
    from art.attacks.evasion import CarliniL2Method, DeepFool, FastGradientMethod, ProjectedGradientDescent

    if kind_name == "fgsm":
        return FastGradientMethod(classifier, norm=np.inf, eps=v["eps"], eps_step=v["eps"], targeted=False,
                                  num_random_init=0, batch_size=1)
    if kind_name == "pgd":
        return ProjectedGradientDescent(classifier, norm=np.inf, eps=v["eps"], eps_step=v["step"],
                                        max_iter=int(v["iterations"]), targeted=False, num_random_init=0,
                                        batch_size=1, verbose=False)
    if kind_name == "carlini_l2":
        # ART's initial trade-off constant is 0.01 unless the kind sets one (it decides how many
        # binary-search steps the attack needs before it succeeds)
        return CarliniL2Method(classifier, confidence=v["confidence"], targeted=False,
                               initial_const=float(v.get("initial_const", 0.01)),
                               learning_rate=v["learning_rate"], binary_search_steps=int(v["binary_search_steps"]),
                               max_iter=int(v["iterations"]), batch_size=1, verbose=False)
    if kind_name == "deepfool":
        return DeepFool(classifier, max_iter=int(v["iterations"]), epsilon=v["overshoot"], batch_size=1,
                        verbose=False)
    raise ValueError(f"{kind_name!r} is not an attack kind")


def perturbation_norm(adversarial: np.ndarray, image: np.ndarray, norm: str) -> float:
    """||adversarial - image|| in float64 (``linf`` or ``l2``)."""
    delta = np.asarray(adversarial, np.float64) - np.asarray(image, np.float64)
    return float(np.max(np.abs(delta))) if norm == "linf" else float(np.sqrt(np.sum(delta * delta)))


def within_budget(adversarial: np.ndarray, image: np.ndarray, norm: str, eps: float) -> np.ndarray:
    """``adversarial`` (float32) projected onto the eps-ball around ``image`` in float64, clipped to [0, 1]
    and moved towards ``image`` until the float32 point is within budget when re-checked in float64."""
    x = np.asarray(image, np.float64)
    x32 = np.asarray(image, np.float32)
    delta = np.asarray(adversarial, np.float64) - x
    if norm == "linf":
        delta = np.clip(delta, -eps, eps)
        out = np.clip(x + delta, 0.0, 1.0).astype(np.float32)
        for _ in range(64):
            over = np.abs(out.astype(np.float64) - x) > eps
            if not over.any():
                return out
            # one float32 step towards x for the components float32 rounding pushed past eps
            out[over] = np.nextafter(out[over], x32[over])
    else:
        length = float(np.sqrt(np.sum(delta * delta)))
        scale = min(1.0, eps / length) if length > 0 else 1.0
        step = 1e-7
        for _ in range(200):
            out = np.clip(x + delta * scale, 0.0, 1.0).astype(np.float32)
            length = perturbation_norm(out, x, norm)
            if length <= eps:
                return out
            # float32 rounding lengthened it: shrink by the excess, by a growing margin (at scale 0, out = x)
            scale *= min(eps / length, 1.0 - step)
            step = min(2 * step, 0.5)
    raise RuntimeError(f"could not bring a perturbation within the {norm} budget {eps}")


def _attack_one(attack: Any, classifier: Any, kind_name: str, image_nhwc: np.ndarray, np_seed: int) -> np.ndarray:
    x = np.ascontiguousarray(image_nhwc.transpose(2, 0, 1)[None], dtype=np.float32)
    # ART draws from NumPy's legacy global generator where it draws at all: seed it per cell
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(np_seed)  # noqa: NPY002
    try:
        with torch.no_grad():
            y = np.argmax(classifier.predict(x, batch_size=1), axis=1)
        adv = attack.generate(x=x, y=y)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    return np.asarray(adv, np.float32)[0].transpose(1, 2, 0)


def attack(name: str, scenario: Mapping[str, Any], model: nn.Module, images: np.ndarray, seed: int,
           classes: int, sample_ids: np.ndarray | None = None, progress: bool | None = None) -> Perturbation:
    """One adversarial example per NHWC image by the attack scenario ``name``, within its budget."""
    kind_name = str(scenario["kind"])
    spec = kind(kind_name)
    if not spec.adversarial:
        raise ValueError(f"{name}: {kind_name} is not an attack; use corrupt()")
    images = np.asarray(images, dtype=np.float32)
    ids = np.arange(len(images)) if sample_ids is None else np.asarray(sample_ids)
    classifier = art_classifier(model, tuple(images.shape[1:]), classes)
    out = np.empty((len(images), 1, *images.shape[1:]), np.float32)
    norms = np.empty((len(images), 1), np.float64)
    values: dict[str, np.ndarray] = {p: np.empty((len(images), 1), np.float64) for p in spec.params}
    art = None
    for i in tqdm(range(len(images)), desc=f"attack {name}", disable=progress is False or None, leave=False):
        rng = cell_rng(seed, name, int(ids[i]), 0)
        v = draw_values(kind_name, scenario["params"], rng)
        if art is None:
            art = art_attack(kind_name, classifier, v)
        adv = _attack_one(art, classifier, kind_name, images[i], int(rng.integers(0, SEED_BOUND)))
        out[i, 0] = within_budget(adv, images[i], spec.norm or "linf", v["eps"])
        norms[i, 0] = perturbation_norm(out[i, 0], images[i], spec.norm or "linf")
        for p, value in v.items():
            values[p][i, 0] = value
    return Perturbation(out, values, norms)


def perturb(name: str, scenario: Mapping[str, Any], images: np.ndarray, draws: int, seed: int,
            model: nn.Module | None = None, classes: int | None = None, sample_ids: np.ndarray | None = None,
            progress: bool | None = None) -> Perturbation:
    """The perturbations of scenario ``name`` (``draws`` from :func:`scenario_draws`); attacks need the model."""
    if is_attack(scenario):
        if model is None or classes is None:
            raise ValueError(f"{name}: an attack needs the model under test and the number of classes")
        return attack(name, scenario, model, images, seed, classes, sample_ids, progress)
    return corrupt(name, scenario, images, draws, seed, sample_ids, progress)


def perturb_cell(name: str, scenario: Mapping[str, Any], image: np.ndarray, sample_id: int, draw: int, seed: int,
                 model: nn.Module | None = None, classes: int | None = None) -> Perturbation:
    """Cell (sample_id, draw) recomputed from the clean HWC image and the seed alone (shapes (1, 1, ...))."""
    if is_attack(scenario) and draw != 0:
        raise ValueError(f"{name}: an attack has one draw per sample (draw 0), not draw {draw}")
    image = np.asarray(image, np.float32)[None]
    ids = np.asarray([sample_id])
    if is_attack(scenario):
        return perturb(name, scenario, image, 1, seed, model, classes, ids, progress=False)
    # draw d of a sample is independent of the other draws: compute only that one
    rng = cell_rng(seed, name, sample_id, draw)
    out, v = _corrupt_one(str(scenario["kind"]), scenario["params"], image[0], rng)
    return Perturbation(out[None, None], {p: np.full((1, 1), x) for p, x in v.items()})
