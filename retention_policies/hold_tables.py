"""The hold tables evaluation joins: which customers and conversations each active hold covers."""

# SQL here is built only from our own constant identifiers; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import duckdb
import pyarrow as pa

from retention_policies.holds import UNEVALUABLE, hold_label

__all__ = ["hold_rows", "prepare_holds"]

_HOLDS = pa.schema(
    [
        ("label", pa.string()),
        ("kind", pa.string()),
        ("value", pa.string()),
        ("attr_key", pa.string()),
        ("attr_val", pa.string()),
    ]
)
_CUSTOMER_KINDS = ("customer_id", "email_hash", "phone_hash", "custom_attribute")


def hold_rows(holds: Iterable[Any], lookups: Mapping[str, Mapping[str, list[str]]]) -> pa.Table:
    """One row per active hold (an inbox or topic hold once per id its name resolves to)."""
    rows: list[dict[str, str | None]] = []
    for hold in holds:
        label, kind, value = hold_label(hold), str(hold.kind), str(hold.value)
        if kind == "custom_attribute":
            key, _, val = value.partition("=")
            rows.append(
                {"label": label, "kind": kind, "value": value, "attr_key": key, "attr_val": val}
            )
            continue
        names = lookups.get("topics" if kind == "topic" else "inboxes", {})
        ids = [value, *names.get(value, [])] if kind in ("topic", "inbox") else [value]
        for one in ids:
            rows.append(
                {"label": label, "kind": kind, "value": one, "attr_key": None, "attr_val": None}
            )
    return pa.Table.from_pylist(rows, schema=_HOLDS)


def _hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    block = hashlib.sha256(key).digest() if len(key) > 64 else key
    block = block.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


def prepare_holds(con: duckdb.DuckDBPyConnection, table: pa.Table, key: bytes | None) -> None:
    """Temp tables `_held_customer`, `_held_customer_direct` and `_held_conversation`: the
    labels of the holds on each customer and conversation (an unevaluable hold holds)."""
    con.register("_holds_src", table)
    con.execute("CREATE TEMP TABLE _holds AS SELECT * FROM _holds_src")
    con.unregister("_holds_src")
    kinds = set(table.column("kind").to_pylist())
    # A hold that cannot be evaluated (its fact never fetched) holds, labelled so.
    parts = [
        "SELECT c.customer_id AS id, h.label FROM customers c JOIN _holds h "
        "ON h.kind = 'customer_id' AND h.value = c.customer_id",
        "SELECT c.customer_id, h.label FROM customers c JOIN _holds h "
        "ON h.kind = 'custom_attribute' AND "
        "json_extract_string(c.custom_attributes, '$.\"' || h.attr_key || '\"') = h.attr_val",
        "SELECT DISTINCT c.customer_id, h.label || ? FROM customers c JOIN _holds h "
        "ON h.kind = 'custom_attribute' AND c.custom_attributes IS NULL",
    ]
    params: list[Any] = [UNEVALUABLE]
    hashed = kinds & {"email_hash", "phone_hash"}
    if hashed:
        if key is None:
            raise ValueError("email/phone holds need the hold registry's key to be matched")
        ipad, opad = _hmac_pads(key)
        normal = {
            "email_hash": ("emails", "lower(trim(x))"),
            "phone_hash": ("phones", "regexp_replace(x, '[^+0-9]', '', 'g')"),
        }
        for kind in sorted(hashed):
            column, norm = normal[kind]
            parts.append(
                f"SELECT customer_id, h.label FROM (SELECT customer_id, sha256(?::BLOB || "
                f"unhex(sha256(?::BLOB || encode({norm})))) AS hx "
                f"FROM (SELECT customer_id, unnest({column}) AS x FROM customers)) e "
                f"JOIN _holds h ON h.kind = '{kind}' AND h.value = e.hx"
            )
            params += [opad, ipad]
    con.execute("CREATE TEMP TABLE _hold_cust AS " + " UNION ".join(parts), params)
    con.execute(
        """CREATE TEMP TABLE _hold_conv AS
        SELECT v.conversation_id AS id, v.customer_id, h.label FROM conversations v JOIN _holds h
            ON (h.kind = 'conversation_id' AND h.value = v.conversation_id)
            OR (h.kind = 'inbox' AND h.value = v.inbox_id)
            OR (h.kind = 'topic' AND list_contains(v.topic_ids, h.value))
        UNION
        SELECT DISTINCT v.conversation_id, v.customer_id, h.label || ? FROM conversations v
            JOIN _holds h ON h.kind = 'inbox' AND v.inbox_id IS NULL""",
        [UNEVALUABLE],
    )
    con.execute(
        """CREATE TEMP TABLE _held_customer AS SELECT id, list_sort(list_distinct(list(label)))
            AS labels FROM (SELECT id, label FROM _hold_cust UNION ALL
                            SELECT customer_id, label FROM _hold_conv) GROUP BY id"""
    )
    con.execute(
        """CREATE TEMP TABLE _held_customer_direct AS SELECT id,
            list_sort(list_distinct(list(label))) AS labels FROM _hold_cust GROUP BY id"""
    )
    con.execute(
        """CREATE TEMP TABLE _held_conversation AS SELECT id, list_sort(list_distinct(list(label)))
            AS labels FROM (SELECT id, label FROM _hold_conv UNION ALL
                SELECT v.conversation_id, c.label FROM conversations v
                JOIN _hold_cust c ON c.id = v.customer_id) GROUP BY id"""
    )
