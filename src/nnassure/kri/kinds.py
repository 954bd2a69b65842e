"""The scenario kinds of the KRI family (Schwerdtner et al., Sec. 5) and the parameters each takes.

A scenario of ``conf/kri/`` is a named distribution of perturbations: a ``kind`` from this table,
its ``params`` and a number of draws. The table says, per kind, which noise family of Sec. 5 it
belongs to and which parameters it takes, so the config is checked when it is composed (an unknown
kind, a missing or unknown parameter, a range with lo > hi: one line naming the key) without
importing albumentations or ART. :mod:`nnassure.kri.scenarios` implements each kind.

Parameter types:

- ``range``: ``[lo, hi]`` with lo <= hi; every draw draws its value uniformly from it, and the drawn
  value is stored as a coordinate of the draw (``param_<name>``), so each cell of the risk tensor
  says what was applied;
- ``int_range``: the same with integers, drawn uniformly from lo..hi inclusive;
- ``number`` / ``int``: a fixed value (a noise level, an attack budget, an iteration count).

Adversarial kinds are attacks on the model under test (white box, by ART): one draw per sample,
the ``R_adv[loss, sample, attack]`` of Sec. 4, with the budget ``eps`` in the attack's norm.
``certifiable`` kinds are the noise models of PROVEN (Weng et al.): i.i.d. Gaussian noise of fixed
sigma and i.i.d. uniform noise in an Linf box, for which a certified upper bound on the
class-change probability is computed beside the Monte-Carlo estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nnassure.errors import ConfigError

FAMILIES: tuple[str, ...] = ("sensor", "random_noise", "weather", "adversarial")
PARAM_TYPES = ("range", "int_range", "number", "int")


@dataclass(frozen=True)
class Param:
    type: str
    default: Any
    doc: str
    minimum: float | None = None  # inclusive bound on every value
    maximum: float | None = None


@dataclass(frozen=True)
class Kind:
    family: str
    params: dict[str, Param]
    doc: str
    norm: str | None = None  # an attack's budget norm
    certifiable: bool = False

    @property
    def adversarial(self) -> bool:
        return self.family == "adversarial"


KINDS: dict[str, Kind] = {
    # sensor corruptions
    "brightness": Kind("sensor", {
        "limit": Param("range", [-0.3, 0.3], "brightness shift, a fraction of the maximum value", -1.0, 1.0)},
        "albumentations RandomBrightnessContrast, brightness only"),
    "contrast": Kind("sensor", {
        "limit": Param("range", [-0.3, 0.3], "contrast change factor minus 1", -1.0, 1.0)},
        "albumentations RandomBrightnessContrast, contrast only"),
    "shadow": Kind("sensor", {
        "shadows": Param("int_range", [1, 2], "number of shadow polygons", 1, 8),
        "dimension": Param("int", 5, "corners of each shadow polygon", 3, 12),
        "intensity": Param("range", [0.3, 0.7], "how much a shadow darkens", 0.0, 1.0)},
        "albumentations RandomShadow over the whole image"),
    "rotation": Kind("sensor", {
        "degrees": Param("range", [-20.0, 20.0], "rotation angle in degrees", -180.0, 180.0)},
        "albumentations Rotate, reflected border"),
    # random noise
    "gaussian": Kind("random_noise", {
        "sigma": Param("number", 0.05, "standard deviation of i.i.d. noise per pixel and channel", 0.0, 1.0)},
        "i.i.d. normal noise from the cell's own generator, then clipped to [0, 1] (not albumentations: its "
        "GaussNoise draws one of 2^16 OpenCV noise maps, another law than the one PROVEN certifies)", certifiable=True),
    "uniform": Kind("random_noise", {
        "amplitude": Param("number", 0.05, "i.i.d. noise uniform in [-amplitude, amplitude]", 0.0, 1.0)},
        "i.i.d. uniform noise from the cell's own generator, then clipped to [0, 1] (written by hand like "
        "gaussian, so the certified law is the applied one)", certifiable=True),
    "salt_and_pepper": Kind("random_noise", {
        "amount": Param("range", [0.01, 0.05], "fraction of pixels set to 0 or 1", 0.0, 1.0)},
        "albumentations SaltAndPepper"),
    # weather
    "rain": Kind("weather", {
        "slant": Param("range", [-10.0, 10.0], "slant of the drops in degrees", -20.0, 20.0),
        "drop_length": Param("int", 6, "drop length in pixels", 1, 100),
        "brightness": Param("number", 0.8, "brightness factor of the rainy image", 0.0, 1.0)},
        "albumentations RandomRain"),
    "fog": Kind("weather", {
        "coefficient": Param("range", [0.2, 0.5], "fog intensity", 0.0, 1.0),
        "alpha": Param("number", 0.08, "transparency of the fog circles", 0.0, 1.0)},
        "albumentations RandomFog"),
    # adversarial attacks on the model under test (ART)
    "fgsm": Kind("adversarial", {
        "eps": Param("number", 0.03, "Linf budget", 0.0, 1.0)},
        "ART FastGradientMethod (Goodfellow et al.)", norm="linf"),
    "pgd": Kind("adversarial", {
        "eps": Param("number", 0.03, "Linf budget", 0.0, 1.0),
        "step": Param("number", 0.0075, "step size", 0.0, 1.0),
        "iterations": Param("int", 10, "gradient steps", 1, 10_000)},
        "ART ProjectedGradientDescent (Madry et al.), no random start", norm="linf"),
    "carlini_l2": Kind("adversarial", {
        "eps": Param("number", 1.0, "L2 budget; a longer perturbation is scaled back onto the ball", 0.0, None),
        "iterations": Param("int", 10, "optimisation steps per binary-search step", 1, 10_000),
        "binary_search_steps": Param("int", 3, "binary-search steps on the trade-off constant", 1, 100),
        "confidence": Param("number", 0.0, "logit margin the attack aims for", 0.0, None),
        "learning_rate": Param("number", 0.01, "step size of the optimiser", 0.0, None),
        # ART's default 0.01 weighs the misclassification term so little that 3 binary-search steps
        # never reach a useful constant: measured, 0-6 % of samples attacked against DeepFool's
        # 37-57 % at the same L2 budget; 1.0 attacks 75 % at the same cost.
        "initial_const": Param("number", 1.0, "first trade-off constant of the binary search", 0.0, None)},
        "ART CarliniL2Method (Carlini & Wagner)", norm="l2"),
    "deepfool": Kind("adversarial", {
        "eps": Param("number", 1.0, "L2 budget; a longer perturbation is scaled back onto the ball", 0.0, None),
        "iterations": Param("int", 20, "DeepFool iterations", 1, 10_000),
        "overshoot": Param("number", 0.02, "overshoot past the linearised boundary", 0.0, None)},
        "ART DeepFool (Moosavi-Dezfooli et al.)", norm="l2"),
}


def kind(name: str, key: str = "kind") -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ConfigError(f"{key}: unknown scenario kind {name!r}: expected one of {', '.join(KINDS)}") from None


def _check_value(key: str, spec: Param, value: Any) -> Any:
    def number(v: Any, integer: bool) -> float | int:
        ok = isinstance(v, int) if integer else isinstance(v, int | float)
        if isinstance(v, bool) or not ok or v != v:
            raise ConfigError(f"{key}={v!r}: expected {'an integer' if integer else 'a number'}")
        if (spec.minimum is not None and v < spec.minimum) or (spec.maximum is not None and v > spec.maximum):
            lo = "-inf" if spec.minimum is None else spec.minimum
            hi = "inf" if spec.maximum is None else spec.maximum
            raise ConfigError(f"{key}={v!r}: expected a value in [{lo}, {hi}]")
        return int(v) if integer else float(v)

    integer = spec.type in ("int", "int_range")
    if spec.type in ("range", "int_range"):
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ConfigError(f"{key}={value!r}: expected a range [lo, hi]")
        lo, hi = (number(v, integer) for v in value)
        if lo > hi:
            raise ConfigError(f"{key}={list(value)!r}: expected a range [lo, hi] with lo <= hi")
        return [lo, hi]
    return number(value, integer)


def check_params(kind_name: str, params: dict[str, Any] | None, key: str) -> dict[str, Any]:
    """``params`` of a scenario of ``kind_name`` checked and completed with the kind's defaults.

    ``key`` is the scenario's config path (``kri.scenarios.<name>``), used in error messages.
    """
    spec = kind(kind_name, f"{key}.kind")
    params = dict(params or {})
    unknown = sorted(set(params) - set(spec.params))
    if unknown:
        raise ConfigError(f"{key}.params.{unknown[0]}: unknown parameter of a {kind_name} scenario: expected "
                          f"{', '.join(spec.params)}")
    return {name: _check_value(f"{key}.params.{name}", p, params.get(name, p.default))
            for name, p in spec.params.items()}


def certified_scenarios(kri: Any) -> list[str]:
    """The scenarios the pipeline certifies: ``kri.certify.scenarios``, or every certifiable one when
    that is null (``kri`` is the composed ``kri`` section)."""
    if kri.certify.scenarios is not None:
        return [str(name) for name in kri.certify.scenarios]
    return [str(name) for name, scenario in kri.scenarios.items() if KINDS[str(scenario.kind)].certifiable]
