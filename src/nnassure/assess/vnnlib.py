"""VNN-LIB properties in the dialect of the VNN-COMP benchmarks, read into input boxes and
output polytopes.

A VNN-LIB file declares the network's inputs ``X_i`` and outputs ``Y_j`` (indices in the C-order
flattening of the input and output tensors) and asserts the *negation* of the property: the set
of inputs and outputs a counterexample must lie in. In the VNN-COMP dialect every assertion is
a bound on an input, a linear inequality over outputs, or an ``or`` of ``and``s of these, which
together read as a disjunction of regions, each an input box with a disjunction of output
polytopes ``A y <= b``. The property holds iff no input of any box is mapped into one of its
box's polytopes (VNN-COMP's ``unsat``); it is violated iff some is (``sat``).

Parsing is done by the ``vnnlib`` package's VNN-COMP reader (``vnnlib.compat``, version 0.0.1:
the 1.x releases read only VNN-LIB 2.0 and refuse this dialect at its first ``declare-const``).
That reader reports a syntax error without a position, so a scan of the parentheses here gives
the line and column of an unbalanced one first, and its other errors are wrapped with the file's
name. The boxes it returns are checked here: every input bounded on both sides, lower <= upper,
finite numbers, and as many inputs and outputs as the model has.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnassure.errors import InputFileError


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


def _check_parentheses(text: str, path: Path) -> None:
    depth, line, column = 0, 1, 0
    opened: list[tuple[int, int]] = []
    in_comment = False
    for char in text:
        column += 1
        if char == "\n":
            line, column, in_comment = line + 1, 0, False
            continue
        if in_comment:
            continue
        if char == ";":
            in_comment = True
        elif char == "(":
            depth += 1
            opened.append((line, column))
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise InputFileError(f"{path}:{line}:{column}: VNN-LIB syntax error: ')' without a matching '('")
            opened.pop()
    if depth > 0:
        at_line, at_column = opened[-1]
        raise InputFileError(f"{path}:{at_line}:{at_column}: VNN-LIB syntax error: '(' is never closed")


def _declared_sizes(text: str) -> tuple[int, int]:
    import re

    inputs = [int(m) for m in re.findall(r"\(\s*declare-const\s+X_(\d+)\s", text)]
    outputs = [int(m) for m in re.findall(r"\(\s*declare-const\s+Y_(\d+)\s", text)]
    return (max(inputs) + 1 if inputs else 0), (max(outputs) + 1 if outputs else 0)


def read_vnnlib(path: str | Path, inputs: int, outputs: int) -> Property:
    """Read a VNN-LIB file for a network of ``inputs`` inputs and ``outputs`` outputs (flattened)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: VNN-LIB file not found")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read the VNN-LIB file ({exc})") from None
    _check_parentheses(text, path)
    declared_inputs, declared_outputs = _declared_sizes(text)
    if (declared_inputs, declared_outputs) != (inputs, outputs):
        raise InputFileError(f"{path}: declares {declared_inputs} inputs X_i and {declared_outputs} outputs Y_j; the "
                             f"model has {inputs} inputs and {outputs} outputs")
    from vnnlib.compat import read_vnnlib_simple
    from vnnlib.errors import VnnLibError

    try:
        with warnings.catch_warnings():
            # "literal negation does not strictly follow SMT-LIB": -0.5 for (- 0.5), the dialect's norm
            warnings.simplefilter("ignore", UserWarning)
            cases = read_vnnlib_simple(str(path), inputs, outputs)
    except (VnnLibError, NotImplementedError, ValueError, KeyError, AssertionError, RuntimeError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise InputFileError(f"{path}: VNN-LIB error: {message}") from None
    regions = []
    for box, polytopes in cases:
        bounds = np.asarray(box, np.float64).reshape(inputs, 2)
        lower, upper = bounds[:, 0].copy(), bounds[:, 1].copy()
        unbounded = np.flatnonzero(~np.isfinite(lower) | ~np.isfinite(upper))
        if len(unbounded):
            raise InputFileError(f"{path}: input X_{unbounded[0]} is not bounded on both sides; a VNN-LIB property "
                                 "needs a finite input box")
        empty = np.flatnonzero(lower > upper)
        if len(empty):
            i = empty[0]
            raise InputFileError(f"{path}: input X_{i} has lower bound {lower[i]:g} above its upper bound {upper[i]:g}")
        parsed = []
        for A, b in polytopes:
            A = np.asarray(A, np.float64).reshape(-1, outputs) if np.size(A) else np.zeros((0, outputs))
            b = np.asarray(b, np.float64).reshape(-1)
            if not (np.isfinite(A).all() and np.isfinite(b).all()):
                raise InputFileError(f"{path}: an output constraint has a non-finite coefficient")
            parsed.append(Polytope(A, b))
        regions.append(Region(lower, upper, tuple(parsed)))
    if not regions:
        raise InputFileError(f"{path}: no input box")
    return Property(path=path, inputs=inputs, outputs=outputs, regions=tuple(regions))
