"""Robustness of classifier ensembles against randomized attacks (Gross et al.): MILP encodings
of dense, convolutional and max-pooling ReLU classifiers solved by HiGHS or Gurobi, the SMT form
in Z3, attacks re-checked in float64."""

from nnassure.ensemble.attack import AttackResult, attacks_suffice, find_attack
from nnassure.ensemble.check import AttackCheckError, attack_value, best_probabilities, check_attack, loss_counts
from nnassure.ensemble.encoding import AttackProblem, encode
from nnassure.ensemble.layers import DenseLayer, Layer, MaxPoolLayer, forward, interval_bounds, network_layers
from nnassure.ensemble.milp import LinearModel, Solution, solve
from nnassure.ensemble.smt import SmtAnswer, solve_smt

__all__ = [
    "AttackCheckError",
    "AttackProblem",
    "AttackResult",
    "DenseLayer",
    "Layer",
    "MaxPoolLayer",
    "LinearModel",
    "SmtAnswer",
    "Solution",
    "attack_value",
    "attacks_suffice",
    "best_probabilities",
    "check_attack",
    "encode",
    "find_attack",
    "forward",
    "interval_bounds",
    "loss_counts",
    "network_layers",
    "solve",
    "solve_smt",
]
