"""nnassure.io.write_parquet: column descriptions in the Parquet schema."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from nnassure.io import write_parquet


def test_descriptions_are_read_back_and_the_data_is_unchanged(tmp_path: Path) -> None:
    frame = pd.DataFrame({"eps": [0.01, 0.025], "verified": [True, False], "method": ["crown", "crown"]})
    described, plain = tmp_path / "described.parquet", tmp_path / "plain.parquet"
    write_parquet(frame, described, {"eps": "radius of the ball", "verified": "per-eps verdict"})
    write_parquet(frame, plain)
    schema = pq.read_schema(described)
    assert schema.field("eps").metadata == {b"description": b"radius of the ball"}
    assert schema.field("verified").metadata == {b"description": b"per-eps verdict"}
    assert schema.field("method").metadata is None
    assert pq.read_schema(plain).field("eps").metadata is None
    pd.testing.assert_frame_equal(pd.read_parquet(described), pd.read_parquet(plain))
    pd.testing.assert_frame_equal(pd.read_parquet(described), frame)


def test_a_description_of_a_missing_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="radius"):
        write_parquet(pd.DataFrame({"eps": [0.1]}), tmp_path / "x.parquet", {"radius": "gone"})
    assert not (tmp_path / "x.parquet").exists()
