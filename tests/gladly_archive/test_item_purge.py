"""redact_items / delete_items: the chosen items' words are gone from every byte of the archive,
everything else stays as it was, reruns are no-ops, and a run killed anywhere converges."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from gladly_archive import (
    ITEM_PURGED_DATASETS,
    REDACTED_COLUMNS,
    delete_items,
    items_still_holding_text,
    items_still_present,
    redact_items,
)
from gladly_archive.archive import Archive
from gladly_archive.convert import QuarantinedLine
from gladly_archive.fold import fold_archive
from gladly_archive.fs import ArchiveLockedError
from gladly_archive.schemas import DATASETS
from tests.gladly_archive.test_archive import T0, fixed_clock, item, items_table
from tests.gladly_archive.test_fold import BUCKETS, PARTIAL
from tests.gladly_archive.test_purge import A, B, C, build, files, rows

REPO = Path(__file__).resolve().parents[2]
DAY = timedelta(days=1)
# What people wrote or said in the chosen items: none of it may survive anywhere.
CARD = "4111 1111 1111 1111"
CARD2 = "5500-0000-0000-0004"
EMAIL = "jane.doe.private@example.org"
FILENAME = "scan-of-my-card-7731.png"
NOTE = "door code 86429"
ALONE = "the only words of v9"
NEEDLES = (CARD, CARD2, EMAIL, FILENAME, NOTE, ALONE)

# i50: a chat message with a card number in A's folded conversation m1 (whose transcript sits
# under B, the conversation's latest customer); i51: a call in C's recent conversation v8;
# i52: a customer activity of B alone on its day; i53: the only item of conversation v9.
REDACT = {"i50": A, "i51": C}
DELETE = {"i50": A, "i52": B, "i53": B}
AT_50 = T0 + timedelta(hours=2, minutes=30)
AT_51 = T0 + 5 * DAY + timedelta(hours=1)


class Crash(Exception):
    """Stands in for the process dying at a hook point."""


def seeded_items() -> pa.Table:
    chat = item("i50", "m1", A, AT_50, text=f"my card is {CARD}", job_id="J3")
    chat.update(
        subject=f"card {CARD}",
        from_address=EMAIL,
        to_addresses=[EMAIL, "support@example.com"],
        cc_addresses=[EMAIL],
        bcc_addresses=[EMAIL],
        attachments=[
            {"id": "att-1", "content_type": "image/png", "filename": FILENAME, "file_size": 2048}
        ],
        raw_json=json.dumps(
            {
                "id": "i50",
                "conversationId": "m1",
                "customerId": A,
                "timestamp": "2025-03-01T12:30:00.000Z",
                "initiator": {"id": A, "type": "CUSTOMER"},
                "content": {"type": "CHAT_MESSAGE", "content": f"my card is {CARD}"},
            }
        ),
    )
    call = item(
        "i51", "v8", C, AT_51, content_type="PHONE_CALL", text=f"I read {CARD2}", job_id="J3"
    )
    call.update(
        call_started_at=AT_51,
        call_answered_at=AT_51 + timedelta(seconds=5),
        call_completed_at=AT_51 + timedelta(minutes=3),
        recording_status="AVAILABLE",
        recording_duration_seconds=175,
        recording_summary=f"The caller read out {CARD2} and {EMAIL}",
        raw_json=json.dumps({"id": "i51", "content": {"type": "PHONE_CALL", "summary": CARD2}}),
    )
    activity = item(
        "i52", None, B, T0 + 6 * DAY, content_type="CUSTOMER_ACTIVITY", text=NOTE, job_id="J3"
    )
    activity.update(subject=f"Note: {NOTE}", activity_type="NOTE")
    alone = item("i53", "v9", B, T0 + DAY + timedelta(hours=3), text=ALONE, job_id="J3")
    return items_table([chat, call, activity, alone])


def build_seeded(root: Path) -> None:
    """test_purge's scenario plus the seeded items and a quarantined line naming i50, then a
    fold through day 4: both tiers hold chosen items."""
    build(root)
    archive = Archive.open(root, clock=fixed_clock)
    job = archive.stage_job("J3")
    job.write_items(seeded_items().to_batches())
    line = f'{{"id":"i50","content":{{"content":"my card is {CARD}"'.encode()
    job.write_quarantine(
        "conversation_items.jsonl",
        [QuarantinedLine(7, "bad JSON", line), QuarantinedLine(8, "bad JSON", b'{"id":"i500"')],
    )
    job.commit()
    fold_archive(archive, PARTIAL, buckets=BUCKETS)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("built")
    build_seeded(root)
    return root


@pytest.fixture
def root(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "archive"
    shutil.copytree(built, copy)
    return copy


# -- helpers ------------------------------------------------------------------------------------


def _values(value: Any) -> list[str | bytes]:
    """Every string or bytes inside a decoded Parquet value."""
    if isinstance(value, str | bytes):
        return [value]
    if isinstance(value, dict):
        return [v for inner in value.values() for v in _values(inner)]
    if isinstance(value, list):
        return [v for inner in value for v in _values(inner)]
    return []


def scan_file(root: Path, path: Path, needles: tuple[str, ...]) -> set[tuple[str, str]]:
    """(needle, where) for a needle in the file's raw bytes or, for a Parquet file, in any of
    its decoded values."""
    name = str(path.relative_to(root))
    data = path.read_bytes()
    found = {(n, f"bytes of {name}") for n in needles if n.encode() in data}
    if data[:4] == b"PAR1":
        for value in _values(pq.read_table(path).to_pylist()):
            raw = value.encode() if isinstance(value, str) else value
            found.update((n, f"values of {name}") for n in needles if n.encode() in raw)
    return found


def scan(root: Path, needles: tuple[str, ...] = NEEDLES) -> set[tuple[str, str]]:
    """Every place under the root (hidden and temporary files too) a needle is found."""
    return {
        hit
        for path in sorted(root.rglob("*"))
        if path.is_file()
        for hit in scan_file(root, path, needles)
    }


def table(root: Path, name: str) -> pa.Table:
    return Archive(root).dataset(name).to_table()


def by_id(root: Path, name: str, key: str) -> dict[str, dict[str, Any]]:
    return {r[key]: r for r in table(root, name).to_pylist()}


def snapshot(root: Path) -> dict[str, Any]:
    """Everything a converged run must leave the same."""
    state: dict[str, Any] = {
        name: rows(table(root, name))
        for name in ("items", "transcripts", "customers", "_quarantine")
    }
    index = table(root, "_index/customer_files")
    listed = zip(index["customer_id"].to_pylist(), index["path"].to_pylist(), strict=True)
    state["index"] = sorted(set(listed))
    assert all((root / p).is_file() for _, p in state["index"])
    state["hidden"] = [p for p in root.rglob(".*") if p.name != ".lock"]
    return state


def without(rows_: list[dict[str, Any]], key: str, ids: set[str]) -> list[dict[str, Any]]:
    """The rows whose ``key`` is not among ``ids``, in a stable order."""
    return sorted((r for r in rows_ if r[key] not in ids), key=repr)


# -- redaction ----------------------------------------------------------------------------------


def test_the_seeded_words_are_readable_before(root: Path) -> None:
    found = scan(root)
    assert {n for n, _ in found} == set(NEEDLES)
    places = {w.split(" of ")[1].split("/")[0] for _, w in found}
    assert {"items", "transcripts", "_quarantine"} <= places
    # The decoded scan sees every one; the raw byte scan some (pages zstd left readable, and
    # statistics of the columns that keep them: free text has none, writer.parquet_options).
    assert {n for n, w in found if w.startswith("values of ")} == set(NEEDLES)
    assert {n for n, w in found if w.startswith("bytes of ")} >= {CARD, EMAIL, FILENAME}
    # Both tiers hold chosen items: i50 in A's folded bucket, i51 in a recent day.
    assert "i50" in pq.read_table(folded_of(root, A))["item_id"].to_pylist()
    recent = pq.read_table(root / "items" / "2025-03-06")["item_id"].to_pylist()
    assert "i51" in recent


def folded_of(root: Path, customer: str) -> Path:
    index = table(root, "_index/customer_files").to_pylist()
    return next(
        root / r["path"]
        for r in index
        if r["customer_id"] == customer and r["path"].startswith("items/folded/")
    )


def test_redaction_leaves_the_words_nowhere_and_everything_else_as_it_was(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    before_items = table(root, "items").to_pylist()
    before_transcripts = by_id(root, "transcripts", "conversation_id")
    before_quarantine = table(root, "_quarantine").to_pylist()
    old = {r["item_id"]: r for r in before_items}

    report = redact_items(archive, REDACT)

    assert not {(n, w) for n, w in scan(root) if n in (CARD, CARD2, EMAIL, FILENAME)}
    items = by_id(root, "items", "item_id")
    # Every other item row is exactly as it was.
    assert without(list(items.values()), "item_id", set(REDACT)) == without(
        before_items, "item_id", set(REDACT)
    )
    for item_id in REDACT:
        new, was = items[item_id], old[item_id]
        for name in REDACTED_COLUMNS:
            assert new[name] is None, (item_id, name)
        kept = set(new) - {*REDACTED_COLUMNS, "raw_json", "attachments"}
        assert {k: new[k] for k in kept} == {k: was[k] for k in kept}
        stub = json.loads(new["raw_json"])
        assert stub["redacted"] is True
        assert set(stub) <= {
            "id",
            "conversationId",
            "customerId",
            "timestamp",
            "content",
            "redacted",
        }
        assert stub["id"] == item_id
        assert stub["customerId"] == was["customer_id"]
        assert stub["content"] == {"type": was["content_type"]}
    assert items["i50"]["attachments"] == [
        {"id": None, "content_type": "image/png", "filename": None, "file_size": 2048}
    ]
    assert json.loads(items["i50"]["raw_json"])["timestamp"] == "2025-03-01T12:30:00.000Z"
    assert json.loads(items["i50"]["raw_json"])["conversationId"] == "m1"
    call = items["i51"]
    assert (call["call_started_at"], call["recording_duration_seconds"]) == (AT_51, 175)
    assert call["recording_status"] == "AVAILABLE"

    transcripts = by_id(root, "transcripts", "conversation_id")
    assert set(transcripts) == set(before_transcripts)
    for conv, row in before_transcripts.items():
        if conv not in ("m1", "v8"):
            assert transcripts[conv] == row, conv
    for conv, line in (
        ("m1", "2025-03-01T12:30:00Z · Chat · Customer · [attachments: image/png]"),
        (
            "v8",
            "2025-03-06T11:00:00Z · Phone call · Customer · "
            "Phone call, 2m 55s, recording available",
        ),
    ):
        was, now = before_transcripts[conv], transcripts[conv]
        old_lines, new_lines = was["transcript"].split("\n"), now["transcript"].split("\n")
        assert line in new_lines
        assert [x for x in new_lines if x != line] == [
            x for x in old_lines if CARD not in x and CARD2 not in x
        ]
        assert now["item_count"] == was["item_count"]
        assert now["customer_id"] == was["customer_id"]
    # The quarantined line naming i50 is gone; the one naming i500 stays.
    quarantine = table(root, "_quarantine").to_pylist()
    assert [r for r in before_quarantine if r not in quarantine] == [
        r for r in before_quarantine if r["line_number"] == 7
    ]

    assert report.action == "redact"
    assert (report.items, report.items_changed, report.items_already_done) == (2, 2, 0)
    assert report.not_found == []
    assert (report.transcripts_rebuilt, report.transcripts_removed) == (2, 0)
    assert report.rows_changed == {
        "transcripts": 2,
        "items": 2,
        "_quarantine": 1,
        "_index/customer_files": 0,
    }
    assert set(report.files_rewritten) == set(ITEM_PURGED_DATASETS)
    assert report.files_rewritten["items"] == 2
    assert not any(report.files_deleted.values())
    # The other words (the activity, v9) were not asked for and stay.
    assert {n for n, _ in scan(root)} == {NOTE, ALONE}


def test_only_the_files_holding_the_items_change(root: Path) -> None:
    before = files(root)
    holders = {
        path
        for path in before
        if {CARD, CARD2} & {n for n, _ in scan_file(root, root / path, (CARD, CARD2))}
    }
    redact_items(Archive(root, clock=fixed_clock), REDACT)
    after = files(root)
    assert set(after) == set(before)
    assert {p for p in before if after[p] != before[p]} == holders
    assert {p.split("/")[0] for p in holders} == {"items", "transcripts", "_quarantine"}


def test_rewritten_files_keep_schema_metadata_and_compression(root: Path) -> None:
    path = folded_of(root, A)
    old = pq.ParquetFile(path)
    schema, codec = old.schema_arrow, old.metadata.row_group(0).column(0).compression
    redact_items(Archive(root, clock=fixed_clock), REDACT)
    new = pq.ParquetFile(path)
    assert new.schema_arrow.equals(schema, check_metadata=True)
    assert new.metadata.row_group(0).column(0).compression == codec


def test_a_second_redaction_is_a_no_op(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    assert items_still_holding_text(archive, {**REDACT, "nope": A, "": A}) == {"i50", "i51"}
    redact_items(archive, REDACT)
    once = files(root)
    assert items_still_holding_text(archive, REDACT) == set()
    again = redact_items(archive, REDACT)
    assert files(root) == once
    assert (again.items_changed, again.items_already_done) == (0, 2)
    assert not any(again.rows_changed.values())
    assert not any(again.files_rewritten.values())


def test_unknown_items_and_an_empty_mapping_change_nothing(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    before = files(root)
    report = redact_items(archive, {"nobody-item": A, "i51": A})  # i51 is C's, not A's
    assert report.not_found == ["i51", "nobody-item"]
    assert redact_items(archive, {}).items == 0
    assert delete_items(archive, {"nobody-item": B}).not_found == ["nobody-item"]
    assert files(root) == before


# -- deletion -----------------------------------------------------------------------------------


def test_deletion_removes_the_rows_and_rebuilds_or_drops_their_transcripts(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    before_items = table(root, "items").to_pylist()
    before_transcripts = by_id(root, "transcripts", "conversation_id")
    assert items_still_present(archive, {**DELETE, "nope": B}) == set(DELETE)

    report = delete_items(archive, DELETE)

    items = table(root, "items").to_pylist()
    assert rows(pa.Table.from_pylist(items)) == without(before_items, "item_id", set(DELETE))
    transcripts = by_id(root, "transcripts", "conversation_id")
    assert set(transcripts) == set(before_transcripts) - {"v9"}
    for conv, row in before_transcripts.items():
        if conv not in ("m1", "v9"):
            assert transcripts[conv] == row, conv
    m1 = transcripts["m1"]
    assert m1["item_count"] == before_transcripts["m1"]["item_count"] - 1
    assert m1["transcript"].split("\n") == [
        x for x in before_transcripts["m1"]["transcript"].split("\n") if CARD not in x
    ]
    # Day 7 held only the activity: its file is gone, and no index row names it.
    assert not list((root / "items" / "2025-03-07").glob("*.parquet"))
    index = table(root, "_index/customer_files")["path"].to_pylist()
    assert not [p for p in index if p.startswith("items/2025-03-07/")]
    assert all((root / p).is_file() for p in index)
    # The card (i50), the note (i52), v9's words (i53): gone; only the call's (not asked) stay.
    assert {n for n, _ in scan(root)} == {CARD2, EMAIL}
    assert items_still_present(archive, DELETE) == set()

    assert report.action == "delete"
    assert (report.items, report.items_changed) == (3, 3)
    assert (report.transcripts_rebuilt, report.transcripts_removed) == (1, 1)
    assert report.files_deleted["items"] == 1
    assert report.rows_changed["_index/customer_files"] >= 1
    assert report.rows_changed["_quarantine"] == 1

    once = files(root)
    again = delete_items(archive, DELETE)
    assert files(root) == once
    assert again.items_changed == 0
    assert again.not_found == sorted(DELETE)
    assert not any(again.files_rewritten.values())


def test_deleting_a_conversations_only_item_drops_its_transcript_alone(root: Path) -> None:
    # No other transcript changes: the run rebuilds none (found by the random histories of
    # test_facts_refresh, where it raised a type error on the empty list of rebuilt rows).
    archive = Archive(root, clock=fixed_clock)
    before = by_id(root, "transcripts", "conversation_id")
    report = delete_items(archive, {"i53": B})
    after = by_id(root, "transcripts", "conversation_id")
    assert set(after) == set(before) - {"v9"}
    assert all(after[conv] == row for conv, row in before.items() if conv != "v9")
    assert (report.transcripts_rebuilt, report.transcripts_removed) == (0, 1)
    assert ALONE not in {n for n, _ in scan(root)}


def test_deleting_after_redacting_leaves_no_trace(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    redact_items(archive, REDACT)
    delete_items(archive, {"i50": A})
    assert "i50" not in by_id(root, "items", "item_id")
    assert not {(n, w) for n, w in scan(root) if n in (CARD, CARD2, EMAIL, FILENAME)}


# -- readers, lock, logs, recovery ----------------------------------------------------------


@pytest.mark.parametrize("action", ["redact", "delete"])
def test_every_dataset_reads_with_a_duckdb_glob_afterwards(root: Path, action: str) -> None:
    archive = Archive(root, clock=fixed_clock)
    if action == "redact":
        redact_items(archive, REDACT)
    else:
        delete_items(archive, DELETE)
    for name in DATASETS:
        if not (root / name).exists():
            continue
        glob = str(root / name / "**" / "*.parquet")
        got = duckdb.execute("SELECT count(*) FROM read_parquet(?)", [glob]).fetchone()
        assert got == (archive.dataset(name).count_rows(),), name
    glob = str(root / "items" / "**" / "*.parquet")
    stubs = duckdb.execute(
        "SELECT item_id, json_extract_string(raw_json, '$.content.type'), "
        "json_extract(raw_json, '$.redacted') FROM read_parquet(?) "
        "WHERE item_id IN ('i50', 'i51') ORDER BY item_id",
        [glob],
    ).fetchall()
    if action == "redact":
        assert stubs == [("i50", "CHAT_MESSAGE", "true"), ("i51", "PHONE_CALL", "true")]
    else:
        assert stubs == [("i51", "PHONE_CALL", None)]


def test_a_redaction_refuses_while_another_writer_holds_the_lock(root: Path) -> None:
    archive = Archive(root)
    held = archive.lock()
    held.acquire()
    try:
        before = files(root)
        with pytest.raises(ArchiveLockedError):
            redact_items(archive, REDACT)
        with pytest.raises(ArchiveLockedError):
            delete_items(archive, DELETE)
        assert files(root) == before
    finally:
        held.release()


def test_logs_carry_counts_never_the_words(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="gladly_archive"):
        redact_items(Archive(root, clock=fixed_clock), REDACT)
        delete_items(Archive(root, clock=fixed_clock), DELETE)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "redact_items: 2 item(s); 2 changed" in text
    assert "delete_items: 3 item(s); 3 changed" in text
    for secret in (*NEEDLES, "my card", "words of", "@example"):
        assert secret not in text


def test_an_interrupted_commit_is_finished_before_the_redaction(root: Path) -> None:
    def crash(at: str) -> None:
        if at == "moved:1":
            raise Crash(at)

    archive = Archive(root, crash_hook=crash, clock=fixed_clock)
    job = archive.stage_job("J4")
    late = item("i60", "v6", A, T0 + 4 * DAY + timedelta(hours=5), text=CARD, job_id="J4")
    job.write_items(items_table([late]).to_batches())
    with pytest.raises(Crash):
        job.commit()
    redact_items(Archive(root, clock=fixed_clock), {"i60": A})
    assert "J4" in Archive(root).archived_job_ids()
    assert by_id(root, "items", "item_id")["i60"]["text"] is None
    assert (
        "· Customer · [Chat]" in by_id(root, "transcripts", "conversation_id")["v6"]["transcript"]
    )


def test_a_redaction_works_on_a_non_local_filesystem() -> None:
    fs, _ = pafs.FileSystem.from_uri("mock:///")
    archive = Archive.open("archive", filesystem=fs, clock=fixed_clock)
    job = archive.stage_job("J1")
    job.write_items(items_table([item("i1", "v1", A, T0, text=CARD)]).to_batches())
    job.commit()
    report = redact_items(archive, {"i1": A})
    assert report.items_changed == 1
    assert items_still_holding_text(archive, {"i1": A}) == set()
    assert CARD not in archive.dataset("transcripts").to_table()["transcript"][0].as_py()


# -- crashes ------------------------------------------------------------------------------------

RUNS = {"redact": (redact_items, REDACT), "delete": (delete_items, DELETE)}


@pytest.fixture(scope="module")
def references(built: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each uninterrupted run's result and the hook points it passes."""
    out = {}
    for action, (run, mapping) in RUNS.items():
        root = tmp_path_factory.mktemp(f"reference-{action}") / "archive"
        shutil.copytree(built, root)
        points: list[str] = []
        run(Archive(root, crash_hook=points.append, clock=fixed_clock), mapping)
        out[action] = (snapshot(root), points, scan(root))
    return out


@pytest.mark.parametrize("action", ["redact", "delete"])
def test_a_crash_at_any_point_then_a_rerun_converges(
    built: Path, tmp_path: Path, references: dict[str, Any], action: str
) -> None:
    run, mapping = RUNS[action]
    expected, points, left = references[action]
    assert any(p.endswith(":written") for p in points)
    assert {p.split(":")[1] for p in points} >= {"transcripts", "items", "_quarantine"}
    for number, point in enumerate(points):
        root = tmp_path / f"crash-{number}"
        shutil.copytree(built, root)

        def crash(at: str, point: str = point) -> None:
            if at == point:
                raise Crash(at)

        with pytest.raises(Crash):
            run(Archive(root, crash_hook=crash, clock=fixed_clock), mapping)
        # Interrupted: whole files only, still readable, no temporary file left but a key
        # file's (killed between it and its rename: hidden from readers, removed by the next
        # writer).
        hidden = [p for p in root.rglob(".*") if p.name != ".lock"]
        assert not [p for p in hidden if p.parent.name != "_index"], point
        Archive(root).dataset("items").to_table()
        run(Archive(root, clock=fixed_clock), mapping)
        assert not [p for p in root.rglob(".*") if p.name != ".lock"], point
        assert snapshot(root) == expected, point
        assert scan(root) == left, point
        again = files(root)
        run(Archive(root, clock=fixed_clock), mapping)
        assert files(root) == again, point


_CHILD = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from gladly_archive import Archive, delete_items, redact_items
from tests.gladly_archive.test_archive import fixed_clock
def hook(reached):
    if reached == sys.argv[3]:
        os.kill(os.getpid(), signal.SIGKILL)
run = redact_items if sys.argv[2] == "redact" else delete_items
run(Archive(Path(sys.argv[1]), crash_hook=hook, clock=fixed_clock), {mapping})
"""


@pytest.mark.parametrize(
    ("action", "point"),
    [
        ("redact", "redact:transcripts:1:written"),
        ("redact", "redact:items:3:written"),
        ("delete", "delete:items:2:written"),  # the file left empty, about to be deleted
        ("delete", "delete:_index/customer_files:6:written"),
    ],
)
def test_a_killed_run_converges_on_rerun(
    root: Path, references: dict[str, Any], action: str, point: str
) -> None:
    run, mapping = RUNS[action]
    expected, points, left = references[action]
    assert point in points
    script = _CHILD.format(repo=str(REPO), mapping=repr(mapping))
    child = subprocess.run(
        [sys.executable, "-c", script, str(root), action, point],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    # What a real kill leaves: a dead process's lock, and, killed inside a rewrite, the new
    # file under its hidden temporary name beside the old one.
    lock = root / "_staging" / ".lock"
    assert int(lock.read_text()) not in (0, os.getpid())
    hidden = [p for p in root.rglob(".*") if p.name != ".lock"]
    assert bool(hidden) == point.endswith(":written")
    run(Archive(root, clock=fixed_clock), mapping)
    assert not lock.exists()
    assert snapshot(root) == expected
    assert scan(root) == left


def test_reruns_report_what_is_left_after_a_crash(built: Path, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    shutil.copytree(built, root)

    def crash(at: str) -> None:
        if at == "redact:items:3":  # transcripts done, one item file of two
            raise Crash(at)

    with pytest.raises(Crash):
        redact_items(Archive(root, crash_hook=crash, clock=fixed_clock), REDACT)
    left = items_still_holding_text(Archive(root), REDACT)
    assert left == {"i50"}  # i51's recent day file came first
    report = redact_items(Archive(root, clock=fixed_clock), REDACT)
    assert (report.items_changed, report.items_already_done) == (1, 1)
    assert report.transcripts_rebuilt == 0  # already rebuilt before the crash
    assert items_still_holding_text(Archive(root), REDACT) == set()


def test_timestamps_in_the_stub_keep_microseconds_when_there_are_some(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    at = datetime(2025, 3, 6, 9, 0, 0, 123456, tzinfo=UTC)
    job = archive.stage_job("J5")
    job.write_items(items_table([item("i70", "v8", C, at, text=CARD, job_id="J5")]).to_batches())
    job.commit()
    redact_items(archive, {"i70": C})
    stub = json.loads(by_id(root, "items", "item_id")["i70"]["raw_json"])
    assert stub == {
        "id": "i70",
        "conversationId": "v8",
        "customerId": C,
        "timestamp": "2025-03-06T09:00:00.123456Z",
        "content": {"type": "CHAT_MESSAGE"},
        "redacted": True,
    }
