"""The planner's saved fact tables: reused while the archive is unchanged, rebuilt when it moves."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq

from gladly_archive.location import FACTS_DIR
from gladly_archive.schemas import ITEMS
from retention_policies.facts import load_tables
from retention_policies.facts_cache import facts_tables, refresh_facts
from tests.retention_policies.test_facts import _archive, _item, _ts, _write


def test_saved_facts_are_reused_until_the_archive_changes(tmp_path: Path) -> None:
    _archive(tmp_path)
    _, cached = facts_tables(str(tmp_path))
    assert not cached
    saved = [p.name for p in (tmp_path / FACTS_DIR).iterdir()]
    assert len(saved) == 1
    second, cached = facts_tables(str(tmp_path))
    assert cached
    for name in ("customers", "conversations", "items", "inboxes", "topics"):
        assert second.arrow(name).equals(load_tables(tmp_path).arrow(name)), name

    # A new export's items: the saved copy no longer describes the archive.
    _write(tmp_path, "items", [_item("i9", "v9", "c3", _ts(9), "SMS")], ITEMS, "2024-01-09")
    third, cached = facts_tables(str(tmp_path))
    assert not cached
    assert "c3" in third.arrow("customers").column("customer_id").to_pylist()
    assert [p.name for p in (tmp_path / FACTS_DIR).iterdir()] != saved  # the stale copy is gone
    assert len(list((tmp_path / FACTS_DIR).iterdir())) == 1


def test_a_rewritten_file_invalidates_the_copy(tmp_path: Path) -> None:
    _archive(tmp_path)
    assert refresh_facts(str(tmp_path)) is True
    assert refresh_facts(str(tmp_path)) is False
    # Same path, different content (a purge rewrites files in place by rename).
    path = next((tmp_path / "items").rglob("*.parquet"))
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows - 1), path)
    os.utime(path, ns=(1, 1))
    _, cached = facts_tables(str(tmp_path))
    assert not cached


def test_unwritable_cache_costs_time_not_correctness(tmp_path: Path) -> None:
    _archive(tmp_path)
    (tmp_path / FACTS_DIR).write_text("not a directory")
    tables, cached = facts_tables(str(tmp_path))
    assert not cached
    assert tables.count("customers") == 2
