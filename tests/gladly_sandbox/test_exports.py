"""The export service: schedule, job state machine over time, files, expiry, filters, deletion."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gladly_sandbox.clock import SandboxClock
from gladly_sandbox.errors import ApiError
from gladly_sandbox.exports import ExportService, ExportSpec
from gladly_sandbox.ids import format_timestamp, parse_timestamp
from gladly_sandbox.orgdata import OrgSpec
from gladly_sandbox.store import Organisation

NOW = datetime(2025, 1, 10, tzinfo=UTC)
FILES = ["agents.jsonl", "conversation_items.jsonl", "customers.jsonl", "topics.jsonl"]


def small_org(clock: SandboxClock, seed: int = 42) -> Organisation:
    """60 customers over the last three months: a handful of items in every daily window."""
    return Organisation(OrgSpec(seed=seed, customers=60, years=0.25), clock)


class ControlledOrg:
    """The real organisation; export_items waits for `release` and can break midway."""

    def __init__(self, org: Organisation) -> None:
        self.org = org
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.broken = False

    def export_items(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        self.entered.set()
        assert self.release.wait(10)
        for item in self.org.export_items(start, end):
            yield item
            if self.broken:
                raise OSError("disk full")

    def export_customers(self, customer_ids: Iterable[str]) -> list[dict[str, Any]]:
        return self.org.export_customers(customer_ids)

    def export_agents(self) -> list[dict[str, Any]]:
        return self.org.export_agents()

    def export_topics(self) -> list[dict[str, Any]]:
        return self.org.export_topics()

    def earliest_activity(self) -> datetime:
        return self.org.earliest_activity()


def deletable(org: Organisation, customer_ids: Iterable[str]) -> str:
    """The first of `customer_ids` whose conversations are all CLOSED (delete needs that)."""
    return next(
        cid
        for cid in customer_ids
        if all(
            org.get_conversation(conv)["status"] == "CLOSED" for conv in org.conversation_ids(cid)
        )
    )


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def make(
    tmp_path: Path, seed: int = 42, **spec: Any
) -> tuple[ExportService, Organisation, SandboxClock]:
    clock = SandboxClock(NOW, frozen=True)
    org = small_org(clock, seed)
    service = ExportService(org, clock, ExportSpec(seed=seed, **spec), tmp_path / "files")
    return service, org, clock


def by_window(service: ExportService) -> list[dict[str, Any]]:
    return sorted(service.list_jobs(), key=lambda job: job["parameters"]["startAt"])


def window_of(job: dict[str, Any]) -> tuple[datetime, datetime]:
    params = job["parameters"]
    return parse_timestamp(params["startAt"]), parse_timestamp(params["endAt"])


def job_for(service: ExportService, start: datetime) -> dict[str, Any]:
    (job,) = [job for job in service.list_jobs() if window_of(job)[0] == start]
    return job


def items_file(service: ExportService, job: dict[str, Any]) -> list[dict[str, Any]]:
    return read_lines(service.file_path(job["id"], "conversation_items.jsonl"))


def test_construction_shows_fourteen_days_of_daily_jobs_and_one_backfill(tmp_path: Path) -> None:
    service, org, _ = make(tmp_path)
    jobs = by_window(service)
    backfill, scheduled = jobs[0], jobs[1:]
    # The window 12-26 finished at 12-27 03:10, inside 14 days; 01-09's job is due at 01-10 03:00.
    assert [window_of(job)[0] for job in scheduled] == [
        datetime(2024, 12, 26, tzinfo=UTC) + timedelta(days=n) for n in range(14)
    ]
    assert all(job["status"] == "COMPLETED" and job["files"] == FILES for job in jobs)
    assert all(job["scheduleId"] == service.list_schedules()[0]["id"] for job in scheduled)
    assert "scheduleId" not in backfill
    earliest = org.earliest_activity()
    assert window_of(backfill) == (
        earliest.replace(hour=0, minute=0, second=0, microsecond=0),
        datetime(2024, 12, 26, tzinfo=UTC),
    )
    assert NOW - timedelta(minutes=5) < parse_timestamp(backfill["updatedAt"]) <= NOW


def test_schedule_shape_and_next_start_moving(tmp_path: Path) -> None:
    service, _, clock = make(tmp_path)
    (schedule,) = service.list_schedules()
    assert set(schedule) == {"id", "frequency", "type", "nextStartAt", "updatedAt"}
    assert (schedule["frequency"], schedule["type"]) == ("DAILY", "CONVERSATIONS")
    assert parse_timestamp(schedule["nextStartAt"]) == datetime(2025, 1, 9, tzinfo=UTC)
    clock.advance(timedelta(hours=3, seconds=1))
    assert parse_timestamp(service.list_schedules()[0]["nextStartAt"]) == NOW


def test_job_moves_pending_in_progress_completed_with_files_only_at_the_end(
    tmp_path: Path,
) -> None:
    service, _, clock = make(tmp_path)
    start = datetime(2025, 1, 9, tzinfo=UTC)
    clock.advance(timedelta(hours=2, minutes=59))
    assert not [job for job in service.list_jobs() if window_of(job)[0] == start]
    seen = []
    for step, status in [
        (timedelta(minutes=1, seconds=1), "PENDING"),
        (timedelta(minutes=1), "IN_PROGRESS"),
        (timedelta(minutes=9), "COMPLETED"),
    ]:
        clock.advance(step)
        job = job_for(service, start)
        assert job["status"] == status
        assert service.get_job(job["id"]) == job
        seen.append(parse_timestamp(job["updatedAt"]))
        if status != "COMPLETED":
            assert job["files"] == []
            with pytest.raises(ApiError) as err:
                service.file_path(job["id"], "conversation_items.jsonl")
            assert (err.value.status, err.value.code) == (404, "not_exist")
            assert not (tmp_path / "files" / job["id"]).exists()
    assert seen == sorted(seen)
    assert len(set(seen)) == 3
    assert job["files"] == FILES
    assert all(service.file_path(job["id"], name).is_file() for name in FILES)
    assert seen[0] - (start + timedelta(days=1)) < timedelta(hours=3, seconds=1)


def test_failure_rate_one_fails_every_scheduled_job_without_files(tmp_path: Path) -> None:
    service, _, clock = make(tmp_path, failure_rate=1.0)
    clock.advance(timedelta(days=2))
    jobs = by_window(service)
    assert jobs[0]["status"] == "COMPLETED"  # the backfill never fails
    assert {job["status"] for job in jobs[1:]} == {"FAILED"}
    assert all(job["files"] == [] for job in jobs[1:])
    with pytest.raises(ApiError) as err:
        service.file_path(jobs[-1]["id"], "agents.jsonl")
    assert err.value.status == 404
    service.delete_job(jobs[-1]["id"])
    assert service.counts()["jobs_failed"] == len(jobs) - 2


def test_hourly_windows_are_whole_hours_created_an_hour_after_they_end(tmp_path: Path) -> None:
    service, _, clock = make(tmp_path, frequency="HOURLY")
    scheduled = by_window(service)[1:]
    assert 14 * 24 <= len(scheduled) <= 14 * 24 + 2
    for job in scheduled:
        start, end = window_of(job)
        assert end - start == timedelta(hours=1)
        assert start.minute == start.second == 0
    # Gladly: nextStartAt 08:00 -> the job is created at about 10:00.
    next_start = parse_timestamp(service.list_schedules()[0]["nextStartAt"])
    assert next_start == NOW - timedelta(hours=2)
    clock.advance(timedelta(seconds=1))
    assert job_for(service, next_start)["status"] == "PENDING"
    assert parse_timestamp(service.list_schedules()[0]["nextStartAt"]) == NOW - timedelta(hours=1)


@pytest.mark.parametrize("frequency", ["DAILY", "HOURLY"])
def test_backfill_and_windows_cover_history_once(tmp_path: Path, frequency: str) -> None:
    service, org, clock = make(tmp_path, frequency=frequency)
    collected: dict[str, tuple[tuple[datetime, datetime], list[str]]] = {}

    def collect() -> None:  # as an archiver would, before the oldest jobs expire
        for job in service.list_jobs(status="COMPLETED"):
            ids = [item["id"] for item in items_file(service, job)]
            collected.setdefault(job["id"], (window_of(job), ids))

    collect()
    clock.advance(timedelta(days=1, hours=3, minutes=11))  # every window up to NOW is done
    collect()
    windows = sorted(window for window, _ in collected.values())
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))
    assert windows[0][0] <= org.earliest_activity()
    assert windows[-1][1] >= NOW
    exported = [item for _, ids in collected.values() for item in ids]
    truth = [item["id"] for item in org.export_items(windows[0][0], NOW)]
    assert len(exported) == len(set(exported)) == len(truth) == org.counts()["items"]
    assert set(exported) == set(truth)


def test_customers_file_is_flat_and_holds_only_the_windows_customers(tmp_path: Path) -> None:
    service, _, _ = make(tmp_path)
    for job in service.list_jobs():
        items = items_file(service, job)
        customers = read_lines(service.file_path(job["id"], "customers.jsonl"))
        assert {c["id"] for c in customers} == {item["customerId"] for item in items}
        for customer in customers:
            assert all(isinstance(e, str) for e in customer["emailAddresses"])
            assert all(isinstance(p, str) for p in customer["phoneNumbers"])


def test_files_are_compact_utf8_json_lines(tmp_path: Path) -> None:
    service, org, _ = make(tmp_path)
    backfill = by_window(service)[0]
    agents = service.file_path(backfill["id"], "agents.jsonl").read_bytes()
    assert agents.endswith(b"\n")
    assert agents.split(b"\n")[0] == (
        '{{"id":"{id}","name":"{name}","emailAddress":"{emailAddress}"}}'.format(
            **org.export_agents()[0]
        ).encode()
    )
    raw = b"".join(
        service.file_path(job["id"], "conversation_items.jsonl").read_bytes()
        for job in service.list_jobs()
    )
    text = raw.decode("utf-8")
    assert any(ord(char) > 127 for char in text)  # the Spanish texts stay raw UTF-8
    assert "\\u00" not in text
    assert '", "' not in text
    assert len(text.splitlines()) == sum(
        len(items_file(service, job)) for job in service.list_jobs()
    )


def test_files_are_a_snapshot_taken_at_completion(tmp_path: Path) -> None:
    service, org, clock = make(tmp_path)
    done = job_for(service, datetime(2025, 1, 8, tzinfo=UTC))
    kept = deletable(org, [item["customerId"] for item in items_file(service, done)])
    org.delete_customer(kept)  # after completion: stays in the files already made
    assert kept in {c["id"] for c in read_lines(service.file_path(done["id"], "customers.jsonl"))}
    assert kept in {item["customerId"] for item in items_file(service, done)}

    upcoming = datetime(2025, 1, 9, tzinfo=UTC)
    in_window = {item["customerId"] for item in org.export_items(upcoming, NOW)}
    gone = deletable(org, sorted(in_window))
    org.delete_customer(gone)  # before completion: absent
    clock.advance(timedelta(hours=3, minutes=11))
    job = job_for(service, upcoming)
    assert job["status"] == "COMPLETED"
    customers = {c["id"] for c in read_lines(service.file_path(job["id"], "customers.jsonl"))}
    assert gone not in customers
    assert gone not in {item["customerId"] for item in items_file(service, job)}
    assert customers == in_window - {gone}


def test_jobs_expire_fourteen_days_after_their_update(tmp_path: Path) -> None:
    service, _, clock = make(tmp_path)
    oldest = by_window(service)[1]
    directory = tmp_path / "files" / oldest["id"]
    assert directory.is_dir()
    expires = parse_timestamp(oldest["updatedAt"]) + timedelta(days=14)
    clock.advance(expires - NOW)
    assert service.get_job(oldest["id"])["id"] == oldest["id"]
    clock.advance(timedelta(seconds=1))
    assert oldest["id"] not in {job["id"] for job in service.list_jobs()}
    with pytest.raises(ApiError) as err:
        service.get_job(oldest["id"])
    assert (err.value.status, err.value.code, err.value.quirk) == (404, "not_exist", None)
    with pytest.raises(ApiError):
        service.file_path(oldest["id"], "agents.jsonl")
    assert not directory.exists()


def test_a_long_clock_jump_leaves_only_the_last_fourteen_days(tmp_path: Path) -> None:
    service, _, clock = make(tmp_path)
    clock.advance(timedelta(days=40))
    jobs = by_window(service)
    assert len(jobs) == 14
    assert {job["status"] for job in jobs} == {"COMPLETED"}
    assert sorted(p.name for p in (tmp_path / "files").iterdir()) == sorted(j["id"] for j in jobs)


def test_list_filters_on_status_and_updated_at(tmp_path: Path) -> None:
    service, _, clock = make(tmp_path)
    clock.advance(timedelta(hours=3, seconds=1))
    assert [job["status"] for job in service.list_jobs(status="PENDING")] == ["PENDING"]
    assert len(service.list_jobs(status="COMPLETED")) == 15
    assert service.list_jobs(status="FAILED") == []
    jobs = service.list_jobs()
    middle = jobs[5]["updatedAt"]
    newer = service.list_jobs(start_at=middle)
    older = service.list_jobs(
        start_at=format_timestamp(clock.now() - timedelta(days=14)), end_at=middle
    )
    # Both bounds are inclusive.
    assert newer == jobs[:6]
    assert older == jobs[5:]
    assert service.list_jobs(start_at="", end_at="", status="") == jobs


@pytest.mark.parametrize(
    ("params", "attr"),
    [
        ({"status": "DONE"}, "status"),
        ({"status": "completed"}, "status"),
        ({"start_at": "yesterday"}, "startAt"),
        ({"start_at": "2024-12-26T23:58:59Z"}, "startAt"),  # more than 14 days (+1 min) ago
        ({"end_at": "2025-13-01T00:00:00Z"}, "endAt"),
        ({"end_at": "2025-01-10T00:01:01Z"}, "endAt"),  # in the future
        ({"start_at": "2025-01-05T00:00:00Z", "end_at": "2025-01-04T00:00:00Z"}, "endAt"),
    ],
)
def test_list_rejects_bad_filters(tmp_path: Path, params: dict[str, str], attr: str) -> None:
    service, _, _ = make(tmp_path)
    with pytest.raises(ApiError) as err:
        service.list_jobs(**params)
    assert (err.value.status, err.value.code, err.value.attr) == (400, "invalid", attr)


def test_list_accepts_iso_dates_at_the_limits(tmp_path: Path) -> None:
    service, _, _ = make(tmp_path)
    assert len(service.list_jobs(start_at="2024-12-27", end_at="2025-01-10T00:00:00+00:00")) == 15


def test_delete_job_rules(tmp_path: Path) -> None:
    service, _, clock = make(tmp_path)
    done = by_window(service)[-1]
    service.delete_job(done["id"])
    assert not (tmp_path / "files" / done["id"]).exists()
    for call in (service.get_job, service.delete_job):
        with pytest.raises(ApiError) as err:
            call(done["id"])
        assert err.value.status == 404
    clock.advance(timedelta(hours=3, seconds=1))
    assert done["id"] not in {job["id"] for job in service.list_jobs()}  # never recreated
    pending = service.list_jobs(status="PENDING")[0]
    for status in ("PENDING", "IN_PROGRESS"):
        assert service.get_job(pending["id"])["status"] == status
        with pytest.raises(ApiError) as err:
            service.delete_job(pending["id"])
        assert (err.value.status, err.value.code, err.value.attr) == (
            400,
            "temporary_failure",
            "status",
        )
        assert err.value.quirk == "bare_list"
        assert err.value.detail == (
            f"unable to delete job with status [{status}]. Please try again after it has finished"
        )
        clock.advance(timedelta(minutes=1))
    with pytest.raises(ApiError) as err:
        service.delete_job("no-such-job")
    assert (err.value.status, err.value.code) == (404, "not_exist")


def test_counts(tmp_path: Path) -> None:
    service, _, clock = make(tmp_path)
    clock.advance(timedelta(hours=3, seconds=1))
    counts = service.counts()
    on_disk = sum(p.stat().st_size for p in (tmp_path / "files").rglob("*") if p.is_file())
    assert counts == {
        "jobs_pending": 1,
        "jobs_in_progress": 0,
        "jobs_completed": 15,
        "jobs_failed": 0,
        "files_bytes": on_disk,
    }


def test_same_seed_same_jobs_and_bytes(tmp_path: Path) -> None:
    one, _, _ = make(tmp_path / "one")
    two, _, _ = make(tmp_path / "two")
    other, _, _ = make(tmp_path / "three", seed=43)
    assert one.list_jobs() == two.list_jobs()
    assert one.list_schedules() == two.list_schedules()
    assert not {j["id"] for j in one.list_jobs()} & {j["id"] for j in other.list_jobs()}
    for job in one.list_jobs():
        for name in FILES:
            assert one.file_path(job["id"], name).read_bytes() == (
                two.file_path(job["id"], name).read_bytes()
            )


def test_refresh_does_nothing_until_something_is_due(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, _, clock = make(tmp_path)
    calls: list[datetime] = []
    advance = ExportService._advance

    def counting(self: ExportService, now: datetime) -> Any:
        calls.append(now)
        return advance(self, now)

    monkeypatch.setattr(ExportService, "_advance", counting)
    for _ in range(50):
        service.list_jobs()
    clock.advance(timedelta(hours=2))
    service.list_jobs()
    assert calls == []
    clock.advance(timedelta(hours=1, seconds=1))
    service.list_jobs()
    assert calls == [clock.now()]


def controlled(tmp_path: Path, **spec: Any) -> tuple[ExportService, ControlledOrg, SandboxClock]:
    clock = SandboxClock(NOW, frozen=True)
    org = ControlledOrg(small_org(clock))
    return ExportService(org, clock, ExportSpec(**spec), tmp_path / "files"), org, clock


def test_rendering_does_not_block_other_calls(tmp_path: Path) -> None:
    service, org, clock = controlled(tmp_path)
    org.release.clear()
    org.entered.clear()
    clock.advance(timedelta(hours=3, minutes=11))
    renderer = threading.Thread(target=service.refresh)
    renderer.start()
    assert org.entered.wait(10)
    job = job_for(service, datetime(2025, 1, 9, tzinfo=UTC))
    # Not COMPLETED before its files are in place.
    assert job["status"] == "IN_PROGRESS"
    assert job["files"] == []
    with pytest.raises(ApiError) as err:
        service.delete_job(job["id"])
    assert err.value.status == 400
    org.release.set()
    renderer.join(10)
    assert service.get_job(job["id"])["status"] == "COMPLETED"


def test_a_render_that_breaks_fails_the_job_and_leaves_no_files(tmp_path: Path) -> None:
    service, org, clock = controlled(tmp_path)
    org.broken = True
    clock.advance(timedelta(days=1, hours=3, minutes=11))  # two windows complete
    with pytest.raises(OSError, match="disk full"):
        service.refresh()
    first = job_for(service, datetime(2025, 1, 9, tzinfo=UTC))
    assert first["status"] == "FAILED"
    assert first["files"] == []
    assert not [p for p in (tmp_path / "files").iterdir() if p.name.startswith(".")]
    org.broken = False  # the other claimed job was handed back and renders on the next call
    assert job_for(service, NOW)["status"] == "COMPLETED"


def test_without_backfill_only_scheduled_jobs_exist(tmp_path: Path) -> None:
    service, _, _ = make(tmp_path, backfill=False, start_delay=timedelta(hours=6))
    jobs = by_window(service)
    assert len(jobs) == 14
    assert all("scheduleId" in job for job in jobs)
    first_update = parse_timestamp(jobs[0]["updatedAt"]) - window_of(jobs[0])[1]
    assert (
        timedelta(hours=6, minutes=10) <= first_update < timedelta(hours=6, minutes=10, seconds=1)
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"frequency": "WEEKLY"},
        {"retention_days": 0},
        {"failure_rate": 1.5},
        {"run_time": timedelta(days=20)},
        {"start_delay": timedelta(hours=-1)},
    ],
)
def test_spec_rejects_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each field has its own message
        ExportSpec(**bad)


def test_a_delete_after_a_job_came_due_never_leaks_into_its_snapshot() -> None:
    """Over HTTP: move the clock past a job's completion, delete a customer, then read the job."""
    import requests

    from gladly_sandbox import Sandbox

    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    with Sandbox(
        seed=3, customers=80, now=now, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        auth = (sb.user, sb.api_token)
        api = f"{sb.base_url}/api/v1"
        # The window [2026-03-10, 2026-03-11) completes after 2026-03-11 03:10 (3 h delay + run).
        window_start = datetime(2026, 3, 10, tzinfo=UTC)
        window_end = datetime(2026, 3, 11, tzinfo=UTC)
        in_window = list(sb.org.export_items(window_start, window_end))
        assert in_window, "the seeded org should have activity in the window"
        customer_id = in_window[0]["customerId"]
        for conversation in sb.org.list_conversations(customer_id)[0]:
            if conversation["status"] != "CLOSED":
                sb.org.update_conversation(
                    conversation["id"], {"status": {"value": "CLOSED", "force": True}}
                )
        requests.post(
            f"{sb.base_url}/_sandbox/clock", json={"advance_seconds": 2 * 86400}, timeout=10
        ).raise_for_status()
        deleted = requests.delete(f"{api}/customer-profiles/{customer_id}", auth=auth, timeout=10)
        assert deleted.status_code == 204
        jobs = requests.get(f"{api}/export/jobs", auth=auth, timeout=10).json()
        job = next(j for j in jobs if j["parameters"]["startAt"].startswith("2026-03-10"))
        lines = requests.get(
            f"{api}/export/jobs/{job['id']}/files/conversation_items.jsonl", auth=auth, timeout=10
        ).text.splitlines()
        # The job completed before the delete, so its snapshot still holds the customer.
        assert customer_id in {json.loads(line)["customerId"] for line in lines}
