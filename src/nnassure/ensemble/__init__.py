"""Robustness of classifier ensembles against randomized attacks (Gross et al.): MILP encodings
of dense, convolutional and max-pooling ReLU classifiers solved by HiGHS or Gurobi, the SMT form
in Z3, attacks re-checked in float64.

The names below are imported on first use (PEP 562), not with the package: the config schema and
the Snakefile read ``nnassure.ensemble.benchmarks`` and ``.backends`` at parse time, and importing
the solver and network code with them would cost torch's import every time a config is composed.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "attack": ("AttackResult", "attacks_suffice", "find_attack"),
    "check": ("AttackCheckError", "attack_value", "best_probabilities", "check_attack", "loss_counts"),
    "encoding": ("AttackProblem", "encode"),
    "layers": ("DenseLayer", "Layer", "MaxPoolLayer", "forward", "interval_bounds", "network_layers"),
    "milp": ("LinearModel", "Solution", "solve"),
    "smt": ("SmtAnswer", "solve_smt"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
