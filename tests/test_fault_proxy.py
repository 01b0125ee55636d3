"""The fault-injecting proxy against a real sandbox: the truth is the sandbox's state, while the
client sees the hostile network the proxy makes."""

from __future__ import annotations

import base64
import http.client
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from gladly_client import (
    GladlyClient,
    GladlyConnectionError,
    GladlyError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from gladly_client.errors import GladlyTimeoutError
from gladly_sandbox import Sandbox
from gladly_sandbox.control import CONTROL_PREFIX
from tests._fault_proxy import FAULT_KINDS, FaultProxy

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, tzinfo=UTC)
# The sandbox's control routes (/_sandbox/...) must never be faulted.
CLEAN = (CONTROL_PREFIX + "/",)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(
        seed=1, customers=20, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        yield sb


def _client(proxy_or_url: FaultProxy | str, sb: Sandbox, **options: Any) -> GladlyClient:
    url = proxy_or_url.base_url if isinstance(proxy_or_url, FaultProxy) else proxy_or_url
    options.setdefault("max_attempts", 1)
    # Retries and pacing never sleep for real.
    return GladlyClient(
        url, sb.user, sb.api_token, requests_per_second=1000.0, sleep=lambda _s: None, **options
    )


def _live_ids(sb: Sandbox) -> list[str]:
    ids = []
    for customer_id in sb.org.customer_ids():
        raw = sb.org.raw_customer(customer_id)
        if raw is not None and not raw.get("deleted") and not raw.get("merged_into"):
            ids.append(customer_id)
    return ids


def _deletable_id(sb: Sandbox) -> str:
    for customer_id in reversed(_live_ids(sb)):
        conversations, _ = sb.org.list_conversations(customer_id)
        if all(c["status"] == "CLOSED" for c in conversations):
            return customer_id
    raise AssertionError("the seeded org has no customer without open conversations")


@contextmanager
def _raw_get(proxy: FaultProxy, sb: Sandbox, path: str) -> Iterator[http.client.HTTPResponse]:
    token = base64.b64encode(f"{sb.user}:{sb.api_token}".encode()).decode()
    port = int(proxy.base_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Authorization": f"Basic {token}"})
        yield conn.getresponse()
    finally:
        conn.close()


def test_without_faults_the_client_reads_exactly_as_directly(sandbox: Sandbox) -> None:
    customer_id = _live_ids(sandbox)[0]
    truth = sandbox.org.get_customer(customer_id)
    email = truth["emails"][0]["original"]
    with (
        FaultProxy(sandbox.base_url, seed=1, rates={}) as proxy,
        _client(proxy, sandbox) as via_proxy,
        _client(sandbox.base_url, sandbox) as direct,
    ):
        assert via_proxy.customers.get(customer_id) == direct.customers.get(customer_id)
        assert via_proxy.customers.find(email=email) == direct.customers.find(email=email)
        assert via_proxy.customers.get(customer_id).id == truth["id"]
        assert proxy.stats == Counter(forwarded=3)
        assert proxy.injected == 0
        # The log never holds the query string (it carries the email).
        assert all("?" not in path for _, path, _ in proxy.log)


def test_large_export_files_stream_through_unchanged(sandbox: Sandbox) -> None:
    with (
        FaultProxy(sandbox.base_url, seed=1, rates={}) as proxy,
        _client(proxy, sandbox) as client,
    ):
        job = max(
            client.exports.list_jobs(status="COMPLETED"),
            key=lambda j: sum(sandbox.exports.file_path(j.id, f).stat().st_size for f in j.files),
        )
        for name in job.files:
            stream = client.exports.stream_file(job.id, name)
            lines = list(stream)
            on_disk = sandbox.exports.file_path(job.id, name).read_bytes()
            assert stream.bytes_read == len(on_disk)
            assert b"\n".join(lines) + (b"\n" if lines else b"") == on_disk


@pytest.mark.parametrize(
    ("kind", "error", "status"),
    [
        ("429", RateLimitError, 429),
        ("500", ServerError, 500),
        ("502", ServerError, 502),
        ("503", ServerError, 503),
    ],
)
def test_status_faults_are_answered_by_the_proxy_alone(
    sandbox: Sandbox, kind: str, error: type[GladlyError], status: int
) -> None:
    customer_id = _live_ids(sandbox)[0]
    sandbox.reset_stats()
    with (
        FaultProxy(sandbox.base_url, seed=2, rates={kind: 1.0}) as proxy,
        _client(proxy, sandbox, max_attempts=3) as client,
    ):
        with pytest.raises(error) as raised:
            client.customers.get(customer_id)
        assert getattr(raised.value, "status", None) == status
        assert proxy.stats == Counter({kind: 3})  # every retry was faulted too
    if kind == "429":
        assert isinstance(raised.value, RateLimitError)
        assert raised.value.code == "rate_limit_exceeded"
        assert raised.value.retry_after is None
    assert sandbox.stats()["total"] == 0  # nothing was forwarded


def test_reset_before_never_reaches_the_sandbox(sandbox: Sandbox) -> None:
    customer_id = _live_ids(sandbox)[0]
    sandbox.reset_stats()
    with (
        FaultProxy(sandbox.base_url, seed=3, rates={"reset_before": 1.0}) as proxy,
        _client(proxy, sandbox, max_attempts=2) as client,
        pytest.raises(GladlyConnectionError),
    ):
        client.customers.get(customer_id)
    assert proxy.stats == Counter(reset_before=2)
    assert sandbox.stats()["total"] == 0


def test_reset_after_delete_the_sandbox_deleted_although_the_client_saw_an_error(
    sandbox: Sandbox,
) -> None:
    customer_id = _deletable_id(sandbox)
    with (
        FaultProxy(
            sandbox.base_url,
            seed=4,
            rates={"reset_after": 1.0},
            methods={"DELETE"},
            exclude_paths=CLEAN,
        ) as proxy,
        _client(proxy, sandbox) as client,
    ):
        with pytest.raises(GladlyConnectionError) as raised:
            client.customers.delete(customer_id)
        assert not isinstance(raised.value, GladlyTimeoutError)
        # The truth: the erasure happened.
        raw = sandbox.org.raw_customer(customer_id)
        assert raw is not None
        assert raw["deleted"] is True
        # GETs are not faulted (methods={"DELETE"}): the client can find out for itself.
        with pytest.raises(NotFoundError):
            client.customers.get(customer_id)
        assert proxy.stats == Counter(reset_after=1, forwarded=1)
        assert proxy.log == [
            ("DELETE", f"/api/v1/customer-profiles/{customer_id}", "reset_after"),
            ("GET", f"/api/v1/customer-profiles/{customer_id}", "forwarded"),
        ]


def test_timeout_after_fires_the_client_read_timeout(sandbox: Sandbox) -> None:
    customer_id = _live_ids(sandbox)[0]
    sandbox.reset_stats()
    with (
        FaultProxy(
            sandbox.base_url, seed=5, rates={"timeout_after": 1.0}, hold_seconds=2.0
        ) as proxy,
        _client(proxy, sandbox, timeout=0.2) as client,
        pytest.raises(GladlyTimeoutError),
    ):
        client.customers.get(customer_id)
    # The held connection is released by stop(), not by waiting out hold_seconds.
    assert proxy.stats == Counter(timeout_after=1)
    assert sandbox.stats()["total"] == 1  # the request did reach the sandbox


def test_timeout_after_shorter_than_the_client_timeout_is_a_dropped_connection(
    sandbox: Sandbox,
) -> None:
    customer_id = _live_ids(sandbox)[0]
    with (
        FaultProxy(
            sandbox.base_url, seed=5, rates={"timeout_after": 1.0}, hold_seconds=0.0
        ) as proxy,
        _client(proxy, sandbox) as client,
        pytest.raises(GladlyConnectionError) as raised,
    ):
        client.customers.get(customer_id)
    assert not isinstance(raised.value, GladlyTimeoutError)


@pytest.mark.parametrize("kind", ["truncated", "garbled"])
def test_damaged_bodies_raise_a_gladly_error(sandbox: Sandbox, kind: str) -> None:
    customer_id = _live_ids(sandbox)[0]
    with (
        FaultProxy(sandbox.base_url, seed=6, rates={kind: 1.0}) as proxy,
        _client(proxy, sandbox) as client,
        pytest.raises(Exception) as raised,  # noqa: PT011 - the type is checked below
    ):
        client.customers.get(customer_id)
    # Some GladlyError (connection error, validation error or a dedicated malformed-response one).
    assert isinstance(raised.value, GladlyError)
    assert proxy.stats == Counter({kind: 1})


def test_truncated_and_garbled_on_the_wire(sandbox: Sandbox) -> None:
    path = f"/api/v1/customer-profiles/{_live_ids(sandbox)[0]}"
    with (
        FaultProxy(sandbox.base_url, seed=7, rates={}) as clean,
        _raw_get(clean, sandbox, path) as resp,
    ):
        original = resp.read()
        assert resp.status == 200
    with (
        FaultProxy(sandbox.base_url, seed=7, rates={"truncated": 1.0}) as proxy,
        _raw_get(proxy, sandbox, path) as resp,
    ):
        assert resp.status == 200
        assert resp.getheader("Content-Length") == str(len(original))
        with pytest.raises(http.client.IncompleteRead) as short:
            resp.read()
        assert short.value.partial == original[: len(original) // 2]
    with (
        FaultProxy(sandbox.base_url, seed=7, rates={"garbled": 1.0}) as proxy,
        _raw_get(proxy, sandbox, path) as resp,
    ):
        body = resp.read()
        assert resp.status == 200
        assert resp.getheader("Content-Type") == "application/json"
        assert resp.getheader("Content-Length") == str(len(body))
        assert len(body) == len(original)
        assert body.startswith(b"<html>")
        with pytest.raises(ValueError, match="Expecting value"):
            json.loads(body)


def _statuses(proxy: FaultProxy, sb: Sandbox, path: str, n: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    with requests.Session() as session:
        session.trust_env = False
        session.auth = (sb.user, sb.api_token)
        for _ in range(n):
            resp = session.get(proxy.base_url + path, timeout=5)
            looks_like_json = resp.content[:1] in (b"{", b"[")
            seen["garbled" if resp.ok and not looks_like_json else str(resp.status_code)] += 1
    return seen


def test_rates_are_honoured_and_deterministic(sandbox: Sandbox) -> None:
    path = f"/api/v1/customer-profiles/{_live_ids(sandbox)[0]}"
    rates = {"429": 0.1, "500": 0.2, "garbled": 0.1}
    n = 400
    with FaultProxy(sandbox.base_url, seed=8, rates=rates) as proxy:
        seen = _statuses(proxy, sandbox, path, n)
        stats, log = proxy.stats, proxy.log
    assert sum(stats.values()) == n
    assert stats["forwarded"] == seen["200"]
    for kind, rate in rates.items():
        assert seen[kind] == stats[kind]  # what the client saw is what the proxy counted
        expected = n * rate
        sd = (n * rate * (1 - rate)) ** 0.5
        assert abs(stats[kind] - expected) <= 3.5 * sd, (kind, stats[kind], expected)
    # Same seed, same requests in the same order: the same faults.
    with FaultProxy(sandbox.base_url, seed=8, rates=rates) as again:
        _statuses(again, sandbox, path, 60)
        assert [kind for *_, kind in again.log] == [kind for *_, kind in log[:60]]


def test_disabled_forwards_everything_and_exclusions_stay_clean(sandbox: Sandbox) -> None:
    customer_id = _live_ids(sandbox)[0]
    with (
        FaultProxy(sandbox.base_url, seed=9, rates={"500": 1.0}, exclude_paths=CLEAN) as proxy,
        _client(proxy, sandbox) as client,
    ):
        proxy.enabled = False
        for _ in range(5):
            assert client.customers.get(customer_id).id == customer_id
        assert proxy.stats == Counter(forwarded=5)
        proxy.enabled = True
        with pytest.raises(ServerError):
            client.customers.get(customer_id)
        # The sandbox's control surface is excluded: still answered cleanly.
        health = requests.get(proxy.base_url + CONTROL_PREFIX + "/health", timeout=5)
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        assert proxy.stats == Counter({"forwarded": 6, "500": 1})


def test_bad_configuration_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="'reset'"):
        FaultProxy(sandbox.base_url, seed=1, rates={"reset": 0.1})
    with pytest.raises(ValueError, match="more than 1"):
        FaultProxy(sandbox.base_url, seed=1, rates={"500": 0.6, "garbled": 0.6})
    assert set(FAULT_KINDS) == {
        "429",
        "500",
        "502",
        "503",
        "reset_before",
        "reset_after",
        "timeout_after",
        "truncated",
        "garbled",
    }
