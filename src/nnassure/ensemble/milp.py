"""One mixed-integer linear program, two solvers: Gurobi (gurobipy) and HiGHS (highspy).

An encoding is written once against :class:`LinearModel` (variables with bounds and
integrality, linear rows lo <= a x <= hi, a linear objective) and solved by either backend. The
pip build of Gurobi carries a size-limited licence (2000 variables, 2000 linear constraints);
a larger model fails with GurobiError 10010, and :func:`solve` then falls back to HiGHS and says
so in the returned :class:`Solution` (and in the log). Written by hand because neither solver's
own modelling layer runs on the other, and the pipeline must run on the open-source one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from nnassure.ensemble.backends import BACKENDS

log = logging.getLogger(__name__)

GUROBI_SIZE_LIMIT_ERROR = 10010
STATUSES = ("optimal", "feasible", "infeasible", "timeout", "error")


@dataclass
class LinearModel:
    """Variables x with lb <= x <= ub (some integer), rows lo <= A x <= hi, objective c x (+ sense)."""

    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    integer: list[bool] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    rows: list[tuple[np.ndarray, np.ndarray, float, float]] = field(default_factory=list)
    objective: dict[int, float] = field(default_factory=dict)
    maximize: bool = False

    def add_variables(self, count: int, lower: float = 0.0, upper: float = math.inf, integer: bool = False,
                      name: str = "x") -> np.ndarray:
        """``count`` new variables; returns their indices."""
        start = len(self.lower)
        self.lower += [lower] * count
        self.upper += [upper] * count
        self.integer += [integer] * count
        self.names += [f"{name}[{i}]" for i in range(count)]
        return np.arange(start, start + count)

    def add_binaries(self, count: int, name: str = "b") -> np.ndarray:
        return self.add_variables(count, 0.0, 1.0, True, name)

    def add_row(self, indices: np.ndarray | list[int], coefficients: np.ndarray | list[float],
                lower: float = -math.inf, upper: float = math.inf) -> None:
        """lower <= sum_k coefficients[k] * x[indices[k]] <= upper (repeated indices are summed)."""
        indices = np.asarray(indices, dtype=np.int64)
        coefficients = np.asarray(coefficients, dtype=np.float64)
        if indices.shape != coefficients.shape:
            raise ValueError("a row needs as many coefficients as indices")
        self.rows.append((indices, coefficients, float(lower), float(upper)))

    @property
    def n_variables(self) -> int:
        return len(self.lower)

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    @property
    def n_integer(self) -> int:
        return int(sum(self.integer))

    def matrix(self) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
        """The constraint matrix (CSR, duplicates summed) and the row bounds."""
        if not self.rows:
            return sparse.csr_matrix((0, self.n_variables)), np.zeros(0), np.zeros(0)
        row_ids = np.concatenate([np.full(len(r[0]), k) for k, r in enumerate(self.rows)])
        cols = np.concatenate([r[0] for r in self.rows])
        values = np.concatenate([r[1] for r in self.rows])
        a = sparse.csr_matrix((values, (row_ids, cols)), shape=(self.n_rows, self.n_variables))
        a.sum_duplicates()
        return a, np.array([r[2] for r in self.rows]), np.array([r[3] for r in self.rows])

    def objective_vector(self) -> np.ndarray:
        c = np.zeros(self.n_variables)
        for index, value in self.objective.items():
            c[index] += value
        return c


@dataclass
class Solution:
    """A solver's answer: ``values`` is None unless a feasible point was found."""

    status: str  # one of STATUSES
    backend: str
    values: np.ndarray | None
    objective: float | None
    seconds: float
    note: str = ""

    @property
    def feasible(self) -> bool:
        return self.values is not None


def _solve_highs(model: LinearModel, time_limit: float, threads: int, start: np.ndarray | None = None) -> Solution:
    import time

    import highspy

    a, row_lo, row_hi = model.matrix()
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("threads", int(threads))
    h.setOptionValue("random_seed", 0)
    inf = highspy.kHighsInf
    lower = np.clip(np.array(model.lower, dtype=np.float64), -inf, inf)
    upper = np.clip(np.array(model.upper, dtype=np.float64), -inf, inf)
    h.addVars(model.n_variables, lower, upper)
    integer = np.flatnonzero(model.integer)
    if len(integer):
        h.changeColsIntegrality(len(integer), integer.astype(np.int32),
                                np.full(len(integer), highspy.HighsVarType.kInteger))
    cost = model.objective_vector()
    h.changeColsCost(model.n_variables, np.arange(model.n_variables, dtype=np.int32), cost)
    h.changeObjectiveSense(highspy.ObjSense.kMaximize if model.maximize else highspy.ObjSense.kMinimize)
    if model.n_rows:
        h.addRows(model.n_rows, np.clip(row_lo, -inf, inf), np.clip(row_hi, -inf, inf), a.nnz,
                  a.indptr[:-1].astype(np.int32), a.indices.astype(np.int32), a.data)
    if start is not None:
        # a MIP start: HiGHS checks it and keeps it as the first incumbent if it is feasible
        h.setSolution(model.n_variables, np.arange(model.n_variables, dtype=np.int32), np.asarray(start, np.float64))
    started = time.perf_counter()
    h.run()
    seconds = time.perf_counter() - started
    status = h.getModelStatus()
    has_point = h.getInfo().primal_solution_status == 2  # kSolutionStatusFeasible
    values = np.array(h.getSolution().col_value) if has_point else None
    objective = h.getInfo().objective_function_value if has_point else None
    if status == highspy.HighsModelStatus.kOptimal:
        name = "optimal"
    elif status == highspy.HighsModelStatus.kInfeasible:
        name = "infeasible"
    elif status == highspy.HighsModelStatus.kTimeLimit:
        name = "feasible" if has_point else "timeout"
    else:
        name = "feasible" if has_point else "error"
    return Solution(name, "highs", values, objective, seconds, note=h.modelStatusToString(status))


def _solve_gurobi(model: LinearModel, time_limit: float, threads: int, start: np.ndarray | None = None) -> Solution:
    import gurobipy as gp
    from gurobipy import GRB

    a, row_lo, row_hi = model.matrix()
    env = gp.Env(empty=True)
    env.setParam("OutputFlag", 0)
    env.start()
    try:
        m = gp.Model(env=env)
        m.Params.TimeLimit = float(time_limit)
        m.Params.Threads = int(threads)
        m.Params.Seed = 0
        vtype = np.where(np.array(model.integer, dtype=bool), GRB.INTEGER, GRB.CONTINUOUS)
        x = m.addMVar(model.n_variables, lb=np.array(model.lower), ub=np.array(model.upper), vtype=vtype)
        finite_hi, finite_lo = np.isfinite(row_hi), np.isfinite(row_lo)
        equal = finite_hi & finite_lo & (row_hi == row_lo)
        if (finite_hi & ~equal).any():
            m.addMConstr(a[finite_hi & ~equal], x, "<", row_hi[finite_hi & ~equal])
        if (finite_lo & ~equal).any():
            m.addMConstr(a[finite_lo & ~equal], x, ">", row_lo[finite_lo & ~equal])
        if equal.any():
            m.addMConstr(a[equal], x, "=", row_hi[equal])
        m.setObjective(model.objective_vector() @ x, GRB.MAXIMIZE if model.maximize else GRB.MINIMIZE)
        if start is not None:
            x.Start = np.asarray(start, np.float64)
        m.optimize()
        if m.Status == GRB.INF_OR_UNBD:
            # Presolve's dual reductions cannot tell the two apart; solve again without them.
            m.Params.DualReductions = 0
            m.optimize()
        has_point = m.SolCount > 0
        values = np.array(x.X) if has_point else None
        objective = float(m.ObjVal) if has_point else None
        if m.Status == GRB.OPTIMAL:
            name = "optimal"
        elif m.Status == GRB.INFEASIBLE:
            name = "infeasible"
        elif m.Status == GRB.TIME_LIMIT:
            name = "feasible" if has_point else "timeout"
        else:
            name = "feasible" if has_point else "error"
        return Solution(name, "gurobi", values, objective, float(m.Runtime), note=f"gurobi status {m.Status}")
    finally:
        env.dispose()


def solve(model: LinearModel, backend: str = "highs", time_limit: float = 60.0, threads: int = 1,
          start: np.ndarray | None = None) -> Solution:
    """Solve with ``backend``; a model beyond Gurobi's pip licence is solved by HiGHS instead.
    ``start`` is an optional full assignment handed to the solver as a MIP start."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown MILP backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend == "highs":
        return _solve_highs(model, time_limit, threads, start)
    import gurobipy as gp

    try:
        return _solve_gurobi(model, time_limit, threads, start)
    except gp.GurobiError as exc:
        if exc.errno != GUROBI_SIZE_LIMIT_ERROR:
            raise
        reason = (f"Gurobi's size-limited licence refused the model ({model.n_variables} variables, "
                  f"{model.n_rows} constraints; GurobiError {exc.errno}); solved with HiGHS instead")
        log.warning(reason)
        solution = _solve_highs(model, time_limit, threads, start)
        solution.note = reason + "; " + solution.note
        return solution
