"""PROVEN model names, ``<dataset>_<activation>_<depth>x<width>`` (e.g. ``digits_relu_2x20``).

The name is the whole specification of an image classifier of the PROVEN stages: it is a config
value (``proven.models``), a Snakemake wildcard and a file stem, so it is parsed in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nnassure.config_errors import fail

IMAGE_DATASETS = ("digits", "signs")
ACTIVATION_NAMES = ("relu", "tanh", "sigmoid", "arctan")
MAX_MODEL_DEPTH = 8
MODEL_ID = re.compile(r"(?P<dataset>[a-z]+)_(?P<activation>[a-z]+)_(?P<depth>[0-9]+)x(?P<width>[0-9]+)")
MODEL_ID_ALLOWED = (f"<dataset>_<activation>_<depth>x<width> with dataset in {IMAGE_DATASETS}, activation in "
                    f"{ACTIVATION_NAMES}, depth 1..{MAX_MODEL_DEPTH}, width >= 1 (e.g. digits_relu_2x20)")


@dataclass(frozen=True)
class ModelId:
    """A PROVEN model named ``<dataset>_<activation>_<depth>x<width>``."""

    dataset: str
    activation: str
    depth: int
    width: int

    @property
    def name(self) -> str:
        return f"{self.dataset}_{self.activation}_{self.depth}x{self.width}"

    @property
    def architecture(self) -> str:
        return f"{self.depth}x[{self.width}]"


def match_model_id(name: object) -> ModelId | None:
    """The model ``name`` denotes, or None if it is not a valid model name."""
    match = MODEL_ID.fullmatch(str(name))
    if match is None:
        return None
    model = ModelId(match["dataset"], match["activation"], int(match["depth"]), int(match["width"]))
    if model.dataset not in IMAGE_DATASETS or model.activation not in ACTIVATION_NAMES \
            or not 1 <= model.depth <= MAX_MODEL_DEPTH or model.width < 1:
        return None
    return model


def parse_model_id(name: str, key: str = "proven.models") -> ModelId:
    """Parse and check a model name; raise :class:`~nnassure.errors.ConfigError` naming ``key`` if invalid."""
    model = match_model_id(name)
    if model is None:
        fail(key, name, MODEL_ID_ALLOWED)
    return model
