"""Fact tables (customers, conversations, items) built from the archive's Parquet with DuckDB."""

# SQL here is built only from our own constant identifiers; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

# One vocabulary for the whole package: what Gladly lets the API redact or delete.
from gladly_archive.writer import write_parquet_file
from retention_policies.fact_derive import (
    Inputs,
    channel_decoding,
    conversation_core,
    customers,
    finish_conversations,
    profiles,
    resolve_merges,
)
from retention_policies.fact_sources import (
    CONTRIBUTIONS,
    MAX_MASKED_TYPES,
    SOURCE_DATASETS,
    Source,
    content_types,
    contribute,
    list_sources,
    quote,
)
from retention_policies.vocab import DELETABLE_TYPES, REDACTABLE_TYPES

__all__ = [
    "CONVERSATION_FACTS",
    "CUSTOMER_FACTS",
    "DELETABLE_TYPES",
    "FACTS_PHASE",
    "FACTS_VERSION",
    "FACT_FIELDS",
    "ITEM_FACTS",
    "LOOKUP",
    "MEMORY_LIMIT",
    "REDACTABLE_TYPES",
    "SAVED",
    "SAVE_BATCH_ROWS",
    "SOURCE_DATASETS",
    "Built",
    "Progress",
    "Tables",
    "build_tables",
    "built_contribution",
    "connect",
    "contribution_inputs",
    "drop_contributions",
    "items_over",
    "load_tables",
    "lookup",
    "lookup_tables",
    "open_tables",
    "save_tables",
]

# progress(phase, done, total): a display's callback (the command line draws it as a bar).
Progress = Callable[[str, int, int], None]
# The phase of building the fact tables: progress(FACTS_PHASE, steps done, _BUILD_STEPS).
FACTS_PHASE = "facts"
_BUILD_STEPS = 6

_TS = pa.timestamp("us", tz="UTC")
_STRS = pa.list_(pa.string())

CUSTOMER_FACTS = pa.schema(
    [
        ("customer_id", pa.string()),
        ("last_activity", _TS),
        ("first_activity", _TS),
        ("conversation_count", pa.int64()),
        ("item_count", pa.int64()),
        ("has_open_conversation", pa.bool_()),
        ("emails", _STRS),
        ("phones", _STRS),
        ("custom_attributes", pa.string()),  # JSON object, null when no profile was fetched
        ("profile_fetched_at", _TS),  # when the profile was fetched (null: never)
        # Roll-ups over the customer's conversations and items (filters read "any of them").
        ("channels", _STRS),
        ("inbox_ids", _STRS),
        ("topic_ids", _STRS),
        ("conversation_statuses", _STRS),
    ]
)
CONVERSATION_FACTS = pa.schema(
    [
        ("conversation_id", pa.string()),
        ("customer_id", pa.string()),
        ("created_at", _TS),
        ("last_activity", _TS),
        ("closed_at", _TS),
        ("status", pa.string()),
        ("inbox_id", pa.string()),
        ("topic_ids", _STRS),
        ("channels", _STRS),
        ("item_count", pa.int64()),
        ("custom_attributes", pa.string()),
        ("enriched_at", _TS),  # when GET /conversations/{id} was read (null: never; no inbox)
    ]
)
ITEM_FACTS = pa.schema(
    [
        ("item_id", pa.string()),
        ("conversation_id", pa.string()),
        ("customer_id", pa.string()),
        ("timestamp", _TS),
        ("content_type", pa.string()),
        ("initiator_type", pa.string()),
        ("has_attachments", pa.bool_()),
        ("recording_status", pa.string()),
        ("redactable", pa.bool_()),
        ("deletable", pa.bool_()),
    ]
)
LOOKUP = pa.schema([("id", pa.string()), ("name", pa.string())])

# Columns a `value` filter may name, per resource (scalar facts only).
FACT_FIELDS: dict[str, frozenset[str]] = {
    "customer": frozenset(
        {
            "customer_id",
            "last_activity",
            "first_activity",
            "conversation_count",
            "item_count",
            "has_open_conversation",
        }
    ),
    "conversation": frozenset(
        {
            "conversation_id",
            "customer_id",
            "created_at",
            "last_activity",
            "closed_at",
            "status",
            "inbox_id",
            "item_count",
        }
    ),
    "contact": frozenset(
        {
            "contact_id",
            "conversation_id",
            "customer_id",
            "kind",
            "started_at",
            "last_activity",
            "item_count",
        }
    ),
    "item": frozenset(
        {
            "item_id",
            "conversation_id",
            "customer_id",
            "timestamp",
            "content_type",
            "initiator_type",
            "has_attachments",
            "recording_status",
            "redactable",
            "deletable",
        }
    ),
}

_SCHEMAS: dict[str, pa.Schema] = {
    "customers": CUSTOMER_FACTS,
    "conversations": CONVERSATION_FACTS,
    "items": ITEM_FACTS,
    "inboxes": LOOKUP,
    "topics": LOOKUP,
}


# DuckDB's memory for the fact tables (it spills past it). Measured on a full build (the first
# export's refresh) in a process holding 146 MB: 1 M items, 575 MB peak RSS at 700 MB, 417 MB
# at 200 MB, the same 3 s; 5 M items, 998 MB at 700 MB, 621 MB at 256 MB, 15.5 -> 18.1 s;
# 10 M items, 1,100 MB at 700 MB, 693 MB at 256 MB, 34.1 -> 41.5 s (it spills more).
MEMORY_LIMIT = "256MB"


def connect(memory_limit: str = MEMORY_LIMIT, threads: int = 2) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with bounded memory, UTC time and a spill directory."""
    con = duckdb.connect(":memory:")
    con.execute(f"SET threads={int(threads)}")
    con.execute("SET memory_limit=?", [memory_limit])
    con.execute("SET preserve_insertion_order=false")
    con.execute("SET temp_directory=?", [tempfile.gettempdir() + "/retention_policies_spill"])
    con.execute("SET TimeZone='UTC'")
    return con


@dataclass(frozen=True)
class Tables:
    """The fact tables, held in a DuckDB connection as tables `customers`, `conversations`,
    `items`, `inboxes` and `topics` (schemas CUSTOMER_FACTS, … LOOKUP).

    ```python
    tables = load_tables("/data/archive")
    tables.count("items")
    ```
    """

    con: duckdb.DuckDBPyConnection
    # Customers' inbox, topic and status roll-ups are built on first use (`ensure_rollups`):
    # at a million customers they cost seconds, and most policies never read them.
    rollups_pending: list[bool] = field(default_factory=lambda: [False])

    def ensure_rollups(self) -> None:
        """Fill customers.inbox_ids / topic_ids / conversation_statuses from the conversations."""
        if self.rollups_pending[0]:
            self.con.execute(_ROLLUPS_SQL)
            self.rollups_pending[0] = False

    @classmethod
    def from_arrow(
        cls,
        *,
        customers: pa.Table,
        conversations: pa.Table,
        items: pa.Table,
        inboxes: pa.Table | None = None,
        topics: pa.Table | None = None,
    ) -> Tables:
        """Tables from ready-made fact tables (cast to the fact schemas; missing lookups empty)."""
        con = connect()
        given: Mapping[str, pa.Table | None] = {
            "customers": customers,
            "conversations": conversations,
            "items": items,
            "inboxes": inboxes,
            "topics": topics,
        }
        for name, schema in _SCHEMAS.items():
            table = given[name]
            if table is None:
                table = schema.empty_table()
            for missing in (f for f in schema if f.name not in table.column_names):
                table = table.append_column(missing, pa.nulls(table.num_rows, missing.type))
            table = table.select(schema.names)
            con.register("_src", table.cast(schema))
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM _src")
            con.unregister("_src")
        return cls(con)

    def arrow(self, name: str) -> pa.Table:
        """One fact table as Arrow, in its schema's column order, sorted by its first column."""
        if name == "customers":
            self.ensure_rollups()
        schema = _SCHEMAS[name]
        cols = ", ".join(schema.names)
        table = self.con.sql(f"SELECT {cols} FROM {name} ORDER BY 1").to_arrow_table()
        return table.cast(schema)

    def count(self, name: str) -> int:
        """Number of rows in one fact table."""
        if name not in _SCHEMAS:
            raise KeyError(name)
        row = self.con.execute(f"SELECT count(*) FROM {name}").fetchone()
        return int(row[0]) if row else 0


def _glob(root: Path, dataset: str) -> str | None:
    base = root / dataset
    if not base.is_dir() or next(base.rglob("*.parquet"), None) is None:
        return None
    return str(base / "**" / "*.parquet")


def _parquet(path: str) -> str:
    return "read_parquet(" + quote(path) + ", hive_partitioning=false, union_by_name=true)"


# The contributions of a full build, kept in its connection as temp tables <_BUILT>cc, ….
_BUILT = "_c_"


@dataclass(frozen=True)
class Built:
    """How a full build rolled content types up: name → bit, or None for sorted lists."""

    types: dict[str, int] | None


def load_tables(
    root: str | Path,
    *,
    memory_limit: str = MEMORY_LIMIT,
    threads: int = 2,
    progress: Progress | None = None,
) -> Tables:
    """Read the archive under `root` and build the fact tables; set-based SQL, no row loop.

    Customers come from `customers/` (latest `archived_at` per customer) and from every customer
    seen in `items/`; enrichment (`conversations/`, `customer_profiles/`, `inboxes/`, `topics/`)
    is used when present. Without it a conversation's status is derived from its last
    CONVERSATION_STATUS_CHANGE (CLOSED, else OPEN) and its topics from TOPIC_CHANGE items.

    `items` stays a view over the Parquet (only the columns it needs are read). Every file's
    contributions are taken first (retention_policies.fact_sources) and the conversation and
    customer facts derived from them (retention_policies.fact_derive), the way the saved facts
    are refreshed. `progress` hears its steps done (FACTS_PHASE).
    """
    tables, _ = build_tables(
        root, list_sources(root), memory_limit=memory_limit, threads=threads, progress=progress
    )
    drop_contributions(tables.con)
    return tables


def build_tables(
    root: str | Path,
    sources: list[Source],
    *,
    memory_limit: str = MEMORY_LIMIT,
    threads: int = 2,
    progress: Progress | None = None,
) -> tuple[Tables, Built]:
    """The fact tables of exactly these files (numbered in order from 0), their contributions
    kept in the connection (`contribution_inputs`) until `drop_contributions`."""
    done = 0

    def step() -> None:
        nonlocal done
        if progress is not None:
            progress(FACTS_PHASE, done, _BUILD_STEPS)
        done += 1

    step()
    root = Path(root)
    con = connect(memory_limit, threads)
    try:
        types = _build(con, root, sources, step)
    except BaseException:
        con.close()
        raise
    step()
    return Tables(con, rollups_pending=[True]), Built(types)


def _build(
    con: duckdb.DuckDBPyConnection, root: Path, sources: list[Source], step: Callable[[], None]
) -> dict[str, int] | None:
    found = content_types(con, root, [s.path for s in sources if s.dataset == "items"])
    # Content types are rolled up as bits of one BIGINT when they fit in one.
    types = (
        {t: bit for bit, t in enumerate(sorted(found))} if len(found) <= MAX_MASKED_TYPES else None
    )
    step()
    contribute(con, root, list(enumerate(sources)), _BUILT, types)
    step()
    inputs = contribution_inputs(_BUILT, "merges", types)
    resolve_merges(con, built_contribution("mg"), "merges")
    _items_view(con, _glob(root, "items"))
    for name, id_col in _LOOKUPS.items():
        _lookup(con, name, [str(root / s.path) for s in sources if s.dataset == name], id_col)
    step()
    conversation_core(con, inputs, None, "_conv_core")
    profiles(con, inputs, None, "_prof")
    finish_conversations(con, "_conv_core", "_prof", "conversations", temp=False)
    step()
    customers(con, inputs, None, "conversations", "_prof", "customers", temp=False)
    con.execute("DROP TABLE _conv_core")
    con.execute("DROP TABLE _prof")
    step()
    return types


def contribution_inputs(prefix: str, merges: str, types: dict[str, int] | None) -> Inputs:
    """fact_derive's inputs over the contribution relations `<prefix>cc`, …, `<prefix>pr`."""
    agg, decode = channel_decoding(types)
    return Inputs(
        cc=f"{prefix}cc",
        st=f"{prefix}st",
        tp=f"{prefix}tp",
        cu=f"{prefix}cu",
        en=f"{prefix}en",
        pr=f"{prefix}pr",
        merges=merges,
        agg=agg,
        decode=decode,
    )


def drop_contributions(con: duckdb.DuckDBPyConnection) -> None:
    """Free a full build's contributions (build_tables)."""
    for name in CONTRIBUTIONS:
        con.execute(f"DROP TABLE IF EXISTS {_BUILT}{name}")


def built_contribution(name: str) -> str:
    """The temp table of a full build holding contribution table `name` (cc, …, mg)."""
    if name not in CONTRIBUTIONS:
        raise KeyError(name)
    return f"{_BUILT}{name}"


def _items_view(con: duckdb.DuckDBPyConnection, items: str | None) -> None:
    if items is None:
        con.execute(f"CREATE TABLE items AS SELECT * FROM {_empty(ITEM_FACTS)}")
        return
    redactable = ", ".join(quote(t) for t in sorted(REDACTABLE_TYPES))
    deletable = ", ".join(quote(t) for t in sorted(DELETABLE_TYPES))
    con.execute(
        f"""CREATE VIEW items AS SELECT
            item_id, conversation_id, coalesce(m.into_id, i.customer_id) AS customer_id,
            "timestamp", content_type, initiator_type,
            coalesce(len(attachments) > 0, false) AS has_attachments, recording_status,
            content_type IN ({redactable}) AS redactable,
            content_type IN ({deletable}) AS deletable
        FROM {_parquet(items)} i LEFT JOIN merges m ON m.source_id = i.customer_id"""
    )
    # What the contact rule reads (retention_policies.contact_facts builds contacts on first use).
    con.execute(
        f"""CREATE VIEW contact_source AS SELECT
            conversation_id, coalesce(m.into_id, i.customer_id) AS customer_id, item_id,
            content_type, "timestamp", session_id, call_completed_at
        FROM {_parquet(items)} i LEFT JOIN merges m ON m.source_id = i.customer_id"""
    )


SAVED = ("customers", "conversations", "inboxes", "topics", "merges")
# The version of how facts are derived from the archive: a saved copy is valid only for the
# same archive files and the same version.
FACTS_VERSION = "5"
# Rows per row group when saving: bounded memory whatever the archive's size.
SAVE_BATCH_ROWS = 128 * 1024


def save_tables(tables: Tables, directory: str | Path) -> None:
    """Write the derived fact tables (not `items`, which stays a view) as Parquet files into
    `directory`, which must exist: `open_tables` reads them back in a fraction of the time
    `load_tables` takes. Customers are saved without their lazy roll-ups."""
    directory = Path(directory)
    for name in SAVED:
        rows = tables.con.sql(f"SELECT * FROM {name}").to_arrow_reader(SAVE_BATCH_ROWS)
        write_parquet_file(rows, directory / f"{name}.parquet", compression="zstd")


def open_tables(
    root: str | Path, directory: str | Path, *, memory_limit: str = MEMORY_LIMIT, threads: int = 2
) -> Tables:
    """Fact tables saved by `save_tables` from the archive under `root`, whose items stay a view.

    The caller vouches that the archive has not changed since (see the facts cache)."""
    con = connect(memory_limit, threads)
    directory = Path(directory)
    for name in SAVED:
        path = quote(str(directory / f"{name}.parquet"))
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet({path})")
    return items_over(con, root)


def items_over(con: duckdb.DuckDBPyConnection, root: str | Path) -> Tables:
    """Tables in `con` (which holds every table but `items`), `items` a view over `root`."""
    _items_view(con, _glob(Path(root), "items"))
    return Tables(con, rollups_pending=[True])


def _empty(schema: pa.Schema) -> str:
    types = {
        pa.string(): "VARCHAR",
        _TS: "TIMESTAMPTZ",
        pa.bool_(): "BOOLEAN",
        pa.int64(): "BIGINT",
        _STRS: "VARCHAR[]",
    }
    cols = ", ".join(f"CAST(NULL AS {types[f.type]}) AS {f.name}" for f in schema)
    return f"(SELECT {cols} LIMIT 0)"


def lookup_tables(root: str | Path) -> duckdb.DuckDBPyConnection:
    """A connection holding only the `inboxes` and `topics` lookups of the archive at `root`
    (what validating names needs, without reading a single item)."""
    con = connect()
    sources = [s for s in list_sources(root) if s.dataset in _LOOKUPS]
    for name, id_col in _LOOKUPS.items():
        _lookup(con, name, [str(Path(root) / s.path) for s in sources if s.dataset == name], id_col)
    return con


# The lookups, each recomputed whole from its dataset's files (a few hundred rows).
_LOOKUPS = {"inboxes": "inbox_id", "topics": "topic_id"}


def lookup(
    con: duckdb.DuckDBPyConnection, name: str, files: list[str], *, out: str | None = None
) -> None:
    """Table `out` (default `name`): the lookup `name` (`inboxes` or `topics`: id, name) from
    these files (absolute paths), the newest row per id."""
    _lookup(con, out or name, files, _LOOKUPS[name])


def _lookup(con: duckdb.DuckDBPyConnection, name: str, files: list[str], id_col: str) -> None:
    con.execute(f"DROP TABLE IF EXISTS {name}")
    if not files:
        con.execute(f"CREATE TABLE {name} (id VARCHAR, name VARCHAR)")
        return
    read = "read_parquet($files, hive_partitioning=false, union_by_name=true)"
    described = con.execute(f"DESCRIBE SELECT * FROM {read}", {"files": files}).fetchall()
    cols = {r[0] for r in described}
    ident = id_col if id_col in cols else "id"
    order = "archived_at DESC" if "archived_at" in cols else "name"
    con.execute(
        f"""CREATE TABLE {name} AS SELECT CAST({ident} AS VARCHAR) AS id,
            CAST(name AS VARCHAR) AS name FROM {read}
        QUALIFY row_number() OVER (PARTITION BY {ident} ORDER BY {order}) = 1""",
        {"files": files},
    )


_ROLLUPS_SQL = """
CREATE OR REPLACE TABLE customers AS
WITH cv AS (
    -- One pass over the conversations; list aggregates only over rows that carry a value,
    -- statuses as a bit mask over Gladly's three (any other status is listed as is).
    SELECT customer_id,
        -- unknown (NULL) while any of the customer's conversations' inbox was never fetched
        CASE WHEN bool_and(inbox_id IS NOT NULL)
            THEN list_distinct(list(inbox_id) FILTER (WHERE inbox_id IS NOT NULL)) END
            AS inbox_ids,
        list_distinct(flatten(list(topic_ids) FILTER (WHERE len(topic_ids) > 0))) AS topic_ids,
        bit_or(CASE status WHEN 'CLOSED' THEN 1 WHEN 'OPEN' THEN 2 WHEN 'WAITING' THEN 4
            ELSE 0 END) AS smask,
        list_distinct(list(status) FILTER (WHERE status NOT IN ('OPEN', 'WAITING', 'CLOSED')))
            AS other_statuses
    FROM conversations GROUP BY customer_id
),
smasks AS (
    SELECT smask, list_filter(['CLOSED', 'OPEN', 'WAITING'],
        lambda s, i: ((smask >> (i - 1)) & 1) = 1) AS statuses
    FROM (SELECT DISTINCT smask FROM cv)
)
SELECT c.* REPLACE (
    CAST(CASE WHEN cv.customer_id IS NULL THEN [] ELSE list_sort(cv.inbox_ids) END
        AS VARCHAR[]) AS inbox_ids,
    CAST(list_sort(coalesce(cv.topic_ids, [])) AS VARCHAR[]) AS topic_ids,
    CAST(CASE WHEN len(cv.other_statuses) > 0
        THEN list_sort(list_concat(sm.statuses, cv.other_statuses))
        ELSE coalesce(sm.statuses, []) END AS VARCHAR[]) AS conversation_statuses
)
FROM customers c
LEFT JOIN cv ON cv.customer_id = c.customer_id
LEFT JOIN smasks sm ON sm.smask = cv.smask
"""
