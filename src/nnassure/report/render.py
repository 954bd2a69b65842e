"""Tables are CSV at the source; Markdown and LaTeX are rendered from the same frame."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd

from nnassure.io import atomic_path, write_csv, write_text

matplotlib.use("Agg")


def write_table(long: pd.DataFrame, display: pd.DataFrame, directory: Path, table_id: str) -> list[Path]:
    """Write ``<id>.csv`` (tidy source) and ``<id>.md`` / ``<id>.tex`` (the display layout).

    The CSV keeps six significant digits, not a fixed number of decimals: a fixed "%.4f" printed
    a lower bound of 1.5e-05 (the video family's A*) or an eps of 1e-4 as 0."""
    directory.mkdir(parents=True, exist_ok=True)
    csv_path, md_path, tex_path = (directory / f"{table_id}.{ext}" for ext in ("csv", "md", "tex"))
    write_csv(long, csv_path, float_format="%.6g")
    display = display.copy()
    display.columns = [", ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in display.columns]
    display.index = pd.Index([" / ".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in display.index],
                             name=display.index.name)
    shown = display.map(lambda v: "" if pd.isna(v) else (f"{v:.4f}" if isinstance(v, float) else str(v)))
    write_text(f"# {table_id}\n\n" + shown.to_markdown() + "\n", md_path)
    write_text(shown.to_latex(escape=True), tex_path)
    return [csv_path, md_path, tex_path]


def save_figure(figure: object, directory: Path, figure_id: str) -> list[Path]:
    """PNG and PDF, without timestamps so reruns give the same files."""
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext, metadata in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None})):
        path = directory / f"{figure_id}.{ext}"
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=ext, dpi=150, bbox_inches="tight", metadata=metadata)
        paths.append(path)
    plt.close(figure)
    return paths
