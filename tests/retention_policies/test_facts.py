"""load_tables: fact tables derived from an archive laid out as gladly_archive writes it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from gladly_archive.item_derive import CHANNELS
from gladly_archive.schemas import CUSTOMERS, ITEMS
from retention_policies.facts import FACT_FIELDS, connect, load_tables
from retention_policies.vocab import VALUE_FIELDS

T = datetime(2024, 1, 1, tzinfo=UTC)


def _ts(day: int, hour: int = 0) -> datetime:
    return T.replace(day=day, hour=hour)


def _item(
    iid: str,
    conv: str | None,
    cust: str,
    when: datetime,
    ctype: str,
    content: dict[str, Any] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    row: dict[str, Any] = {f.name: None for f in ITEMS}
    row.update(
        item_id=iid,
        conversation_id=conv,
        customer_id=cust,
        timestamp=when,
        date=when.astimezone(UTC).date(),
        content_type=ctype,
        channel=CHANNELS.get(ctype, ctype),
        internal=ctype == "CONVERSATION_NOTE",
        job_id="j1",
        archived_at=T,
        raw_json=json.dumps({"id": iid, "content": {"type": ctype, **(content or {})}}),
    )
    row.update(kw)
    return row


def _write(
    root: Path,
    dataset: str,
    rows: list[dict[str, Any]],
    schema: pa.Schema | None,
    sub: str = "part",
) -> None:
    out = root / dataset / sub
    out.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=schema) if schema else pa.Table.from_pylist(rows)
    pq.write_table(table, out / "0.parquet")


def _archive(root: Path) -> None:
    _write(
        root,
        "items",
        [
            _item(
                "i1",
                "v1",
                "c1",
                _ts(1),
                "EMAIL",
                attachments=[{"id": "a", "content_type": "x", "filename": "f", "file_size": 1}],
            ),
            _item("i2", "v1", "c1", _ts(2), "TOPIC_CHANGE", {"addedTopicIds": ["t1", "t2"]}),
            _item("i3", "v1", "c1", _ts(3), "TOPIC_CHANGE", {"removedTopicIds": ["t1"]}),
            _item("i4", "v1", "c1", _ts(4), "CONVERSATION_STATUS_CHANGE", {"status": "CLOSED"}),
            _item("i5", "v2", "c1", _ts(5), "CONVERSATION_STATUS_CHANGE", {"status": "CLOSED"}),
            _item("i6", "v2", "c1", _ts(6), "CONVERSATION_STATUS_CHANGE", {"status": "OPEN"}),
            _item("i7", None, "c2", _ts(7), "CUSTOMER_ACTIVITY"),
        ],
        ITEMS,
        "2024-01-01",
    )
    base = {f.name: None for f in CUSTOMERS} | {"raw_json": "{}"}
    _write(
        root,
        "customers",
        [
            base
            | {
                "customer_id": "c1",
                "emails": [" Old@X.com "],
                "job_id": "j1",
                "archived_at": _ts(1),
            },
            base
            | {
                "customer_id": "c1",
                "emails": [" New@X.com "],
                "phones": ["+1 555"],
                "job_id": "j2",
                "archived_at": _ts(9),
            },
        ],
        CUSTOMERS,
        "job-j1",
    )


def test_derived_facts_without_enrichment(tmp_path: Path) -> None:
    _archive(tmp_path)
    t = load_tables(tmp_path)
    conv = {r["conversation_id"]: r for r in t.arrow("conversations").to_pylist()}
    assert conv["v1"]["status"] == "CLOSED"
    assert conv["v1"]["closed_at"] == _ts(4)
    assert conv["v1"]["topic_ids"] == ["t2"]
    assert conv["v1"]["created_at"] == _ts(1)
    assert conv["v1"]["last_activity"] == _ts(4)
    assert conv["v1"]["item_count"] == 4
    assert conv["v1"]["inbox_id"] is None
    assert conv["v2"]["status"] == "OPEN"
    assert conv["v2"]["closed_at"] is None
    cust = {r["customer_id"]: r for r in t.arrow("customers").to_pylist()}
    assert cust["c1"]["emails"] == ["new@x.com"]
    assert cust["c1"]["phones"] == ["+1 555"]
    assert cust["c1"]["has_open_conversation"] is True
    assert cust["c1"]["conversation_count"] == 2
    assert cust["c1"]["item_count"] == 6
    assert cust["c1"]["last_activity"] == _ts(6)
    assert cust["c1"]["custom_attributes"] is None
    assert cust["c2"]["emails"] == []
    assert cust["c2"]["conversation_count"] == 0
    items = {r["item_id"]: r for r in t.arrow("items").to_pylist()}
    assert items["i1"]["has_attachments"]
    assert items["i1"]["redactable"]
    assert items["i7"]["deletable"]
    assert not items["i7"]["redactable"]
    assert not items["i2"]["has_attachments"]


def test_enrichment_wins(tmp_path: Path) -> None:
    _archive(tmp_path)
    _write(
        tmp_path,
        "conversations",
        [
            {
                "conversation_id": "v2",
                "customer_id": "c1",
                "inbox_id": "ib",
                "status": "WAITING",
                "created_at": _ts(5),
                "closed_at": None,
                "topic_ids": ["t9"],
                "fetched_at": _ts(1),
            },
            {
                "conversation_id": "v2",
                "customer_id": "c1",
                "inbox_id": "ib",
                "status": "CLOSED",
                "created_at": _ts(5),
                "closed_at": _ts(8),
                "topic_ids": ["t9"],
                "fetched_at": _ts(9),
            },
        ],
        None,
    )
    _write(
        tmp_path,
        "customer_profiles",
        [
            {
                "customer_id": "c1",
                "custom_attributes_json": '{"loyaltyTier":"gold"}',
                "fetched_at": _ts(9),
            }
        ],
        None,
    )
    _write(tmp_path, "inboxes", [{"id": "ib", "name": "VIP"}], None)
    t = load_tables(tmp_path)
    conv = {r["conversation_id"]: r for r in t.arrow("conversations").to_pylist()}
    assert conv["v2"]["status"] == "CLOSED"
    assert conv["v2"]["closed_at"] == _ts(8)
    assert conv["v2"]["inbox_id"] == "ib"
    assert conv["v2"]["topic_ids"] == ["t9"]
    assert json.loads(conv["v2"]["custom_attributes"]) == {"loyaltyTier": "gold"}
    cust = {r["customer_id"]: r for r in t.arrow("customers").to_pylist()}
    assert cust["c1"]["has_open_conversation"] is False
    # v1 was never enriched: the customer's inboxes are unknown (NULL), not "only ib"
    assert cust["c1"]["inbox_ids"] is None
    assert conv["v2"]["enriched_at"] is not None
    assert conv["v1"]["enriched_at"] is None
    assert cust["c1"]["profile_fetched_at"] == _ts(9)
    assert t.arrow("inboxes").to_pylist() == [{"id": "ib", "name": "VIP"}]


def test_empty_archive(tmp_path: Path) -> None:
    t = load_tables(tmp_path)
    assert t.count("items") == 0
    assert t.count("customers") == 0


def test_value_fields_are_facts() -> None:
    for resource, fields in VALUE_FIELDS.items():
        assert fields <= FACT_FIELDS[resource]


def test_customer_rollups_are_built_only_when_read(tmp_path: Path) -> None:
    _archive(tmp_path)
    t = load_tables(tmp_path)
    raw = t.con.execute("SELECT topic_ids FROM customers WHERE customer_id = 'c1'").fetchone()
    assert raw == (None,)  # not built yet: no policy has read them
    cust = {r["customer_id"]: r for r in t.arrow("customers").to_pylist()}
    assert cust["c1"]["topic_ids"] == ["t2"]
    assert cust["c1"]["conversation_statuses"] == ["CLOSED", "OPEN"]
    assert cust["c2"]["conversation_statuses"] == []
    assert cust["c1"]["channels"] == sorted(cust["c1"]["channels"])
    assert "EMAIL" in cust["c1"]["channels"]


def test_which_filters_read_the_rollups() -> None:
    from retention_policies.compile import reads_rollups

    assert not reads_rollups([{"type": "age", "field": "last_activity", "older_than": 3}])
    assert reads_rollups([{"type": "not", "filter": {"type": "topic", "any_of": ["t"]}}])
    nested = {"type": "or", "filters": [{"type": "value"}, {"type": "inbox", "in": ["x"]}]}
    assert reads_rollups([{"type": "and", "filters": [nested]}])


def test_unknown_statuses_are_rolled_up_as_they_are(tmp_path: Path) -> None:
    _archive(tmp_path)
    enriched = {
        "conversation_id": "v2",
        "customer_id": "c1",
        "inbox_id": None,
        "status": "SNOOZED",
        "created_at": _ts(5),
        "closed_at": None,
        "topic_ids": ["t9", "t0"],
        "fetched_at": _ts(9),
    }
    _write(tmp_path, "conversations", [enriched], None)
    t = load_tables(tmp_path)
    conv = {r["conversation_id"]: r for r in t.arrow("conversations").to_pylist()}
    assert conv["v2"]["topic_ids"] == ["t0", "t9"]
    cust = {r["customer_id"]: r for r in t.arrow("customers").to_pylist()}
    assert cust["c1"]["conversation_statuses"] == ["CLOSED", "SNOOZED"]
    assert cust["c1"]["topic_ids"] == ["t0", "t2", "t9"]


def test_saved_tables_read_back_identical(tmp_path: Path) -> None:
    from retention_policies.facts import open_tables, save_tables

    root, saved = tmp_path / "archive", tmp_path / "saved"
    _archive(root)
    saved.mkdir()
    built = load_tables(root)
    save_tables(built, saved)
    reopened = open_tables(root, saved)
    for name in ("customers", "conversations", "items", "inboxes", "topics"):
        assert reopened.arrow(name).equals(built.arrow(name)), name


def test_the_fact_tables_are_built_within_a_bounded_memory_and_spill_past_it() -> None:
    # The first export's refresh is a full build over the whole archive: DuckDB's own limit
    # keeps it from growing with the archive (it spills to the temporary folder instead).
    def setting(con: duckdb.DuckDBPyConnection, name: str) -> str:
        row = con.execute("SELECT current_setting(?)", [name]).fetchone()
        assert row is not None
        return str(row[0])

    reference = duckdb.connect(":memory:")
    con = connect()
    try:
        reference.execute("SET memory_limit='256MB'")
        # As DuckDB shows it (e.g. "244.1 MiB"), whatever its version's wording.
        assert setting(con, "memory_limit") == setting(reference, "memory_limit")
        assert setting(con, "temp_directory").endswith("retention_policies_spill")
    finally:
        con.close()
        reference.close()
