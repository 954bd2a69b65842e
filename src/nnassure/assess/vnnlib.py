"""VNN-LIB properties in the dialect of the VNN-COMP benchmarks, read into input boxes and
output polytopes.

A VNN-LIB file declares the network's inputs ``X_i`` and outputs ``Y_j`` (indices in the C-order
flattening of the input and output tensors) and asserts the *negation* of the property: the set
of inputs and outputs a counterexample must lie in. Its assertions are conjoined; each is a
comparison ``(<= a b)`` / ``(>= a b)`` of linear terms (numbers, variables, ``+``, ``-``, and ``*``
by a number) or an ``and`` / ``or`` of such. The whole is brought to disjunctive normal form:
each conjunction is an input box (bounds on single inputs) and a polytope ``A y <= b`` over the
outputs, and conjunctions with the same box share it (:class:`Region`). The property holds iff
no input of any box is mapped into one of its box's polytopes (VNN-COMP's ``unsat``); it is
violated iff some is (``sat``).

Refused, each in one line with the file, line and column: a syntax error; an undeclared name; a
sort other than Real; strict comparisons, ``=``, ``not`` and other functions (a strict ``<`` in the
unsafe set cannot be checked by a counterexample test without tolerance, so it is not read as
``<=``); a product of two variables; a constraint mixing inputs and outputs or relating several
inputs (not a box); an input left unbounded; a normal form of more than ``MAX_CASES`` cases.
A conjunction whose box is empty or whose constant constraints are false cannot hold and is dropped.

Written here because the PyPI packages do not read this dialect correctly: ``vnnlib`` 1.x reads
only VNN-LIB 2.0 (it refuses a VNN-COMP file at its first ``declare-const``), and 0.0.1's reader
misreads a top-level output constraint combined with an ``or`` over outputs (the disjunct's
first row overwrites the common one) and turns ``X_0 + X_1 <= 1`` into the box ``X_0 <= 1,
X_1 <= 0``, both measured here; either could turn into a wrong verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from nnassure.errors import InputFileError

MAX_CASES = 100_000
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_VARIABLE = re.compile(r"^([XY])_(\d+)$")


@dataclass(frozen=True)
class Polytope:
    """``A y <= b`` over the outputs (an empty A: every output is in it)."""

    A: np.ndarray  # (rows, outputs)
    b: np.ndarray  # (rows,)

    def contains(self, y: np.ndarray) -> np.ndarray:
        """Per row of ``y`` (n, outputs): True where every inequality holds (no tolerance)."""
        y = np.atleast_2d(np.asarray(y, np.float64))
        if not len(self.b):
            return np.ones(len(y), bool)
        return (y @ self.A.T <= self.b).all(axis=1)

    def violation(self, y: np.ndarray) -> np.ndarray:
        """max_i (A_i y - b_i) per row of ``y``: <= 0 exactly where ``y`` is in the polytope."""
        y = np.atleast_2d(np.asarray(y, np.float64))
        if not len(self.b):
            return np.full(len(y), -np.inf)
        return (y @ self.A.T - self.b).max(axis=1)


@dataclass(frozen=True)
class Region:
    """An input box and the output polytopes a counterexample from it may fall into."""

    lower: np.ndarray  # (inputs,)
    upper: np.ndarray
    polytopes: tuple[Polytope, ...]


@dataclass(frozen=True)
class Property:
    path: Path
    inputs: int
    outputs: int
    regions: tuple[Region, ...]

    @property
    def cases(self) -> int:
        """Number of (box, polytope) pairs the decision closes one by one."""
        return sum(len(r.polytopes) for r in self.regions)


@dataclass(frozen=True)
class _Atom:
    text: str
    line: int
    column: int


@dataclass(frozen=True)
class _List:
    items: tuple
    line: int
    column: int


# A linear term: variable ("X", i) / ("Y", j) -> coefficient, and a constant (exact rationals, so
# that moving terms across a comparison rounds nothing before the final float64 coefficients).
_Linear = tuple[dict[tuple[str, int], Fraction], Fraction]
# One constraint sum_v a_v v <= c.
_Constraint = tuple[dict[tuple[str, int], Fraction], Fraction]


class _Reader:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        self.declared: set[tuple[str, int]] = set()

    def error(self, where: _Atom | _List | tuple[int, int], message: str) -> InputFileError:
        line, column = (where.line, where.column) if not isinstance(where, tuple) else where
        return InputFileError(f"{self.path}:{line}:{column}: VNN-LIB {message}")

    # --- S-expressions -----------------------------------------------------------------------

    def expressions(self) -> list[_List]:
        stack: list[list] = [[]]
        opened: list[tuple[int, int]] = []
        for match in re.finditer(r";[^\n]*|\(|\)|[^\s()]+", self.text):
            token = match.group()
            if token.startswith(";"):
                continue
            line = self.text.count("\n", 0, match.start()) + 1
            column = match.start() - (self.text.rfind("\n", 0, match.start()) + 1) + 1
            if token == "(":
                stack.append([])
                opened.append((line, column))
            elif token == ")":
                if len(stack) == 1:
                    raise self.error((line, column), "syntax error: ')' without a matching '('")
                items = stack.pop()
                start = opened.pop()
                stack[-1].append(_List(tuple(items), *start))
            else:
                stack[-1].append(_Atom(token, line, column))
        if len(stack) > 1:
            raise self.error(opened[-1], "syntax error: '(' is never closed")
        for item in stack[0]:
            if isinstance(item, _Atom):
                raise self.error(item, f"syntax error: {item.text!r} outside a command")
        return stack[0]

    # --- terms -------------------------------------------------------------------------------

    def linear(self, term: _Atom | _List) -> _Linear:
        if isinstance(term, _Atom):
            if _NUMBER.match(term.text):
                return {}, Fraction(term.text)
            match = _VARIABLE.match(term.text)
            if match is None or (match.group(1), int(match.group(2))) not in self.declared:
                raise self.error(term, f"error: undeclared name {term.text!r}")
            return {(match.group(1), int(match.group(2))): Fraction(1)}, Fraction(0)
        if not term.items or not isinstance(term.items[0], _Atom):
            raise self.error(term, "error: expected an arithmetic term")
        head, args = term.items[0].text, [self.linear(a) for a in term.items[1:]]
        if head == "+" and args:
            return _sum(args, [1] * len(args))
        if head == "-" and args:
            return _sum(args, [-1] if len(args) == 1 else [1] + [-1] * (len(args) - 1))
        if head == "*" and len(args) >= 2:
            coefficient, variable_terms = Fraction(1), []
            for coefficients, constant in args:
                if coefficients:
                    variable_terms.append((coefficients, constant))
                else:
                    coefficient *= constant
            if len(variable_terms) > 1:
                raise self.error(term, "error: a product of variables is not linear")
            if not variable_terms:
                return {}, coefficient
            coefficients, constant = variable_terms[0]
            return {v: coefficient * a for v, a in coefficients.items()}, coefficient * constant
        raise self.error(term, f"error: function {head!r} is not supported (expected +, -, * by a number)")

    def formula(self, term: _Atom | _List) -> list[list[_Constraint]]:
        """The term in disjunctive normal form: a list of conjunctions of constraints."""
        if isinstance(term, _Atom) or not term.items or not isinstance(term.items[0], _Atom):
            raise self.error(term, "error: expected a comparison, and or or")
        head, args = term.items[0].text, term.items[1:]
        if head in ("<=", ">=") and len(args) >= 2:
            terms = [self.linear(a) for a in args]
            pairs = zip(terms, terms[1:], strict=False)
            constraints = [_less_equal(a, b) if head == "<=" else _less_equal(b, a) for a, b in pairs]
            return [constraints]
        if head == "and":
            result: list[list[_Constraint]] = [[]]
            for arg in args:
                result = [left + right for left in result for right in self.formula(arg)]
                if len(result) > MAX_CASES:
                    raise self.error(term, f"error: more than {MAX_CASES} cases in disjunctive normal form")
            return result
        if head == "or" and args:
            result = [conjunction for arg in args for conjunction in self.formula(arg)]
            if len(result) > MAX_CASES:
                raise self.error(term, f"error: more than {MAX_CASES} cases in disjunctive normal form")
            return result
        if head in ("<", ">", "=", "not", "=>", "xor", "distinct", "ite"):
            raise self.error(term, f"error: {head!r} is not supported (the VNN-COMP dialect uses <=, >=, and, or)")
        raise self.error(term, f"error: unknown function {head!r}")

    # --- commands ----------------------------------------------------------------------------

    def read(self) -> list[list[_Constraint]]:
        cases: list[list[_Constraint]] = [[]]
        for command in self.expressions():
            if not command.items or not isinstance(command.items[0], _Atom):
                raise self.error(command, "syntax error: expected a command")
            name = command.items[0].text
            if name == "declare-const":
                if len(command.items) != 3 or not all(isinstance(i, _Atom) for i in command.items[1:]):
                    raise self.error(command, "syntax error: expected (declare-const NAME Real)")
                symbol, sort = command.items[1], command.items[2]
                match = _VARIABLE.match(symbol.text)
                if match is None:
                    raise self.error(symbol, f"error: {symbol.text!r} is neither an input X_i nor an output Y_j")
                if sort.text != "Real":
                    raise self.error(sort, f"error: sort {sort.text!r} is not supported (expected Real)")
                self.declared.add((match.group(1), int(match.group(2))))
            elif name == "assert":
                if len(command.items) != 2:
                    raise self.error(command, "syntax error: expected (assert FORMULA)")
                cases = [left + right for left in cases for right in self.formula(command.items[1])]
                if len(cases) > MAX_CASES:
                    raise self.error(command, f"error: more than {MAX_CASES} cases in disjunctive normal form")
            else:
                raise self.error(command.items[0], f"error: unknown command {name!r}")
        return cases


def _sum(terms: list[_Linear], signs: list[int]) -> _Linear:
    coefficients: dict[tuple[str, int], Fraction] = {}
    constant = Fraction(0)
    for (term_coefficients, term_constant), sign in zip(terms, signs, strict=True):
        for variable, a in term_coefficients.items():
            coefficients[variable] = coefficients.get(variable, Fraction(0)) + sign * a
        constant += sign * term_constant
    return coefficients, constant


def _less_equal(left: _Linear, right: _Linear) -> _Constraint:
    """left <= right as sum_v a_v v <= c."""
    coefficients, constant = _sum([left, right], [1, -1])
    return {v: a for v, a in coefficients.items() if a != 0}, -constant


def _regions(reader: _Reader, cases: list[list[_Constraint]], inputs: int, outputs: int) -> list[Region]:
    boxes: dict[bytes, tuple[np.ndarray, np.ndarray, list[Polytope]]] = {}
    for conjunction in cases:
        lower, upper = np.full(inputs, -np.inf), np.full(inputs, np.inf)
        rows, limits, feasible = [], [], True
        for coefficients, limit in conjunction:
            kinds = {kind for kind, _ in coefficients}
            if not coefficients:
                feasible &= 0 <= limit  # a constant constraint 0 <= limit
            elif kinds == {"X"}:
                if len(coefficients) > 1:
                    names = ", ".join(f"X_{i}" for _, i in sorted(coefficients))
                    raise InputFileError(f"{reader.path}: VNN-LIB error: an input constraint relates {names}; "
                                         "only bounds on single inputs (a box) are supported")
                ((_, index), a), = coefficients.items()
                bound = float(limit / a)
                if a > 0:
                    upper[index] = min(upper[index], bound)
                else:
                    lower[index] = max(lower[index], bound)
            elif kinds == {"Y"}:
                row = np.zeros(outputs)
                for (_, j), a in coefficients.items():
                    row[j] = float(a)
                rows.append(row)
                limits.append(float(limit))
            else:
                raise InputFileError(f"{reader.path}: VNN-LIB error: a constraint mixes inputs and outputs; "
                                     "only input bounds and output constraints are supported")
        if not feasible or (lower > upper).any():
            continue  # this conjunction has no point
        unbounded = np.flatnonzero(~np.isfinite(lower) | ~np.isfinite(upper))
        if len(unbounded):
            raise InputFileError(f"{reader.path}: input X_{unbounded[0]} is not bounded on both sides; a VNN-LIB "
                                 "property needs a finite input box")
        polytope = Polytope(np.array(rows).reshape(-1, outputs), np.array(limits, np.float64))
        key = np.concatenate([lower, upper]).tobytes()
        boxes.setdefault(key, (lower, upper, []))[2].append(polytope)
    return [Region(lower, upper, tuple(polytopes)) for lower, upper, polytopes in boxes.values()]


def read_vnnlib(path: str | Path, inputs: int, outputs: int) -> Property:
    """Read a VNN-LIB file for a network of ``inputs`` inputs and ``outputs`` outputs (flattened)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: VNN-LIB file not found")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read the VNN-LIB file ({exc})") from None
    reader = _Reader(path, text)
    cases = reader.read()
    declared_inputs = 1 + max((i for kind, i in reader.declared if kind == "X"), default=-1)
    declared_outputs = 1 + max((j for kind, j in reader.declared if kind == "Y"), default=-1)
    if (declared_inputs, declared_outputs) != (inputs, outputs):
        raise InputFileError(f"{path}: declares {declared_inputs} inputs X_i and {declared_outputs} outputs Y_j; the "
                             f"model has {inputs} inputs and {outputs} outputs")
    regions = _regions(reader, cases, inputs, outputs)
    if not regions:
        raise InputFileError(f"{path}: VNN-LIB error: no input box is non-empty (the asserted set has no point, "
                             "so the property holds vacuously; check the file)")
    return Property(path=path, inputs=inputs, outputs=outputs, regions=tuple(regions))
