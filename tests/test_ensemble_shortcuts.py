"""The sound shortcuts in front of the ensemble MILP (nnassure.ensemble.heuristic, .precheck):

1. every attack the heuristic returns passes the same float64 check as a solver's, and reaches the
   known optimum on instances whose answer is known (the paper's example, Lemma 1's gadget, small
   random ensembles whose optimum the MILP proved);
2. a verdict never changes because of a shortcut: find_attack with and without them, on both
   backends, on rows with known answers;
3. the pre-check is sound: the CROWN margin bounds hold at sampled points and at every vertex of
   the L1 ball, and its bound on Val is never beaten by an attack search;
4. the L1 projection the heuristic steps with.
"""

import numpy as np
import pytest
import torch
from test_ensemble import (
    BACKENDS,
    CROSS_CASES,
    CROSS_TIME_LIMIT,
    TIME_LIMIT,
    Ensemble,
    ensembles,  # noqa: F401  (the module-scoped fixture)
    lemma1_ensemble,
    paper_problem,
    sample_l1,
)

from nnassure.ensemble import AttackProblem, attack_value, check_attack, find_attack
from nnassure.ensemble.baselines import baseline_values
from nnassure.ensemble.bounds import L1BoundEngine
from nnassure.ensemble.check import logits
from nnassure.ensemble.heuristic import HeuristicSettings, checked, heuristic_attack, project_l1_ball
from nnassure.ensemble.precheck import Accelerators, RowShortcuts, precheck

TOL = 1e-9
SHORTCUTS = Accelerators(HeuristicSettings(), True)


def shortcuts(problem, accelerators=SHORTCUTS, margin=1e-4):
    return RowShortcuts(problem, margin, accelerators)


def assert_checked(problem, attack):
    """The float64 check of the solvers' attacks, repeated here on the heuristic's."""
    value = check_attack(problem.classifiers, problem.points, problem.labels, attack.deltas, attack.probabilities,
                         problem.eps, problem.alpha)
    assert value == pytest.approx(attack.value, abs=TOL)
    assert np.abs(attack.deltas).sum(axis=-1).max() <= problem.eps * (1 + 1e-12)
    assert attack.probabilities.min() >= 0 and attack.probabilities.sum() == pytest.approx(1.0, abs=TOL)


# ---------------------------------------------------------------------------------------------
# 1. the heuristic's attacks
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["linear", "relu"])
def test_heuristic_finds_the_paper_examples_mixed_attack(kind):
    # Figs. 1/3/4: Val = 1/2 with two attacks (one left of -1, one right of +1), 0 with one.
    problem = paper_problem(kind, 2, 2.0, 0.5)
    attack = checked(problem, heuristic_attack(problem))
    assert attack is not None and attack.value == 0.5
    assert_checked(problem, attack)
    assert sorted(attack.probabilities) == pytest.approx([0.5, 0.5])
    single = paper_problem(kind, 1, 2.0, 0.5)
    assert heuristic_attack(single).value == 0.0  # no deterministic attack fools both
    assert checked(single, heuristic_attack(single)) is None
    # eps = 0.9: nothing reachable, so nothing found (and nothing claimed)
    assert heuristic_attack(paper_problem(kind, 2, 0.9, 0.1)).value == 0.0


def test_heuristic_solves_the_lemma1_yes_instance_only_through_a_margin():
    # The upper-bound gadgets misclassify only through exact ties; the heuristic asks for the
    # encoding's margin like the MILP, so it finds no attack and leaves the row to the solver.
    points, labels = np.zeros((1, 1)), np.zeros(1, dtype=np.int64)
    yes = AttackProblem(lemma1_ensemble((0.1, 1.0), (0.5, 0.6)), points, labels, 1, 1.0, 1.0)
    assert checked(yes, heuristic_attack(yes)) is None
    # margin 0: the ties count (Def. 4), and what it returns is checked in float64
    attack = heuristic_attack(yes, margin=0.0)
    if attack.value >= 1.0:
        assert_checked(yes, attack)


@pytest.mark.parametrize(("name", "eps", "alpha", "attacks", "expected"),
                         [case for case in CROSS_CASES if case[4] == "attack"])
def test_heuristic_attacks_pass_the_float64_check_and_never_beat_the_proven_optimum(
        ensembles, name, eps, alpha, attacks, expected):  # noqa: F811
    ens = ensembles[name]
    problem = AttackProblem(ens.layers, ens.points, ens.labels, attacks, eps, alpha)
    optimum = find_attack(problem, "highs", CROSS_TIME_LIMIT, objective="max-val")
    assert optimum.verdict == "attack" and optimum.optimal
    attack = heuristic_attack(problem)
    assert attack.value <= optimum.value + TOL
    assert ens.value(attack.deltas, attack.probabilities) == pytest.approx(attack.value, abs=TOL)
    if attack.value >= alpha:
        assert_checked(problem, attack)


@pytest.mark.parametrize("seed", range(6))
def test_heuristic_values_are_what_the_float64_forward_pass_gives(seed):
    ens = Ensemble(seed + 10, 3)
    for eps in (0.3, 1.5, 50.0):
        problem = AttackProblem(ens.layers, ens.points, ens.labels, 2, eps, 0.0)
        attack = heuristic_attack(problem, settings=HeuristicSettings(starts=4, steps=20, seed=seed))
        assert np.abs(attack.deltas).sum(axis=-1).max() <= eps * (1 + 1e-12)
        assert attack_value(ens.layers, ens.points, ens.labels, attack.deltas, attack.probabilities) == \
            pytest.approx(attack.value, abs=TOL)
        assert ens.value(attack.deltas, attack.probabilities) == pytest.approx(attack.value, abs=TOL)
        # the baselines' delta_c fool c on as many points as reported
        for c, layers in enumerate(ens.layers):
            y = logits(layers, ens.points + attack.single[c])
            fooled = (y[np.arange(len(y)), 1 - ens.labels] - y[np.arange(len(y)), ens.labels]) >= 0
            assert fooled.sum() == attack.single_fooled[c]


# ---------------------------------------------------------------------------------------------
# 2. verdicts do not depend on the shortcuts
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("attacks", "eps", "alpha", "verdict"),
                         [(2, 2.0, 0.5, "attack"), (4, 2.0, 0.51, "robust"), (1, 2.0, 0.5, "robust"),
                          (4, 0.9, 0.01, "robust")])
def test_paper_example_verdicts_are_the_same_with_and_without_shortcuts(backend, attacks, eps, alpha, verdict):
    for objective in ("feasibility", "max-sum"):
        problem = paper_problem("relu", attacks, eps, alpha)
        bare = find_attack(problem, backend, TIME_LIMIT, objective)
        fast = find_attack(problem, backend, TIME_LIMIT, objective, shortcuts=shortcuts(problem))
        assert bare.verdict == fast.verdict == verdict, (objective, bare.note, fast.note)
        if verdict == "attack":
            assert fast.value == bare.value == 0.5
            assert_checked(problem, fast)
        # a proof from the pre-check covers every randomized attack; the MILP's only when |A| suffices
        assert fast.complete >= bare.complete


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("name", "eps", "alpha", "attacks", "expected"), CROSS_CASES)
def test_random_ensemble_verdicts_are_the_same_with_and_without_shortcuts(
        ensembles, backend, name, eps, alpha, attacks, expected):  # noqa: F811
    ens = ensembles[name]
    problem = AttackProblem(ens.layers, ens.points, ens.labels, attacks, eps, alpha)
    result = find_attack(problem, backend, CROSS_TIME_LIMIT, shortcuts=shortcuts(problem))
    assert result.verdict == expected, result.note  # the bare MILP's verdict (test_ensemble's cross-check)
    if result.verdict == "attack":
        assert_checked(problem, result)
        assert ens.value(result.deltas, result.probabilities) >= alpha - TOL
    if result.decided_by == "precheck":
        assert result.complete and ens.best_found(eps, attacks) < alpha


def test_baselines_with_the_heuristic_are_optimal_per_classifier(ensembles):  # noqa: F811
    ens = ensembles["seed1-3pts"]
    problem = AttackProblem(ens.layers, ens.points, ens.labels, 2, 1.0, 0.0)
    bare = baseline_values(problem, "highs", CROSS_TIME_LIMIT)
    fast = baseline_values(problem, "highs", CROSS_TIME_LIMIT, shortcuts=shortcuts(problem))
    # delta_c is optimal for c alone either way: it fools c on the same number of points
    for c in range(len(ens.layers)):
        counts = [int((ens.margins(ens.points + attacks[c], ens.labels)[:, c] >= 0).sum())
                  for attacks in (bare.attacks, fast.attacks)]
        assert counts[0] == counts[1], (c, counts)


def test_a_heuristic_attack_that_fails_the_check_is_not_used(monkeypatch):
    problem = paper_problem("relu", 2, 2.0, 0.5)
    from nnassure.ensemble import heuristic

    original = heuristic.heuristic_attack

    def beyond_the_ball(*args, **kwargs):
        attack = original(*args, **kwargs)
        attack.deltas = attack.deltas * 1.01  # outside the L1 ball: check_attack must refuse it
        return attack

    monkeypatch.setattr("nnassure.ensemble.precheck.heuristic_attack", beyond_the_ball)
    result = find_attack(problem, "highs", TIME_LIMIT, shortcuts=shortcuts(problem))
    assert result.decided_by == "solver" and result.verdict == "attack" and result.value == 0.5


# ---------------------------------------------------------------------------------------------
# 3. the pre-check is sound
# ---------------------------------------------------------------------------------------------

def ball_points(rng, x, eps, n=3000):
    dim = len(x)
    vertices = np.concatenate([np.eye(dim), -np.eye(dim)]) * eps
    return x + np.concatenate([vertices, sample_l1(rng, n, dim, eps, "ball"), sample_l1(rng, n, dim, eps, "sphere")])


@pytest.mark.parametrize("eps", [0.05, 0.3, 1.0, 3.0])
@pytest.mark.parametrize("seed", [1, 5, 7])
def test_crown_margin_bounds_hold_at_sampled_points_and_every_vertex_of_the_ball(seed, eps):
    ens = Ensemble(seed, 3)
    rng = np.random.default_rng(seed)
    for layers in ens.layers:
        engine = L1BoundEngine(layers)
        for x, label in zip(ens.points, ens.labels, strict=True):
            bound = engine.margin_lower_bounds(x, eps, int(label))[0]
            y = logits(layers, ball_points(rng, x, eps))
            actual = y[:, label] - y[:, 1 - label]
            assert actual.min() >= bound, (actual.min(), bound)


def test_a_proven_pair_is_never_misclassified_and_the_bound_is_never_beaten(ensembles):  # noqa: F811
    rng = np.random.default_rng(3)
    proved_any = False
    for name, ens in ensembles.items():
        for eps in (0.05, 0.25, 1.0):
            problem = AttackProblem(ens.layers, ens.points, ens.labels, 3, eps, 0.5)
            check = precheck(problem)
            for c in range(len(ens.layers)):
                for j in np.flatnonzero(check.proven[c]):
                    proved_any = True
                    wrong = ens.margins(ball_points(rng, ens.points[j], eps), np.full(6000 + 2 * 4, ens.labels[j]))
                    assert (wrong[:, c] < 0).all(), (name, eps, c, j)
            # the strongest attack search of test_ensemble never reaches the bound on Val
            assert ens.best_found(eps, 3) <= check.bound + TOL, (name, eps)
    assert proved_any


def test_the_precheck_proves_the_paper_example_at_small_eps_only():
    small = precheck(paper_problem("relu", 2, 0.9, 0.01))
    assert small.proven.all() and small.bound == 0.0 and small.proves_robust(0.01)
    large = precheck(paper_problem("relu", 2, 2.0, 0.5))
    assert not large.proven.any() and large.bound == 1.0 and not large.proves_robust(0.5)


# ---------------------------------------------------------------------------------------------
# 4. projection onto the L1 ball
# ---------------------------------------------------------------------------------------------

def test_l1_projection_is_the_nearest_point_of_the_ball():
    rng = np.random.default_rng(0)
    v = torch.as_tensor(rng.normal(size=(200, 7)) * 3)
    for eps in (0.5, 2.0, 40.0):
        p = project_l1_ball(v, eps)
        norms = p.abs().sum(dim=1)
        assert (norms <= eps * (1 + 1e-12)).all()
        outside = v.abs().sum(dim=1) > eps
        assert torch.allclose(norms[outside], torch.full_like(norms[outside], eps))
        assert torch.equal(p[~outside], v[~outside])
        # no sampled point of the ball is nearer
        samples = torch.as_tensor(sample_l1(rng, 4000, 7, eps, "ball"))
        for row in np.flatnonzero(outside.numpy())[:20]:
            nearest = (samples - v[row]).norm(dim=1).min()
            assert (p[row] - v[row]).norm() <= nearest + 1e-9
    assert project_l1_ball(torch.as_tensor([[3.0, -1.0]]), 2.0).tolist() == [[2.0, 0.0]]
    assert project_l1_ball(torch.as_tensor([[1.0, 1.0]]), 1.0).tolist() == [[0.5, 0.5]]


def test_baselines_on_a_ball_where_crown_proves_every_point_are_zero_without_a_milp(monkeypatch):
    problem = paper_problem("relu", 2, 0.9, 0.1)  # nothing within reach fools either classifier
    bare = baseline_values(problem, "highs", TIME_LIMIT)

    def no_milp(*args, **kwargs):
        raise AssertionError("the MILP ran although the pre-check proved every point")

    monkeypatch.setattr("nnassure.ensemble.baselines.solve", no_milp)
    fast = baseline_values(problem, "highs", TIME_LIMIT, shortcuts=shortcuts(problem))
    assert fast.uniform == bare.uniform == 0.0 and fast.best_deterministic == bare.best_deterministic == 0.0
    assert not fast.attacks.any()
