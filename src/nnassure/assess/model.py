"""A model the pipeline did not train, as the assessment stages see it.

Two sources: an ONNX file (converted to torch by onnx2torch, see :mod:`nnassure.onnx_compat`,
and checked against onnxruntime, the reference runtime of the format, on the user's data), or
the pipeline's own ``<stem>.safetensors`` + ``<stem>.json`` (:func:`nnassure.models.load_model`).

Every refusal is an :class:`InputFileError` of one line naming the file and the problem:
an ONNX operator onnx2torch cannot convert, one auto_LiRPA cannot bound (or whose float64
rounding the bound engine cannot account for), a converted model that disagrees with
onnxruntime beyond the tolerance, more than one input or output.

A model with one output is a binary classifier (class 1 iff the logit is >= 0, the pipeline's
rule for its own data sets A-C); with k >= 2 outputs the class is the argmax (a tie goes to the
lowest index, numpy's rule; the verdicts below never rest on a tie: a sample is verified only
when its label's logit is strictly above every other).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nnassure.certify.bounds import graph_rounding_slack, register_rounding_bound
from nnassure.errors import InputFileError
from nnassure.io import file_sha256
from nnassure.onnx_compat import TORCHVISION_OPERATORS, onnx2torch


class FlatInput(nn.Module):
    """An imported network on flat inputs (batch, prod(input_shape)), the bound engine's view of it.

    The reshape in front also keeps auto_LiRPA 0.3 from taking its first-layer shortcut (IBP of a
    Linear or Conv fed by the input, with the ball's own norm), which cannot handle one L2 radius
    per row; the ball then enters through :class:`nnassure.certify.bounds.MaskedL2Norm`, sound for
    any graph, and a VNN-LIB box is flat as its X_i are."""

    def __init__(self, network: nn.Module, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.network = network
        self.input_shape = tuple(input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # -1, not x.shape[0]: auto_LiRPA traces with a batch of one, and a traced size is a constant
        return self.network(x.reshape(-1, *self.input_shape))


# An imported network is a torch.fx graph: its float64 rounding bound is the one computed on
# auto_LiRPA's traced graph (nnassure.certify.bounds.graph_rounding_slack), whose node kinds are
# BOUNDABLE_OPERATORS below.
register_rounding_bound(FlatInput, graph_rounding_slack)

# ONNX operators the float64 bound engine can bound and account rounding for (auto_LiRPA 0.3 node
# kinds of nnassure.certify.bounds.graph_magnitude). Other operators may convert and run, but no
# certificate is issued for them: they are refused with their name.
BOUNDABLE_OPERATORS = frozenset({
    "Gemm", "MatMul", "Add", "Conv", "Relu", "Sigmoid", "Tanh", "Flatten", "Reshape", "Transpose",
    "Squeeze", "Unsqueeze", "Concat", "Constant", "Identity", "Gather", "Mul", "Shape", "Cast",
    "Dropout",
})
# The ReLU networks the exact MILP encoding (nnassure.ensemble.encoding) covers.
MILP_OPERATORS = frozenset({"Gemm", "MatMul", "Add", "Conv", "Relu", "Flatten", "Reshape", "Constant", "Identity",
                            "Dropout"})


@dataclass
class AssessedModel:
    """The network (float32 torch, evaluation mode), its input shape without the batch axis, its
    source file(s) and their SHA-256, and the ONNX operators it is made of (empty for a native model)."""

    network: nn.Module
    input_shape: tuple[int, ...]
    outputs: int
    source: str  # "onnx" or "native"
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256
    operators: list[str] = field(default_factory=list)
    activations: list[str] = field(default_factory=list)
    onnx_path: Path | None = None
    input_name: str = "input"
    fixed_batch: bool = False  # the ONNX file takes one sample at a time (onnxruntime runs it so)

    @property
    def classes(self) -> int:
        """Number of classes: 2 for a one-logit model."""
        return 2 if self.outputs == 1 else self.outputs

    @property
    def relu_only(self) -> bool:
        """True when every activation is a ReLU (the exact MILP encoding applies)."""
        return all(a == "relu" for a in self.activations)

    def bound_network(self) -> tuple[nn.Module, tuple[int, ...]]:
        """The network the bound engine bounds and its input shape: an imported one on flat inputs
        (:class:`FlatInput`), a native one as it is."""
        if self.source == "onnx":
            return FlatInput(self.network, self.input_shape).eval(), (int(np.prod(self.input_shape)),)
        return self.network, self.input_shape

    def logits(self, x: np.ndarray, batch_size: int = 1024, dtype: torch.dtype = torch.float32) -> np.ndarray:
        """The network's outputs on ``x`` (batch, *input_shape), (batch, outputs)."""
        network = self.network if dtype == torch.float32 else _cast(self.network, dtype)
        parts = []
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                chunk = torch.as_tensor(np.asarray(x[start:start + batch_size])).to(dtype)
                parts.append(network(chunk).reshape(len(chunk), -1).numpy())
        return np.concatenate(parts) if parts else np.zeros((0, self.outputs))

    def predict(self, logits: np.ndarray) -> np.ndarray:
        """Classes from logits (one logit: 1 iff >= 0; else argmax)."""
        logits = np.asarray(logits)
        if logits.shape[1] == 1:
            return (logits[:, 0] >= 0).astype(np.int64)
        return logits.argmax(axis=1).astype(np.int64)


def _cast(network: nn.Module, dtype: torch.dtype) -> nn.Module:
    import copy

    return copy.deepcopy(network).to(dtype).eval()


def _onnx_shape(value_info: Any) -> list[int | str]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]


def onnx_operators(model: Any) -> list[str]:
    """The distinct operator types of an ONNX graph, in first-use order."""
    seen: list[str] = []
    for node in model.graph.node:
        if node.op_type not in seen:
            seen.append(node.op_type)
    return seen


def _opset(model: Any) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise InputFileError("the ONNX file imports no default-domain opset")


def _activation_names(operators: list[str]) -> list[str]:
    names = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}
    return [names[op] for op in operators if op in names]


def load_onnx(path: str | Path) -> AssessedModel:
    """Read, check and convert an ONNX classifier; refuse an unsupported one in one line.

    Checks, in order: the file parses and passes ``onnx.checker``; one input and one output, the
    input's shape fixed but for the batch axis; every operator has an onnx2torch converter at the
    file's opset and is one the bound engine can bound (:data:`BOUNDABLE_OPERATORS`). The
    conversion itself is compared with onnxruntime by :func:`check_against_onnxruntime`.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: ONNX model file not found")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ...
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputFileError(f"{path}: not a valid ONNX model ({message})") from None
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise InputFileError(f"{path}: the model has {len(inputs)} inputs and {len(model.graph.output)} outputs; "
                             "expected one input and one output (a classifier's logits)")
    shape = _onnx_shape(inputs[0])
    if len(shape) < 2 or any(not isinstance(d, int) or d <= 0 for d in shape[1:]):
        raise InputFileError(f"{path}: input {inputs[0].name!r} has shape {shape}; expected (batch, ...) with every "
                             "other dimension fixed")
    fixed_batch = isinstance(shape[0], int)
    if fixed_batch:
        if shape[0] != 1:
            raise InputFileError(f"{path}: input {inputs[0].name!r} has a fixed batch size of {shape[0]}; expected a "
                                 "free batch dimension or a batch of 1")
        # Many VNN-COMP networks fix the batch at 1: the conversion gets the same graph with a free
        # batch dimension, checked against the original file below (check_against_onnxruntime).
        model = _free_batch(model, path)
    opset = _opset(model)
    operators = onnx_operators(model)
    converter = onnx2torch()
    from onnx2torch.node_converters.registry import get_converter

    for op in operators:
        if op in TORCHVISION_OPERATORS:
            raise InputFileError(f"{path}: ONNX operator {op} is not supported (onnx2torch needs torchvision for it, "
                                 "which does not load beside the pinned torch)")
        try:
            get_converter(op, opset)
        except NotImplementedError:
            raise InputFileError(f"{path}: ONNX operator {op} (opset {opset}) is not supported by onnx2torch") from None
    unboundable = [op for op in operators if op not in BOUNDABLE_OPERATORS]
    if unboundable:
        supported = ", ".join(sorted(BOUNDABLE_OPERATORS))
        raise InputFileError(f"{path}: ONNX operator {unboundable[0]} is not supported by the bound engine "
                             f"(auto_LiRPA with float64 rounding bounds); supported: {supported}")
    try:
        network = converter.convert(model).eval()
    except Exception as exc:
        raise InputFileError(f"{path}: onnx2torch could not convert the model ({type(exc).__name__}: {exc})") from None
    output_shape = _onnx_shape(model.graph.output[0])
    outputs = output_shape[-1] if output_shape and isinstance(output_shape[-1], int) else None
    input_shape = tuple(int(d) for d in shape[1:])
    with torch.no_grad():
        probe = network(torch.zeros(1, *input_shape))
    if outputs is None:
        outputs = int(probe.reshape(1, -1).shape[1])
    if probe.reshape(1, -1).shape[1] != outputs:
        raise InputFileError(f"{path}: the output has shape {list(probe.shape)}; expected (batch, classes)")
    return AssessedModel(network=network, input_shape=input_shape, outputs=int(outputs), source="onnx",
                         files={str(path): file_sha256(path)}, operators=operators,
                         activations=_activation_names(operators), onnx_path=path, input_name=inputs[0].name,
                         fixed_batch=fixed_batch)


def _free_batch(model: Any, path: Path) -> Any:
    """``model`` with its input's and output's first dimension made symbolic."""
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    try:
        inputs = {i.name: ["batch", *_onnx_shape(i)[1:]] for i in graph.input if i.name not in initializers}
        outputs = {o.name: ["batch", *_onnx_shape(o)[1:]] for o in graph.output}
        return update_inputs_outputs_dims(model, inputs, outputs)
    except Exception as exc:
        raise InputFileError(f"{path}: the batch dimension is fixed at 1 and could not be freed ({exc})") from None


def load_native(stem: str | Path) -> AssessedModel:
    """A model of the pipeline's own format (``<stem>.safetensors`` + ``<stem>.json``)."""
    from nnassure.models import ConvNet, load_model
    from nnassure.models.mlp import model_paths

    loaded = load_model(stem).model
    weights, spec = model_paths(stem)
    if isinstance(loaded, ConvNet):
        raise InputFileError(f"{spec}: a ConvNet of the pipeline takes flat HWC inputs; export it to ONNX to assess it")
    network = loaded.verification_network()
    activation = str(loaded.spec.activation)
    input_shape = (int(loaded.spec.input_dim),)
    with torch.no_grad():
        outputs = int(network(torch.zeros(1, *input_shape)).shape[1])
    return AssessedModel(network=network, input_shape=input_shape, outputs=outputs, source="native",
                         files={str(weights): file_sha256(weights), str(spec): file_sha256(spec)},
                         activations=[activation])


def load_assessed_model(path: str | Path) -> AssessedModel:
    """An ONNX file (``*.onnx``) or a native model (its stem, or its ``.safetensors``/``.json``)."""
    path = Path(path)
    if path.suffix == ".onnx":
        return load_onnx(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return load_native(path)


def onnxruntime_logits(model: AssessedModel, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """The ONNX file's own outputs on ``x`` (float32), computed by onnxruntime on the CPU."""
    import onnxruntime

    if model.onnx_path is None:
        raise ValueError("onnxruntime_logits needs a model imported from ONNX")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(model.onnx_path), options, providers=["CPUExecutionProvider"])
    parts = []
    if model.fixed_batch:
        batch_size = 1
    for start in range(0, len(x), batch_size):
        chunk = np.ascontiguousarray(x[start:start + batch_size], dtype=np.float32)
        parts.append(np.asarray(session.run(None, {model.input_name: chunk})[0]).reshape(len(chunk), -1))
    return np.concatenate(parts) if parts else np.zeros((0, model.outputs), np.float32)


@dataclass
class Agreement:
    """How far the converted model's logits are from onnxruntime's on the data."""

    max_abs: float
    max_rel: float
    tolerance: float
    samples: int
    prediction_mismatches: int

    @property
    def ok(self) -> bool:
        return self.max_abs <= self.tolerance * (1.0 + self.scale)

    scale: float = 0.0


def check_against_onnxruntime(model: AssessedModel, x: np.ndarray, tolerance: float) -> Agreement:
    """Compare the converted network with onnxruntime on ``x``; refuse beyond ``tolerance``.

    The tolerance is relative to the logits' magnitude: ``max |torch - ort| <= tolerance * (1 +
    max |ort|)`` (float32 kernels differ in summation order by a few ulps of the largest logit).
    """
    reference = onnxruntime_logits(model, x)
    converted = model.logits(x)
    difference = np.abs(reference.astype(np.float64) - converted.astype(np.float64))
    scale = float(np.abs(reference).max()) if reference.size else 0.0
    max_abs = float(difference.max()) if difference.size else 0.0
    agreement = Agreement(max_abs=max_abs, max_rel=max_abs / max(scale, 1e-30), tolerance=float(tolerance),
                          samples=len(x), scale=scale,
                          prediction_mismatches=int((model.predict(reference) != model.predict(converted)).sum()))
    if not agreement.ok:
        raise InputFileError(f"{model.onnx_path}: the converted model differs from onnxruntime by {max_abs:.3g} "
                             f"(largest logit {scale:.3g}) on the data, above assess.tolerance={tolerance:g} "
                             "relative; the conversion is not faithful")
    return agreement
