"""Which model an ``assess`` config section assesses, on which data, against which properties.

Free of torch: the Snakefile resolves the assessment at parse time (its files are rule inputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnassure.errors import InputFileError


@dataclass(frozen=True)
class Assessment:
    """Which model is assessed, on which data, against which properties (stem -> file)."""

    name: str
    model: Path
    data: Path | None
    properties: dict[str, Path]


def property_files(entries: Sequence[str]) -> dict[str, Path]:
    """The VNN-LIB files of ``assess.properties`` (files, or directories of ``*.vnnlib``) by stem."""
    found: dict[str, Path] = {}
    for entry in entries:
        path = Path(entry)
        if path.is_dir():
            files = sorted(path.glob("*.vnnlib"))
            if not files:
                raise InputFileError(f"{path}: a directory of assess.properties with no *.vnnlib file")
        elif path.is_file():
            files = [path]
        else:
            raise InputFileError(f"{path}: VNN-LIB file or directory of assess.properties not found")
        for file in files:
            stem = file.name.removesuffix(".vnnlib")
            if stem in found and found[stem].resolve() != file.resolve():
                raise InputFileError(f"{file}: two properties are named {stem!r} ({found[stem]}); "
                                     "property files need distinct names")
            found[stem] = file.resolve()
    return found


def resolve_assessment(assess: Any) -> Assessment:
    """The assessment an ``assess`` config section describes; its model must be set. A stage sees
    only the keys it reads (nnassure.stage_keys): one that does not read the data file or the
    property list gets None and no properties."""
    if assess.model is None:
        raise InputFileError("nothing to assess: set assess.model=<an .onnx file or a native model> and "
                             "assess.data=<.npz or .parquet>")
    model = Path(str(assess.model)).resolve()
    name = str(assess.name) if assess.name else model.name.split(".")[0]
    data = Path(str(assess.data)).resolve() if "data" in assess and assess.data is not None else None
    entries = [str(p) for p in assess.properties] if "properties" in assess else []
    return Assessment(name=name, model=model, data=data, properties=property_files(entries))
