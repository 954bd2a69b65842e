"""The cheap sound checks around the MILP of one row, computed once and shared by its methods:
the pre-check that can prove robustness before any MILP, and the primal heuristic's attack.

Pre-check. CROWN over the L1 ball (``bounds.L1BoundEngine.margin_lower_bounds``) proves for a
pair (classifier c, point x^j) that c classifies every point of the ball as c_t(x^j): then
l_{0-1}(c, x^j, delta(x^j)) = 0 for every eps-bounded attack (Def. 4). With U_c the number of
points not proven for c, every randomized attack of any support has
    Val(A, P) = min_c (1/|X|) sum_j E_P[l_{0-1}(c, x^j, delta(x^j))] <= min_c U_c / |X|    (Eq. 1),
so min_c U_c / |X| < alpha proves (eps, alpha)-robustness (Def. 6) outright: a complete proof,
whatever |A|.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from nnassure.ensemble.encoding import AttackProblem
from nnassure.ensemble.heuristic import HeuristicAttack, HeuristicSettings, checked, heuristic_attack


@dataclass
class PreCheck:
    proven: np.ndarray  # (|C|, |X|): c classifies the whole L1 ball around x^j correctly
    bound: float  # min_c U_c / |X|, an upper bound of Val(A, P) over every eps-bounded attack
    seconds: float

    def proves_robust(self, alpha: float) -> bool:
        return self.bound < alpha


def precheck(problem: AttackProblem) -> PreCheck:
    """CROWN on every (classifier, point) pair over the row's L1 ball (module docstring)."""
    from nnassure.ensemble.bounds import L1BoundEngine

    started = time.perf_counter()
    n_points = len(problem.points)
    proven = np.zeros((len(problem.classifiers), n_points), dtype=bool)
    for c, layers in enumerate(problem.classifiers):
        engine = L1BoundEngine(layers)
        for j in range(n_points):
            margins = engine.margin_lower_bounds(problem.points[j], problem.eps, int(problem.labels[j]))
            proven[c, j] = bool((margins > 0).all())
    unproven = (~proven).sum(axis=1)
    return PreCheck(proven, float(unproven.min() / n_points), time.perf_counter() - started)


@dataclass(frozen=True)
class Accelerators:
    """Which of the sound shortcuts the row's methods use (``ensemble.heuristic`` and
    ``ensemble.precheck``); both off is the bare MILP of the paper."""

    heuristic: HeuristicSettings | None = HeuristicSettings()
    precheck: bool = True


class RowShortcuts:
    """The heuristic's search and the pre-check of one problem, each computed on first use and
    then shared by the row's methods; the seconds of each are charged to every method that
    relies on it."""

    def __init__(self, problem: AttackProblem, margin: float, accelerators: Accelerators) -> None:
        self.problem, self.margin, self.accelerators = problem, margin, accelerators
        self._search: HeuristicAttack | None = None
        self._precheck: PreCheck | None = None

    def search(self) -> HeuristicAttack | None:
        """The heuristic's best attack whatever its Val (its per-classifier attacks serve the
        baselines), or None when the heuristic is off."""
        if self.accelerators.heuristic is None:
            return None
        if self._search is None:
            self._search = heuristic_attack(self.problem, self.margin, self.accelerators.heuristic)
        return self._search

    def attack(self) -> HeuristicAttack | None:
        """The heuristic's attack if it reaches alpha and passes the float64 check."""
        search = self.search()
        return None if search is None else checked(self.problem, search)

    def precheck(self) -> PreCheck | None:
        if not self.accelerators.precheck:
            return None
        if self._precheck is None:
            self._precheck = precheck(self.problem)
        return self._precheck
