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
    "REDACTABLE_TYPES",
    "SOURCE_DATASETS",
    "Progress",
    "Tables",
    "connect",
    "load_tables",
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


def connect(memory_limit: str = "700MB", threads: int = 2) -> duckdb.DuckDBPyConnection:
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
    return "read_parquet(" + _quote(path) + ", hive_partitioning=false, union_by_name=true)"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def load_tables(
    root: str | Path,
    *,
    memory_limit: str = "700MB",
    threads: int = 2,
    progress: Progress | None = None,
) -> Tables:
    """Read the archive under `root` and build the fact tables; set-based SQL, no row loop.

    Customers come from `customers/` (latest `archived_at` per customer) and from every customer
    seen in `items/`; enrichment (`conversations/`, `customer_profiles/`, `inboxes/`, `topics/`)
    is used when present. Without it a conversation's status is derived from its last
    CONVERSATION_STATUS_CHANGE (CLOSED, else OPEN) and its topics from TOPIC_CHANGE items.

    `items` stays a view over the Parquet (only the columns it needs are read); the items are
    aggregated once per (conversation, customer) and both conversation and customer facts are
    rolled up from that. `progress` hears its steps done (FACTS_PHASE).
    """
    done = 0

    def step() -> None:
        nonlocal done
        if progress is not None:
            progress(FACTS_PHASE, done, _BUILD_STEPS)
        done += 1

    step()
    root = Path(root)
    con = connect(memory_limit, threads)
    items = _glob(root, "items")
    customers = _glob(root, "customers")
    conv_enr = _glob(root, "conversations")
    profiles = _glob(root, "customer_profiles")
    inboxes = _glob(root, "inboxes")
    topics = _glob(root, "topics")
    _merges(con, profiles)
    _items_view(con, items)
    if items is None:
        con.execute(
            "CREATE TEMP TABLE _events (conversation_id VARCHAR, item_id VARCHAR, "
            '"timestamp" TIMESTAMPTZ, content_type VARCHAR, status VARCHAR, added VARCHAR[], '
            "removed VARCHAR[])"
        )
        types: list[str] = []
    else:
        # Only status and topic changes need their JSON parsed.
        con.execute(
            f"""CREATE TEMP TABLE _events AS SELECT conversation_id, item_id, "timestamp",
                content_type,
                json_extract_string(raw_json, '$.content.status') AS status,
                CAST(json_extract(raw_json, '$.content.addedTopicIds') AS VARCHAR[]) AS added,
                CAST(json_extract(raw_json, '$.content.removedTopicIds') AS VARCHAR[]) AS removed
            FROM {_parquet(items)}
            WHERE content_type IN ('CONVERSATION_STATUS_CHANGE', 'TOPIC_CHANGE')
              AND conversation_id IS NOT NULL"""
        )
        types = [
            str(r[0])
            for r in con.execute(
                f"SELECT DISTINCT content_type FROM {_parquet(items)} "
                "WHERE content_type IS NOT NULL ORDER BY 1"
            ).fetchall()
        ]
    step()
    # Channels are rolled up as a bit mask over the (few) content types when they fit in one.
    masked = len(types) <= 62
    if masked:
        bits = " ".join(f"WHEN {_quote(t)} THEN {1 << i}" for i, t in enumerate(types))
        channel = f"CASE content_type {bits} ELSE 0 END" if types else "0"
        agg = "bit_or({c})"
        literal = "CAST([" + ", ".join(_quote(t) for t in types) + "] AS VARCHAR[])"
        decode = f"list_filter({literal}, lambda t, i: ((" + "{c} >> (i - 1)) & 1) = 1)"
    else:
        channel = "content_type"
        agg = "list_distinct(flatten(list({c})))"
        decode = "list_sort({c})"
    if items is None:
        con.execute(
            "CREATE TEMP TABLE _cc (conversation_id VARCHAR, customer_id VARCHAR, "
            f"mn TIMESTAMPTZ, mx TIMESTAMPTZ, n BIGINT, ch {'BIGINT' if masked else 'VARCHAR[]'})"
        )
    else:
        first = f"bit_or({channel})" if masked else "list_distinct(list(content_type))"
        # A merged-away customer's items count for the customer it was merged into.
        con.execute(
            f"""CREATE TEMP TABLE _cc AS SELECT conversation_id,
                coalesce(m.into_id, i.customer_id) AS customer_id,
                min("timestamp") AS mn, max("timestamp") AS mx, count(*) AS n, {first} AS ch
            FROM {_parquet(items)} i LEFT JOIN merges m ON m.source_id = i.customer_id
            GROUP BY conversation_id, 2"""
        )
    step()
    _lookup(con, "inboxes", inboxes, "inbox_id")
    _lookup(con, "topics", topics, "topic_id")
    if profiles is not None:
        con.execute(
            # The newest row wins; an event's row (changed, deleted, merged since) carries no
            # attributes: unknown until fetched again.
            f"""CREATE TEMP TABLE _profiles AS SELECT customer_id,
                CAST(custom_attributes_json AS VARCHAR) AS attrs,
                CASE WHEN custom_attributes_json IS NOT NULL THEN fetched_at END AS fetched_at
            FROM {_parquet(profiles)}
            QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY fetched_at DESC) = 1"""
        )
    if conv_enr is None:
        con.execute(
            "CREATE TEMP TABLE _conv_enr (conversation_id VARCHAR, customer_id VARCHAR, "
            "inbox_id VARCHAR, status VARCHAR, created_at TIMESTAMPTZ, closed_at TIMESTAMPTZ, "
            "topic_ids VARCHAR[], enriched_at TIMESTAMPTZ)"
        )
    else:
        con.execute(
            f"""CREATE TEMP TABLE _conv_enr AS SELECT conversation_id, customer_id, inbox_id,
                status, created_at, closed_at, list_sort(CAST(topic_ids AS VARCHAR[])) AS topic_ids,
                fetched_at AS enriched_at
            FROM {_parquet(conv_enr)}
            QUALIFY row_number() OVER (PARTITION BY conversation_id ORDER BY fetched_at DESC) = 1"""
        )
    step()
    if profiles is None:
        attrs, fetched, profile_join = "CAST(NULL AS VARCHAR)", "CAST(NULL AS TIMESTAMPTZ)", ""
    else:
        attrs, fetched = "p.attrs", "p.fetched_at"
        profile_join = "LEFT JOIN _profiles p ON p.customer_id = {key}"
    # A mask is decoded once per distinct value (a few hundred), then joined: decoding per row
    # with a lambda costs seconds at millions of conversations.
    masks = (
        "masks AS (SELECT ch, " + decode.format(c="ch") + " AS channels FROM "
        "(SELECT DISTINCT ch FROM {src})),"
    )
    con.execute(
        _CONVERSATIONS_SQL.format(
            agg=agg.format(c="ch"),
            masks=masks.format(src="agg"),
            enr_join="FULL OUTER" if conv_enr is not None else "LEFT",
            attrs=attrs,
            profile_join=profile_join.format(key="j.customer_id"),
        )
    )
    step()
    if customers is None:
        con.execute(
            "CREATE TEMP TABLE _cust (customer_id VARCHAR, emails VARCHAR[], phones VARCHAR[])"
        )
    else:
        con.execute(
            # Newest row per customer; a merged-away customer's emails and phones are the
            # survivor's now (Gladly merges them into the surviving profile).
            f"""CREATE TEMP TABLE _cust AS SELECT coalesce(m.into_id, c.customer_id) AS customer_id,
                list_distinct(flatten(list(c.emails))) AS emails,
                list_distinct(flatten(list(c.phones))) AS phones
            FROM (SELECT customer_id, emails, phones FROM {_parquet(customers)}
                QUALIFY row_number() OVER (
                    PARTITION BY customer_id ORDER BY archived_at DESC, job_id DESC) = 1) c
            LEFT JOIN merges m ON m.source_id = c.customer_id
            GROUP BY 1"""
        )
    con.execute(
        _CUSTOMERS_SQL.format(
            agg=agg.format(c="ch"),
            masks=masks.format(src="it"),
            # Without enrichment every conversation's customer is already one of the items'.
            cv_ids="UNION SELECT customer_id FROM cv" if conv_enr is not None else "",
            attrs=attrs,
            fetched=fetched,
            profile_join=profile_join.format(key="ids.customer_id"),
        )
    )
    step()
    for name in ("_events", "_cc", "_conv_enr", "_cust"):
        con.execute(f"DROP TABLE {name}")
    if profiles is not None:
        con.execute("DROP TABLE _profiles")
    step()
    return Tables(con, rollups_pending=[True])


def _merges(con: duckdb.DuckDBPyConnection, profiles: str | None) -> None:
    """Table `merges` (source_id → into_id): customers merged away (CUSTOMER/MERGED events,
    recorded by enrichment) and the customer that survives them, chains followed."""
    con.execute("CREATE TABLE merges (source_id VARCHAR, into_id VARCHAR)")
    if profiles is None:
        return
    cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_parquet(profiles)}").fetchall()}
    if "merged_into" not in cols:
        return
    con.execute(
        f"""INSERT INTO merges SELECT customer_id, merged_into FROM {_parquet(profiles)}
        WHERE merged_into IS NOT NULL AND merged_into <> customer_id
        QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY fetched_at DESC) = 1"""
    )
    # A → B then B → C: A's data is C's. A cycle (never sent by Gladly) stops after 8 steps.
    for _ in range(8):
        changed = con.execute(
            """UPDATE merges SET into_id = n.into_id FROM merges n
            WHERE merges.into_id = n.source_id AND n.into_id <> merges.source_id"""
        ).fetchone()
        if not changed or not changed[0]:
            break


def _items_view(con: duckdb.DuckDBPyConnection, items: str | None) -> None:
    if items is None:
        con.execute(f"CREATE TABLE items AS SELECT * FROM {_empty(ITEM_FACTS)}")
        return
    redactable = ", ".join(_quote(t) for t in sorted(REDACTABLE_TYPES))
    deletable = ", ".join(_quote(t) for t in sorted(DELETABLE_TYPES))
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


_SAVED = ("customers", "conversations", "inboxes", "topics", "merges")
# The archive datasets load_tables reads, and the version of how it derives facts from them:
# a saved copy is valid only for the same archive state and the same version.
SOURCE_DATASETS = ("items", "customers", "conversations", "customer_profiles", "inboxes", "topics")
FACTS_VERSION = "4"
# Rows per row group when saving: bounded memory whatever the archive's size.
_SAVE_BATCH_ROWS = 128 * 1024


def save_tables(tables: Tables, directory: str | Path) -> None:
    """Write the derived fact tables (not `items`, which stays a view) as Parquet files into
    `directory`, which must exist: `open_tables` reads them back in a fraction of the time
    `load_tables` takes. Customers are saved without their lazy roll-ups."""
    directory = Path(directory)
    for name in _SAVED:
        rows = tables.con.sql(f"SELECT * FROM {name}").to_arrow_reader(_SAVE_BATCH_ROWS)
        write_parquet_file(rows, directory / f"{name}.parquet", compression="zstd")


def open_tables(
    root: str | Path, directory: str | Path, *, memory_limit: str = "700MB", threads: int = 2
) -> Tables:
    """Fact tables saved by `save_tables` from the archive under `root`, whose items stay a view.

    The caller vouches that the archive has not changed since (see flows' facts cache)."""
    con = connect(memory_limit, threads)
    directory = Path(directory)
    for name in _SAVED:
        path = _quote(str(directory / f"{name}.parquet"))
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet({path})")
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
    _lookup(con, "inboxes", _glob(Path(root), "inboxes"), "inbox_id")
    _lookup(con, "topics", _glob(Path(root), "topics"), "topic_id")
    return con


def _lookup(con: duckdb.DuckDBPyConnection, name: str, glob: str | None, id_col: str) -> None:
    if glob is None:
        con.execute(f"CREATE TABLE {name} (id VARCHAR, name VARCHAR)")
        return
    cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_parquet(glob)}").fetchall()}
    ident = id_col if id_col in cols else "id"
    order = "archived_at DESC" if "archived_at" in cols else "name"
    con.execute(
        f"""CREATE TABLE {name} AS SELECT CAST({ident} AS VARCHAR) AS id,
            CAST(name AS VARCHAR) AS name FROM {_parquet(glob)}
        QUALIFY row_number() OVER (PARTITION BY {ident} ORDER BY {order}) = 1"""
    )


_CONVERSATIONS_SQL = """
CREATE TABLE conversations AS
WITH agg AS (
    SELECT conversation_id, any_value(customer_id) AS customer_id,
        min(mn) AS created_at, max(mx) AS last_activity,
        {agg} AS ch, CAST(sum(n) AS BIGINT) AS item_count
    FROM _cc WHERE conversation_id IS NOT NULL GROUP BY conversation_id
),
{masks}
last_status AS (
    SELECT conversation_id, status, "timestamp" AS status_at FROM _events
    WHERE content_type = 'CONVERSATION_STATUS_CHANGE'
    QUALIFY row_number() OVER (
        PARTITION BY conversation_id ORDER BY "timestamp" DESC, item_id DESC) = 1
),
topic_events AS (
    SELECT conversation_id, item_id, "timestamp", unnest(added) AS topic_id, true AS added
    FROM _events WHERE content_type = 'TOPIC_CHANGE' AND added IS NOT NULL
    UNION ALL
    SELECT conversation_id, item_id, "timestamp", unnest(removed) AS topic_id, false AS added
    FROM _events WHERE content_type = 'TOPIC_CHANGE' AND removed IS NOT NULL
),
topics_now AS (
    SELECT conversation_id, list_sort(list(topic_id)) AS topic_ids FROM (
        SELECT * FROM topic_events QUALIFY row_number() OVER (
            PARTITION BY conversation_id, topic_id ORDER BY "timestamp" DESC, item_id DESC) = 1
    ) WHERE added GROUP BY conversation_id
),
joined AS (
    SELECT coalesce(a.conversation_id, e.conversation_id) AS conversation_id,
        coalesce(a.customer_id, e.customer_id) AS customer_id,
        coalesce(a.created_at, e.created_at) AS created_at,
        coalesce(a.last_activity, e.created_at) AS last_activity,
        coalesce(e.status, CASE WHEN s.status = 'CLOSED' THEN 'CLOSED' ELSE 'OPEN' END) AS status,
        coalesce(e.closed_at, CASE WHEN s.status = 'CLOSED' THEN s.status_at END) AS closed_at0,
        e.inbox_id,
        coalesce(e.topic_ids, t.topic_ids, []) AS topic_ids,  -- both sorted already
        CAST(coalesce(m.channels, []) AS VARCHAR[]) AS channels,
        coalesce(a.item_count, 0) AS item_count,
        e.enriched_at
    FROM agg a
    LEFT JOIN masks m ON m.ch = a.ch
    {enr_join} JOIN _conv_enr e ON e.conversation_id = a.conversation_id
    LEFT JOIN last_status s ON s.conversation_id = coalesce(a.conversation_id, e.conversation_id)
    LEFT JOIN topics_now t ON t.conversation_id = coalesce(a.conversation_id, e.conversation_id)
)
SELECT j.conversation_id, j.customer_id, j.created_at, j.last_activity,
    CASE WHEN j.status = 'CLOSED' THEN j.closed_at0 END AS closed_at, j.status, j.inbox_id,
    CAST(j.topic_ids AS VARCHAR[]) AS topic_ids, j.channels, j.item_count,
    {attrs} AS custom_attributes, j.enriched_at
FROM joined j {profile_join}
"""

_CUSTOMERS_SQL = """
CREATE TABLE customers AS
WITH it AS (
    SELECT customer_id, max(mx) AS last_activity, min(mn) AS first_activity,
        CAST(sum(n) AS BIGINT) AS item_count, {agg} AS ch
    FROM _cc GROUP BY customer_id
),
{masks}
cv AS (
    SELECT customer_id, count(*) AS conversation_count,
        bool_or(status IN ('OPEN', 'WAITING')) AS has_open_conversation
    FROM conversations GROUP BY customer_id
),
ids AS (
    SELECT customer_id FROM it UNION SELECT customer_id FROM _cust {cv_ids}
)
SELECT ids.customer_id, it.last_activity, it.first_activity,
    coalesce(cv.conversation_count, 0) AS conversation_count,
    coalesce(it.item_count, 0) AS item_count,
    coalesce(cv.has_open_conversation, false) AS has_open_conversation,
    CAST(coalesce(list_transform(c.emails, lambda x: lower(trim(x))), []) AS VARCHAR[]) AS emails,
    CAST(coalesce(c.phones, []) AS VARCHAR[]) AS phones,
    {attrs} AS custom_attributes,
    {fetched} AS profile_fetched_at,
    CAST(coalesce(m.channels, []) AS VARCHAR[]) AS channels,
    CAST(NULL AS VARCHAR[]) AS inbox_ids,  -- roll-ups: Tables.ensure_rollups
    CAST(NULL AS VARCHAR[]) AS topic_ids,
    CAST(NULL AS VARCHAR[]) AS conversation_statuses
FROM ids
LEFT JOIN it ON it.customer_id = ids.customer_id
LEFT JOIN masks m ON m.ch = it.ch
LEFT JOIN cv ON cv.customer_id = ids.customer_id
LEFT JOIN _cust c ON c.customer_id = ids.customer_id
{profile_join}
"""

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
