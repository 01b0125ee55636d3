"""Every dataset of an exported archive reads by glob in DuckDB, pandas and polars with exactly
its schema's columns: no directory adds a Hive column that repeats one the files hold."""

from __future__ import annotations

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gladly_archive.schemas import DATASETS, REFILL_WATCH, TOMBSTONES
from tests._full_archive import FullArchive, build_full_archive

pytestmark = pytest.mark.integration

EVERY_DATASET: dict[str, pa.Schema] = {
    **DATASETS,
    "tombstones": TOMBSTONES,
    "refill_watch": REFILL_WATCH,
}


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> FullArchive:
    return build_full_archive(tmp_path_factory.mktemp("full") / "archive")


def test_the_archive_holds_every_dataset_and_no_hive_directory(full: FullArchive) -> None:
    for name in EVERY_DATASET:
        assert list((full.root / name).rglob("*.parquet")), f"{name} has no file"
    named = [p for p in full.root.rglob("*") if p.is_dir() and "=" in p.name]
    assert named == []


@pytest.mark.parametrize("dataset", sorted(EVERY_DATASET))
def test_duckdb_pandas_and_polars_read_exactly_the_schema_columns(
    full: FullArchive, dataset: str
) -> None:
    expected = EVERY_DATASET[dataset].names
    directory = full.root / dataset
    glob = str(directory / "**" / "*.parquet")
    rows = sum(pq.read_metadata(p).num_rows for p in directory.rglob("*.parquet"))
    assert rows > 0

    duck = duckdb.execute("SELECT * FROM read_parquet(?)", [glob])  # Hive detection: default
    assert [d[0] for d in duck.description] == expected
    assert len(duck.fetchall()) == rows

    frame = pd.read_parquet(directory)  # pyarrow's partition discovery: Hive, by default
    assert list(frame.columns) == expected
    assert len(frame) == rows

    eager = pl.read_parquet(glob)
    assert eager.columns == expected
    assert eager.height == rows
    lazy = pl.scan_parquet(glob).collect()
    assert lazy.columns == expected
    assert lazy.height == rows
    # polars reads a directory with Hive discovery on: still nothing to discover.
    assert pl.scan_parquet(directory).collect_schema().names() == expected
