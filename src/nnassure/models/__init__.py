"""Models of the pipeline and their files (safetensors weights plus a JSON spec, never pickle)."""

from nnassure.models.convnet import ConvNet, ConvSpec
from nnassure.models.mlp import MLP, MLPSpec, build_model, load_model, save_model

__all__ = ["MLP", "ConvNet", "ConvSpec", "MLPSpec", "build_model", "load_model", "save_model"]
