"""`migrate` upgrades an archive the previous release wrote (tests/fixtures/archive_v2) in
place: every dataset reads by glob with this release's schema, nothing is lost, erasure still
finds everything, and a second run changes nothing."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from gladly_archive import Archive, purge_customers, write_tombstones
from gladly_archive.catalog import CATALOG_NAME
from gladly_archive.convert import convert_items_lines
from gladly_archive.enrichment import append_snapshot
from gladly_archive.fold import fold_archive
from gladly_archive.item_derive import derive_items
from gladly_archive.item_purge import redact_items
from gladly_archive.layout import (
    OldLayoutError,
    archive_version,
    check_layout,
    hive_directories,
    read_layout,
)
from gladly_archive.migrate import migrate_archive, plan_migration
from gladly_archive.reference_names import load_names
from gladly_archive.refill_watch import WatchedDetail, write_watch
from gladly_archive.schemas import CONVERSATIONS, SCHEMA_VERSION
from gladly_sandbox.clock import SandboxClock
from gladly_sandbox.orgdata import OrgSpec
from gladly_sandbox.store import Organisation
from tests.gladly_archive.test_glob_readers import EVERY_DATASET

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "archive_v2" / "root"
AT = datetime(2025, 6, 3, tzinfo=UTC)


def fixed_clock() -> datetime:
    return AT


def copy_fixture(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    shutil.copytree(FIXTURE, root)
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root and a digest of its bytes (the catalog by its views, the root's
    path left out: DuckDB's file is not byte-for-byte repeatable)."""
    files = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name == ".lock":
            continue
        name = str(path.relative_to(root))
        if name == CATALOG_NAME:
            with duckdb.connect(str(path), read_only=True) as con:
                views = con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal")
                quoted = str(root).replace("'", "''")  # as a SQL string holds it
                files[name] = str(
                    sorted((view, sql.replace(quoted, "<root>")) for view, sql in views.fetchall())
                )
            continue
        files[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def counts(root: Path) -> dict[str, object]:
    archive = Archive(root)
    items = archive.dataset("items").to_table(columns=["item_id", "customer_id"])
    transcripts = archive.dataset("transcripts").to_table(columns=["conversation_id"])
    return {
        "items": sorted(items["item_id"].to_pylist()),
        "item_customers": sorted(set(items["customer_id"].to_pylist())),
        "customers": archive.dataset("customers").count_rows(),
        "transcripts": sorted(transcripts["conversation_id"].to_pylist()),
        **{
            name: archive.dataset(name).count_rows()
            for name in ("agents", "topics", "inboxes", "conversations", "customer_profiles")
        },
        "manifest": sorted(archive.read_manifest()["job_id"].to_pylist()),
        "quarantine": archive.dataset("_quarantine").count_rows(),
    }


def test_the_fixture_is_what_the_previous_release_wrote(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path)
    archive = Archive(root)
    assert archive_version(archive.fs, archive.root) == 2
    assert read_layout(archive.fs, archive.root).schema_version is None
    hive = hive_directories(archive.fs, archive.root)
    assert {d.split("/")[0] for d in hive} == {
        "_quarantine",
        "agents",
        "topics",
        "inboxes",
        "customers",
        "conversations",
        "customer_profiles",
        "tombstones",
        "refill_watch",
    }
    assert {"customers/job=folded", "conversations/run=folded"} <= set(hive)
    versions = {
        pq.read_schema(p).metadata[b"gladly_pipeline.schema_version"]
        for p in root.rglob("*.parquet")
    }
    assert versions == {b"2"}
    assert sum(p.stat().st_size for p in FIXTURE.rglob("*") if p.is_file()) < 1_000_000


def test_a_new_archive_is_at_this_version_and_has_nothing_to_migrate(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path / "new")
    assert archive_version(archive.fs, archive.root) == SCHEMA_VERSION
    check_layout(archive.fs, archive.root)
    assert not plan_migration(archive).changes


def test_a_dry_run_says_what_changes_and_changes_nothing(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path)
    before = snapshot(root)
    plan = plan_migration(Archive(root))
    assert plan.version == 2
    assert ("customers/job=folded", "customers/folded") in plan.renames
    assert len(plan.renames) == len(hive_directories(Archive(root).fs, str(root)))
    parquet = list(root.rglob("*.parquet"))
    assert sum(plan.files.values()) == len(parquet)
    assert plan.files["items"] == len(list((root / "items").rglob("*.parquet")))
    assert plan.stamp
    assert snapshot(root) == before


def test_migrate_upgrades_every_dataset_and_loses_nothing(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path)
    before = counts(root)
    migrate_archive(Archive(root, clock=fixed_clock))
    archive = Archive(root)
    check_layout(archive.fs, archive.root)  # writers may write again
    assert archive_version(archive.fs, archive.root) == SCHEMA_VERSION
    assert read_layout(archive.fs, archive.root).buckets == 4  # the fold's record is kept
    assert not [p for p in root.rglob("*") if p.is_dir() and "=" in p.name]
    for path in root.rglob("*.parquet"):
        version = pq.read_schema(path).metadata[b"gladly_pipeline.schema_version"]
        assert version == str(SCHEMA_VERSION).encode(), path
    assert counts(root) == before
    for name, schema in EVERY_DATASET.items():
        glob = str(root / name / "**" / "*.parquet")
        duck = duckdb.execute("SELECT * FROM read_parquet(?) LIMIT 0", [glob])
        assert [d[0] for d in duck.description] == schema.names, name
        assert list(pd.read_parquet(root / name).columns) == schema.names, name
        assert pl.read_parquet(glob).columns == schema.names, name
    index = archive.dataset("_index/customer_files").to_table()
    assert index.num_rows > 0
    assert all((root / p).is_file() for p in index["path"].to_pylist())
    assert not [p for p in index["path"].to_pylist() if "=" in p]
    with duckdb.connect(str(root / CATALOG_NAME), read_only=True) as con:
        latest = con.execute("SELECT count(*) FROM customers_latest").fetchone()
    assert latest == (len(before["item_customers"]),)  # type: ignore[arg-type]


def test_transcripts_are_rebuilt_from_the_migrated_items(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path)
    old = {
        r["conversation_id"]: r for r in Archive(root).dataset("transcripts").to_table().to_pylist()
    }
    migrate_archive(Archive(root, clock=fixed_clock))
    new = Archive(root).dataset("transcripts").to_table().to_pylist()
    assert {r["conversation_id"] for r in new} == set(old)
    for row in new:
        assert row["built_at"] == AT
        was = old[row["conversation_id"]]
        assert (row["customer_id"], row["item_count"]) == (was["customer_id"], was["item_count"])


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path)
    migrate_archive(Archive(root, clock=fixed_clock))
    after = snapshot(root)
    plan = migrate_archive(Archive(root, clock=fixed_clock))
    assert not plan.changes
    assert snapshot(root) == after


def test_erasure_after_migration_removes_every_row_of_the_customer(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path)
    quarantined = pq.read_table(next((root / "_quarantine").rglob("*.parquet")))
    line = quarantined["raw_line"][0].as_py()
    customer = json.loads(line.decode() + '": 1}')["customerId"]
    migrate_archive(Archive(root, clock=fixed_clock))

    def holding() -> dict[str, int]:
        found = {}
        for name, schema in EVERY_DATASET.items():
            if "customer_id" not in schema.names or name in ("tombstones", "refill_watch"):
                continue
            glob = str(root / name / "**" / "*.parquet")
            row = duckdb.execute(
                "SELECT count(*) FROM read_parquet(?) WHERE customer_id = ?", [glob, customer]
            ).fetchone()
            assert row is not None
            found[name] = int(row[0])
        raw = [
            value
            for path in (root / "_quarantine").rglob("*.parquet")
            for value in pq.read_table(path, columns=["raw_line"])["raw_line"].to_pylist()
        ]
        found["_quarantine"] = sum(customer.encode() in value for value in raw)
        return found

    before = holding()
    for name in ("items", "transcripts", "customers", "_index/customer_files", "_quarantine"):
        assert before[name] > 0, name
    purge_customers(Archive(root), [customer])
    assert set(holding().values()) == {0}


def test_every_writer_refuses_the_earlier_release_archive(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path)
    before = snapshot(root)
    archive = Archive(root)
    fact = pa.Table.from_pylist(
        [{"conversation_id": "c", "customer_id": "u", "topic_ids": [], "fetched_at": AT}],
        schema=CONVERSATIONS,
    )
    watch = WatchedDetail(
        watch_id="a" * 16,
        kind="email",
        detail_hash="b" * 64,
        customer_id="u",
        unlinked_at=AT,
        recorded_at=AT,
        request_id="c" * 64,
    )
    for attempt in (
        lambda: Archive.open(root),
        lambda: archive.stage_job("J9"),
        lambda: fold_archive(archive, AT.date()),
        lambda: purge_customers(archive, ["u"]),
        lambda: append_snapshot(archive, "conversations", fact, run_id="R9"),
        lambda: write_tombstones(
            archive, [{"customer_id": "u", "deleted_at": AT, "plan_hash": "0" * 64}], run_id="R9"
        ),
        lambda: write_watch(archive, watch),
    ):
        command = f"gladly-pipeline migrate --root {shlex.quote(str(root))}"
        with pytest.raises(OldLayoutError, match=re.escape(command)):
            attempt()
    assert snapshot(root) == before


def test_a_migrated_archive_takes_new_writes(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path)
    migrate_archive(Archive(root, clock=fixed_clock))
    archive = Archive.open(root, clock=fixed_clock)
    fact = pa.Table.from_pylist(
        [{"conversation_id": "c", "customer_id": "u", "topic_ids": [], "fetched_at": AT}],
        schema=CONVERSATIONS,
    )
    assert append_snapshot(archive, "conversations", fact, run_id="R9") == 1
    assert (root / "conversations" / "run-R9").is_dir()
    assert (
        pc.sum(
            pc.equal(archive.dataset("conversations").to_table()["conversation_id"], "c")
        ).as_py()
        == 1
    )


def _as_previous_release(root: Path) -> None:
    """Make a current archive read as the previous release's: every footer and manifest says
    version 2 (the data is this release's, so what a migration keeps can be compared)."""
    for path in root.rglob("*.parquet"):
        table = pq.read_table(path)
        metadata = dict(table.schema.metadata or {})
        metadata[b"gladly_pipeline.schema_version"] = b"2"
        if "schema_version" in table.column_names and path.parent.name == "_manifest":
            at = table.schema.get_field_index("schema_version")
            table = table.set_column(
                at, table.schema.field(at), pa.array([2] * table.num_rows, pa.int32())
            )
        pq.write_table(table.replace_schema_metadata(metadata), path)


def test_a_redacted_item_keeps_what_its_stub_cannot_give_again(tmp_path: Path) -> None:
    now = datetime(2025, 3, 10, tzinfo=UTC)
    org = Organisation(OrgSpec(customers=20, now=now, years=0.1), SandboxClock(now, frozen=True))
    lines = list(org.export_items(now - timedelta(days=30), now))
    email = next(line for line in lines if line["content"].get("attachments"))
    archive = Archive.open(tmp_path, clock=fixed_clock)
    job = archive.stage_job("J1")
    raw = [json.dumps(line).encode() for line in lines]
    job.write_items(convert_items_lines(raw, job_id="J1", archived_at=AT))
    job.commit()
    redact_items(archive, {email["id"]: email["customerId"]})
    before = {r["item_id"]: r for r in archive.dataset("items").to_table().to_pylist()}
    redacted = before[email["id"]]
    assert redacted["text"] is None
    assert [a["file_size"] for a in redacted["attachments"]] == [
        a["fileSize"] for a in email["content"]["attachments"]
    ]
    _as_previous_release(tmp_path)
    assert plan_migration(Archive(tmp_path)).files["items"] > 0

    migrate_archive(Archive(tmp_path, clock=fixed_clock))
    after = {r["item_id"]: r for r in Archive(tmp_path).dataset("items").to_table().to_pylist()}
    assert after.keys() == before.keys()
    assert after[email["id"]] == redacted  # every stored value kept, attachments' sizes too
    # Every other item is what this release's writer makes of its raw_json.
    names = load_names(Archive(tmp_path).fs, Archive(tmp_path).root)
    again = pa.Table.from_batches(
        [
            derive_items(batch, names)
            for batch in convert_items_lines(
                [json.dumps(line).encode() for line in lines if line["id"] != email["id"]],
                job_id="J1",
                archived_at=AT,
            )
        ]
    )
    assert {r["item_id"]: r for r in again.to_pylist()} == {
        k: v for k, v in after.items() if k != email["id"]
    }


def test_an_archive_of_a_newer_release_is_neither_written_nor_migrated(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path)
    migrate_archive(Archive(root, clock=fixed_clock))
    body = json.loads((root / "_layout.json").read_text())
    body["schema_version"] = SCHEMA_VERSION + 1
    (root / "_layout.json").write_text(json.dumps(body))
    before = snapshot(root)
    archive = Archive(root)
    with pytest.raises(OldLayoutError, match="newer release"):
        check_layout(archive.fs, archive.root)
    with pytest.raises(OldLayoutError, match="newer release"):
        migrate_archive(archive)
    assert snapshot(root) == before
