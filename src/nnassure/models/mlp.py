"""The MLP of the verified-classification paper (Sec. 3.1) and its on-disk format.

A model is two files with the same stem: ``<stem>.safetensors`` (weights) and ``<stem>.json``
(architecture spec and provenance). :func:`load_model` is the only way models are read back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from nnassure.errors import InputFileError
from nnassure.io import atomic_path
from nnassure.models.convnet import ConvNet, ConvSpec

SPEC_FORMAT = "nnassure.mlp/1"
CONV_FORMAT = "nnassure.convnet/1"


class Arctan(nn.Module):
    """Elementwise arctan (torch has no module for it); auto_LiRPA bounds it as ``BoundAtan``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.arctan(x)


ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "arctan": Arctan}
MAX_SPEC_DEPTH = 8


@dataclass(frozen=True)
class MLPSpec:
    """An MLP with ``depth`` hidden layers of ``width`` units and ``outputs`` logits.

    The verified-classification models have one logit and ReLU; the PROVEN models (Sec. 4 of
    that paper) have one logit per class and ReLU, tanh, sigmoid or arctan.
    """

    depth: int
    width: int
    dropout: float = 0.0
    input_dim: int = 2
    activation: str = "relu"
    outputs: int = 1

    def __post_init__(self) -> None:
        integers = (self.depth, self.width, self.input_dim, self.outputs)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in integers):
            raise ValueError(f"invalid MLP spec {self}: depth, width, input_dim and outputs must be integers")
        if (not 1 <= self.depth <= MAX_SPEC_DEPTH or self.width < 1 or not 0 <= self.dropout < 1
                or self.input_dim < 1 or self.outputs < 1):
            raise ValueError(f"invalid MLP spec {self}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"invalid MLP spec {self}: activation must be one of {sorted(ACTIVATIONS)}")


class MLP(nn.Module):
    """``depth`` x (Linear, activation, Dropout) then Linear(width, outputs); outputs are logits."""

    def __init__(self, spec: MLPSpec) -> None:
        super().__init__()
        self.spec = spec
        layers: list[nn.Module] = []
        fan_in = spec.input_dim
        for _ in range(spec.depth):
            layers += [nn.Linear(fan_in, spec.width), ACTIVATIONS[spec.activation]()]
            if spec.dropout > 0:
                layers.append(nn.Dropout(spec.dropout))
            fan_in = spec.width
        layers.append(nn.Linear(fan_in, spec.outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def verification_network(self) -> nn.Sequential:
        """The same function without Dropout (identity in evaluation), as auto_LiRPA needs it."""
        layers = [layer for layer in self.net if not isinstance(layer, nn.Dropout)]
        return nn.Sequential(*layers).eval()


@dataclass
class ModelFile:
    """A loaded model and the metadata stored beside it."""

    model: MLP | ConvNet
    metadata: dict[str, Any] = field(default_factory=dict)


def model_paths(stem: str | Path) -> tuple[Path, Path]:
    stem = Path(stem)
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def build_model(spec: MLPSpec | ConvSpec) -> MLP | ConvNet:
    """The untrained network of ``spec``."""
    return ConvNet(spec) if isinstance(spec, ConvSpec) else MLP(spec)


def save_model(model: MLP | ConvNet, stem: str | Path, metadata: dict[str, Any] | None = None) -> None:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` atomically."""
    spec_format = CONV_FORMAT if isinstance(model.spec, ConvSpec) else SPEC_FORMAT
    write_model_files(stem, model, spec_format, metadata)


def write_model_files(stem: str | Path, model: nn.Module, spec_format: str,
                      metadata: dict[str, Any] | None = None) -> None:
    """The weights of ``model`` as ``<stem>.safetensors`` and ``{format, spec, metadata}`` as
    ``<stem>.json``, each written atomically; every model file format of the project is this."""
    weights_path, spec_path = model_paths(stem)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    document = {"format": spec_format, "spec": asdict(model.spec), "metadata": metadata or {}}
    with atomic_path(weights_path) as tmp:
        save_file(state, str(tmp))
    with atomic_path(spec_path) as tmp:
        tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def read_model_files(stem: str | Path, spec_format: str, spec_type: Callable[..., Any],
                     build: Callable[[Any], nn.Module], what: str, made_by: str) -> tuple[nn.Module, dict[str, Any]]:
    """The network and metadata of files written by :func:`write_model_files` in ``spec_format``:
    the spec is ``spec_type(**spec)``, the network ``build(spec)`` with the stored weights, in
    evaluation mode. A missing file, another format, a bad spec or weights that do not fit raise
    :class:`InputFileError` naming the file (``what`` names the model, ``made_by`` its stage)."""
    weights_path, spec_path = model_paths(stem)
    for path in (weights_path, spec_path):
        if not path.exists():
            raise InputFileError(f"{path}: model file not found (run the {made_by} stage first)")
    try:
        document = json.loads(spec_path.read_text())
        if not isinstance(document, dict) or document.get("format") != spec_format:
            raise ValueError(f"format is {document.get('format') if isinstance(document, dict) else None!r}")
        spec = spec_type(**document["spec"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputFileError(f"{spec_path}: not a valid {what} spec ({exc}); expected format {spec_format}") from None
    try:
        model = build(spec)
        model.load_state_dict(load_file(str(weights_path)))
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise InputFileError(f"{weights_path}: weights do not match {spec_path} ({exc})") from None
    return model.eval(), document.get("metadata", {})


def load_model(stem: str | Path) -> ModelFile:
    """Read a model saved by :func:`save_model`; raise :class:`InputFileError` if it is not valid."""
    weights_path, spec_path = model_paths(stem)
    for path in (weights_path, spec_path):
        if not path.exists():
            raise InputFileError(f"{path}: model file not found (run the train stage first)")
    try:
        document = json.loads(spec_path.read_text())
        if not isinstance(document, dict):
            raise ValueError("the file does not hold a JSON object")
        spec_types = {SPEC_FORMAT: MLPSpec, CONV_FORMAT: ConvSpec}
        if document.get("format") not in spec_types:
            raise ValueError(f"format is {document.get('format')!r}")
        spec = spec_types[document["format"]](**document["spec"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputFileError(f"{spec_path}: not a valid model spec ({exc}); expected format {SPEC_FORMAT} or "
                             f"{CONV_FORMAT}") from None
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError) as exc:
        raise InputFileError(f"{weights_path}: corrupt safetensors file ({exc})") from None
    model = build_model(spec)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        raise InputFileError(
            f"{weights_path}: weights do not match the architecture in {spec_path.name} ({spec})"
        ) from None
    model.eval()
    return ModelFile(model=model, metadata=document.get("metadata", {}))
