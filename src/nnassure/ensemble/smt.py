"""The same decision problem in SMT (Z3, linear real arithmetic), for the SMT-vs-MILP tables.

Eqs. (4)-(7) over the reals: |delta|, ReLU and max-pooling through If, the 0-1 loss as an if-then-else on the
classifier's logits (Eq. 8; loss 0 iff the true logit is strictly the largest, Def. 4), and the
product p_i * loss written If(misclassified, p_i, 0), which keeps the formula linear. Z3 answers
sat (the model is an attack, checked like every other) or unsat (robust for |A| attacks).
Weights enter as exact rationals of their float64 values, so Z3 reasons about the same network
that the float64 check runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from nnassure.ensemble.encoding import AttackProblem
from nnassure.ensemble.layers import MaxPoolLayer

# What Z3's reason_unknown() says when the solver's timeout stopped it.
TIMEOUT_REASONS = ("timeout", "canceled")


@dataclass
class SmtAnswer:
    verdict: str  # "attack", "robust", "timeout" or "error"
    deltas: np.ndarray | None
    probabilities: np.ndarray | None
    seconds: float
    note: str = ""


def _real(value: float) -> object:
    import z3

    fraction = Fraction(float(value))
    return z3.RealVal(f"{fraction.numerator}/{fraction.denominator}")


def _affine(terms: list[tuple[object, int]], bias: object, values: list) -> object:
    """sum_k w_k values[k] + bias as one Z3 term, built through Z3's C API: the same term the
    operator API builds (z3.Sum of products), an order of magnitude faster, which matters because
    the encoding builds one such term per neuron, attack and point. In Z3's reference-counted
    context a new term may be freed by a later call unless referenced, so each product is held
    until the sum that uses it is made."""
    import z3

    context = z3.main_ctx()
    ref = context.ref()
    count = len(terms)
    arguments = (z3.Ast * (count + 1))()
    pair = (z3.Ast * 2)()
    for position, (weight, k) in enumerate(terms):
        pair[0], pair[1] = weight.as_ast(), values[k].as_ast()
        product = z3.Z3_mk_mul(ref, 2, pair)
        z3.Z3_inc_ref(ref, product)
        arguments[position] = product
    arguments[count] = bias.as_ast()
    total = z3.ArithRef(z3.Z3_mk_add(ref, count + 1, arguments), context)
    for position in range(count):
        z3.Z3_dec_ref(ref, arguments[position])
    return total


def solve_smt(problem: AttackProblem, time_limit: float = 60.0) -> SmtAnswer:
    """Decide ``problem`` with Z3; the attack of a sat answer is returned unchecked (the caller checks)."""
    import z3

    n_attacks, (n_points, dim) = problem.attacks, problem.points.shape
    solver = z3.Solver()
    solver.set("timeout", int(time_limit * 1000))
    solver.set("random_seed", 0)
    delta = [[[z3.Real(f"d_{i}_{j}_{k}") for k in range(dim)] for j in range(n_points)] for i in range(n_attacks)]
    prob = [z3.Real(f"p_{i}") for i in range(n_attacks)]
    eps = _real(problem.eps)
    for i in range(n_attacks):
        for j in range(n_points):
            solver.add(z3.Sum([z3.If(d >= 0, d, -d) for d in delta[i][j]]) <= eps)  # Eq. (5)
    solver.add(z3.Sum(prob) == 1, *[p >= 0 for p in prob])  # Eqs. (6)-(7)
    for c, layers in enumerate(problem.classifiers):
        # Every (attack, point) copy of a classifier shares its weights: their rationals are built
        # once per classifier (building them per copy was a third of the encoding's time).
        dense_terms = [None if isinstance(layer, MaxPoolLayer) else
                       [([(_real(w), k) for k, w in enumerate(row) if w != 0.0], _real(b))
                        for row, b in zip(layer.weight, layer.bias, strict=True)] for layer in layers]
        weighted = []
        for i in range(n_attacks):
            for j in range(n_points):
                values = [_real(problem.points[j, k]) + delta[i][j][k] for k in range(dim)]
                for layer_index, layer in enumerate(layers):
                    if isinstance(layer, MaxPoolLayer):
                        pooled = []
                        for group in layer.groups:
                            best = values[group[0]]
                            for r in group[1:]:
                                best = z3.If(values[r] > best, values[r], best)
                            pooled.append(best)
                        names = [z3.Real(f"m_{c}_{i}_{j}_{layer_index}_{u}") for u in range(len(pooled))]
                        solver.add(*[m == v for m, v in zip(names, pooled, strict=True)])
                        values = names
                        continue
                    pre = [_affine(terms, b, values) for terms, b in dense_terms[layer_index]]
                    if layer.relu:
                        names = [z3.Real(f"h_{c}_{i}_{j}_{layer_index}_{u}") for u in range(len(pre))]
                        solver.add(*[h == z3.If(z > 0, z, 0) for h, z in zip(names, pre, strict=True)])
                        values = names
                    else:
                        values = pre
                label = int(problem.labels[j])
                logits = [z3.Real(f"y_{c}_{i}_{j}_{o}") for o in range(len(values))]
                solver.add(*[y == v for y, v in zip(logits, values, strict=True)])
                correct = z3.And([logits[label] > logits[o] for o in range(len(logits)) if o != label])
                weighted.append(z3.If(correct, 0, prob[i]))  # p_i * loss (Eq. 8)
        solver.add(z3.Sum(weighted) >= _real(problem.alpha) * n_points)  # Eq. (4)
    started = time.perf_counter()
    outcome = solver.check()
    seconds = time.perf_counter() - started
    if outcome == z3.unsat:
        return SmtAnswer("robust", None, None, seconds)
    if outcome != z3.sat:
        # Z3 answers "unknown" when its time limit stops it, and also when it gives up (resource
        # limits, incompleteness): only the first is a timeout.
        reason = solver.reason_unknown()
        if reason in TIMEOUT_REASONS:
            return SmtAnswer("timeout", None, None, seconds, f"z3: {reason}")
        return SmtAnswer("error", None, None, seconds, f"z3 answered unknown: {reason}")
    model = solver.model()

    def number(term: object) -> float:
        value = model.eval(term, model_completion=True)
        return float(Fraction(value.as_fraction()))

    deltas = np.array([[[number(d) for d in row] for row in attack] for attack in delta])
    probabilities = np.array([number(p) for p in prob])
    return SmtAnswer("attack", deltas, probabilities, seconds)
