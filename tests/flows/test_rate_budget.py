"""The Prefect rate budget: limits per organisation, leases, batches, priority, fail closed."""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid

import pytest

from flows.rate_budget import (
    PrefectBudget,
    PrefectSlots,
    RateBudgetError,
    client_budget,
    describe_limits,
    ensure_limits,
    retry_delay,
)
from flows.rate_limits import BURST_REQUESTS, SLOTS_PER_REQUEST, limit_names
from gladly_client import GladlyClient, Priority
from gladly_sandbox import Sandbox
from tests._virtual_time import VirtualTime

CREATE = "gladly-pipeline rate-budget create"


class Scripted:
    """A coordinator answering leases from a script: None grants, a number asks to wait."""

    def __init__(self, *answers: float | None) -> None:
        self.answers = list(answers)
        self.leases: list[tuple[str, int]] = []

    def lease(self, name: str, slots: int) -> float | None:
        self.leases.append((name, slots))
        return self.answers.pop(0)


def test_limits_are_named_per_organisation_and_method() -> None:
    names = limit_names("https://acme.gladly.com")
    assert list(names) == ["GET", "POST", "PUT", "PATCH", "DELETE"]
    digest = names["GET"].removeprefix("gladly-").removesuffix("-get")
    assert len(digest) == 12
    assert all(c in "0123456789abcdef" for c in digest)
    assert names["DELETE"] == f"gladly-{digest}-delete"
    # The same organisation however it is written; another organisation never shares one.
    assert limit_names("https://ACME.gladly.com/api/v1/") == names
    assert set(limit_names("https://acme-sandbox.gladly.com").values()).isdisjoint(names.values())
    assert set(limit_names("http://127.0.0.1:8080").values()).isdisjoint(names.values())


@pytest.mark.parametrize(
    ("retry_after", "prompt", "bulk"),
    [
        (0.5, 0.0625, 0.625),  # a long queue: PROMPT asks again within half an interval
        (0.01, 0.01, 0.135),  # room soon: PROMPT when told, BULK one interval after that
        (math.nan, 0.0625, 0.25),  # no Retry-After: taken as one interval
    ],
)
def test_a_denied_prompt_caller_asks_again_before_a_bulk_one(
    retry_after: float, prompt: float, bulk: float
) -> None:
    assert retry_delay(retry_after, Priority.PROMPT, 8.0) == pytest.approx(prompt)
    assert retry_delay(retry_after, Priority.BULK, 8.0) == pytest.approx(bulk)
    assert prompt < bulk


@pytest.mark.parametrize(
    ("priority", "waits"), [(Priority.PROMPT, [0.0625, 0.0625]), (Priority.BULK, [0.875, 0.875])]
)
def test_a_lease_is_asked_again_until_granted_at_the_callers_priority(
    priority: Priority, waits: list[float]
) -> None:
    time_ = VirtualTime()
    coordinator = Scripted(0.75, 0.75, None)
    budget = PrefectBudget(
        "https://acme.gladly.com", 8.0, slots=coordinator, clock=time_.clock, sleep=time_.sleep
    )
    waited = budget.acquire("get", priority)
    assert time_.sleeps == waits
    assert waited == pytest.approx(sum(waits))
    name = limit_names("https://acme.gladly.com")["GET"]
    assert coordinator.leases == [(name, SLOTS_PER_REQUEST)] * 3


def test_a_batch_serves_several_requests_and_a_stale_slot_is_dropped() -> None:
    time_ = VirtualTime()
    coordinator = Scripted(None, None, None)
    budget = PrefectBudget(
        "https://acme.gladly.com",
        8.0,
        slots=coordinator,
        batch=2,
        clock=time_.clock,
        sleep=time_.sleep,
    )
    budget.acquire("GET", Priority.BULK)
    budget.acquire("GET", Priority.BULK)  # the batch's second slot: no round trip
    assert len(coordinator.leases) == 1
    assert coordinator.leases[0][1] == 2 * SLOTS_PER_REQUEST
    budget.acquire("GET", Priority.BULK)
    time_.sleep(2 / 8.0)  # the new batch's second slot is now older than its share of time
    budget.acquire("GET", Priority.BULK)
    assert len(coordinator.leases) == 3
    with pytest.raises(ValueError, match=f"1 to {BURST_REQUESTS}"):
        PrefectBudget("https://acme.gladly.com", 8.0, slots=coordinator, batch=3)


def test_missing_limits_are_refused_and_nothing_reaches_gladly(prefect_api: None) -> None:
    with Sandbox(seed=5, customers=5, rate_limit_per_second=None) as sb:
        budget = PrefectBudget(sb.base_url, 8.0)
        with (
            GladlyClient(sb.base_url, sb.user, sb.api_token, budget=budget) as client,
            pytest.raises(RateBudgetError, match=CREATE) as refused,
        ):
            client.org.inboxes()
        assert limit_names(sb.base_url)["GET"] in str(refused.value)
        assert sb.stats()["total"] == 0


def test_limits_are_created_once_and_updated_to_a_new_rate(org: str) -> None:
    assert {s.state for s in describe_limits(org)} == {"missing"}
    assert [what for _, what in ensure_limits(org, 8.0)] == ["created"] * 5
    assert [what for _, what in ensure_limits(org, 8.0)] == ["unchanged"] * 5
    states = describe_limits(org)
    assert [(s.state, s.requests_per_second, s.burst) for s in states] == [("ready", 8.0, 2.0)] * 5
    assert [what for _, what in ensure_limits(org, 5.0)] == ["updated"] * 5
    assert {s.requests_per_second for s in describe_limits(org)} == {5.0}
    assert (
        describe_limits(org)[0].line() == f"{limit_names(org)['GET']}: ready, 5 requests/s, burst 2"
    )


def _grant_until(org: str, priorities: list[Priority], total: int) -> tuple[list[int], float]:
    """Threads with their own budgets take GET slots until `total` are granted together;
    the slots each got and the seconds it took (the real server's decay sets the pace)."""
    granted = [0] * len(priorities)
    lock = threading.Lock()

    def worker(index: int) -> None:
        budget = PrefectBudget(org, 8.0)
        while True:
            budget.acquire("GET", priorities[index])
            with lock:
                if sum(granted) >= total:
                    return
                granted[index] += 1

    threads = [
        threading.Thread(target=worker, args=(i,), daemon=True) for i in range(len(priorities))
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return granted, time.monotonic() - started


def test_the_limits_cap_every_process_together(org: str) -> None:
    """Two budgets (two workers' worth), each free to send 8/s, share a limit of 4/s."""
    ensure_limits(org, 4.0)
    granted, elapsed = _grant_until(org, [Priority.BULK, Priority.BULK], 12)
    # Prefect grants at most the burst plus the decay over the time that passed.
    assert sum(granted) <= BURST_REQUESTS + 4.0 * elapsed + 1, (granted, elapsed)
    assert elapsed >= (12 - BURST_REQUESTS - 1) / 4.0, elapsed
    assert min(granted) >= 1, granted


def test_prompt_callers_get_ahead_of_bulk_ones(org: str) -> None:
    ensure_limits(org, 4.0)
    granted, _ = _grant_until(org, [Priority.PROMPT, Priority.BULK], 16)
    assert granted[0] > granted[1], granted


def test_a_real_batch_takes_one_round_trip_for_two_requests(org: str) -> None:
    ensure_limits(org, 50.0)
    time_ = VirtualTime()

    class Counting(PrefectSlots):
        def __init__(self) -> None:
            super().__init__()
            self.granted = 0

        def lease(self, name: str, slots: int) -> float | None:
            answer = super().lease(name, slots)
            self.granted += answer is None
            return answer

    counting = Counting()
    budget = PrefectBudget(org, 8.0, slots=counting, batch=2, clock=time_.clock, sleep=time_.sleep)
    for _ in range(6):
        budget.acquire("POST", Priority.PROMPT)
    assert counting.granted == 3


def test_prefect_budget_without_a_prefect_api_is_refused() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    env = {"GLADLY_RATE_BUDGET": "prefect"}
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with pytest.raises(RateBudgetError, match="PREFECT_API_URL"):
            client_budget(env, "https://acme.gladly.com", 8.0)
        # auto, machine and process never need one
        for kind in ("auto", "machine", "process"):
            assert client_budget({"GLADLY_RATE_BUDGET": kind}, "https://a.gladly.com", 8.0) is None


def test_auto_uses_the_limits_only_once_they_exist(
    org: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flows.rate_budget")
    prefix = limit_names(org)["GET"].removesuffix("-get")
    assert client_budget({}, org, 8.0) is None
    assert f"this machine's processes (no active Prefect limits {prefix}-*" in caplog.text
    with pytest.raises(RateBudgetError, match=CREATE):
        client_budget({"GLADLY_RATE_BUDGET": "prefect"}, org, 8.0)
    ensure_limits(org, 8.0)
    budget = client_budget({"GLADLY_RATE_BUDGET": "auto"}, org, 8.0)
    assert isinstance(budget, PrefectBudget)
    assert f"rate budget: Prefect limits {prefix}-* (shared by every worker)" in caplog.text
    assert client_budget({"GLADLY_RATE_BUDGET": "machine"}, org, 8.0) is None


def test_half_set_up_limits_are_refused_even_in_auto(org: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    ensure_limits(org, 8.0)
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(
            limit_names(org)["DELETE"], GlobalConcurrencyLimitUpdate(slot_decay_per_second=0)
        )
    with pytest.raises(RateBudgetError, match="-delete unusable") as refused:
        client_budget({}, org, 8.0)
    assert CREATE in str(refused.value)
    assert [what for _, what in ensure_limits(org, 8.0)] == ["unchanged"] * 4 + ["updated"]
    assert isinstance(client_budget({}, org, 8.0), PrefectBudget)


class _BusyPrefect:
    """A loopback stand-in for Prefect's API whose lease answers follow a script of statuses."""

    def __init__(self, *statuses: int) -> None:
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.statuses = list(statuses)
        self.leases = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.leases += 1
                status = outer.statuses.pop(0)
                body = json.dumps(
                    [{"id": str(uuid.uuid4()), "name": "gladly-x-get", "limit": 200}]
                    if status == 200
                    else {"exception_message": "Service Unavailable"}
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # the client's CSRF token: an old server has none
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _BusyPrefect:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def test_a_busy_prefect_is_asked_again_at_once_and_a_silent_one_fails_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import types

    import prefect.client.base
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # Prefect's client sleeps about two seconds on a 503 (its module's time.sleep): recorded.
    prefect_sleeps: list[float] = []
    monkeypatch.setattr(
        prefect.client.base, "time", types.SimpleNamespace(sleep=prefect_sleeps.append)
    )
    time_ = VirtualTime()
    with _BusyPrefect(503, 503, 200) as busy:
        with temporary_settings(updates={PREFECT_API_URL: busy.url}):
            slots = PrefectSlots(clock=time_.clock, sleep=time_.sleep)
        assert slots.lease("gladly-x-get", SLOTS_PER_REQUEST) is None
        assert prefect_sleeps == []
        assert busy.leases == 3
        assert time_.sleeps == [0.02, 0.04]
        slots.close()
    # Nothing listens there any more: asked again with growing pauses, then refused.
    time_.sleeps.clear()
    with temporary_settings(updates={PREFECT_API_URL: busy.url}):
        gone = PrefectSlots(clock=time_.clock, sleep=time_.sleep, give_up_seconds=0.05)
    with pytest.raises(RateBudgetError, match=r"not answered .* for 0\.05 s \(ConnectError\)"):
        gone.lease("gladly-x-get", SLOTS_PER_REQUEST)
    assert time_.sleeps == [0.02, 0.04]


def test_threads_sending_every_method_at_once_share_one_budget(org: str) -> None:
    """The deletion engine's threads: GETs, PATCHes and DELETEs leased at the same moment."""
    ensure_limits(org, 200.0)
    budget = PrefectBudget(org, 200.0)
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"] * 2
    failures: list[BaseException] = []
    done = [0] * len(methods)
    start = threading.Barrier(len(methods))

    def worker(index: int) -> None:
        start.wait()
        try:
            for _ in range(5):
                budget.acquire(methods[index], Priority.PROMPT)
                done[index] += 1
        except BaseException as exc:  # reported below, with the others
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(methods))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == []
    assert done == [5] * len(methods)
