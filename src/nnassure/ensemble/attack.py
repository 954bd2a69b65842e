"""Decide (eps, alpha)-robustness of an ensemble (Def. 6): an attack that is checked, or a proof.

Solvers accept points within their feasibility tolerance, so an attack found with the exact
encoding (a tie counts as a misclassification, Def. 4) can sit on a decision boundary that a
float64 forward pass does not reproduce. The search therefore asks first for attacks that
misclassify by ``margin`` (they survive re-evaluation); only if none exists is the exact
encoding (margin 0) solved, whose infeasibility is the robustness proof. An attack that exists
only within the solver's tolerance of the boundary is reported as ``boundary``, not as a result.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from nnassure.ensemble.check import best_probabilities, check_attack, loss_counts
from nnassure.ensemble.encoding import AttackProblem, attack_from_solution, complete_assignment, encode
from nnassure.ensemble.milp import solve
from nnassure.ensemble.precheck import RowShortcuts

VERDICTS = ("attack", "robust", "boundary", "timeout", "error")
# The heuristic's attack (float64-checked like a solver's), the CROWN pre-check's proof, or the MILP.
DECIDERS = ("heuristic", "precheck", "solver")


@dataclass
class AttackResult:
    verdict: str  # one of VERDICTS
    value: float | None  # Val(A, P) recomputed in float64 (attack only)
    optimal: bool  # the solver proved its objective optimal (max objectives) or its verdict
    complete: bool  # "robust" covers every randomized attack, not only those with <= |A| attacks
    deltas: np.ndarray | None
    probabilities: np.ndarray | None
    backend: str
    seconds: float
    relus: dict[str, int] = field(default_factory=dict)
    note: str = ""
    decided_by: str = "solver"  # one of DECIDERS: what settled the verdict


def attacks_suffice(problem: AttackProblem) -> bool:
    """Whether |A| attacks are enough for an optimal randomized attack, so that "no attack of |A|
    attacks reaches alpha" proves (eps, alpha)-robustness against every randomized attack.

    Proposition 1 of the paper bounds the support by (|X| + 1)^|C|. |C| attacks already suffice:
    Val(A, P) = min_c v_c for v = sum_i p_i M(delta_i) / |X|, a point of the convex hull H of the
    finite set of count vectors M(delta) in R^|C|. At a maximiser v*, v* lies on the boundary of H
    (else v* + t(1, ..., 1) is in H for a small t > 0 and has a larger min), hence in a proper face
    of dimension <= |C| - 1, and Caratheodory's theorem in that face writes v* with at most |C|
    vectors M(delta). For alpha = 1 one attack suffices (Lemma 2). tests/test_ensemble.py checks the
    bound by enumeration."""
    n_classifiers, n_points = len(problem.classifiers), len(problem.points)
    return problem.alpha >= 1.0 or problem.attacks >= min(n_classifiers, (n_points + 1) ** n_classifiers)


def best_start(problem: AttackProblem, candidates: Sequence[tuple[np.ndarray, np.ndarray]], objective: str
               ) -> tuple[np.ndarray, np.ndarray] | None:
    """The candidate attack, cut or padded to |A| attacks, that satisfies Eq. (4) and scores best on
    the objective (max-sum: sum_c sum_i p_i M_c(delta_i); otherwise Val). None if none qualifies."""
    n_points, dim = problem.points.shape
    best, best_score = None, -np.inf
    for deltas, probabilities in candidates:
        order = np.argsort(-np.asarray(probabilities), kind="stable")[: problem.attacks]
        deltas = np.asarray(deltas)[order]
        counts = loss_counts(problem.classifiers, problem.points, problem.labels, deltas)
        probabilities, value = best_probabilities(counts, n_points)
        if value < problem.alpha:
            continue
        padding = problem.attacks - len(deltas)
        deltas = np.concatenate([deltas, np.zeros((padding, n_points, dim))])
        probabilities = np.concatenate([probabilities, np.zeros(padding)])
        score = float((counts @ probabilities[: len(order)]).sum()) if objective == "max-sum" else value
        if score > best_score:
            best, best_score = (deltas, probabilities), score
    return best


def find_attack(problem: AttackProblem, backend: str = "highs", time_limit: float = 60.0,
                objective: str = "feasibility", bounds: str = "interval", margin: float = 1e-4,
                threads: int = 1, starts: Sequence[tuple[np.ndarray, np.ndarray]] = (),
                shortcuts: RowShortcuts | None = None) -> AttackResult:
    """Solve ``problem``; every returned attack has been re-evaluated by :func:`check_attack`.

    ``starts``: attacks (deltas, probabilities) already known, e.g. the MILP's attack for MaxMILP;
    the best one that satisfies the encoding is handed to the solver as a MIP start (its time
    counts in ``seconds``), which then only has to improve on it.

    ``shortcuts`` (nnassure.ensemble.precheck): first the primal heuristic. Its checked attack
    answers the feasibility question (Eq. 4 holds for it), and for max-sum it is optimal when
    Val = 1 (every q at its bound p_i l = p_i, the objective's maximum |C| |X|); otherwise it is a
    MIP start. Then the CROWN pre-check, whose bound below alpha proves robustness for every
    randomized attack. The MILP runs only when neither decides; the time of what ran counts."""
    seconds = 0.0
    if shortcuts is not None:
        search = shortcuts.search()
        if search is not None:
            seconds += search.seconds
            attack = shortcuts.attack()
            if attack is not None:
                if objective == "feasibility" or attack.value >= 1.0:
                    reason = ("Val = 1 is the objective's maximum" if objective != "feasibility"
                              else "it meets Eq. (4)")
                    return AttackResult("attack", attack.value, True, False, attack.deltas, attack.probabilities,
                                        backend, seconds, {}, f"attack found by the primal heuristic, checked "
                                        f"in float64; {reason}", "heuristic")
                starts = [*starts, (attack.deltas, attack.probabilities)]
        check = shortcuts.precheck()
        if check is not None:
            seconds += check.seconds
            if check.proves_robust(problem.alpha):
                return AttackResult("robust", None, True, True, None, None, backend, seconds, {},
                                    f"pre-check: CROWN proves {int(check.proven.sum())} of "
                                    f"{check.proven.size} (classifier, point) pairs, so Val <= "
                                    f"{check.bound:.4g} < alpha for every attack", "precheck")
    encoding = encode(problem, objective, bounds, margin)
    relus = {"unstable": encoding.unstable_relus, "stable": encoding.stable_relus}
    start = None
    note = ""
    chosen = best_start(problem, starts, objective) if starts else None
    if chosen is not None:
        started = time.perf_counter()
        start = complete_assignment(encoding, *chosen, time_limit=time_limit)
        seconds += time.perf_counter() - started
        note = "MIP start from a known attack; " if start is not None else ""
    solution = solve(encoding.model, backend, max(time_limit - seconds, 1.0), threads, start)
    solution.note = note + solution.note
    seconds += solution.seconds
    if solution.feasible:
        deltas, _ = attack_from_solution(encoding, solution.values)
        counts = loss_counts(problem.classifiers, problem.points, problem.labels, deltas)
        probabilities, _ = best_probabilities(counts, len(problem.points))
        value = check_attack(problem.classifiers, problem.points, problem.labels, deltas, probabilities,
                             problem.eps, problem.alpha)
        return AttackResult("attack", value, solution.status == "optimal", False, deltas, probabilities,
                            solution.backend, seconds, relus, solution.note)
    if solution.status in ("timeout", "error"):  # a solver error is an error, never a timeout
        return AttackResult(solution.status, None, False, False, None, None, solution.backend, seconds, relus,
                            solution.note)
    if margin > 0:
        exact = encode(problem, "feasibility", bounds, 0.0)
        solution = solve(exact.model, backend, max(time_limit - seconds, 1.0), threads)
        seconds += solution.seconds
        if solution.status in ("timeout", "error"):
            return AttackResult(solution.status, None, False, False, None, None, solution.backend, seconds, relus,
                                solution.note)
        if solution.feasible:
            return AttackResult("boundary", None, False, False, None, None, solution.backend, seconds, relus,
                                f"an attack exists only within margin {margin:g} of a decision boundary")
    return AttackResult("robust", None, True, attacks_suffice(problem), None, None, solution.backend, seconds,
                        relus, solution.note)
