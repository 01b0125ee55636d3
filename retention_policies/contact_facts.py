"""The contact fact tables: every contact the archive's items make up, by the contact rule.

Built on first use (a contact policy, a re-check) from the items' rows, one conversation at a
time through retention_policies.contacts — the rule `delete --contact` and the deletion
engine apply to Gladly's live lists.
"""

# SQL here is built only from our own constant identifiers; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby

import duckdb
import pyarrow as pa

from retention_policies.contacts import ContactGroup, ContactItem, contacts_in
from retention_policies.facts import Tables

__all__ = [
    "CONTACT_FACTS",
    "CONTACT_ITEMS",
    "CONTACT_SOURCE",
    "contact_row",
    "contact_tables",
    "ensure_contacts",
    "set_contact_source",
]

_TS = pa.timestamp("us", tz="UTC")

# What the rule reads of each item (facts.load_tables makes it a view over the items' Parquet).
CONTACT_SOURCE = pa.schema(
    [
        ("conversation_id", pa.string()),
        ("customer_id", pa.string()),
        ("item_id", pa.string()),
        ("content_type", pa.string()),
        ("timestamp", _TS),
        ("session_id", pa.string()),
        ("call_completed_at", _TS),
    ]
)
CONTACT_FACTS = pa.schema(
    [
        ("contact_id", pa.string()),  # a session id, a call's id, an exchange's first message's
        ("conversation_id", pa.string()),
        ("customer_id", pa.string()),
        ("kind", pa.string()),  # session | call | exchange
        ("channels", pa.list_(pa.string())),  # content types of the items that make it up
        ("started_at", _TS),
        ("last_activity", _TS),  # its last item's time
        ("item_count", pa.int64()),
    ]
)
# One row per item of each contact (a note inside two contacts' spans is in both).
CONTACT_ITEMS = pa.schema(
    [
        ("contact_id", pa.string()),
        ("conversation_id", pa.string()),
        ("item_id", pa.string()),
        ("content_type", pa.string()),
    ]
)
_BATCH = 64 * 1024


def contact_row(group: ContactGroup, conversation_id: str, customer_id: str) -> dict[str, object]:
    """One contact's CONTACT_FACTS row."""
    return {
        "contact_id": group.contact_id,
        "conversation_id": conversation_id,
        "customer_id": customer_id,
        "kind": group.kind,
        "channels": group.channels,
        "started_at": group.started_at,
        "last_activity": group.last_activity,
        "item_count": len(group.members),
    }


def _conversations(rows: Iterator[dict[str, object]]) -> Iterator[list[dict[str, object]]]:
    for _, same in groupby(rows, key=lambda r: r["conversation_id"]):
        yield list(same)


def contact_tables(batches: Iterator[pa.RecordBatch]) -> tuple[pa.Table, pa.Table]:
    """(CONTACT_FACTS, CONTACT_ITEMS) from CONTACT_SOURCE rows sorted by conversation: each
    conversation's items grouped into contacts by the one rule."""
    contacts: list[dict[str, object]] = []
    members: list[dict[str, object]] = []

    def rows() -> Iterator[dict[str, object]]:
        for batch in batches:
            yield from batch.to_pylist()

    for conversation in _conversations(rows()):
        conversation_id = str(conversation[0]["conversation_id"])
        customer_id = str(conversation[0]["customer_id"])
        items = [
            ContactItem(
                str(r["item_id"]),
                str(r["content_type"]),
                r["timestamp"],  # type: ignore[arg-type]
                str(r["session_id"]) if r["session_id"] else None,
                r["call_completed_at"],  # type: ignore[arg-type]
            )
            for r in conversation
        ]
        for group in contacts_in(items):
            contacts.append(contact_row(group, conversation_id, customer_id))
            members.extend(
                {
                    "contact_id": group.contact_id,
                    "conversation_id": conversation_id,
                    "item_id": m.item_id,
                    "content_type": m.content_type,
                }
                for m in group.members
            )
    return (
        pa.Table.from_pylist(contacts, schema=CONTACT_FACTS),
        pa.Table.from_pylist(members, schema=CONTACT_ITEMS),
    )


def _exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name = ? AND NOT internal "
        "UNION ALL SELECT view_name FROM duckdb_views() WHERE view_name = ? AND NOT internal",
        [name, name],
    ).fetchall()
    return bool(found)


def set_contact_source(tables: Tables, rows: pa.Table) -> None:
    """Give fact tables built from ready-made tables (Tables.from_arrow) the item rows contacts
    are made of (CONTACT_SOURCE columns); contacts built before are dropped."""
    con = tables.con
    for name in ("contacts", "contact_items"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    con.execute("DROP VIEW IF EXISTS contact_source")
    con.execute("DROP TABLE IF EXISTS contact_source")
    con.register("_contact_src", rows.select(CONTACT_SOURCE.names).cast(CONTACT_SOURCE))
    con.execute("CREATE TABLE contact_source AS SELECT * FROM _contact_src")
    con.unregister("_contact_src")


def ensure_contacts(tables: Tables) -> None:
    """Create tables `contacts` (CONTACT_FACTS) and `contact_items` (CONTACT_ITEMS) unless
    they exist; from `contact_source`, or empty when there is none."""
    con = tables.con
    if _exists(con, "contacts"):
        return
    if _exists(con, "contact_source"):
        cols = ", ".join(f'"{n}"' for n in CONTACT_SOURCE.names)
        # An item exported twice (two jobs' windows) is one item.
        source = con.cursor()
        try:
            reader = source.sql(
                f"""SELECT {cols} FROM (SELECT DISTINCT ON (item_id) {cols} FROM contact_source
                    WHERE conversation_id IS NOT NULL ORDER BY item_id)
                ORDER BY conversation_id, "timestamp", item_id"""
            ).to_arrow_reader(_BATCH)
            contacts, members = contact_tables(iter(reader))
        finally:
            source.close()
    else:
        contacts, members = CONTACT_FACTS.empty_table(), CONTACT_ITEMS.empty_table()
    for name, table in (("contacts", contacts), ("contact_items", members)):
        con.register("_contacts_src", table)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _contacts_src")
        con.unregister("_contacts_src")
