"""Archive and StagedJob: layout, manifest, dedupe, refusal of reruns, quarantine, index, roots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

import gladly_archive.merge as merge
from gladly_archive.archive import Archive, JobAlreadyArchivedError
from gladly_archive.convert import QuarantinedLine
from gladly_archive.fs import ArchiveError, ArchiveLockedError
from gladly_archive.item_derive import CHANNELS
from gladly_archive.merge import COMPACT_MIN_FILES
from gladly_archive.purge import purge_customers
from gladly_archive.recent_keys import RECENT_KEYS_NAME
from gladly_archive.schemas import AGENTS, CUSTOMERS, ITEMS, SCHEMA_VERSION, TOPICS
from gladly_archive.writer import SchemaMismatchError

# -- builders shared by the archive tests (imported by the other test modules) ----------------

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
ARCHIVED_AT = datetime(2025, 3, 5, tzinfo=UTC)
_ITEM_DEFAULTS: dict[str, Any] = {f.name: None for f in ITEMS}


def item(
    item_id: str,
    conversation_id: str | None,
    customer_id: str,
    at: datetime,
    *,
    text: str | None = "hello",
    initiator_type: str | None = "CUSTOMER",
    content_type: str = "CHAT_MESSAGE",
    job_id: str = "J1",
    agent_name: str | None = None,
) -> dict[str, Any]:
    """One ITEMS row with the columns transcripts and dedupe care about; an AGENT item's agent
    is ``a1`` (named ``agent_name``)."""
    row = dict(_ITEM_DEFAULTS)
    agent = initiator_type == "AGENT"
    row.update(
        channel=CHANNELS.get(content_type, content_type),
        internal=content_type == "CONVERSATION_NOTE",
        initiator_id="a1" if agent else customer_id,
        agent_id="a1" if agent else None,
        agent_name=agent_name if agent else None,
        item_id=item_id,
        conversation_id=conversation_id,
        customer_id=customer_id,
        timestamp=at,
        date=at.astimezone(UTC).date(),
        initiator_type=initiator_type,
        content_type=content_type,
        text=text,
        raw_json=json.dumps({"id": item_id, "content": {"type": content_type}}),
        job_id=job_id,
        archived_at=ARCHIVED_AT,
    )
    return row


def items_table(rows: list[dict[str, Any]]) -> pa.Table:
    """An ITEMS table from item() rows."""
    return pa.Table.from_pylist(rows, schema=ITEMS)


def customers_table(customer_ids: list[str], job_id: str) -> pa.Table:
    """A CUSTOMERS table with one synthetic record per id."""
    return pa.Table.from_pylist(
        [
            {
                "customer_id": cid,
                "name": f"Customer {cid}",
                "emails": [f"{cid}@example.com"],
                "phones": [],
                "raw_json": json.dumps({"id": cid}),
                "job_id": job_id,
                "archived_at": ARCHIVED_AT,
            }
            for cid in customer_ids
        ],
        schema=CUSTOMERS,
    )


def agents_table(job_id: str) -> pa.Table:
    """Two agents."""
    rows = [
        {"agent_id": f"a{n}", "raw_json": "{}", "job_id": job_id, "archived_at": ARCHIVED_AT}
        for n in range(2)
    ]
    return pa.Table.from_pylist(rows, schema=AGENTS)


def topics_table(job_id: str) -> pa.Table:
    """Three topics."""
    rows = [
        {"topic_id": f"t{n}", "raw_json": "{}", "job_id": job_id, "archived_at": ARCHIVED_AT}
        for n in range(3)
    ]
    return pa.Table.from_pylist(rows, schema=TOPICS)


def fixed_clock() -> datetime:
    """The archive's clock in tests."""
    return ARCHIVED_AT


def item_texts(archive: Archive) -> list[tuple[str, str | None]]:
    """Sorted (item_id, text) of every item in the archive."""
    table = archive.dataset("items").to_table(columns=["item_id", "text"])
    return sorted(zip(table["item_id"].to_pylist(), table["text"].to_pylist(), strict=True))


def all_files(root: Path) -> list[str]:
    """Every file under root, relative, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def archive_job(archive: Archive, job_id: str, rows: list[dict[str, Any]], **kw: Any) -> Any:
    """Stage and commit one job of items."""
    job = archive.stage_job(job_id, **kw)
    job.write_items(items_table(rows).to_batches())
    return job.commit()


# -- tests -------------------------------------------------------------------------------------


def test_commit_puts_every_dataset_in_its_final_layout(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path, clock=fixed_clock)
    job = archive.stage_job("J1")
    rows = [item("i1", "c1", "u1", T0), item("i2", "c2", "u2", T0 + timedelta(days=1))]
    job.write_items(items_table(rows).to_batches())
    job.write_customers(customers_table(["u1", "u2"], "J1").to_batches())
    job.write_agents(agents_table("J1").to_batches())
    job.write_topics(topics_table("J1").to_batches())
    job.write_quarantine("conversation_items.jsonl", [QuarantinedLine(3, "not JSON", b"{oops")])
    result = job.commit()

    files = all_files(tmp_path)
    assert "items/2025-03-01/part-J1-0.parquet" in files
    assert "items/2025-03-02/part-J1-1.parquet" in files
    assert "customers/job-J1/part-J1-0.parquet" in files
    assert "agents/job-J1/part-J1-0.parquet" in files
    assert "topics/job-J1/part-J1-0.parquet" in files
    assert "_quarantine/job-J1/part-J1-0.parquet" in files
    assert "_manifest/job_id=J1.parquet" in files
    assert any(f.startswith("_index/customer_files/part-J1-") for f in files)
    assert {f.split("/")[1] for f in files if f.startswith("transcripts/")} == {"recent"}
    # Nothing left in staging but the lock directory; no temporary files anywhere.
    assert not [f for f in files if f.startswith("_staging/")]
    assert not [f for f in files if Path(f).name.startswith(".")]
    # The data files are the job's; the recent tier's key file is a cache (recent_keys).
    assert RECENT_KEYS_NAME in files
    assert sorted(result.files_written) == sorted(
        f for f in files if not f.startswith("_manifest/") and f != RECENT_KEYS_NAME
    )
    assert result.rows_by_dataset == {
        "items": 2,
        "customers": 2,
        "agents": 2,
        "topics": 3,
        "transcripts": 2,
        "_quarantine": 1,
    }
    assert archive.archived_job_ids() == {"J1"}


def test_a_jobs_transcripts_go_to_one_file_of_the_recent_tier(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    items = [item(f"i{n}", f"conv-{n}", "u1", T0) for n in range(40)]
    archive_job(archive, "J1", items)
    (written,) = (tmp_path / "transcripts" / "recent").glob("*.parquet")
    rows = pq.read_table(written).column("conversation_id").to_pylist()
    assert sorted(rows) == sorted(f"conv-{n}" for n in range(40))


def test_manifest_records_the_job_figures(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path, clock=fixed_clock)
    start, end = T0, T0 + timedelta(days=1)
    updated = T0 + timedelta(days=1, hours=2)
    job = archive.stage_job(
        "J7", kind="export_job", window_start=start, window_end=end, job_updated_at=updated
    )
    job.write_items(items_table([item("i1", "c1", "u1", T0)]).to_batches())
    job.write_quarantine("conversation_items.jsonl", [QuarantinedLine(2, "bad", b"x")] * 2)
    job.record_file(
        "conversation_items.jsonl", rows_written=1, lines_read=3, bytes_read=321, sha256="ab" * 32
    )
    job.commit()

    manifest = archive.read_manifest().to_pylist()
    assert manifest == [
        {
            "job_id": "J7",
            "kind": "export_job",
            "window_start": start,
            "window_end": end,
            "job_updated_at": updated,
            "files": [
                {
                    "name": "conversation_items.jsonl",
                    "rows_written": 1,
                    "lines_read": 3,
                    "bytes_read": 321,
                    "sha256": "ab" * 32,
                }
            ],
            "quarantined_lines": 2,
            "archived_at": ARCHIVED_AT,
            "schema_version": SCHEMA_VERSION,
        }
    ]


def test_latest_copy_of_an_item_wins_across_jobs(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    archive_job(archive, "J1", [item("i1", "c1", "u1", T0, text="old"), item("i2", "c1", "u1", T0)])
    result = archive_job(
        archive,
        "J2",
        [item("i1", "c1", "u1", T0, text="new", job_id="J2"), item("i3", "c1", "u1", T0)],
    )
    assert item_texts(archive) == [("i1", "new"), ("i2", "hello"), ("i3", "hello")]
    assert result.duplicates_replaced == 1
    # The replaced file is gone; its surviving row lives on in a file of the second job.
    assert not (tmp_path / "items/2025-03-01/part-J1-0.parquet").exists()
    transcript = archive.dataset("transcripts").to_table()["transcript"].to_pylist()
    assert transcript == [
        "2025-03-01T10:00:00Z · Chat · Customer · new\n"
        "2025-03-01T10:00:00Z · Chat · Customer · hello\n"
        "2025-03-01T10:00:00Z · Chat · Customer · hello"
    ]


def test_last_copy_of_an_item_wins_within_a_job(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    job = archive.stage_job("J1")
    job.write_items(
        items_table(
            [item("i1", "c1", "u1", T0, text="first"), item("i2", "c1", "u1", T0)]
        ).to_batches()
    )
    job.write_items(items_table([item("i1", "c1", "u1", T0, text="second")]).to_batches())
    job.write_items(items_table([item("i1", "c1", "u1", T0, text="third")]).to_batches())
    result = job.commit()
    assert item_texts(archive) == [("i1", "third"), ("i2", "hello")]
    assert result.duplicates_replaced == 2
    assert result.rows_by_dataset["items"] == 2


def test_recover_cleans_leftover_staging_of_an_archived_job(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    archive_job(archive, "J1", [item("i1", "c1", "u1", T0)])
    leftover = tmp_path / "_staging" / "J1" / "items" / "2025-03-01"
    leftover.mkdir(parents=True)
    (leftover / "part-J1-0.parquet").write_bytes(b"stale")
    assert archive.recover() == []
    assert not (tmp_path / "_staging" / "J1").exists()
    assert item_texts(archive) == [("i1", "hello")]


def test_small_files_are_merged_once_enough_gather(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    partition = tmp_path / "items" / "2025-03-01"
    counts = []
    for n in range(12):
        archive_job(archive, f"J{n}", [item(f"i{n}", "c1", "u1", T0 + timedelta(minutes=n))])
        counts.append(len(list(partition.glob("*.parquet"))))
    # One file per job until eight small files gather; the ninth job merges them into one.
    assert counts == [1, 2, 3, 4, 5, 6, 7, 8, 2, 3, 4, 5]
    assert [i for i, _ in item_texts(archive)] == sorted(f"i{n}" for n in range(12))
    assert len(list((tmp_path / "transcripts").rglob("*.parquet"))) <= 8
    assert len(list((tmp_path / "_index" / "customer_files").glob("*.parquet"))) <= 8
    _index_matches_files(archive, tmp_path)


def test_rerunning_an_archived_job_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    archive_job(archive, "J1", [item("i1", "c1", "u1", T0)])
    before = {p: (tmp_path / p).stat().st_mtime_ns for p in all_files(tmp_path)}
    with pytest.raises(JobAlreadyArchivedError, match="J1"):
        archive.stage_job("J1")
    assert {p: (tmp_path / p).stat().st_mtime_ns for p in all_files(tmp_path)} == before
    # The refusal released the lock: another job can be staged.
    archive.stage_job("J2").abort()


def test_quarantined_lines_are_readable_with_their_origin(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path, clock=fixed_clock)
    job = archive.stage_job("J1")
    lines = [QuarantinedLine(4, "not JSON", b"{bad"), QuarantinedLine(9, "no id", b'{"a":1}')]
    assert job.write_quarantine("conversation_items.jsonl", lines) == 2
    result = job.commit()
    assert result.quarantined == 2
    table = archive.dataset("_quarantine").to_table().sort_by("line_number")
    assert table.to_pylist() == [
        {
            "job_id": "J1",
            "file_name": "conversation_items.jsonl",
            "line_number": 4,
            "error": "not JSON",
            "raw_line": b"{bad",
            "quarantined_at": ARCHIVED_AT,
        },
        {
            "job_id": "J1",
            "file_name": "conversation_items.jsonl",
            "line_number": 9,
            "error": "no id",
            "raw_line": b'{"a":1}',
            "quarantined_at": ARCHIVED_AT,
        },
    ]


def _index_matches_files(archive: Archive, root: Path) -> None:
    """Every indexed file that exists holds its customer; every customer's file is indexed.

    Rows of files deleted since are allowed (readers skip them; merge.update_index)."""
    index = archive.dataset("_index/customer_files").to_table().to_pylist()
    rows = [(r["customer_id"], r["dataset"], r["path"]) for r in index]
    assert len(set(rows)) == len(rows), "index rows are unique"
    indexed = {row for row in rows if (root / row[2]).is_file()}
    actual = set()
    for dataset in ("items", "customers", "transcripts"):
        for path in sorted((root / dataset).rglob("*.parquet")):
            customers = pq.read_table(path, columns=["customer_id"])["customer_id"]
            relative = str(path.relative_to(root))
            actual |= {(c, dataset, relative) for c in pc.unique(customers).to_pylist()}
    assert indexed == actual


def test_index_lists_exactly_the_files_holding_each_customer(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    job = archive.stage_job("J1")
    job.write_items(
        items_table(
            [item("i1", "c1", "u1", T0), item("i2", "c2", "u2", T0 + timedelta(days=2))]
        ).to_batches()
    )
    job.write_customers(customers_table(["u1", "u2"], "J1").to_batches())
    job.commit()
    _index_matches_files(archive, tmp_path)
    index = archive.dataset("_index/customer_files").to_table()
    u2 = index.filter(pc.field("customer_id") == "u2")
    assert sorted(u2["dataset"].to_pylist()) == ["customers", "items", "transcripts"]
    assert "items/2025-03-03/part-J1-1.parquet" in u2["path"].to_pylist()


def test_a_big_jobs_index_rows_are_written_a_batch_at_a_time_sorted_by_customer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Forty customers over twenty day files, written five index rows at a time: the rows
    # still list exactly each file's customers, in customer order across the batches.
    monkeypatch.setattr(merge, "INDEX_BATCH_ROWS", 5)
    archive = Archive.open(tmp_path)
    job = archive.stage_job("J1")
    rows = [
        item(f"i{n}", f"c{n}", f"u{(n * 7) % 40:02d}", T0 + timedelta(days=n % 20, minutes=n))
        for n in range(120)
    ]
    job.write_items(items_table(rows).to_batches())
    job.commit()
    _index_matches_files(archive, tmp_path)
    (index_file,) = (tmp_path / "_index" / "customer_files").glob("*.parquet")
    metadata = pq.read_metadata(index_file)
    assert metadata.num_row_groups > 5
    customers = pq.read_table(index_file)["customer_id"].to_pylist()
    assert customers == sorted(customers)


def test_index_rows_of_replaced_files_are_skipped_then_dropped(tmp_path: Path) -> None:
    """A commit leaves the rows of the files it replaces (it reads no other index file); the
    purge skips them, and the next merge of small index files or fold drops them."""
    archive = Archive.open(tmp_path)
    archive_job(archive, "J1", [item("i1", "c1", "u1", T0), item("i2", "c2", "u2", T0)])
    archive_job(archive, "J2", [item("i1", "c1", "u1", T0, text="edited", job_id="J2")])
    replaced = "items/2025-03-01/part-J1-0.parquet"
    paths = archive.dataset("_index/customer_files").to_table()["path"].to_pylist()
    assert replaced in paths
    assert not (tmp_path / replaced).exists()
    _index_matches_files(archive, tmp_path)
    report = purge_customers(archive, ["u1"])
    assert report.rows_removed["items"] == 1
    index = archive.dataset("_index/customer_files").to_table()
    assert "u1" not in index["customer_id"].to_pylist()
    # Up to the commit that finds COMPACT_MIN_FILES small index files and merges them.
    for number in range(3, 2 + COMPACT_MIN_FILES):
        day = T0 + timedelta(days=number)
        archive_job(archive, f"J{number}", [item(f"i{number}", f"c{number}", "u3", day)])
    assert len(list((tmp_path / "_index" / "customer_files").iterdir())) == 1, "merged"
    paths = archive.dataset("_index/customer_files").to_table()["path"].to_pylist()
    assert all((tmp_path / p).exists() for p in paths), "the merge dropped the rows of gone files"
    _index_matches_files(archive, tmp_path)


def test_file_uri_root_works(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path.as_uri())
    assert isinstance(archive.fs, pafs.LocalFileSystem)
    archive_job(archive, "J1", [item("i1", "c1", "u1", T0)])
    assert (tmp_path / "_manifest" / "job_id=J1.parquet").exists()
    assert item_texts(Archive(str(tmp_path))) == [("i1", "hello")]


def test_s3_uri_is_accepted_without_touching_the_network() -> None:
    # An endpoint nobody listens on: building the archive must do no I/O at all.
    uri = "s3://bucket/gladly?region=eu-west-1&scheme=http&endpoint_override=127.0.0.1:9"
    archive = Archive(uri)
    assert type(archive.fs).__name__ == "S3FileSystem"
    assert archive.root == "bucket/gladly"
    assert archive.path("items") == "bucket/gladly/items"


def test_a_non_local_filesystem_commits_and_reads(tmp_path: Path) -> None:
    fs, _ = pafs.FileSystem.from_uri("mock:///")
    archive = Archive.open("archive", filesystem=fs)
    archive_job(archive, "J1", [item("i1", "c1", "u1", T0), item("i2", "c1", "u1", T0)])
    archive_job(archive, "J2", [item("i1", "c1", "u1", T0, text="x", job_id="J2")])
    assert item_texts(archive) == [("i1", "x"), ("i2", "hello")]
    assert archive.archived_job_ids() == {"J1", "J2"}
    assert archive.dataset("transcripts").count_rows() == 1
    staging = fs.get_file_info(pafs.FileSelector("archive/_staging", allow_not_found=True))
    assert staging == []


def test_a_second_writer_is_refused_while_a_job_is_staged(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    job = archive.stage_job("J1")
    with pytest.raises(ArchiveLockedError, match=str(os.getpid())):
        Archive(tmp_path).stage_job("J2")
    with pytest.raises(ArchiveLockedError):
        Archive.open(tmp_path)
    job.abort()
    Archive(tmp_path).stage_job("J2").abort()


def test_a_stale_lock_of_a_dead_process_is_broken(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    lock = tmp_path / "_staging" / ".lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(dead.stdout.strip())
    archive = Archive.open(tmp_path)
    archive_job(archive, "J1", [item("i1", "c1", "u1", T0)])
    assert not lock.exists()


def test_abort_discards_the_staged_work_and_releases_the_lock(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    job = archive.stage_job("J1")
    job.write_items(items_table([item("i1", "c1", "u1", T0)]).to_batches())
    (job.download_dir / "conversation_items.jsonl").write_text("{}\n")
    job.abort()
    assert not (tmp_path / "_staging" / "J1").exists()
    assert archive.dataset("items").count_rows() == 0
    assert archive.archived_job_ids() == set()
    with pytest.raises(ArchiveError, match="aborted"):
        job.commit()
    archive_job(archive, "J1", [item("i1", "c1", "u1", T0)])
    assert archive.archived_job_ids() == {"J1"}


def test_a_schema_error_fails_the_job_and_frees_the_archive(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    bad = items_table([item("i1", "c1", "u1", T0)]).drop_columns(["subject"])
    with pytest.raises(SchemaMismatchError, match="subject"), archive.stage_job("J1") as job:
        job.write_items(bad.to_batches())
    assert job.state == "aborted"
    assert not (tmp_path / "_staging" / "J1").exists()
    archive_job(archive, "J1", [item("i1", "c1", "u1", T0)])
    assert item_texts(archive) == [("i1", "hello")]


def test_job_ids_unsafe_as_paths_are_rejected_and_gladly_ids_accepted(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    for bad in ("../x", "a/b", "job=1", ".hidden", "", "x" * 201):
        with pytest.raises(ValueError, match="job id"):
            archive.stage_job(bad)
    # Gladly's ids are URL-safe base64 and may start with '-' or '_'.
    for good in ("-Xy_9", "_a-b", "api-20250301T100000-1a2b3c4d"):
        archive_job(archive, good, [item(f"i{good}", "c1", "u1", T0, job_id=good)])
    assert archive.archived_job_ids() == {"-Xy_9", "_a-b", "api-20250301T100000-1a2b3c4d"}
    assert archive.dataset("items").count_rows() == 3


def test_unknown_dataset_names_are_rejected_and_empty_datasets_read(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    with pytest.raises(ValueError, match="unknown dataset"):
        archive.dataset("conversation_notes")
    assert archive.dataset("items").count_rows() == 0
    assert "date" in archive.dataset("items").schema.names
    assert archive.read_manifest().num_rows == 0


def test_state_digest_follows_the_data_files(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    empty = archive.state(("items", "customers"))
    assert archive.state(("items", "customers")) == empty
    (tmp_path / "items" / "2024-01-01").mkdir(parents=True)
    data = tmp_path / "items" / "2024-01-01" / "part-0.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), data)
    one = archive.state(("items", "customers"))
    assert one != empty
    # Staging, hidden files and other datasets do not count.
    (tmp_path / "items" / "_staging").mkdir()
    pq.write_table(pa.table({"x": [1]}), tmp_path / "items" / "_staging" / "tmp.parquet")
    (tmp_path / "agents").mkdir()
    pq.write_table(pa.table({"x": [1]}), tmp_path / "agents" / "a.parquet")
    assert archive.state(("items", "customers")) == one
    pq.write_table(pa.table({"x": [1, 2, 3]}), data)  # rewritten in place: size and time move
    assert archive.state(("items", "customers")) != one
