"""Retry sequences, base-URL rules, settings, and that nothing secret or personal leaks."""

from __future__ import annotations

import logging
import socket
import traceback

import pytest
import requests
import responses

from gladly_client import (
    GladlyClient,
    GladlyConnectionError,
    GladlySettingsError,
    GladlyTimeoutError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from gladly_client.transport import normalize_base_url
from tests.gladly_client import payloads

BASE = "https://acme.gladly.com"
API = f"{BASE}/api/v1"
TOKEN = "tok-SECRET-7f3a9c"
USER = "api-user@acme.example.com"
EMAIL = "dana.private@example.com"
PHONE = "+14155550142"


class VirtualTime:
    """A clock that only moves when the code under test sleeps; records every wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def vt() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def client(vt: VirtualTime) -> GladlyClient:
    return GladlyClient(
        BASE,
        USER,
        TOKEN,
        requests_per_second=1000.0,
        max_attempts=4,
        sleep=vt.sleep,
        clock=vt.clock,
    )


@responses.activate
def test_429_429_200_succeeds_after_three_calls(client: GladlyClient, vt: VirtualTime) -> None:
    url = f"{API}/customer-profiles/c1"
    responses.get(url, status=429)
    responses.get(url, status=429)
    responses.get(url, json=payloads.customer(id="c1"))
    assert client.customers.get("c1").id == "c1"
    assert len(responses.calls) == 3
    # Each 429 costs at least Gladly's one-second window before the next try.
    assert vt.now - 1000.0 >= 2.0


@responses.activate
def test_503_then_success(client: GladlyClient, vt: VirtualTime) -> None:
    url = f"{API}/export/jobs"
    responses.get(url, status=503)
    responses.get(url, json=[])
    assert client.exports.list_jobs() == []
    assert len(responses.calls) == 2


@responses.activate
def test_gives_up_after_max_attempts_with_the_last_error(
    client: GladlyClient, vt: VirtualTime
) -> None:
    responses.get(f"{API}/conversations/c1", status=502)
    with pytest.raises(ServerError) as err:
        client.conversations.get("c1")
    assert err.value.status == 502
    assert len(responses.calls) == 4
    assert len(vt.sleeps) == 3  # one backoff between each pair of attempts, nothing else


@responses.activate
def test_404_is_not_retried(client: GladlyClient) -> None:
    responses.get(f"{API}/conversations/c1", status=404)
    with pytest.raises(NotFoundError):
        client.conversations.get("c1")
    assert len(responses.calls) == 1


@responses.activate
def test_retry_after_header_is_honoured(client: GladlyClient, vt: VirtualTime) -> None:
    url = f"{API}/conversations/c1"
    responses.get(url, status=429, headers={"Retry-After": "3"})
    responses.get(url, status=429, headers={"Retry-After": "0.25"})
    responses.get(url, json=payloads.conversation(id="c1"))
    client.conversations.get("c1")
    # Retry-After is waited exactly; after the short one the throttle still holds the rest of
    # the one-second window it opened on the 429.
    assert vt.sleeps == [3.0, 0.25, 0.75]


@responses.activate
def test_429_slows_the_throttle(client: GladlyClient) -> None:
    url = f"{API}/conversations/c1"
    responses.get(url, status=429)
    responses.get(url, json=payloads.conversation(id="c1"))
    client.conversations.get("c1")
    assert client.throttle.current_rate("GET") < 1000.0


@responses.activate
def test_connection_errors_and_timeouts_are_retried_then_raised(client: GladlyClient) -> None:
    url = f"{API}/conversations/c1"
    responses.get(url, body=requests.ConnectionError("reset"))
    responses.get(url, json=payloads.conversation(id="c1"))
    assert client.conversations.get("c1").id == "c1"

    responses.replace(responses.GET, url, body=requests.ReadTimeout("slow"))
    with pytest.raises(GladlyTimeoutError):
        client.conversations.get("c1")
    assert isinstance(GladlyTimeoutError("GET", "/x", "y"), GladlyConnectionError)


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("https://acme.gladly.com", "https://acme.gladly.com"),
        ("https://acme.gladly.com/", "https://acme.gladly.com"),
        ("https://acme.gladly.com/api/v1", "https://acme.gladly.com"),
        ("https://acme.us-1.gladly.com/api/v1/", "https://acme.us-1.gladly.com"),
        ("https://acme.gladly.qa", "https://acme.gladly.qa"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.5.0.1:8080/api/v1", "http://127.5.0.1:8080"),
        ("http://localhost:9000", "http://localhost:9000"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_base_url_normalisation(given: str, normalized: str) -> None:
    assert normalize_base_url(given) == normalized


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("http://acme.gladly.com", "plain http"),
        ("http://10.0.0.5:8080", "plain http"),
        ("ftp://acme.gladly.com", "https://yourorg.gladly.com"),
        ("acme.gladly.com", "https://yourorg.gladly.com"),
        ("", "GLADLY_BASE_URL"),
        ("htps://acme.gladly.com", "the scheme 'htps'"),
        ("http://exa mple", "'exa mple', which cannot be a host name"),
        ("https://acme.gladly.com:44x3", "port that is not a number"),
    ],
)
def test_bad_base_urls_are_refused_with_a_fix(given: str, message: str) -> None:
    with pytest.raises(GladlySettingsError, match=message) as caught:
        GladlyClient(given, USER, TOKEN)
    assert isinstance(caught.value, ValueError)  # callers that catch ValueError still do


def test_a_refused_connection_says_so_without_the_url(vt: VirtualTime) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = GladlyClient(f"http://127.0.0.1:{port}", USER, TOKEN, max_attempts=2, sleep=vt.sleep)
    with pytest.raises(GladlyConnectionError) as caught:
        closed.customers.find(email=EMAIL)
    assert "Connection refused" in str(caught.value)
    assert EMAIL not in str(caught.value)
    assert str(port) not in str(caught.value)


def test_from_env_reads_settings_and_names_what_is_missing() -> None:
    env = {
        "GLADLY_BASE_URL": BASE,
        "GLADLY_USER": USER,
        "GLADLY_API_TOKEN": TOKEN,
        "GLADLY_REQUESTS_PER_SECOND": "5",
    }
    client = GladlyClient.from_env(env)
    assert client.base_url == BASE
    assert client.requests_per_second == 5.0
    with pytest.raises(GladlySettingsError, match="missing Gladly settings") as err:
        GladlyClient.from_env({"GLADLY_BASE_URL": BASE})
    assert "GLADLY_USER" in str(err.value)
    assert "GLADLY_API_TOKEN" in str(err.value)
    with pytest.raises(ValueError, match="GLADLY_REQUESTS_PER_SECOND"):
        GladlyClient.from_env({**env, "GLADLY_REQUESTS_PER_SECOND": "-1"})


def test_repr_hides_token_and_user() -> None:
    client = GladlyClient(BASE, USER, TOKEN)
    assert TOKEN not in repr(client)
    assert USER not in repr(client)
    assert "***" in repr(client)


@responses.activate
def test_no_token_email_or_phone_in_any_error_or_log(
    client: GladlyClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Every failure path, with personal data in the query and in the body: none of it leaks."""
    caplog.set_level(logging.DEBUG)
    leaky = {"errors": [{"code": "invalid", "detail": f"{EMAIL} {PHONE} {TOKEN}"}]}
    responses.get(f"{API}/customer-profiles", status=400, json=leaky)
    responses.get(f"{API}/customer-profiles", status=429, json=leaky)
    responses.get(f"{API}/customer-profiles", status=500, json=leaky)
    responses.get(f"{API}/customer-profiles", body=requests.ConnectionError(f"{EMAIL} {TOKEN}"))
    responses.get(f"{API}/customer-profiles", status=401, json=leaky)
    responses.get(f"{API}/customer-profiles", status=200, json=[{"id": 5, "name": EMAIL}])
    texts: list[str] = []
    for kwargs in ({"email": EMAIL}, {"phone": PHONE}, {"email": EMAIL}, {"phone": PHONE}):
        try:
            client.customers.find(**kwargs)
        except Exception as exc:
            texts.append(str(exc))
            texts.append("".join(traceback.format_exception(exc)))
    texts.extend(record.getMessage() for record in caplog.records)
    assert len(texts) >= 8
    blob = "\n".join(texts)
    for secret in (TOKEN, EMAIL, PHONE, "%40", "dana.private"):
        assert secret not in blob


@responses.activate
def test_rate_limit_error_surfaces_after_giving_up(client: GladlyClient) -> None:
    responses.get(f"{API}/export/jobs", status=429)
    with pytest.raises(RateLimitError):
        client.exports.list_jobs()
    assert len(responses.calls) == 4
