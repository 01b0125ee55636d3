"""`gladly-pipeline sql`: one read-only query over the archive's views, as a table that fits the
terminal, CSV or Parquet; statements that write are refused, errors are one line."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import Result
from typer.testing import CliRunner

from gladly_pipeline.cli import app
from tests._console import says
from tests._full_archive import FullArchive, build_full_archive

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> FullArchive:
    return build_full_archive(tmp_path_factory.mktemp("sql") / "archive")


def _sql(full: FullArchive, query: str, *args: str, columns: int = 40) -> Result:
    return runner.invoke(
        app, ["sql", "--root", str(full.root), query, *args], env={"COLUMNS": str(columns)}
    )


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_a_table_fits_a_narrow_terminal_and_truncates_cells(full: FullArchive) -> None:
    result = _sql(full, "SELECT count(*) AS customers FROM customers_latest")
    assert result.exit_code == 0, result.output
    assert str(len(full.live_customers)) in result.stdout
    wide = _sql(full, "SELECT conversation_id, transcript FROM transcripts LIMIT 3")
    assert wide.exit_code == 0, wide.output
    lines = wide.stdout.splitlines()
    assert len(lines) >= 7  # header, rules and three rows
    assert all(len(line) <= 40 for line in lines)
    assert "…" in wide.stdout
    assert says(wide.stderr, "3 row(s)")


def test_the_table_shows_at_most_max_rows_and_says_so(full: FullArchive) -> None:
    result = _sql(full, "SELECT item_id FROM items", "--max-rows", "2", columns=120)
    assert result.exit_code == 0, result.output
    assert says(result.stderr, "2 row(s) (more not shown")


def test_csv_to_stdout_holds_every_row_and_nested_values_as_json(full: FullArchive) -> None:
    query = "SELECT customer_id, emails FROM customers_latest ORDER BY customer_id"
    result = _sql(full, query, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["customer_id", "emails"]
    assert [r[0] for r in rows[1:]] == sorted(full.live_customers)
    assert all(isinstance(json.loads(r[1]), list) for r in rows[1:])


def test_csv_and_parquet_files_are_written_whole(full: FullArchive, tmp_path: Path) -> None:
    query = "SELECT customer_id, emails, archived_at FROM customers_latest ORDER BY customer_id"
    target = tmp_path / "out.csv"
    result = _sql(full, query, "--format", "csv", "--out", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert len(target.read_text().splitlines()) == len(full.live_customers) + 1
    parquet = tmp_path / "out.parquet"
    result = _sql(full, query, "--format", "parquet", "--out", str(parquet))
    assert result.exit_code == 0, result.output
    table = pq.read_table(parquet)
    assert table.column("customer_id").to_pylist() == sorted(full.live_customers)
    assert table.schema.field("emails").type == pa.list_(pa.string())
    assert pa.types.is_timestamp(table.schema.field("archived_at").type)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.parquet"]


def test_parquet_needs_a_file(full: FullArchive) -> None:
    result = _sql(full, "SELECT 1", "--format", "parquet")
    assert result.exit_code == 2
    assert says(result.stderr, "Parquet output needs a file: --out FILE")


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("COPY (SELECT * FROM customers) TO '{root}/customers/stolen.parquet'", "COPY"),
        ("CREATE TABLE t AS SELECT * FROM items", "CREATE"),
        ("ATTACH '{root}/other.duckdb'", "ATTACH"),
        ("SET enable_external_access = true", "SET"),
        ("PRAGMA version", "PRAGMA"),
        ("INSTALL httpfs", "LOAD"),
        ("DROP VIEW items", "DROP"),
        ("EXPLAIN ANALYZE COPY (SELECT 1) TO '{root}/x.csv'", "COPY"),
        ("SELECT 1; COPY (SELECT 1) TO '{root}/x.csv'", "2 statements"),
    ],
)
def test_statements_that_write_are_refused_and_change_nothing(
    full: FullArchive, query: str, kind: str
) -> None:
    before = _snapshot(full.root)
    result = _sql(full, query.format(root=str(full.root).replace("'", "''")), columns=200)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Refused:")
    assert kind in result.stderr
    assert "Traceback" not in result.output
    assert _snapshot(full.root) == before


def test_sql_errors_are_one_line_and_never_quote_a_value(full: FullArchive) -> None:
    unknown = _sql(full, "SELECT * FROM nope", columns=200)
    assert unknown.exit_code == 2
    assert unknown.stderr.splitlines()[0].startswith("Error: the query cannot run: Catalog")
    assert says(unknown.stderr, "customers_latest")  # the views are listed
    bad = _sql(full, "SELECT CAST(emails[1] AS INTEGER) FROM customers", columns=200)
    assert bad.exit_code == 2
    assert "Conversion" in bad.stderr
    for email in full.emails:
        assert email not in bad.output
    assert "Traceback" not in bad.output + unknown.output


def test_the_query_reads_nothing_outside_the_archive(full: FullArchive) -> None:
    result = _sql(full, "SELECT * FROM read_csv('/etc/hostname')", columns=200)
    assert result.exit_code == 2
    assert says(result.stderr, "Permission Error")


def test_a_root_without_an_archive_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sql", "--root", str(tmp_path / "typo"), "SELECT 1"])
    assert result.exit_code == 2
    assert says(result.stderr, "no archive at")
