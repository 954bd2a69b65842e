"""Compatibility layer that lets auto_LiRPA 0.3 (the last PyPI release) run on torch 2.13 and numpy 2.

PyPI only carries auto_LiRPA 0.3, which pins torch<1.13. Its bound computations run unchanged
on torch 2.13 once four API moves are bridged:

1. ``torch.onnx.symbolic_helper._set_opset_version`` is gone; the opset now lives in
   ``torch.onnx._internal.torchscript_exporter._globals.GLOBALS.export_onnx_opset_version``.
2. ``torch._C.Node.__getitem__`` is gone; an attribute is read with ``node.kindOf(k)`` and the
   accessor of that kind (``node.t(k)``, ``node.i(k)``, ...).
3. ``numpy.lib.arraysetops`` is gone in numpy 2; ``numpy.isin`` is the same function.
4. torch 2 calls ``Module._named_members(..., remove_duplicate=...)``, a keyword that
   ``BoundedModule._named_members`` does not accept.

The patches are written by hand because no maintained fork of auto_LiRPA is on PyPI; they only
add the missing names and never change a bound computation. They were checked to give the same
bounds as upstream 0.7.1; ``tests/test_lirpa_compat.py`` guards this by comparing the patched
library with an independent float64 implementation of IBP and CROWN and with stored reference
tensors (``tests/data/lirpa_reference.json``), so a patch that stops working is noticed.
Import auto_LiRPA only through :func:`auto_lirpa`.
"""

from __future__ import annotations

import sys
import types
import warnings
from types import ModuleType
from typing import Any

_applied = False


def _patch_opset_setter() -> None:
    import torch.onnx.symbolic_helper as symbolic_helper

    if hasattr(symbolic_helper, "_set_opset_version"):
        return
    from torch.onnx._internal.torchscript_exporter._globals import GLOBALS

    def _set_opset_version(opset_version: int) -> None:
        GLOBALS.export_onnx_opset_version = opset_version

    symbolic_helper._set_opset_version = _set_opset_version


def _patch_node_getitem() -> None:
    import torch

    if hasattr(torch._C.Node, "__getitem__"):
        return

    def _node_getitem(node: Any, key: str) -> Any:
        return getattr(node, node.kindOf(key))(key)

    torch._C.Node.__getitem__ = _node_getitem


def _patch_numpy_arraysetops() -> None:
    import numpy as np

    if "numpy.lib.arraysetops" in sys.modules:
        return
    try:
        import numpy.lib.arraysetops  # noqa: F401
    except ImportError:
        shim = types.ModuleType("numpy.lib.arraysetops")
        shim.isin = np.isin  # type: ignore[attr-defined]
        sys.modules["numpy.lib.arraysetops"] = shim


def _patch_named_members(auto_lirpa_module: ModuleType) -> None:
    bounded_module = auto_lirpa_module.BoundedModule
    original = bounded_module._named_members
    if getattr(original, "_nnassure_patched", False):
        return

    def _named_members(self: Any, get_members_fn: Any, prefix: str = "", recurse: bool = True,
                       remove_duplicate: bool = True) -> Any:
        # auto_LiRPA 0.3 already yields each member once; the keyword is accepted and ignored.
        return original(self, get_members_fn, prefix, recurse)

    _named_members._nnassure_patched = True  # type: ignore[attr-defined]
    bounded_module._named_members = _named_members


def auto_lirpa() -> ModuleType:
    """Return the ``auto_LiRPA`` module with the compatibility patches applied (once)."""
    global _applied
    if not _applied:
        _patch_opset_setter()
        _patch_node_getitem()
        _patch_numpy_arraysetops()
    with warnings.catch_warnings():
        # auto_LiRPA 0.3 uses torch.jit.script at import, deprecated in torch 2.
        warnings.simplefilter("ignore", DeprecationWarning)
        import auto_LiRPA

    if not _applied:
        _patch_named_members(auto_LiRPA)
        _applied = True
    return auto_LiRPA
