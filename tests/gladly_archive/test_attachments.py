"""The attachments view: one row per attachment an item lists, redacted ones without id or name."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb

from gladly_archive import redact_items
from gladly_archive.archive import Archive
from gladly_archive.attachments import attachments_view, read_attachments
from tests.gladly_archive.test_archive import T0, archive_job, fixed_clock, item


def _attachment(n: int) -> dict[str, object]:
    return {"id": f"att{n}", "content_type": "image/png", "filename": f"f{n}.png", "file_size": n}


def _build(root: Path) -> Archive:
    archive = Archive.open(root, clock=fixed_clock)
    two = item("i1", "v1", "custA", T0)
    two["attachments"] = [_attachment(1), _attachment(2)]
    none = item("i2", "v1", "custA", T0 + timedelta(minutes=1))
    one = item("i3", "v2", "custB", T0 + timedelta(days=2))
    one["attachments"] = [_attachment(3)]
    archive_job(archive, "J1", [two, none, one])
    return archive


def test_each_attachment_is_a_row_with_its_item(tmp_path: Path) -> None:
    _build(tmp_path)
    rows = read_attachments(tmp_path).to_pylist()
    assert [(r["attachment_id"], r["item_id"], r["customer_id"]) for r in rows] == [
        ("att1", "i1", "custA"),
        ("att2", "i1", "custA"),
        ("att3", "i3", "custB"),
    ]
    assert rows[0]["filename"] == "f1.png"
    assert rows[0]["content_type"] == "image/png"
    assert rows[2]["file_size"] == 3
    assert rows[0]["item_content_type"] == "CHAT_MESSAGE"


def test_an_analyst_queries_the_view_with_duckdb(tmp_path: Path) -> None:
    _build(tmp_path)
    con = duckdb.connect()
    attachments_view(con, tmp_path)
    per_customer = con.sql(
        "SELECT customer_id, count(*), sum(file_size) FROM attachments GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert per_customer == [("custA", 2, 3), ("custB", 1, 3)]


def test_a_redacted_item_keeps_counts_not_ids_or_names(tmp_path: Path) -> None:
    archive = _build(tmp_path)
    redact_items(archive, {"i1": "custA"})
    rows = [r for r in read_attachments(tmp_path).to_pylist() if r["item_id"] == "i1"]
    assert len(rows) == 2
    assert {(r["attachment_id"], r["filename"]) for r in rows} == {(None, None)}
    assert sorted(r["file_size"] for r in rows) == [1, 2]


def test_an_empty_archive_has_no_attachments(tmp_path: Path) -> None:
    assert read_attachments(tmp_path).num_rows == 0
