"""The audit log: pinned schema, hash chain, durability, crash recovery, privacy, tampering."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audit_log.writer import (
    AUDIT_EVENTS,
    AUDIT_SCHEMA_VERSION,
    GENESIS,
    AuditError,
    AuditLog,
    event_hash,
    verify_chain,
)
from tests.audit_log._audit import (
    KEY,
    T0,
    StepClock,
    audit_log,
    intent,
    journal_dir,
    rewrite,
    runs_dir,
    sealed_files,
)

REPO = Path(__file__).resolve().parents[2]
HEX = "ab" * 32
TS = pa.timestamp("us", tz="UTC")


# -- the schema -------------------------------------------------------------------------------


def test_audit_schema_is_pinned_exactly() -> None:
    s = pa.string()
    expected = [
        pa.field("run_id", s, nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("time", TS, nullable=False),
        *(pa.field(n, s) for n in ("actor", "approver", "flow", "policy_name", "policy_hash")),
        *(pa.field(n, s) for n in ("plan_hash", "target_type", "target_id", "customer_id")),
        *(pa.field(n, s) for n in ("subject_hash", "action", "step", "phase", "outcome")),
        pa.field("http_status", pa.int32()),
        pa.field("error_code", s),
        pa.field("attempt", pa.int32()),
        pa.field("duration_ms", pa.float64()),
        pa.field("detail", s),
        pa.field("prev_hash", s, nullable=False),
        pa.field("hash", s, nullable=False),
    ]
    assert AUDIT_EVENTS.equals(pa.schema(expected), check_metadata=False)
    assert [(f.name, f.type, f.nullable) for f in AUDIT_EVENTS] == [
        (f.name, f.type, f.nullable) for f in expected
    ]
    assert AUDIT_SCHEMA_VERSION == 2
    assert AUDIT_EVENTS.metadata == {
        b"gladly_pipeline.dataset": b"audit",
        b"gladly_pipeline.schema_version": b"2",
    }


def test_genesis_is_the_hash_of_the_log_name() -> None:
    assert hashlib.sha256(b"gladly-pipeline audit log v2").hexdigest() == GENESIS


def test_event_hash_is_an_hmac_of_canonical_json_under_a_derived_chain_key() -> None:
    event = dict.fromkeys(AUDIT_EVENTS.names)
    event.update(run_id="r1", seq=0, time=T0, prev_hash=GENESIS, hash="ignored", attempt=2)
    body = {k: v for k, v in event.items() if k != "hash"}
    body["time"] = "2025-03-01T10:00:00.000000Z"
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    # Domain separation: the chain is keyed with a key derived from the audit key.
    chain = hmac.new(KEY, b"gladly-pipeline audit chain v2", hashlib.sha256).digest()
    assert event_hash(event, KEY) == hmac.new(chain, canonical, hashlib.sha256).hexdigest()
    assert event_hash(event, key=KEY) == event_hash(event, KEY)
    assert event_hash(event, KEY) != hmac.new(KEY, canonical, hashlib.sha256).hexdigest()
    assert event_hash(event, KEY) != hashlib.sha256(canonical).hexdigest()
    assert event_hash(event, b"another-key") != event_hash(event, KEY)
    # Missing fields count as null; the hash field is never part of its own hash.
    partial = {k: v for k, v in event.items() if v is not None and k != "hash"}
    assert event_hash(partial, KEY) == event_hash(event, KEY)


def test_the_audit_key_is_required_and_not_empty(tmp_path: Path) -> None:
    for attempt in (
        lambda: AuditLog(tmp_path, key=b""),
        lambda: verify_chain(tmp_path, key=b""),
        lambda: event_hash({}, b""),
    ):
        with pytest.raises(AuditError, match="GLADLY_AUDIT_KEY"):
            attempt()
    with pytest.raises(TypeError):
        AuditLog(tmp_path, KEY)  # type: ignore[call-arg]  # keyword-only
    with pytest.raises(TypeError):
        verify_chain(tmp_path)  # type: ignore[call-arg]


# -- appending and sealing --------------------------------------------------------------------


def test_append_fills_chains_and_writes_one_fsynced_line_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    log = audit_log(tmp_path)
    run = log.start_run("run-a", actor="alice", flow="erase-customers", plan_hash=HEX)
    synced.clear()
    first = run.append(**intent(1))
    second = run.append(**intent(1) | {"phase": "result", "outcome": "deleted", "actor": "bob"})
    journal = journal_dir(tmp_path) / "run-a.jsonl"
    lines = journal.read_bytes().split(b"\n")
    assert len(lines) == 3
    assert lines[-1] == b""
    assert len(synced) == 2  # one fsync per append, before it returned
    assert [first["seq"], second["seq"]] == [0, 1]
    assert first["run_id"] == second["run_id"] == run.run_id == "run-a"
    assert first["prev_hash"] == GENESIS
    assert second["prev_hash"] == first["hash"]
    assert first["hash"] == event_hash(first, KEY)
    assert run.last_hash == second["hash"]
    assert first["time"] == T0 + timedelta(microseconds=1500)
    assert (first["actor"], second["actor"]) == ("alice", "bob")  # common, then overridden
    assert first["flow"] == second["flow"] == "erase-customers"
    assert json.loads(lines[0])["time"] == "2025-03-01T10:00:00.001500Z"
    assert json.loads(lines[1]) == second | {"time": "2025-03-01T10:00:00.003000Z"}

    path = run.seal()
    assert path == runs_dir(tmp_path) / "000001-run-a.parquet"
    assert not journal.exists()
    meta = pq.ParquetFile(path).metadata.metadata
    assert meta[b"gladly_pipeline.audit.run_id"] == b"run-a"
    assert meta[b"gladly_pipeline.audit.run_number"] == b"1"
    assert meta[b"gladly_pipeline.audit.prev_run_last_hash"] == GENESIS.encode()
    assert meta[b"gladly_pipeline.audit.last_hash"] == second["hash"].encode()
    assert meta[b"gladly_pipeline.audit.event_count"] == b"2"
    assert meta[b"gladly_pipeline.schema_version"] == b"2"
    table = log.events()
    assert table.schema.equals(AUDIT_EVENTS, check_metadata=True)
    assert table.to_pylist() == [first, second]


def test_runs_chain_to_the_previous_sealed_run(tmp_path: Path) -> None:
    log = audit_log(tmp_path)
    with log.start_run("one") as run:
        last = [run.append(**intent(n)) for n in range(3)][-1]
    with log.start_run("two") as run:
        first = run.append(**intent(9))
    assert first["prev_hash"] == last["hash"]
    assert sealed_files(tmp_path) == ["000001-one.parquet", "000002-two.parquet"]
    meta = pq.ParquetFile(runs_dir(tmp_path) / "000002-two.parquet").metadata.metadata
    assert meta[b"gladly_pipeline.audit.prev_run_last_hash"] == last["hash"].encode()
    report = verify_chain(tmp_path, key=KEY)
    assert (report.ok, report.runs, report.events, report.problem) == (True, 2, 4, None)
    assert report.last_hash == first["hash"]
    assert report.unsealed == []


def test_a_run_with_no_events_is_sealed_and_uses_its_number(tmp_path: Path) -> None:
    log = audit_log(tmp_path)
    with log.start_run("empty"):
        pass
    with log.start_run("next") as run:
        event = run.append(**intent(1))
    assert sealed_files(tmp_path) == ["000001-empty.parquet", "000002-next.parquet"]
    empty = pq.ParquetFile(runs_dir(tmp_path) / "000001-empty.parquet")
    assert empty.metadata.num_rows == 0
    assert empty.metadata.metadata[b"gladly_pipeline.audit.last_hash"] == GENESIS.encode()
    assert event["prev_hash"] == GENESIS
    assert verify_chain(tmp_path, key=KEY).ok


def test_seal_is_idempotent_and_a_sealed_run_takes_no_more_events(tmp_path: Path) -> None:
    run = audit_log(tmp_path).start_run()
    assert len(run.run_id) == 32
    assert int(run.run_id, 16) >= 0
    run.append(**intent(1))
    path = run.seal()
    assert run.seal() == path
    with pytest.raises(AuditError, match="closed"):
        run.append(**intent(2))


def test_leaving_the_block_on_an_exception_seals_and_releases_the_lock(tmp_path: Path) -> None:
    log = audit_log(tmp_path)

    def failing_flow() -> None:
        with log.start_run("crashy") as run:
            run.append(**intent(1))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing_flow()
    assert sealed_files(tmp_path) == ["000001-crashy.parquet"]
    assert not (tmp_path / "_audit" / "lock").exists()
    with log.start_run("after") as again:
        assert again.append(**intent(2))["seq"] == 0
    assert verify_chain(tmp_path, key=KEY).events == 2


def test_a_failed_write_closes_the_run_and_keeps_what_was_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = audit_log(tmp_path)
    run = log.start_run("full-disk")
    run.append(**intent(1))
    real_write = os.write

    def disk_full(fd: int, data: bytes) -> int:
        real_write(fd, data[:10])  # a partial line, then the error
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(AuditError, match="No space left"):
        run.append(**intent(2))
    monkeypatch.setattr(os, "write", real_write)
    with pytest.raises(AuditError, match="closed"):
        run.append(**intent(3))
    run.seal()
    assert log.events().column("target_id").to_pylist() == ["cust-1"]
    assert verify_chain(tmp_path, key=KEY).ok


def test_appends_from_several_threads_keep_one_chain(tmp_path: Path) -> None:
    log = audit_log(tmp_path)
    with log.start_run("threads") as run, ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda n: run.append(**intent(n)), range(60)))
        assert run.event_count == 60
    events = log.events().to_pylist()
    assert [e["seq"] for e in events] == list(range(60))
    assert sorted(e["target_id"] for e in events) == sorted(f"cust-{n}" for n in range(60))
    assert verify_chain(tmp_path, key=KEY).ok


def test_run_ids_are_unique_and_file_safe(tmp_path: Path) -> None:
    log = audit_log(tmp_path)
    log.start_run("r1").seal()
    with pytest.raises(AuditError, match="already sealed"):
        log.start_run("r1")
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(AuditError, match="run_id"):
            log.start_run(bad)
    assert not (tmp_path / "_audit" / "lock").exists()  # refusals release the lock


# -- the lock ---------------------------------------------------------------------------------


def test_a_live_run_holds_the_lock(tmp_path: Path) -> None:
    log = audit_log(tmp_path)
    with log.start_run("first"):
        other = AuditLog(tmp_path, key=KEY)
        for attempt in (other.start_run, other.recover):
            with pytest.raises(AuditError) as info:
                attempt()
            assert str(tmp_path / "_audit" / "lock") in str(info.value)
            assert str(os.getpid()) in str(info.value)
    assert AuditLog(tmp_path, key=KEY).recover() == []


def test_a_lock_left_by_a_dead_process_is_broken(tmp_path: Path) -> None:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                           capture_output=True, text=True)  # fmt: skip
    lock = tmp_path / "_audit" / "lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(child.stdout.strip())
    with audit_log(tmp_path).start_run("after-crash") as run:
        run.append(**intent(1))
        assert lock.read_text() == str(os.getpid())
    assert verify_chain(tmp_path, key=KEY).ok


# -- field validation and the privacy guard ---------------------------------------------------


def test_unknown_and_filled_fields_are_refused_by_name(tmp_path: Path) -> None:
    run = audit_log(tmp_path).start_run("fields")
    with pytest.raises(AuditError) as info:
        run.append(customer="c1")
    assert "'customer'" in str(info.value)
    assert "customer_id" in str(info.value)
    assert "detail" in str(info.value)  # the valid names are listed
    for filled in ("seq", "time", "hash", "prev_hash", "run_id"):
        with pytest.raises(AuditError, match="filled in by the audit log"):
            run.append(**{filled: None})
    with pytest.raises(AuditError, match="'colour'"):
        audit_log(tmp_path / "other").start_run(colour="blue")
    run.seal()
    assert verify_chain(tmp_path, key=KEY).events == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"http_status": "200"}, "must be an int"),
        ({"attempt": True}, "must be an int"),
        ({"attempt": 2**31}, "int32"),
        ({"duration_ms": float("nan")}, "finite"),
        ({"duration_ms": "12"}, "must be a number"),
        ({"detail": {"n": 1}}, "must be a str"),
        ({"target_type": "user"}, "must be one of archive, conversation, customer, item, run"),
        ({"phase": "before"}, "must be one of intent, result"),
        ({"subject_hash": "ABC"}, "lowercase hex digest"),
        ({"plan_hash": "5551234567"}, "lowercase hex digest"),
        ({"target_id": "has space"}, "opaque id"),
    ],
)
def test_values_of_the_wrong_kind_are_refused(
    tmp_path: Path, fields: dict[str, Any], message: str
) -> None:
    with audit_log(tmp_path).start_run("kinds") as run, pytest.raises(AuditError, match=message):
        run.append(**fields)


def test_numbers_are_stored_as_their_column_types(tmp_path: Path) -> None:
    with audit_log(tmp_path).start_run("numbers") as run:
        event = run.append(http_status=204, attempt=1, duration_ms=12)
    assert event["duration_ms"] == 12.0
    assert isinstance(event["duration_ms"], float)
    assert verify_chain(tmp_path, key=KEY).ok


PERSONAL = [
    ("detail", "customer wrote from jane.doe@example.com"),
    ("actor", "ops@company.co.uk"),
    ("approver", "Bob <bob.smith@example.org>"),
    ("detail", '{"phone": "+1 (555) 123-4567"}'),
    ("detail", "called 555-123-4567."),
    ("error_code", "+447911123456"),
    ("step", "0612 34 56 78"),
    ("target_id", "5551234567"),
    ("customer_id", "555-123-4567"),
    ("target_id", "jane@example.com"),
    ("subject_hash", "jane@example.com"),
    ("flow", "x" * 2001),
    ("detail", "a long transcript " * 200),
]


@pytest.mark.parametrize(("name", "value"), PERSONAL)
def test_personal_data_is_refused_without_echoing_it(tmp_path: Path, name: str, value: str) -> None:
    with audit_log(tmp_path).start_run("privacy") as run:
        with pytest.raises(AuditError) as info:
            run.append(**{name: value})
        assert value not in str(info.value)
        assert repr(value) not in str(info.value)
        assert repr(name) in str(info.value)
        with pytest.raises(AuditError):
            audit_log(tmp_path / "common").start_run(**{name: value})  # common fields too
    assert verify_chain(tmp_path, key=KEY).events == 0


ORDINARY = {
    "run_id": "3f1c2a5e9d4b4e7f8a6b1c2d3e4f5a6b",
    "actor": "alice",
    "approver": "okta:00u1abcd",
    "flow": "erase-customers/prod",
    "policy_name": "delete-after-3-years",
    "policy_hash": "1234567890" * 6 + "abcd",
    "plan_hash": hashlib.sha256(b"plan").hexdigest(),
    "subject_hash": "0123456789" * 6 + "abcd",
    "target_type": "conversation",
    "target_id": "OOeJ5wwsQOWkyl-4nEm-Pw",
    "customer_id": "pOVVdzweSumI4bFxjlT4LA",
    "action": "redact_item",
    "step": "redact",
    "phase": "result",
    "outcome": "not_found",
    "error_code": "E404",
    "detail": '{"deleted": 12, "window_end": "2025-03-01T10:02:11.123456+00:00", '
    '"ratio": 0.30000000000000004, "new_id": "a1234567b", "date": "2024-12-31"}',
}


def test_ordinary_ids_hashes_dates_and_counts_pass_the_guard(tmp_path: Path) -> None:
    fields = {k: v for k, v in ORDINARY.items() if k != "run_id"}
    with audit_log(tmp_path).start_run(ORDINARY["run_id"]) as run:
        event = run.append(**fields)
        run.append(detail="y" * 2000)
    assert {k: event[k] for k in ORDINARY} == ORDINARY
    assert verify_chain(tmp_path, key=KEY).events == 2


def test_a_clock_without_a_timezone_is_refused(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, key=KEY, clock=lambda: datetime(2025, 1, 1))
    with log.start_run("naive") as run, pytest.raises(AuditError, match="timezone-aware"):
        run.append(**intent(1))


# -- journals and recovery --------------------------------------------------------------------


def abandoned_journal(tmp_path: Path, run_id: str, count: int, clock: StepClock) -> bytes:
    """The journal bytes a run with ``count`` acknowledged events leaves if its process dies."""
    run = AuditLog(tmp_path / f"scratch-{run_id}", key=KEY, clock=clock).start_run(run_id)
    for n in range(count):
        run.append(**intent(n))
    data = run.journal_path.read_bytes()
    run.seal()
    return data


def place_journal(root: Path, run_id: str, data: bytes) -> Path:
    path = journal_dir(root) / f"{run_id}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "tail",
    [b"", b'{"action":"delete_customer","customer_id":"cu', b"\x00" * 40 + b"\n", b"{}{\n"],
    ids=["clean", "no-newline", "zero-filled", "unparsable"],
)
def test_recover_drops_a_torn_last_line(tmp_path: Path, tail: bytes) -> None:
    root = tmp_path / "archive"
    journal = place_journal(
        root, "torn", abandoned_journal(tmp_path, "torn", 3, StepClock()) + tail
    )
    log = audit_log(root)
    assert [e["seq"] for e in log.events().to_pylist()] == [0, 1, 2]  # readable before sealing
    # The journal is verified too; its torn last line (a crash mid-append) is no failure.
    torn = verify_chain(root, key=KEY)
    assert (torn.ok, torn.runs, torn.events, torn.unsealed) == (True, 0, 3, ["torn"])
    assert log.recover() == ["torn"]
    assert not journal.exists()
    assert sealed_files(root) == ["000001-torn.parquet"]
    assert log.events().column("target_id").to_pylist() == ["cust-0", "cust-1", "cust-2"]
    report = verify_chain(root, key=KEY)
    assert (report.ok, report.runs, report.events, report.unsealed) == (True, 1, 3, [])


def test_a_damaged_line_before_the_last_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    lines = abandoned_journal(tmp_path, "bad", 3, StepClock()).split(b"\n")
    lines[1] = b"not json"
    journal = place_journal(root, "bad", b"\n".join(lines))
    with pytest.raises(AuditError, match=r"line 2 is not JSON"):
        audit_log(root).recover()
    assert journal.exists()
    assert sealed_files(root) == []


def test_recover_finishes_a_seal_cut_short(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    data = abandoned_journal(tmp_path, "cut", 2, StepClock())
    log = audit_log(root)
    place_journal(root, "cut", data)
    assert log.recover() == ["cut"]
    # Killed after the rename but before the journal's removal, with a temp file of a later seal.
    journal = place_journal(root, "cut", data)
    stale = runs_dir(root) / ".000002-next.parquet.0123456789ab.tmp"
    stale.write_bytes(b"PAR1 half")
    assert log.recover() == ["cut"]
    assert not journal.exists()
    assert not stale.exists()
    assert sealed_files(root) == ["000001-cut.parquet"]
    assert verify_chain(root, key=KEY).events == 2


def test_recovery_seals_journals_in_chain_order(tmp_path: Path) -> None:
    clock = StepClock()
    scratch = AuditLog(tmp_path / "scratch", key=KEY, clock=clock)
    journals = {}
    # zz-first starts the chain, aa-second continues it: names and mtimes say the opposite.
    for run_id, count in (("zz-first", 2), ("aa-second", 3)):
        run = scratch.start_run(run_id)
        for n in range(count):
            run.append(**intent(n))
        journals[run_id] = run.journal_path.read_bytes()
        run.seal()
    root = tmp_path / "archive"
    second = place_journal(root, "aa-second", journals["aa-second"])
    first = place_journal(root, "zz-first", journals["zz-first"])
    os.utime(first, ns=(2_000_000_000_000_000_000, 2_000_000_000_000_000_000))
    os.utime(second, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    assert audit_log(root).recover() == ["zz-first", "aa-second"]
    assert sealed_files(root) == ["000001-zz-first.parquet", "000002-aa-second.parquet"]
    assert verify_chain(root, key=KEY).events == 5


def test_events_lists_sealed_runs_then_open_journals(tmp_path: Path) -> None:
    log = audit_log(tmp_path)
    with log.start_run("sealed") as run:
        run.append(**intent(1))
        run.append(**intent(2))
    with log.start_run("open") as run:
        run.append(**intent(3))
        assert log.events().column("target_id").to_pylist() == ["cust-1", "cust-2", "cust-3"]
        assert log.events(include_journals=False).num_rows == 2
        report = verify_chain(tmp_path, key=KEY)
        assert (report.ok, report.runs, report.events, report.unsealed) == (True, 1, 3, ["open"])
    assert AuditLog(tmp_path / "nothing", key=KEY).events().num_rows == 0


# -- killed processes -------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys
    from audit_log.writer import AuditLog

    root, run_id, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    run = AuditLog(root, key=b"test-audit-key").start_run(run_id, flow="crash-test")
    print("started", flush=True)
    for n in range(count):
        if mode == "step" and not sys.stdin.readline():
            sys.exit(0)
        run.append(action="delete_customer", phase="intent", target_type="customer",
                   target_id=f"{run_id}-{n}")
        print(n, flush=True)
    if mode == "seal":
        print("sealing", flush=True)
        run.seal()
    sys.stdin.readline()
    """
)


class Child:
    """A process appending audit events, reporting each acknowledged one on stdout."""

    def __init__(self, script: Path, root: Path, run_id: str, count: int, mode: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(root), run_id, str(count), mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )  # fmt: skip
        self.acked = 0
        assert self.read() == "started"

    def read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line, f"the child exited early with code {self.proc.poll()}"
        return line

    def step(self) -> None:
        """Let the child append one event and wait until it is acknowledged."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        assert self.read() == str(self.acked)
        self.acked += 1

    def read_until(self, wanted: str) -> None:
        while (line := self.read()) != wanted:
            assert line == str(self.acked)
            self.acked += 1

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()  # reaped, so the lock's pid is dead, not a zombie
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        assert self.proc.returncode == -signal.SIGKILL


@pytest.fixture
def child_script(tmp_path: Path) -> Path:
    script = tmp_path / "append_until_killed.py"
    script.write_text(CHILD)
    return script


def target_ids(root: Path, run_id: str) -> list[str]:
    return [e["target_id"] for e in audit_log(root).events().to_pylist() if e["run_id"] == run_id]


def test_sigkill_after_k_events_loses_none_of_them(tmp_path: Path, child_script: Path) -> None:
    root = tmp_path / "archive"
    for k in (0, 1, 4):
        child = Child(child_script, root, f"step{k}", 10, "step")
        for _ in range(k):
            child.step()
        child.kill()  # blocked between appends: exactly k events acknowledged and written
        # The next run recovers this one: here, the parent's recover().
        assert audit_log(root).recover() == [f"step{k}"]
        assert target_ids(root, f"step{k}") == [f"step{k}-{n}" for n in range(k)]
    report = verify_chain(root, key=KEY)
    assert (report.ok, report.runs, report.events, report.problem) == (True, 3, 5, None)


def test_sigkill_mid_append_or_mid_seal_keeps_the_chain(tmp_path: Path, child_script: Path) -> None:
    root = tmp_path / "archive"
    # Killed while appending as fast as it can: the kill lands inside some append.
    racing = Child(child_script, root, "racing", 100_000, "free")
    while racing.acked < 25:
        assert racing.read() == str(racing.acked)
        racing.acked += 1
    racing.kill()
    # The next process recovers the killed run when it starts its own, then is killed mid-seal.
    sealing = Child(child_script, root, "sealing", 6, "seal")
    sealing.read_until("sealing")
    sealing.kill()
    assert AuditLog(root, key=KEY).recover() in ([], ["sealing"])
    present = target_ids(root, "racing")
    assert len(present) >= 25  # every acknowledged event, and perhaps the one in flight
    assert present == [f"racing-{n}" for n in range(len(present))]
    assert target_ids(root, "sealing") == [f"sealing-{n}" for n in range(6)]
    assert sealed_files(root) == ["000001-racing.parquet", "000002-sealing.parquet"]
    report = verify_chain(root, key=KEY)
    assert (report.ok, report.runs, report.events) == (True, 2, len(present) + 6)
    assert not list(runs_dir(root).glob(".*"))


# -- tampering --------------------------------------------------------------------------------


def _set(
    rows: list[dict[str, Any]], seq: int, rehash: bool = False, **values: Any
) -> list[dict[str, Any]]:
    rows[seq].update(values)
    if rehash:
        rows[seq]["hash"] = event_hash(rows[seq], KEY)
    return rows


def _swap(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows[1], rows[2] = rows[2], rows[1]
    return rows


RUN2 = "000002-run2.parquet (run 2, run_id run2)"
TAMPERING: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "field-altered": (
        lambda f: rewrite(f, lambda rows: _set(rows, 1, outcome="kept")),
        [RUN2, "seq 1 was altered"],
    ),
    "time-altered": (
        lambda f: rewrite(
            f, lambda rows: _set(rows, 3, time=rows[3]["time"] + timedelta(microseconds=1))
        ),
        [RUN2, "seq 3 was altered"],
    ),
    "altered-and-rehashed": (
        lambda f: rewrite(f, lambda rows: _set(rows, 1, rehash=True, outcome="kept")),
        [RUN2, "seq 2's prev_hash is not the hash of seq 1"],
    ),
    "event-deleted": (
        lambda f: rewrite(f, lambda rows: rows[:2] + rows[3:]),
        [RUN2, "seq 2 is missing"],
    ),
    "last-event-deleted": (
        lambda f: rewrite(f, lambda rows: rows[:3]),
        [RUN2, "seq 3 is missing"],
    ),
    "events-swapped": (
        lambda f: rewrite(f, _swap),
        [RUN2, "out of order at seq 1"],
    ),
    "prev-run-last-hash-altered": (
        lambda f: rewrite(f, prev_run_last_hash="0" * 64),
        [RUN2, "prev_run_last_hash is not the last hash of 000001-run1.parquet (run 1)"],
    ),
    "last-hash-altered": (
        lambda f: rewrite(f, last_hash="0" * 64),
        [RUN2, "last_hash does not match the hash of its last event (seq 3)"],
    ),
    "run-file-deleted": (
        lambda f: f.unlink(),
        ["run 2 is missing", "000001-run1.parquet (run 1)", "000003-run3.parquet"],
    ),
    "run-file-truncated": (
        lambda f: f.write_bytes(f.read_bytes()[:100]),
        [RUN2, "cannot be read"],
    ),
}


def test_an_untouched_log_verifies(sealed_log: Path) -> None:
    report = verify_chain(sealed_log, key=KEY)
    assert (report.ok, report.runs, report.events, report.problem) == (True, 3, 12, None)
    assert report.last_hash == audit_log(sealed_log).events().column("hash")[-1].as_py()


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampering_is_reported_at_the_first_damaged_event(sealed_log: Path, case: str) -> None:
    tamper, fragments = TAMPERING[case]
    tamper(runs_dir(sealed_log) / "000002-run2.parquet")
    report = verify_chain(sealed_log, key=KEY)
    assert not report.ok
    assert report.problem is not None
    for fragment in fragments:
        assert fragment in report.problem
    assert (report.runs, report.events) == (1, 4)  # run 1 still verified


def test_a_deleted_first_run_and_a_stray_file_are_reported(sealed_log: Path) -> None:
    (runs_dir(sealed_log) / "000001-run1.parquet").unlink()
    report = verify_chain(sealed_log, key=KEY)
    assert not report.ok
    assert report.problem is not None
    assert "run 1 is missing: the first sealed file is 000002-run2.parquet" in report.problem
    (runs_dir(sealed_log) / "notes.parquet").write_bytes(b"x")
    assert "unexpected file notes.parquet" in str(verify_chain(sealed_log, key=KEY).problem)
