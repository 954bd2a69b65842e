"""Findings as computed records, rendered the same way in every ``<table>.compare.md``.

A *finding* is a claim of the paper that our data could contradict; a *sanity check* is true by
construction of the method or of our code (e.g. verified accuracy cannot exceed accuracy), so
when it fails it flags a bug rather than a disagreement with the paper. Both are computed, and
both can fail. ``holds`` is None when our results cannot decide the claim (e.g. "raising the cost
removes safety-critical errors" when there was none to remove): that is "not observable", never
"holds".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import pandas as pd

Kind = Literal["finding", "sanity check"]
KINDS: tuple[str, ...] = ("finding", "sanity check")
VERDICTS = {True: "holds", False: "does not hold", None: "not observable"}


@dataclass(frozen=True)
class Finding:
    claim: str  # the claim as a sentence, with the paper's section where it comes from
    holds: bool | None  # None: our results cannot decide it
    evidence: str  # the numbers the verdict was computed from
    kind: Kind = "finding"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.holds is not None and not isinstance(self.holds, bool):
            # numpy booleans would render fine but compare oddly (np.True_ is not True)
            object.__setattr__(self, "holds", bool(self.holds))

    @property
    def verdict(self) -> str:
        return VERDICTS[self.holds]


def sanity(claim: str, holds: bool | None, evidence: str) -> Finding:
    return Finding(claim, holds, evidence, "sanity check")


def findings_frame(findings: Iterable[Finding]) -> pd.DataFrame:
    rows = [{"kind": f.kind, "claim": f.claim, "verdict": f.verdict, "evidence": f.evidence} for f in findings]
    return pd.DataFrame(rows, columns=["kind", "claim", "verdict", "evidence"])


def _cell(text: str) -> str:
    # a "|" inside a cell (|A|, |C|) would end the cell in a Markdown table
    return str(text).replace("|", "\\|").replace("\n", " ")


def findings_markdown(findings: Iterable[Finding]) -> str:
    """The "## Findings" section: one table row per finding or sanity check."""
    frame = findings_frame(findings)
    if frame.empty:
        return "## Findings\n\nNothing to decide: the table has no rows.\n"
    return "## Findings\n\n" + frame.map(_cell).to_markdown(index=False) + "\n"
