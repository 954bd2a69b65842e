"""The numbers the papers print, loaded from ``nnassure/report/paper/<paper>.yaml``.

They serve only the side-by-side ``.compare.md`` files; nothing in our tables is taken from here.
Every paper uses the same format, so one loader with one schema check reads them all: a
``paper`` citation and ``tables``, each with

- ``source``: which table (and section) of the paper it transcribes,
- ``columns``: column names, ``key``: the columns that identify a row (unique per table),
- ``values``: ``number`` or ``string``, the type of every non-key cell (``null`` = empty cell;
  the ensemble paper's cells stay strings as printed, e.g. "0.50" vs "0.5", "1.00*", "-TO-"),
- ``rows``: one list per row, in column order.

YAML rather than Python: the files are transcriptions to be read against the paper, not code,
and a schema check on load catches a shifted or mistyped cell the way a dict literal would not.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import pandas as pd
import yaml

PAPERS = ("verified-classification-lirpa", "proven-probabilistic-certificates", "ensemble-robustness-milp",
          "video-robustness-optical-flow", "risk-assessment-kri-tensor")
VALUE_TYPES = {"number": (int, float), "string": (str,)}
TABLE_KEYS = {"source", "key", "values", "columns", "rows"}


class PaperDataError(ValueError):
    """A paper-numbers file breaks the schema: a bug in the package data, not a user error."""


@dataclass(frozen=True)
class PaperTable:
    name: str
    source: str  # e.g. "Table 1 (Sec. 2.1): ..."
    key: tuple[str, ...]
    frame: pd.DataFrame  # one row per printed row, columns as declared


@dataclass(frozen=True)
class PaperNumbers:
    paper: str  # file stem, e.g. "verified-classification-lirpa"
    citation: str
    tables: dict[str, PaperTable]

    def table(self, name: str) -> pd.DataFrame:
        if name not in self.tables:
            raise KeyError(f"{self.paper}: no table {name!r} (have {', '.join(self.tables)})")
        return self.tables[name].frame.copy()


def _table(name: str, entry: Any, where: str) -> PaperTable:
    where = f"{where}: table {name}"
    if not isinstance(entry, dict) or set(entry) != TABLE_KEYS:
        got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise PaperDataError(f"{where}: expected exactly the keys {sorted(TABLE_KEYS)}, got {got}")
    columns, key, kind = entry["columns"], entry["key"], entry["values"]
    if not isinstance(entry["source"], str) or not entry["source"]:
        raise PaperDataError(f"{where}: source must be a non-empty string")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns) or len(set(columns)) != len(
            columns):
        raise PaperDataError(f"{where}: columns must be a list of distinct names")
    if not isinstance(key, list) or not key or not set(key) <= set(columns):
        raise PaperDataError(f"{where}: key {key} must be a non-empty list of columns")
    if kind not in VALUE_TYPES:
        raise PaperDataError(f"{where}: values must be one of {sorted(VALUE_TYPES)}, got {kind!r}")
    rows = entry["rows"]
    if not isinstance(rows, list) or not rows:
        raise PaperDataError(f"{where}: rows must be a non-empty list")
    allowed = VALUE_TYPES[kind]
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise PaperDataError(f"{where}, row {index + 1}: expected {len(columns)} cells {columns}, got {row}")
        for column, cell in zip(columns, row, strict=True):
            if column in key:
                if not (cell is None or isinstance(cell, (str, int, float))):
                    raise PaperDataError(f"{where}, row {index + 1}: key {column} = {cell!r} is not a scalar")
            # bool is an int in Python; a YAML yes/no in a number column is a transcription slip
            elif cell is not None and (isinstance(cell, bool) or not isinstance(cell, allowed)):
                raise PaperDataError(f"{where}, row {index + 1}: {column} = {cell!r} is not a {kind}")
    frame = pd.DataFrame(rows, columns=columns)
    duplicated = frame[frame.duplicated(subset=key, keep=False)]
    if len(duplicated):
        raise PaperDataError(f"{where}: rows with the same key {key}: {duplicated[key].to_dict('records')}")
    if kind == "string":
        frame = frame.astype({c: object for c in columns if c not in key})
    return PaperTable(name, entry["source"], tuple(key), frame)


def parse_paper_numbers(document: Any, paper: str) -> PaperNumbers:
    """Check ``document`` (a parsed YAML file) against the schema above."""
    if not isinstance(document, dict) or set(document) != {"paper", "tables"}:
        raise PaperDataError(f"{paper}: expected a mapping with exactly the keys 'paper' and 'tables'")
    if not isinstance(document["paper"], str) or not isinstance(document["tables"], dict) or not document["tables"]:
        raise PaperDataError(f"{paper}: 'paper' must be a citation string and 'tables' a non-empty mapping")
    tables = {str(name): _table(str(name), entry, paper) for name, entry in document["tables"].items()}
    return PaperNumbers(paper, document["paper"], tables)


@cache
def paper_numbers(paper: str) -> PaperNumbers:
    """The checked numbers of one paper (``PAPERS``), read from the package data once."""
    if paper not in PAPERS:
        raise KeyError(f"unknown paper {paper!r}; expected one of {', '.join(PAPERS)}")
    text = resources.files("nnassure.report").joinpath("paper", f"{paper}.yaml").read_text()
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PaperDataError(f"{paper}: not valid YAML ({exc})") from None
    return parse_paper_numbers(document, paper)


def paper_table(paper: str, table: str) -> pd.DataFrame:
    """One table of one paper as a DataFrame (a copy: callers may index or filter it)."""
    return paper_numbers(paper).table(table)
