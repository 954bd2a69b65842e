"""The paper's benchmark rows (Appendix A, Tables 4-6) as validated, typed configuration.

``conf/ensemble/benchmarks.yaml`` holds the 38 rows (ID, name, |C|, |A|, |X|, dim, alpha, eps);
the results the paper reports for them are in the report's paper numbers, not here.
:func:`load_benchmarks` checks every field and says which row and key is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nnassure.errors import ConfigError

DIM = re.compile(r"([0-9]+)x([0-9]+)")


@dataclass(frozen=True)
class Benchmark:
    id: int
    name: str
    classifiers: int  # |C|
    attacks: int  # |A|
    points: int  # |X|
    height: int
    width: int
    alpha: float
    eps: float  # L1 bound per point
    dataset: str  # digits | signs
    digits: tuple[int, int] | None
    conv_layers: int

    @property
    def dim(self) -> str:
        return f"{self.height}x{self.width}"

    @property
    def instance(self) -> str:
        """The ensemble this row attacks: rows with the same name and size share classifiers
        (a row with |C| classifiers uses the first |C|) and, for the same |X|, data points."""
        return f"{self.name}-{self.dim}"


# A row's keys: the paper's columns, and fields derived from its name that the YAML spells out
# for the reader (sign_classes, classifier_kind and optimizer are descriptive: nothing reads them).
ROW_KEYS = frozenset({"id", "name", "classifiers", "attacks", "points", "dim", "alpha", "eps", "dataset", "digits",
                      "sign_classes", "conv_layers", "classifier_kind", "optimizer"})


def _row(entry: Any, index: int, source: Path | str) -> Benchmark:
    where = f"{source}: benchmark #{index + 1}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(entry).__name__}")
    unknown = sorted(set(entry) - ROW_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}: expected keys {', '.join(sorted(ROW_KEYS))}")
    try:
        match = DIM.fullmatch(str(entry["dim"]))
        if match is None:
            raise ValueError(f"dim {entry['dim']!r} is not HxW")
        digits = entry.get("digits")
        row = Benchmark(
            id=int(entry["id"]), name=str(entry["name"]), classifiers=int(entry["classifiers"]),
            attacks=int(entry["attacks"]), points=int(entry["points"]), height=int(match[1]), width=int(match[2]),
            alpha=float(entry["alpha"]), eps=float(entry["eps"]), dataset=str(entry["dataset"]),
            digits=tuple(int(d) for d in digits) if digits is not None else None,
            conv_layers=int(entry.get("conv_layers", 0)),
        )
    except KeyError as exc:
        raise ConfigError(f"{where}: missing key {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    problems = []
    if min(row.classifiers, row.attacks, row.points) < 1:
        problems.append("classifiers, attacks and points must be >= 1")
    if not 0.0 <= row.alpha <= 1.0:
        problems.append(f"alpha {row.alpha} is not in [0, 1]")
    if row.eps < 0:
        problems.append(f"eps {row.eps} is negative")
    if row.dataset not in ("digits", "signs"):
        problems.append(f"dataset {row.dataset!r} is not digits or signs")
    if row.dataset == "digits" and (row.digits is None or len(row.digits) != 2 or not all(0 <= d <= 9
                                                                                         for d in row.digits)):
        problems.append(f"digits {row.digits} is not a pair of digits")
    if row.conv_layers < 0:
        problems.append("conv_layers must be >= 0")
    if problems:
        raise ConfigError(f"{where} (id {row.id}): " + "; ".join(problems))
    return row


def load_benchmarks(path: str | Path) -> list[Benchmark]:
    """The benchmark rows of ``path``, checked; ids must be unique."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the benchmark file ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("benchmarks"), list):
        raise ConfigError(f"{path}: expected a mapping with a list under 'benchmarks'")
    return parse_benchmarks(document["benchmarks"], path)


def parse_benchmarks(entries: Any, source: Path | str = "ensemble.benchmarks") -> list[Benchmark]:
    """Validated rows from a list of mappings; ids must be unique and the list non-empty."""
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: expected a non-empty list of benchmark rows")
    rows = [_row(entry, i, source) for i, entry in enumerate(entries)]
    ids = [r.id for r in rows]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ConfigError(f"{source}: duplicate benchmark ids {duplicated}")
    return rows


def selected_benchmarks(ensemble: Any) -> list[Benchmark]:
    """The rows of a composed ``ensemble`` config that the experiment runs (``ensemble.rows``, or all)."""
    from omegaconf import OmegaConf

    rows = parse_benchmarks(OmegaConf.to_container(ensemble.benchmarks, resolve=True))
    chosen = set(ensemble.rows)
    return [r for r in rows if not chosen or r.id in chosen]


def row_benchmark(benchmarks: list[Benchmark], row: int) -> Benchmark:
    """The experiment's row ``row``; a row outside the experiment is a :class:`ConfigError`."""
    by_id = {b.id: b for b in benchmarks}
    if row not in by_id:
        raise ConfigError(f"ensemble.row={row} is not among the experiment's rows {sorted(by_id)}")
    return by_id[row]


def instance_benchmark(benchmarks: list[Benchmark], instance: str) -> Benchmark:
    """The first of the experiment's rows that attack ``instance``: the rows of one instance share
    its data set and classifier architecture, so any of them describes both. An instance no row
    of the experiment uses is a :class:`ConfigError`."""
    for benchmark in benchmarks:
        if benchmark.instance == instance:
            return benchmark
    raise ConfigError(f"ensemble.instance={instance}: no row of this experiment (ensemble.rows) uses it")
