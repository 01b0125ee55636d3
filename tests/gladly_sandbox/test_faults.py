"""Injected faults: server errors, resets, truncated downloads and slow first bytes, seeded."""

from __future__ import annotations

import base64
import socket
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests

from gladly_sandbox import FaultSpec, Sandbox
from gladly_sandbox.faults import FaultInjector

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
FILES_ROUTE = "/export/jobs/{jobId}/files/{filename}"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(
        seed=5, customers=30, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        yield sb


@pytest.fixture
def sb(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The shared sandbox with a fresh fault sequence and stats; faults cleared afterwards."""
    sandbox.configure(faults={}, fault_seed=1234)
    sandbox.reset_stats()
    yield sandbox
    sandbox.configure(faults={})


def _session(sb: Sandbox) -> requests.Session:
    session = requests.Session()
    session.auth = (sb.user, sb.api_token)
    return session


def _basic(sb: Sandbox) -> str:
    return base64.b64encode(f"{sb.user}:{sb.api_token}".encode()).decode()


def _completed_file(sb: Sandbox) -> tuple[str, str]:
    jobs = sb.exports.list_jobs(status="COMPLETED")
    job = next(j for j in jobs if j["files"])
    return job["id"], "conversation_items.jsonl"


def test_injector_rates_follow_the_spec() -> None:
    injector = FaultInjector(seed=99)
    spec = FaultSpec(error_rate=0.2, reset_rate=0.1, slow_first_byte_rate=0.5)
    plans = [injector.decide(spec, download=False) for _ in range(4000)]
    resets = sum(p.reset for p in plans)
    errors = sum(p.error_status is not None for p in plans)
    assert 0.08 < resets / 4000 < 0.12
    assert 0.16 < errors / (4000 - resets) < 0.24
    assert {p.error_status for p in plans if p.error_status} == {500, 502, 503}
    assert not any(p.truncate_at is not None for p in plans)  # not a download


def test_same_seed_same_faults() -> None:
    spec = FaultSpec(error_rate=0.5)
    one, two = FaultInjector(7), FaultInjector(7)
    first = [one.decide(spec, download=False) for _ in range(50)]
    assert first == [two.decide(spec, download=False) for _ in range(50)]
    assert 10 < sum(p.error_status is not None for p in first) < 40


def test_error_rate_over_http(sb: Sandbox) -> None:
    sb.configure(faults={"*": FaultSpec(error_rate=0.3)})
    session = _session(sb)
    statuses = Counter(session.get(f"{sb.base_url}/api/v1/agents").status_code for _ in range(400))
    failed = statuses[500] + statuses[502] + statuses[503]
    # Sequential requests with a fixed fault_seed draw the same numbers every run: no flake.
    assert 0.24 <= failed / 400 <= 0.36
    assert set(statuses) <= {200, 500, 502, 503}
    assert sb.stats()["faults"]["error"] == failed


def test_error_bodies_look_like_their_origin(sb: Sandbox) -> None:
    sb.configure(faults={"/agents": FaultSpec(error_rate=1.0)})
    session = _session(sb)
    seen: dict[int, requests.Response] = {}
    for _ in range(40):
        response = session.get(f"{sb.base_url}/api/v1/agents")
        seen.setdefault(response.status_code, response)
    assert set(seen) == {500, 502, 503}
    assert seen[500].json()["errors"][0]["code"] == "internal_error"
    assert seen[502].headers["Content-Type"] == "text/html"  # a proxy's page, not Gladly JSON


def test_faults_are_scoped_to_their_route(sb: Sandbox) -> None:
    sb.configure(faults={"/agents": FaultSpec(error_rate=1.0)})
    session = _session(sb)
    assert all(session.get(f"{sb.base_url}/api/v1/agents").status_code >= 500 for _ in range(5))
    assert all(session.get(f"{sb.base_url}/api/v1/topics").status_code == 200 for _ in range(5))


def test_unknown_fault_route_is_refused(sb: Sandbox) -> None:
    with pytest.raises(ValueError, match="faults: unknown route '/agent'"):
        sb.configure(faults={"/agent": FaultSpec(error_rate=1.0)})


def test_reset_is_a_connection_error(sb: Sandbox) -> None:
    sb.configure(faults={"/agents": FaultSpec(reset_rate=1.0)})
    with pytest.raises(requests.ConnectionError):
        _session(sb).get(f"{sb.base_url}/api/v1/agents")
    host, port = sb.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        head = f"GET /api/v1/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {_basic(sb)}"
        raw.sendall(f"{head}\r\n\r\n".encode())
        with pytest.raises(ConnectionResetError):
            raw.recv(1024)  # a RST, not an orderly close: recv raises instead of returning b""
    assert sb.stats()["by_route"]["GET /agents"]["reset"] == 2


def test_truncated_download_sends_fewer_bytes_than_content_length(sb: Sandbox) -> None:
    job_id, name = _completed_file(sb)
    full = sb.exports.file_path(job_id, name).stat().st_size
    assert full > 0
    sb.configure(faults={FILES_ROUTE: FaultSpec(truncate_rate=1.0)})
    host, port = sb.base_url.removeprefix("http://").split(":")
    request = (
        f"GET /api/v1/export/jobs/{job_id}/files/{name} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Basic {_basic(sb)}\r\n\r\n"
    )
    received = b""
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(request.encode())
        while chunk := raw.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"200 OK" in head
    assert f"Content-Length: {full}".encode() in head
    assert len(body) < full
    assert sb.stats()["faults"]["truncate"] == 1


def test_truncation_only_hits_downloads(sb: Sandbox) -> None:
    sb.configure(faults={"*": FaultSpec(truncate_rate=1.0)})
    response = _session(sb).get(f"{sb.base_url}/api/v1/agents")
    assert response.status_code == 200
    assert isinstance(response.json(), list)


def test_slow_first_byte_sleeps_before_answering(sb: Sandbox) -> None:
    slept: list[float] = []
    original = sb.server.sleep
    sb.server.sleep = slept.append  # the server waits through this; the test never sleeps
    try:
        sb.configure(
            faults={"/agents": FaultSpec(slow_first_byte_rate=1.0, slow_first_byte_ms=250)}
        )
        assert _session(sb).get(f"{sb.base_url}/api/v1/agents").status_code == 200
        assert slept == [0.25]
        assert _session(sb).get(f"{sb.base_url}/api/v1/topics").status_code == 200
        assert slept == [0.25]
    finally:
        sb.server.sleep = original


def test_throttle_faults_answer_429_with_an_exhausted_budget(sb: Sandbox) -> None:
    injector = FaultInjector(seed=7)
    plans = [injector.decide(FaultSpec(throttle_rate=0.25), download=False) for _ in range(4000)]
    assert 0.22 < sum(p.throttled for p in plans) / 4000 < 0.28
    sb.configure(faults={"/agents": FaultSpec(throttle_rate=1.0)})
    answer = _session(sb).get(f"{sb.base_url}/api/v1/agents", timeout=5)
    assert answer.status_code == 429
    assert answer.headers["Ratelimit-Remaining-Second"] == "0"
    assert answer.json()["errors"][0]["code"] == "rate_limited"
    assert sb.stats()["faults"]["throttle"] == 1
