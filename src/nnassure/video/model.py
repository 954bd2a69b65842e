"""The video classifier: a CNN on each optical flow of a clip, then an LSTM over the flows.

The network reads the flow sequence P(v) (Def. 4), shape ``(batch, flows, 2, grid, grid)``: the
x and y components of each (pooled) Farneback flow. Making the flow the input turns the paper's
flow manipulations (Def. 5) into input perturbations, with exact gradients (Eq. 8) and LiRPA
bounds over flow balls.

Per step t the CNN (Def. 9's N_C) is conv 3x3 -> ReLU -> conv 3x3 stride 2 -> ReLU -> linear ->
ReLU, giving the spatial features eta_t. The recurrence (N_R) is an LSTM written as an
LSTMCell-style loop with one Linear per gate, because auto_LiRPA 0.3 rejects ``nn.LSTM`` and its
traced graph of this loop uses only Linear, Sigmoid, Tanh, Mul and Add. The first step starts
from the first input instead of a zero state tensor (a constant zero state breaks CROWN in
auto_LiRPA 0.3):

    c_1 = s(i_1) * tanh(g_1),                          h_1 = s(o_1) * tanh(c_1)
    c_t = s(f_t) * c_{t-1} + s(i_t) * tanh(g_t),       h_t = s(o_t) * tanh(c_t)
    z_t = W_z eta_t + U_z h_{t-1} + b_z  for z in (i, f, g, o)   (U_z h_0 absent at t = 1)

which is ``nn.LSTMCell`` from a zero state (h_0 = c_0 = 0); the logits are a linear map of h_T.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnassure.errors import InputFileError
from nnassure.models.mlp import read_model_files, write_model_files

FORMAT = "nnassure-flow-lstm-1"
GATES = ("i", "f", "g", "o")


@dataclass(frozen=True)
class FlowLSTMSpec:
    """The architecture: ``flows`` time steps of a ``grid`` x ``grid`` flow with 2 components."""

    flows: int
    grid: int
    classes: int
    conv_channels: int = 8
    features: int = 32
    hidden: int = 32

    def __post_init__(self) -> None:
        for name in ("flows", "grid", "classes", "conv_channels", "features", "hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"invalid {name}={value!r}: expected an integer >= 1")
        if self.classes < 2:
            raise ValueError(f"invalid classes={self.classes}: expected at least 2")

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.flows, 2, self.grid, self.grid)

    @property
    def conv_grid(self) -> int:
        """The grid after the stride-2 convolution (kernel 3, padding 1)."""
        return (self.grid - 1) // 2 + 1


class FlowLSTM(nn.Module):
    """CNN per flow, LSTM over the flows, logits of the motion classes (module docstring)."""

    def __init__(self, spec: FlowLSTMSpec) -> None:
        super().__init__()
        self.spec = spec
        c = spec.conv_channels
        self.conv1 = nn.Conv2d(2, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.project = nn.Linear(c * spec.conv_grid**2, spec.features)
        self.input_gates = nn.ModuleDict({z: nn.Linear(spec.features, spec.hidden) for z in GATES})
        self.hidden_gates = nn.ModuleDict({z: nn.Linear(spec.hidden, spec.hidden, bias=False) for z in GATES})
        self.classify = nn.Linear(spec.hidden, spec.classes)

    def spatial_features(self, flow: torch.Tensor) -> torch.Tensor:
        """eta_t = N_C(p_t) of one flow, ``(batch, 2, grid, grid)`` -> ``(batch, features)`` (Def. 9)."""
        z = torch.relu(self.conv1(flow))
        z = torch.relu(self.conv2(z))
        return torch.relu(self.project(z.flatten(1)))

    def step(self, eta: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One LSTM step: ``(h_t, c_t)`` from eta_t and ``(h_{t-1}, c_{t-1})`` (None at t = 1)."""
        pre = {z: self.input_gates[z](eta) for z in GATES}
        if state is not None:
            pre = {z: pre[z] + self.hidden_gates[z](state[0]) for z in GATES}
        cell = torch.sigmoid(pre["i"]) * torch.tanh(pre["g"])
        if state is not None:
            cell = torch.sigmoid(pre["f"]) * state[1] + cell
        return torch.sigmoid(pre["o"]) * torch.tanh(cell), cell

    def forward(self, flows: torch.Tensor) -> torch.Tensor:
        state = None
        for t in range(self.spec.flows):
            state = self.step(self.spatial_features(flows[:, t]), state)
        return self.classify(state[0])


@dataclass
class FlowLSTMFile:
    model: FlowLSTM
    metadata: dict[str, Any] = field(default_factory=dict)


def save_flow_lstm(model: FlowLSTM, stem: str | Path, metadata: dict[str, Any] | None = None) -> None:
    """Write ``<stem>.safetensors`` (float32 weights) and ``<stem>.json`` atomically."""
    write_model_files(stem, copy.deepcopy(model).float(), FORMAT, metadata)


def load_flow_lstm(stem: str | Path) -> FlowLSTMFile:
    """Read a model saved by :func:`save_flow_lstm` (float32 weights, evaluation mode)."""
    model, metadata = read_model_files(stem, FORMAT, FlowLSTMSpec, FlowLSTM, "video model", "video_train")
    return FlowLSTMFile(model, metadata)  # type: ignore[arg-type]


def check_flow_shape(model: FlowLSTM, flows_shape: tuple[int, ...], what: str) -> None:
    """Refuse flows whose shape is not ``(n, *model.spec.input_shape)``, naming both shapes."""
    expected = model.spec.input_shape
    if len(flows_shape) != 5 or tuple(flows_shape[1:]) != expected:
        raise InputFileError(f"{what}: flows have shape {tuple(flows_shape)}; the model expects "
                             f"(n, {', '.join(map(str, expected))}) (flows, components, grid, grid)")
