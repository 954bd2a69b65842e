"""onnx2torch without torchvision: import the ONNX converter only through :func:`onnx2torch`.

onnx2torch 1.5 imports torchvision at import time, for two of its converters only
(NonMaxSuppression and RoiAlign). PyPI's torchvision builds do not load beside the pinned CPU
torch 2.13.0 (``operator torchvision::nms does not exist``), and a torchvision that does pulls
another torch. When torchvision cannot be imported, a placeholder module is installed under its
name before onnx2torch is imported: every other converter is untouched, and a model that uses one
of those two operators is refused by :func:`nnassure.assess.onnx_model.load_onnx` before
conversion (they are object-detection post-processing, never part of a classifier that can be
verified). Calling a placeholder function raises, so nothing can silently run without torchvision.

Written by hand because no onnx2torch release on PyPI makes torchvision optional.
"""

from __future__ import annotations

import sys
import types
from types import ModuleType

# The ONNX operators whose onnx2torch converters need torchvision.
TORCHVISION_OPERATORS = ("NonMaxSuppression", "RoiAlign")


def _missing(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("torchvision is not installed: the ONNX operators NonMaxSuppression and RoiAlign "
                       "cannot be converted")


def _install_placeholder() -> None:
    placeholder = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    for name in ("nms", "roi_align", "box_convert"):
        setattr(ops, name, _missing)
    placeholder.ops = ops  # type: ignore[attr-defined]
    placeholder.__nnassure_placeholder__ = True  # type: ignore[attr-defined]
    sys.modules["torchvision"] = placeholder
    sys.modules["torchvision.ops"] = ops


def torchvision_is_placeholder() -> bool:
    """True when the torchvision onnx2torch sees is this module's placeholder."""
    return bool(getattr(sys.modules.get("torchvision"), "__nnassure_placeholder__", False))


def onnx2torch() -> ModuleType:
    """The onnx2torch module, imported with a torchvision placeholder when torchvision does not load."""
    if "onnx2torch" in sys.modules:
        return sys.modules["onnx2torch"]
    if "torchvision" not in sys.modules:
        try:
            import torchvision  # noqa: F401
        except Exception:  # ImportError, or torchvision's own RuntimeError against this torch
            sys.modules.pop("torchvision", None)
            _install_placeholder()
    import onnx2torch as module

    return module
