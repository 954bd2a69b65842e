"""One benchmark row of the ensemble paper, end to end: its instance (data, classifiers, points),
every method the tables compare (MILP on each backend, MaxMILP, SMT, the two baselines), and the
machine-readable result a checker outside the pipeline can reload.

Every attack reported here has been re-evaluated in float64 (nnassure.ensemble.check); an attack
that fails that check is recorded as ``rejected`` with the reason, never as a value. A solver
that fails (an error status, a GurobiError, a Z3 exception) is recorded as ``error`` with its
message in ``note``, never as a timeout, and the row's other methods still run; any other
exception is a bug in the pipeline and propagates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnassure.ensemble.attack import AttackResult, attacks_suffice, find_attack
from nnassure.ensemble.baselines import BaselineSolverError, BaselineTimeout, baseline_values
from nnassure.ensemble.benchmarks import Benchmark
from nnassure.ensemble.check import AttackCheckError, check_attack
from nnassure.ensemble.encoding import AttackProblem
from nnassure.ensemble.heuristic import HeuristicSettings
from nnassure.ensemble.instances import ClassifierShape, PairData, digit_pair, sign_pair
from nnassure.ensemble.precheck import Accelerators, RowShortcuts
from nnassure.ensemble.smt import solve_smt
from nnassure.errors import NnassureError

RESULT_FORMAT = "nnassure.ensemble-row/1"


@dataclass(frozen=True)
class SolveSettings:
    backends: tuple[str, ...] = ("highs", "gurobi")
    table_backend: str = "highs"
    smt: bool = True
    time_limit: float = 60.0
    smt_time_limit: float = 60.0
    bounds: str = "lirpa"
    margin: float = 1e-4
    threads: int = 1
    heuristic: bool = True  # the primal heuristic before every MILP (nnassure.ensemble.heuristic)
    heuristic_starts: int = 8
    heuristic_steps: int = 40
    precheck: bool = True  # the CROWN pre-check before every MILP (nnassure.ensemble.precheck)
    seed: int = 0

    @property
    def accelerators(self) -> Accelerators:
        heuristic = None
        if self.heuristic:
            heuristic = HeuristicSettings(self.heuristic_starts, self.heuristic_steps, self.seed)
        return Accelerators(heuristic, self.precheck)


def instance_data(benchmark: Benchmark, signs_per_class: int = 300, seed: int = 0) -> PairData:
    """The binary data set of a row: a digit pair at the row's size, or give way vs priority signs."""
    if benchmark.height != benchmark.width:
        raise NnassureError(f"benchmark {benchmark.id}: only square images are generated, got {benchmark.dim}")
    if benchmark.dataset == "digits":
        assert benchmark.digits is not None
        return digit_pair(benchmark.digits, benchmark.height, seed)
    return sign_pair(benchmark.height, signs_per_class, seed)


def instance_shape(benchmark: Benchmark, ensemble: Any) -> ClassifierShape:
    """The classifier architecture of a row (``ensemble`` is the composed config group)."""
    return ClassifierShape(conv_layers=benchmark.conv_layers, depth=ensemble.depth,
                           width=ensemble.conv_hidden if benchmark.conv_layers else ensemble.width,
                           filters=ensemble.conv_filters, kernel=ensemble.conv_kernel, pool=ensemble.pool)


def instance_size(benchmarks: Sequence[Benchmark], instance: str) -> int:
    """How many classifiers an instance needs: the largest |C| of its rows."""
    sizes = [b.classifiers for b in benchmarks if b.instance == instance]
    if not sizes:
        raise NnassureError(f"no benchmark row uses instance {instance!r}")
    return max(sizes)


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def solver_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the solver failed" rather than "the pipeline has a bug"."""
    errors: list[type[BaseException]] = [BaselineSolverError]
    try:
        import gurobipy

        errors.append(gurobipy.GurobiError)
    except ImportError:  # Gurobi is optional at run time: HiGHS solves every model
        pass
    import z3

    errors.append(z3.Z3Exception)
    return tuple(errors)


def error_record(backend: str, exc: BaseException) -> dict[str, Any]:
    """A method whose solver failed: verdict ``error``, the message in ``note``."""
    return {"verdict": "error", "value": None, "optimal": False, "complete": False, "backend": backend,
            "seconds": None, "relus": {}, "note": f"{type(exc).__name__}: {exc}"}


def _method_record(result: AttackResult) -> dict[str, Any]:
    return {"verdict": result.verdict, "value": result.value, "optimal": result.optimal,
            "complete": result.complete, "backend": result.backend, "seconds": result.seconds,
            "relus": dict(result.relus), "note": result.note, "decided_by": result.decided_by}


def _run_milp(problem: AttackProblem, backend: str, objective: str, settings: SolveSettings,
              starts: Sequence[tuple[np.ndarray, np.ndarray]] = (), shortcuts: RowShortcuts | None = None
              ) -> tuple[dict[str, Any], AttackResult | None]:
    try:
        result = find_attack(problem, backend, settings.time_limit, objective, settings.bounds, settings.margin,
                             settings.threads, starts, shortcuts)
    except AttackCheckError as exc:
        return {"verdict": "rejected", "value": None, "optimal": False, "complete": False, "backend": backend,
                "seconds": None, "relus": {}, "note": str(exc)}, None
    except solver_errors() as exc:
        record = error_record(backend, exc)
        record["requested_backend"] = backend
        return record, None
    record = _method_record(result)
    record["requested_backend"] = backend
    return record, result


def _run_smt(problem: AttackProblem, settings: SolveSettings) -> tuple[dict[str, Any], np.ndarray | None,
                                                                        np.ndarray | None]:
    try:
        answer = solve_smt(problem, settings.smt_time_limit)
    except solver_errors() as exc:
        return error_record("z3", exc), None, None
    record: dict[str, Any] = {"verdict": answer.verdict, "value": None,
                              "optimal": answer.verdict in ("attack", "robust"),
                              "complete": answer.verdict == "robust" and attacks_suffice(problem), "backend": "z3",
                              "seconds": answer.seconds, "note": answer.note}
    if answer.verdict != "attack":
        return record, None, None
    assert answer.deltas is not None and answer.probabilities is not None
    try:
        record["value"] = check_attack(problem.classifiers, problem.points, problem.labels, answer.deltas,
                                       answer.probabilities, problem.eps, problem.alpha)
    except AttackCheckError as exc:
        # Z3 is exact over the rationals; an attack on a decision boundary can still flip in float64.
        record.update(verdict="rejected", optimal=False, note=str(exc))
        return record, None, None
    return record, answer.deltas, answer.probabilities


def run_row(problem: AttackProblem, settings: SolveSettings, progress: Any = None
            ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every method on one row. Returns the per-method records and the attacks (arrays keyed
    ``<method>_deltas`` / ``<method>_probabilities``, methods named as in the records).

    Order: MILP on each backend, the baselines, then MaxMILP started from the best of the attacks
    those found (the paper's MaxMILP augments the same encoding; the start saves HiGHS the search
    for a first incumbent, which Gurobi's heuristics do on their own), then SMT."""
    methods: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}

    def step(name: str) -> None:
        if progress is not None:
            progress.set_postfix_str(name)
            progress.update(1)

    known: list[tuple[np.ndarray, np.ndarray]] = []  # checked attacks, MIP starts for MaxMILP
    # The heuristic's search and the pre-check run once; each method that uses them is charged their time.
    shortcuts = RowShortcuts(problem, settings.margin, settings.accelerators)
    for backend in settings.backends:
        record, result = _run_milp(problem, backend, "feasibility", settings, shortcuts=shortcuts)
        methods[f"milp_{backend}"] = record
        if result is not None and result.deltas is not None:
            arrays[f"milp_{backend}_deltas"] = result.deltas
            arrays[f"milp_{backend}_probabilities"] = result.probabilities
            known.append((result.deltas, result.probabilities))
        step(f"milp {backend}")
    try:
        baselines = baseline_values(problem, settings.table_backend, settings.time_limit, settings.margin,
                                    settings.bounds, settings.threads, shortcuts)
        methods["baselines"] = {"verdict": "done", "uniform": baselines.uniform,
                                "best_deterministic": baselines.best_deterministic,
                                "backend": settings.table_backend, "seconds": baselines.seconds}
        arrays["baselines_deltas"] = baselines.attacks
        n = len(baselines.attacks)
        known.append((baselines.attacks, np.full(n, 1.0 / n)))
        known += [(baselines.attacks[c:c + 1], np.ones(1)) for c in range(n)]
    except BaselineTimeout as exc:
        methods["baselines"] = {"verdict": "timeout", "uniform": None, "best_deterministic": None,
                                "backend": settings.table_backend, "seconds": None, "note": str(exc)}
    except solver_errors() as exc:
        methods["baselines"] = {"verdict": "error", "uniform": None, "best_deterministic": None,
                                "backend": settings.table_backend, "seconds": None,
                                "note": f"{type(exc).__name__}: {exc}"}
    step("baselines")
    record, result = _run_milp(problem, settings.table_backend, "max-sum", settings, known, shortcuts)
    methods["maxmilp"] = record
    if result is not None and result.deltas is not None:
        arrays["maxmilp_deltas"] = result.deltas
        arrays["maxmilp_probabilities"] = result.probabilities
    step("maxmilp")
    if settings.smt:
        record, deltas, probabilities = _run_smt(problem, settings)
        methods["smt"] = record
        if deltas is not None:
            arrays["smt_deltas"], arrays["smt_probabilities"] = deltas, probabilities
        step("smt")
    return methods, arrays


def row_document(benchmark: Benchmark, problem: AttackProblem, point_indices: np.ndarray,
                 classifier_files: Sequence[str | Path], settings: SolveSettings, methods: dict[str, Any],
                 attacks_file: str) -> dict[str, Any]:
    """The row's machine-readable result (JSON); the attacks and points are in ``attacks_file``."""
    fields = asdict(benchmark)
    return {
        "format": RESULT_FORMAT,
        "benchmark": {**fields, "dim": benchmark.dim, "instance": benchmark.instance},
        "classifiers": [{"file": str(path), "sha256": file_digest(path)} for path in classifier_files],
        "points": {"indices": [int(i) for i in point_indices], "labels": [int(v) for v in problem.labels]},
        "attacks_file": attacks_file,
        "attacks_suffice": attacks_suffice(problem),
        "settings": asdict(settings),
        "methods": methods,
    }
