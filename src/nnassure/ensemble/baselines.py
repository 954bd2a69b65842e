"""The paper's alternative attackers (Sec. 6.1): the uniform attacker (UA) and the best
deterministic attacker (BDA), both built from one optimal attack per classifier.

For each classifier c a single eps-bounded attack delta_c maximises the number of points c gets
wrong (the MILP with one classifier, one attack and the max-sum objective). UA plays the
delta_c uniformly; BDA plays the one delta_c with the best deterministic value. Both values are
recomputed in float64 on the whole ensemble (Eq. 1).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from nnassure.ensemble.check import attack_value
from nnassure.ensemble.encoding import AttackProblem, attack_from_solution, complete_assignment, encode
from nnassure.ensemble.milp import solve
from nnassure.ensemble.precheck import RowShortcuts


class BaselineTimeout(Exception):
    """A per-classifier MILP found no attack within the time limit (alpha = 0 is always feasible,
    so this can only be the limit)."""


class BaselineSolverError(Exception):
    """A per-classifier MILP ended without an attack for a reason other than the time limit (the
    solver reported an error, or "infeasible", which alpha = 0 rules out)."""


@dataclass
class BaselineValues:
    uniform: float  # Val of UA
    best_deterministic: float  # Val of BDA
    attacks: np.ndarray  # delta_c per classifier, (|C|, n, d)
    seconds: float


def per_classifier_attacks(problem: AttackProblem, backend: str = "highs", time_limit: float = 60.0,
                           margin: float = 1e-4, bounds: str = "interval", threads: int = 1,
                           shortcuts: RowShortcuts | None = None) -> tuple[np.ndarray, float]:
    """delta_c for every classifier: one attack maximising c's misclassified points.

    With ``shortcuts``, the primal heuristic's attack for c alone comes first: when it fools c on
    every point it is optimal (the objective's maximum |X|) and no MILP runs; when it fools c
    nowhere and the CROWN pre-check proves c right on every point, zero is optimal; otherwise the
    heuristic's attack is the MILP's start."""
    attacks, seconds = [], 0.0
    search = shortcuts.search() if shortcuts is not None else None
    if search is not None:
        seconds += search.seconds
    check = None
    for c, layers in enumerate(problem.classifiers):
        if search is not None and search.single_fooled[c] == len(problem.points):
            attacks.append(search.single[c])
            continue
        if shortcuts is not None and search is not None and search.single_fooled[c] == 0:
            if check is None and (check := shortcuts.precheck()) is not None:
                seconds += check.seconds
            if check is not None and check.proven[c].all():
                # CROWN proves c right on every point's ball: no attack fools it anywhere, so the
                # zero attack is optimal for c alone
                attacks.append(np.zeros_like(problem.points))
                continue
        single = AttackProblem([layers], problem.points, problem.labels, 1, problem.eps, 0.0)
        encoding = encode(single, "max-sum", bounds, margin)
        start = None
        if search is not None and search.single_fooled[c] > 0:
            started = time.perf_counter()
            start = complete_assignment(encoding, search.single[c][None], np.ones(1), time_limit)
            seconds += time.perf_counter() - started
        solution = solve(encoding.model, backend, time_limit, threads, start)
        seconds += solution.seconds
        if not solution.feasible:
            if solution.status == "timeout":
                raise BaselineTimeout(f"no attack found for a single classifier within {time_limit:g} s "
                                      f"({solution.backend}: {solution.note}); alpha = 0 is always feasible")
            raise BaselineSolverError(f"the single-classifier MILP ended with status {solution.status} "
                                      f"({solution.backend}: {solution.note})")
        deltas, _ = attack_from_solution(encoding, solution.values)
        attacks.append(deltas[0])
    return np.array(attacks), seconds


def baseline_values(problem: AttackProblem, backend: str = "highs", time_limit: float = 60.0, margin: float = 1e-4,
                    bounds: str = "interval", threads: int = 1, shortcuts: RowShortcuts | None = None
                    ) -> BaselineValues:
    attacks, seconds = per_classifier_attacks(problem, backend, time_limit, margin, bounds, threads, shortcuts)
    n = len(attacks)
    uniform = attack_value(problem.classifiers, problem.points, problem.labels, attacks, np.full(n, 1.0 / n))
    best = max(attack_value(problem.classifiers, problem.points, problem.labels, attacks[c:c + 1], np.ones(1))
               for c in range(n))
    return BaselineValues(uniform, best, attacks, seconds)
