"""Robustness of classifier ensembles against randomized attacks (Gross et al.): MILP encodings
solved by HiGHS or Gurobi, the SMT form in Z3, attacks re-checked in float64. Work in progress
(issue 4): dense ReLU classifiers only; convolutions, the benchmarks and the stage are not yet."""

from nnassure.ensemble.attack import AttackResult, attacks_suffice, find_attack
from nnassure.ensemble.check import AttackCheckError, attack_value, best_probabilities, check_attack, loss_counts
from nnassure.ensemble.encoding import AttackProblem, DenseLayer, dense_layers, encode, interval_bounds
from nnassure.ensemble.milp import LinearModel, Solution, solve
from nnassure.ensemble.smt import SmtAnswer, solve_smt

__all__ = [
    "AttackCheckError",
    "AttackProblem",
    "AttackResult",
    "DenseLayer",
    "LinearModel",
    "SmtAnswer",
    "Solution",
    "attack_value",
    "attacks_suffice",
    "best_probabilities",
    "check_attack",
    "dense_layers",
    "encode",
    "find_attack",
    "interval_bounds",
    "loss_counts",
    "solve",
    "solve_smt",
]
