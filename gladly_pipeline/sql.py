"""`gladly-pipeline sql`: one read-only query over the archive's views: a table, CSV or Parquet."""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import duckdb
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gladly_archive.catalog import DATASET_VIEWS, LATEST_VIEWS, CatalogError, register_views
from gladly_archive.fs import resolve_root, temp_name
from gladly_archive.location import resolve_archive_root
from gladly_archive.writer import write_parquet_file
from gladly_pipeline.common import RootOption
from gladly_pipeline.errors import Failure
from gladly_pipeline.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE

__all__ = ["Format", "sql"]

# What may run: DESCRIBE, SHOW, SUMMARIZE, WITH and FROM-first queries parse as SELECT too.
_READ = (duckdb.StatementType.SELECT,)
_FIX = "give one SELECT (WITH, DESCRIBE, SHOW and EXPLAIN too) over the views: `DESCRIBE items`"
# DuckDB errors about the query's text and names; the others may quote a value it read.
_SAFE_ERRORS = (
    duckdb.ParserException,
    duckdb.BinderException,
    duckdb.CatalogException,
    duckdb.PermissionException,
    duckdb.NotImplementedException,
)
_BATCH_ROWS = 64 * 1024


class Format(StrEnum):
    """How the result is written."""

    table = "table"
    csv = "csv"
    parquet = "parquet"


class _Refused(Exception):
    """The query is not one read-only statement (or cannot run): nothing was run."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.what)
        self.failure = failure


def sql(
    query: Annotated[str, typer.Argument(help="One read-only query, e.g. `DESCRIBE items`.")],
    root: RootOption = None,
    output_format: Annotated[
        Format,
        typer.Option("--format", help="table (fits the terminal), csv or parquet."),
    ] = Format.table,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the result to this file (csv: else stdout; parquet: needed)."),
    ] = None,
    max_rows: Annotated[
        int, typer.Option(min=1, help="The table shows at most this many rows.")
    ] = 100,
) -> None:
    """Run one read-only query over the archive, with its views registered.

    Views: every dataset by name (items, transcripts, customers, agents, topics, inboxes,
    conversations, customer_profiles) and one row per id in customers_latest, agents_latest,
    topics_latest, inboxes_latest, conversations_latest and customer_profiles_latest.
    Statements that write (COPY, CREATE, ATTACH, SET, PRAGMA, …) are refused (exit 2), and
    the query reads only files under the archive root. CSV and Parquet hold every row;
    written to a file, it appears whole or not at all.
    """
    where = resolve_archive_root(root)
    try:
        if output_format is Format.parquet and out is None:
            raise _Refused(
                Failure(
                    EXIT_USAGE, "Error: Parquet output needs a file: --out FILE", "name the file"
                )
            )
        _check_read_only(query)
        with _connection(where) as con:
            result = _run(con, query)
            if output_format is Format.table:
                _print_table(result, max_rows)
            elif output_format is Format.csv:
                _write_csv(result, out)
            else:
                assert out is not None
                _write_parquet(result, out)
    except _Refused as refused:
        for line in refused.failure.lines():
            typer.echo(line, err=True)
        raise typer.Exit(refused.failure.code) from None
    raise typer.Exit(EXIT_OK)


@contextmanager
def _connection(root: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with the views, that may read files under the archive root only
    (and nothing else: no other file, no setting changed afterwards)."""
    if "://" in root:
        raise _Refused(Failure(EXIT_USAGE, f"Error: sql reads a local archive; {root} is not one"))
    fs, path = resolve_root(root)
    if not os.path.isdir(path):
        raise _Refused(
            Failure(
                EXIT_USAGE,
                f"Error: no archive at {path}",
                "export into it first, or pass --root (or GLADLY_PIPELINE_ROOT)",
            )
        )
    con = duckdb.connect()
    try:
        try:
            register_views(con, path, fs)
        except CatalogError as exc:
            raise _Refused(Failure(EXIT_USAGE, f"Error: {exc}")) from None
        allowed = (path.rstrip("/") + "/").replace("'", "''")
        con.execute(f"SET allowed_directories = ['{allowed}']")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        yield con
    finally:
        con.close()


def _check_read_only(query: str) -> None:
    """Refuse anything but one statement DuckDB's own parser reads as a query."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise _Refused(_duckdb_failure(exc)) from None
    if len(statements) != 1:
        raise _Refused(
            Failure(EXIT_USAGE, f"Refused: {len(statements)} statements; give exactly one", _FIX)
        )
    kind: duckdb.StatementType | None = statements[0].type
    if kind == duckdb.StatementType.EXPLAIN:
        kind = _explained(query)
    if kind not in _READ:
        name = str(kind).rsplit(".", 1)[-1] if kind is not None else "EXPLAIN"
        raise _Refused(
            Failure(
                EXIT_USAGE,
                f"Refused: a {name} statement; sql runs read-only queries only "
                "(the archive is changed by its own commands)",
                _FIX,
            )
        )


def _explained(query: str) -> duckdb.StatementType | None:
    """The type of the statement an EXPLAIN wraps (EXPLAIN ANALYZE runs it); None if unclear."""
    tokens = duckdb.tokenize(query)
    ends = [start for start, _ in tokens[1:]] + [len(query)]
    words = [
        (start, query[start:end].strip().upper())
        for (start, kind), end in zip(tokens, ends, strict=True)
        if kind != duckdb.token_type.comment
    ]
    skip = 2 if [w for _, w in words[1:2]] == ["ANALYZE"] else 1
    if [w for _, w in words[:1]] != ["EXPLAIN"] or len(words) <= skip:
        return None
    try:
        inner = duckdb.extract_statements(query[words[skip][0] :])
    except duckdb.Error:
        return None
    return inner[0].type if len(inner) == 1 else None


def _run(con: duckdb.DuckDBPyConnection, query: str) -> duckdb.DuckDBPyRelation:
    try:
        return con.sql(query)
    except duckdb.Error as exc:
        raise _Refused(_duckdb_failure(exc)) from None


def _duckdb_failure(exc: duckdb.Error) -> Failure:
    """One line: DuckDB's own first line for errors about the query's text and names; for
    others only their kind, since they may quote a value read from the archive."""
    if isinstance(exc, _SAFE_ERRORS):
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return Failure(EXIT_USAGE, f"Error: the query cannot run: {first}", _hint(first))
    kind = type(exc).__name__.removesuffix("Exception")
    broken = isinstance(exc, duckdb.IOException | duckdb.InternalException)
    code = EXIT_FAILED if broken else EXIT_USAGE
    return Failure(
        code,
        f"Error: the query failed in DuckDB ({kind} error; its details are not shown, as they "
        "may quote a value of the archive)",
        "run the query in DuckDB yourself (gladly.duckdb at the archive root) to see them",
    )


def _hint(first_line: str) -> str:
    if "does not exist" in first_line or "not found" in first_line:
        views = ", ".join((*DATASET_VIEWS, *LATEST_VIEWS))
        return f"the views: {views}"
    return ""


@contextmanager
def _failing_in_duckdb() -> Iterator[None]:
    try:
        yield
    except duckdb.Error as exc:
        raise _Refused(_duckdb_failure(exc)) from None


def _cell(value: Any) -> str:
    """A value as one line of text (a table cell, a CSV field)."""
    if value is None:
        return ""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, default=str, ensure_ascii=False)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _print_table(result: duckdb.DuckDBPyRelation, max_rows: int) -> None:
    with _failing_in_duckdb():
        names = list(result.columns)
        rows = result.limit(max_rows + 1).fetchall()
    console = Console()  # stdout: the result, for a pipe as for a terminal
    table = Table(show_lines=False, expand=False)
    for name in names:
        table.add_column(Text(name), overflow="ellipsis", no_wrap=True, min_width=1)
    for row in rows[:max_rows]:
        table.add_row(*(Text(" ".join(_cell(v).split())) for v in row))
    console.print(table)
    shown = min(len(rows), max_rows)
    more = ""
    if len(rows) > max_rows:
        more = " (more not shown: raise --max-rows, or --format csv for every row)"
    typer.echo(f"{shown} row(s){more}", err=True)


def _write_csv(result: duckdb.DuckDBPyRelation, out: Path | None) -> None:
    if out is None:
        _csv_rows(result, sys.stdout)
        return
    tmp = temp_name(str(out.resolve()))
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            _csv_rows(result, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    typer.echo(f"wrote {out}", err=True)


def _csv_rows(result: duckdb.DuckDBPyRelation, handle: TextIO) -> None:
    writer = csv.writer(handle)
    with _failing_in_duckdb():
        writer.writerow(result.columns)
        reader = result.to_arrow_reader(_BATCH_ROWS)
        for batch in reader:
            columns = [column.to_pylist() for column in batch.columns]
            writer.writerows([_cell(v) for v in row] for row in zip(*columns, strict=True))


def _write_parquet(result: duckdb.DuckDBPyRelation, out: Path) -> None:
    tmp = temp_name(str(out.resolve()))
    try:
        with _failing_in_duckdb():
            rows = write_parquet_file(result.to_arrow_reader(_BATCH_ROWS), tmp, compression="zstd")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    typer.echo(f"wrote {rows} row(s) to {out}", err=True)
