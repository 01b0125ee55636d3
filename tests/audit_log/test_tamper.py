"""The keyed chain against someone who read the source: forged hashes, edited journals, dropped
runs, the head kept elsewhere, missing logs and an earlier release's unkeyed logs."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from audit_log.writer import AUDIT_EVENTS, GENESIS, AuditError, AuditLog, verify_chain
from gladly_pipeline.cli import app
from tests._console import says
from tests.audit_log._audit import (
    KEY,
    T0,
    audit_log,
    intent,
    journal_dir,
    runs_dir,
    sealed_files,
)

Forge = Callable[[dict[str, Any]], str]
RUN1 = "000001-run1.parquet (run 1, run_id run1)"
RUN2 = "000002-run2.parquet (run 2, run_id run2)"
GENESIS_V1 = hashlib.sha256(b"gladly-pipeline audit log v1").hexdigest()


def canonical(event: dict[str, Any]) -> bytes:
    """The canonical JSON an event's hash covers, as anyone reading the source can write it."""
    body = {name: event[name] for name in AUDIT_EVENTS.names if name != "hash"}
    body["time"] = body["time"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def unkeyed(event: dict[str, Any]) -> str:
    """The hash of release 1: sha256 of the canonical JSON."""
    return hashlib.sha256(canonical(event)).hexdigest()


def keyed_with(key: bytes) -> Forge:
    """The documented construction, under a key of the forger's choosing."""
    chain = hmac.new(key, b"gladly-pipeline audit chain v2", hashlib.sha256).digest()
    return lambda event: hmac.new(chain, canonical(event), hashlib.sha256).hexdigest()


FORGERIES: dict[str, tuple[Forge, str]] = {
    "unkeyed-sha256": (unkeyed, "its hash is an unkeyed sha256 of its content"),
    "hmac-under-a-wrong-key": (
        keyed_with(b"a-guessed-key"),
        "its content no longer matches its keyed hash",
    ),
}


def forge_sealed(root: Path, forge: Forge, *, from_start: bool) -> None:
    """Change run 2's seq 1 from "deleted" to "held", then recompute every hash it touches (or
    every hash of the log) and every footer, as an attacker who read the source would."""
    head = GENESIS
    forging = from_start
    for name in sealed_files(root):
        path = runs_dir(root) / name
        table = pq.ParquetFile(path).read()
        meta = dict(table.schema.metadata)
        rows = table.to_pylist()
        meta[b"gladly_pipeline.audit.prev_run_last_hash"] = head.encode()
        for row in rows:
            if (row["run_id"], row["seq"]) == ("run2", 1):
                assert row["outcome"] == "deleted"
                row["outcome"] = "held"
                forging = True
            row["prev_hash"] = head
            if forging:
                row["hash"] = forge(row)
            head = row["hash"]
        meta[b"gladly_pipeline.audit.last_hash"] = head.encode()
        new = pa.Table.from_pylist(rows, schema=AUDIT_EVENTS).replace_schema_metadata(meta)
        pq.write_table(new, path)


@pytest.mark.parametrize("forgery", list(FORGERIES))
@pytest.mark.parametrize("from_start", [False, True], ids=["from-the-edit", "whole-log"])
def test_a_forged_outcome_with_every_hash_and_footer_recomputed_fails(
    sealed_log: Path, forgery: str, from_start: bool
) -> None:
    forge, why = FORGERIES[forgery]
    forge_sealed(sealed_log, forge, from_start=from_start)
    outcomes = audit_log(sealed_log).events().column("outcome").to_pylist()
    assert outcomes[5] == "held"  # the forgery is in place, its links all consistent
    report = verify_chain(sealed_log, key=KEY)
    assert not report.ok
    assert report.problem is not None
    assert why in report.problem
    if from_start:
        assert f"{RUN1}: seq 0 was altered" in report.problem
        if forgery != "unkeyed-sha256":
            # Nothing verifies: the log was rewritten, or the key is not the log's; say both.
            assert "GLADLY_AUDIT_KEY" in report.problem
        assert (report.runs, report.events) == (0, 0)
    else:
        assert f"{RUN2}: seq 1 was altered" in report.problem
        assert (report.runs, report.events) == (1, 4)


def test_a_log_checked_with_another_key_fails_at_its_first_event(sealed_log: Path) -> None:
    report = verify_chain(sealed_log, key=b"not-the-key")
    assert not report.ok
    assert f"{RUN1}: seq 0 was altered" in str(report.problem)
    assert "another GLADLY_AUDIT_KEY" in str(report.problem)


def test_start_run_refuses_to_extend_a_log_under_another_key(sealed_log: Path) -> None:
    before = sealed_files(sealed_log)
    with pytest.raises(AuditError, match="GLADLY_AUDIT_KEY is not the key") as info:
        AuditLog(sealed_log, key=b"not-the-key").start_run("intruder")
    assert "000003-run3.parquet" in str(info.value)
    assert sealed_files(sealed_log) == before
    assert not (journal_dir(sealed_log) / "intruder.jsonl").exists()
    assert not (sealed_log / "_audit" / "lock").exists()
    assert verify_chain(sealed_log, key=KEY).ok


# -- journals ---------------------------------------------------------------------------------


def open_journal(root: Path, events: int) -> tuple[Path, list[dict[str, Any]]]:
    """A sealed run of two events, then a journal of ``events`` left by a run that died."""
    log = audit_log(root)
    with log.start_run("sealed") as run:
        run.append(**intent(0), outcome="deleted")
        run.append(**intent(1), outcome="deleted")
    run = log.start_run("open")
    written = [run.append(**intent(n), outcome="deleted") for n in range(events)]
    data = run.journal_path.read_bytes()
    run.seal()
    # Undo the seal: the run "died" before it, leaving its journal.
    (runs_dir(root) / "000002-open.parquet").unlink()
    path = journal_dir(root) / "open.jsonl"
    path.write_bytes(data)
    return path, written


def edit_journal(path: Path, line: int, rehash: Forge | None, **values: Any) -> None:
    """Change line ``line`` (1-based); with ``rehash``, re-hash it and re-link what follows."""
    lines = [json.loads(text) for text in path.read_text().splitlines()]
    lines[line - 1].update(values)
    if rehash is not None:
        for number, event in enumerate(lines[line - 1 :], line):
            if number > line:
                event["prev_hash"] = lines[number - 2]["hash"]
            as_read = {**event, "time": datetime.fromisoformat(event["time"])}
            event["hash"] = rehash(as_read)
    path.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in lines))


def test_unsealed_journals_are_verified_continuing_the_chain(tmp_path: Path) -> None:
    _, written = open_journal(tmp_path, 3)
    report = verify_chain(tmp_path, key=KEY)
    assert (report.ok, report.runs, report.events, report.unsealed) == (True, 1, 5, ["open"])
    assert report.last_hash == written[-1]["hash"]
    head = report.head
    assert audit_log(tmp_path).recover() == ["open"]
    sealed = verify_chain(tmp_path, key=KEY)
    assert (sealed.ok, sealed.runs, sealed.events, sealed.unsealed) == (True, 2, 5, [])
    assert sealed.head == head  # sealing changes nothing the head covers


@pytest.mark.parametrize(
    ("rehash", "why"),
    [
        (None, "line 2 was altered: its content no longer matches its keyed hash"),
        (unkeyed, "line 2 was altered: its hash is an unkeyed sha256 of its content"),
    ],
    ids=["edited", "edited-and-rehashed-unkeyed"],
)
def test_an_edited_journal_fails(tmp_path: Path, rehash: Forge | None, why: str) -> None:
    path, _ = open_journal(tmp_path, 3)
    edit_journal(path, 2, rehash, outcome="held")
    report = verify_chain(tmp_path, key=KEY)
    assert not report.ok
    assert "journal open.jsonl (unsealed run open)" in str(report.problem)
    assert why in str(report.problem)
    assert (report.runs, report.events, report.unsealed) == (1, 2, ["open"])


def test_a_damaged_journal_line_before_the_last_fails(tmp_path: Path) -> None:
    path, _ = open_journal(tmp_path, 3)
    lines = path.read_bytes().split(b"\n")
    lines[1] = b"not json"
    path.write_bytes(b"\n".join(lines))
    report = verify_chain(tmp_path, key=KEY)
    assert not report.ok
    assert "open.jsonl line 2 is not JSON" in str(report.problem)


def test_a_journal_that_links_to_nothing_fails(tmp_path: Path) -> None:
    path, _ = open_journal(tmp_path, 2)
    (runs_dir(tmp_path) / "000001-sealed.parquet").unlink()
    report = verify_chain(tmp_path, key=KEY)
    assert not report.ok
    assert "journal open.jsonl (unsealed run open): its first event does not link" in str(
        report.problem
    )
    assert path.exists()


# -- dropped runs and the head kept elsewhere -------------------------------------------------


def test_dropping_the_newest_run_is_seen_only_by_a_kept_head(sealed_log: Path) -> None:
    kept = verify_chain(sealed_log, key=KEY).head
    assert kept.startswith("12-")
    (runs_dir(sealed_log) / "000003-run3.parquet").unlink()
    # Without an outside copy of the head this log is indistinguishable from one whose third
    # run never happened: every remaining event, link and footer still verifies.
    assert verify_chain(sealed_log, key=KEY).ok
    report = verify_chain(sealed_log, key=KEY, expect_head=kept)
    assert not report.ok
    assert report.problem == (
        "the log holds 8 events but the head you kept was taken at 12: the newest events "
        "were removed"
    )


def test_dropping_a_journals_last_event_is_seen_only_by_a_kept_head(tmp_path: Path) -> None:
    path, _ = open_journal(tmp_path, 3)
    kept = verify_chain(tmp_path, key=KEY).head
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-1]))
    # As for a dropped run: a journal one event shorter is a valid chain of its own.
    assert verify_chain(tmp_path, key=KEY).events == 4
    assert verify_chain(tmp_path, key=KEY).ok
    report = verify_chain(tmp_path, key=KEY, expect_head=kept)
    assert not report.ok
    assert "the log holds 4 events but the head you kept was taken at 5" in str(report.problem)


def test_a_grown_log_passes_with_an_older_head(sealed_log: Path) -> None:
    kept = verify_chain(sealed_log, key=KEY).head
    with audit_log(sealed_log).start_run("run4") as run:
        run.append(**intent(9))
    report = verify_chain(sealed_log, key=KEY, expect_head=kept)
    assert (report.ok, report.events) == (True, 13)
    assert report.head != kept
    assert verify_chain(sealed_log, key=KEY, expect_head=report.head).ok


def test_a_head_taken_of_a_log_without_events_is_genesis(tmp_path: Path) -> None:
    with audit_log(tmp_path).start_run("empty"):
        pass
    report = verify_chain(tmp_path, key=KEY)
    assert (report.ok, report.head) == (True, f"0-{GENESIS}")
    with audit_log(tmp_path).start_run("next") as run:
        run.append(**intent(1))
    assert verify_chain(tmp_path, key=KEY, expect_head=report.head).ok
    wrong = verify_chain(tmp_path, key=KEY, expect_head="0-" + "0" * 64)
    assert not wrong.ok
    assert "the log was rewritten" in str(wrong.problem)


def test_a_log_rewritten_with_the_key_is_seen_by_a_kept_head(sealed_log: Path) -> None:
    """Even the key's holder cannot rewrite what a head kept elsewhere covers."""
    kept = verify_chain(sealed_log, key=KEY).head
    forge_sealed(sealed_log, keyed_with(KEY), from_start=False)
    assert verify_chain(sealed_log, key=KEY).ok
    report = verify_chain(sealed_log, key=KEY, expect_head=kept)
    assert not report.ok
    assert "event 12 (in chain order) has another hash" in str(report.problem)
    assert "the log was rewritten since the head was taken" in str(report.problem)


@pytest.mark.parametrize(
    "head",
    ["", "12", "abc-def", f"12-{'0' * 63}", f"12-{'A' * 64}", f"-1-{'0' * 64}", f"x-{GENESIS}"],
)
def test_a_malformed_head_is_reported(sealed_log: Path, head: str) -> None:
    report = verify_chain(sealed_log, key=KEY, expect_head=head)
    assert not report.ok
    assert "the head you kept is not of the form <events>-<hash>" in str(report.problem)


# -- nothing to verify ------------------------------------------------------------------------


@pytest.mark.parametrize("dirs", [(), ("runs", "journal")], ids=["no-audit-dir", "empty"])
def test_a_root_without_an_audit_log_is_not_ok(tmp_path: Path, dirs: tuple[str, ...]) -> None:
    for name in dirs:
        (tmp_path / "_audit" / name).mkdir(parents=True)
    report = verify_chain(tmp_path, key=KEY)
    assert (report.ok, report.runs, report.events) == (False, 0, 0)
    assert report.problem == (
        f"no audit log under {tmp_path.resolve() / '_audit'}: nothing to verify; check --root"
    )


def test_a_root_that_does_not_exist_is_not_ok(tmp_path: Path) -> None:
    report = verify_chain(tmp_path / "missing", key=KEY)
    assert not report.ok
    assert f"{tmp_path.resolve() / 'missing'} does not exist" in str(report.problem)
    afile = tmp_path / "afile"
    afile.write_text("")
    assert "is not a directory" in str(verify_chain(afile, key=KEY).problem)


# -- an earlier release's logs ----------------------------------------------------------------


def write_v1_run(root: Path, number: int, run_id: str, prev: str) -> str:
    """A sealed run as release 1 wrote it (unkeyed sha256 chain); returns its last hash."""
    rows, head = [], prev
    for seq in range(3):
        row = dict.fromkeys(AUDIT_EVENTS.names)
        row.update(intent(seq), outcome="deleted")
        row.update(run_id=run_id, seq=seq, time=T0 + timedelta(seconds=seq), prev_hash=head)
        row["hash"] = head = unkeyed(row)
        rows.append(row)
    meta = {
        b"gladly_pipeline.dataset": b"audit",
        b"gladly_pipeline.schema_version": b"1",
        b"gladly_pipeline.audit.run_id": run_id.encode(),
        b"gladly_pipeline.audit.run_number": str(number).encode(),
        b"gladly_pipeline.audit.prev_run_last_hash": prev.encode(),
        b"gladly_pipeline.audit.last_hash": head.encode(),
        b"gladly_pipeline.audit.event_count": b"3",
    }
    path = runs_dir(root) / f"{number:06d}-{run_id}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=AUDIT_EVENTS).replace_schema_metadata(meta)
    pq.write_table(table, path)
    return head


EARLIER = (
    "was written by an earlier release (audit schema version 1) with an unkeyed hash chain, "
    "which this release cannot vouch for"
)


def test_an_earlier_releases_log_is_refused_by_verify_and_start_run(tmp_path: Path) -> None:
    write_v1_run(tmp_path, 2, "old2", write_v1_run(tmp_path, 1, "old1", GENESIS_V1))
    report = verify_chain(tmp_path, key=KEY)
    assert not report.ok
    assert (report.runs, report.events) == (0, 0)
    assert f"000001-old1.parquet (run 1, run_id old1) {EARLIER}" in str(report.problem)
    assert "start a new archive root" in str(report.problem)
    log = audit_log(tmp_path)
    for attempt in (lambda: log.start_run("new"), log.recover):
        with pytest.raises(AuditError) as info:
            attempt()
        assert f"000001-old1.parquet {EARLIER}" in str(info.value)
        assert "start a new archive root" in str(info.value)
    assert sealed_files(tmp_path) == ["000001-old1.parquet", "000002-old2.parquet"]
    assert not journal_dir(tmp_path).exists()
    assert not (tmp_path / "_audit" / "lock").exists()


def test_an_earlier_release_writing_after_this_one_is_refused(sealed_log: Path) -> None:
    last = verify_chain(sealed_log, key=KEY).last_hash
    write_v1_run(sealed_log, 4, "old", last)
    report = verify_chain(sealed_log, key=KEY)
    assert not report.ok
    assert f"000004-old.parquet (run 4, run_id old) {EARLIER}" in str(report.problem)
    assert (report.runs, report.events) == (3, 12)
    with pytest.raises(AuditError, match=re.escape(f"000004-old.parquet {EARLIER}")):
        audit_log(sealed_log).start_run("new")


def test_an_earlier_releases_journal_is_refused(tmp_path: Path) -> None:
    event = dict.fromkeys(AUDIT_EVENTS.names)
    event.update(intent(0), run_id="old", seq=0, time=T0, prev_hash=GENESIS_V1)
    event["hash"] = unkeyed(event)
    path = journal_dir(tmp_path) / "old.jsonl"
    path.parent.mkdir(parents=True)
    line = {**event, "time": "2025-03-01T10:00:00.000000Z"}
    path.write_text(json.dumps(line, sort_keys=True) + "\n")
    report = verify_chain(tmp_path, key=KEY)
    assert not report.ok
    assert f"journal old.jsonl (unsealed run old) {EARLIER}" in str(report.problem)
    with pytest.raises(AuditError, match=re.escape(f"journal old.jsonl {EARLIER}")):
        audit_log(tmp_path).start_run("new")
    assert path.exists()
    assert sealed_files(tmp_path) == []


# -- the same, through the command line --------------------------------------------------------


def _cli_verify(root: Path, *extra: str) -> Result:
    return CliRunner().invoke(
        app,
        ["audit", "verify", "--root", str(root), *extra],
        env={"GLADLY_AUDIT_KEY": KEY.decode()},
    )


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_audit_verify_refuses_a_forged_outcome(sealed_log: Path, forgery: str) -> None:
    assert _cli_verify(sealed_log).exit_code == 0
    forge, why = FORGERIES[forgery]
    forge_sealed(sealed_log, forge, from_start=True)
    result = _cli_verify(sealed_log)
    assert result.exit_code == 1
    assert says(result.output, "AUDIT CHAIN BROKEN")
    assert says(result.output, why)


def test_audit_verify_refuses_an_edited_journal(tmp_path: Path) -> None:
    path, _ = open_journal(tmp_path, 3)
    assert _cli_verify(tmp_path).exit_code == 0
    edit_journal(path, 2, unkeyed, outcome="held")
    result = _cli_verify(tmp_path)
    assert result.exit_code == 1
    assert says(result.output, "AUDIT CHAIN BROKEN")


def test_audit_verify_with_a_kept_head_sees_a_dropped_run(sealed_log: Path) -> None:
    head = CliRunner().invoke(
        app, ["audit", "head", "--root", str(sealed_log)], env={"GLADLY_AUDIT_KEY": KEY.decode()}
    )
    assert head.exit_code == 0
    (runs_dir(sealed_log) / sealed_files(sealed_log)[-1]).unlink()
    assert _cli_verify(sealed_log).exit_code == 0  # a shorter chain is still a chain
    result = _cli_verify(sealed_log, "--expect-head", head.stdout.strip())
    assert result.exit_code == 1
    assert says(result.output, "the newest events were removed")
