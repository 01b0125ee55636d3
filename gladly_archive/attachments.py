"""The archive's attachments, one row each, as a DuckDB view over the items dataset.

Gladly lists an item's attachments with the item (id, content type, file name, size); the
archive keeps them in the items' `attachments` list. A redacted item keeps its attachments'
count, content types and sizes: their ids and file names are gone (null here).
"""

# SQL here is built only from our own constant text and a quoted path; no value is a person's.
# ruff: noqa: S608

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

__all__ = ["ATTACHMENTS_SQL", "attachments_view", "read_attachments"]

# The view's query over a relation `items` (the items dataset): one row per attachment.
ATTACHMENTS_SQL = """
SELECT
    a.attachment.id AS attachment_id,
    item_id,
    conversation_id,
    customer_id,
    "timestamp" AS item_timestamp,
    content_type AS item_content_type,
    a.attachment.filename AS filename,
    a.attachment.content_type AS content_type,
    a.attachment.file_size AS file_size
FROM items, UNNEST(attachments) AS a(attachment)
"""


def _items_glob(root: str | Path) -> str | None:
    base = Path(root) / "items"
    if not any(base.rglob("*.parquet")):
        return None
    return str(base / "**" / "*.parquet")


def attachments_view(con: duckdb.DuckDBPyConnection, root: str | Path) -> None:
    """Create the views `items` (every tier of the items dataset under `root`) and
    `attachments` in `con`, for an analyst's queries. An archive without items gives an
    `attachments` view with no rows."""
    glob = _items_glob(root)
    if glob is None:
        con.execute(
            "CREATE OR REPLACE VIEW attachments AS SELECT CAST(NULL AS VARCHAR) AS attachment_id, "
            "CAST(NULL AS VARCHAR) AS item_id, CAST(NULL AS VARCHAR) AS conversation_id, "
            "CAST(NULL AS VARCHAR) AS customer_id, CAST(NULL AS TIMESTAMPTZ) AS item_timestamp, "
            "CAST(NULL AS VARCHAR) AS item_content_type, CAST(NULL AS VARCHAR) AS filename, "
            "CAST(NULL AS VARCHAR) AS content_type, CAST(NULL AS BIGINT) AS file_size LIMIT 0"
        )
        return
    quoted = glob.replace("'", "''")
    con.execute(
        f"CREATE OR REPLACE VIEW items AS SELECT * FROM read_parquet('{quoted}', "
        "hive_partitioning = false, union_by_name = true)"
    )
    con.execute(f"CREATE OR REPLACE VIEW attachments AS {ATTACHMENTS_SQL}")


def read_attachments(root: str | Path) -> pa.Table:
    """Every attachment row of the archive under `root` (see `attachments_view`)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone='UTC'")
        attachments_view(con, root)
        return con.sql(
            "SELECT * FROM attachments ORDER BY item_timestamp, item_id"
        ).to_arrow_table()
    finally:
        con.close()
