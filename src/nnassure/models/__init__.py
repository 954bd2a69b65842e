"""Models of the pipeline and their files (safetensors weights plus a JSON spec, never pickle)."""

from nnassure.models.mlp import MLP, MLPSpec, load_model, save_model

__all__ = ["MLP", "MLPSpec", "load_model", "save_model"]
