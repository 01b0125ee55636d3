"""A 2xx body that is garbled or cut short is a transport fault: retried, then raised safely."""

from __future__ import annotations

import io
import json
import logging
import traceback

import pytest
import requests
import responses
from pydantic import ValidationError
from responses import matchers

from gladly_client import (
    GladlyClient,
    GladlyConnectionError,
    GladlyError,
    MalformedResponseError,
    ResponseValidationError,
)
from gladly_client.errors import body_cut_short, error_from_body
from gladly_client.models import Customer
from gladly_client.retry import BACKOFF_MIN_SECONDS, is_retryable
from gladly_client.transport import HTTPResult, Transport
from tests._virtual_time import VirtualTime
from tests.gladly_client import payloads

BASE = "https://acme.gladly.com"
API = f"{BASE}/api/v1"
TOKEN = "tok-SECRET-5e1d"
EMAIL = "robin.private@example.com"
# What a proxy's error page, or a body cut mid-way, might look like: it holds customer data.
GARBLED = f'<html>upstream hiccup for {EMAIL}</html>{{"id": "c1", "na'.encode()
ATTEMPTS = 4


@pytest.fixture
def vt() -> VirtualTime:
    return VirtualTime()


def retry_waits(vt: VirtualTime) -> list[float]:
    """The waits the retry policy asked for (the throttle's 1 ms pacing left out)."""
    return [s for s in vt.sleeps if s >= BACKOFF_MIN_SECONDS]


@pytest.fixture
def client(vt: VirtualTime) -> GladlyClient:
    return GladlyClient(
        BASE,
        "api-user@acme.example.com",
        TOKEN,
        requests_per_second=1000.0,
        max_attempts=ATTEMPTS,
        sleep=vt.sleep,
        clock=vt.clock,
    )


def test_the_new_error_is_a_retryable_connection_fault_and_shape_errors_are_not() -> None:
    exc = MalformedResponseError("GET", "/export/jobs", status=200, received=3)
    assert isinstance(exc, GladlyConnectionError)
    assert isinstance(exc, GladlyError)
    assert is_retryable(exc)
    assert not is_retryable(ResponseValidationError("GET", "/export/jobs", "list", ["0.id"]))
    assert (
        str(exc) == "GET /export/jobs: malformed response (200 body of 3 bytes is not valid JSON)"
    )


@responses.activate
def test_garbled_garbled_then_200_succeeds_after_retries(
    client: GladlyClient, vt: VirtualTime
) -> None:
    url = f"{API}/customer-profiles/c1"
    responses.get(url, body=GARBLED, content_type="application/json")
    responses.get(url, body=b"", content_type="application/json")  # 200 with nothing at all
    responses.get(url, json=payloads.customer(id="c1"))
    assert client.customers.get("c1").id == "c1"
    assert len(responses.calls) == 3
    assert len(retry_waits(vt)) == 2  # the same backoff as a reset, through the injected sleep


@responses.activate
def test_a_garbled_export_job_listing_is_retried(client: GladlyClient, vt: VirtualTime) -> None:
    url = f"{API}/export/jobs"
    responses.get(url, body=b'[{"id": "job-1", "status": "COMPL', content_type="application/json")
    responses.get(url, json=[payloads.export_job()])
    jobs = client.exports.list_jobs(status="COMPLETED")
    assert [j.id for j in jobs] == [payloads.JOB_ID]
    assert len(responses.calls) == 2
    assert len(retry_waits(vt)) == 1


@responses.activate
def test_garbled_every_time_raises_after_the_budget_without_body_or_query(
    client: GladlyClient, vt: VirtualTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    responses.get(
        f"{API}/customer-profiles",
        body=GARBLED,
        content_type="application/json",
        headers={"Gladly-Request-Id": "req-77"},
        match=[matchers.query_param_matcher({"email": EMAIL})],
    )
    with pytest.raises(MalformedResponseError) as err:
        client.customers.find(email=EMAIL)
    assert len(responses.calls) == ATTEMPTS
    assert len(retry_waits(vt)) == ATTEMPTS - 1
    exc = err.value
    assert exc.method == "GET"
    assert exc.path_template == "/customer-profiles"
    assert exc.status == 200
    assert exc.received == len(GARBLED)
    assert exc.request_id == "req-77"
    assert exc.__cause__ is None
    assert exc.__suppress_context__
    texts = [str(exc), "".join(traceback.format_exception(exc))]
    texts.extend(record.getMessage() for record in caplog.records)
    blob = "\n".join(texts)
    assert "GET /customer-profiles: malformed response" in str(exc)
    for leaked in (EMAIL, "robin", "%40", "upstream hiccup", "<html>", TOKEN, "?email"):
        assert leaked not in blob


@responses.activate
def test_non_utf8_bytes_are_malformed_too(client: GladlyClient) -> None:
    responses.get(f"{API}/conversations/conv-1", body=b"\xff\xfe\x00{}")
    with pytest.raises(MalformedResponseError):
        client.conversations.get("conv-1")
    assert len(responses.calls) == ATTEMPTS


@responses.activate
def test_wrong_shape_json_is_a_validation_error_at_once(
    client: GladlyClient, vt: VirtualTime
) -> None:
    responses.get(f"{API}/export/jobs", json={"jobs": [{"id": "job-1"}]})
    with pytest.raises(ResponseValidationError) as err:
        client.exports.list_jobs()
    assert len(responses.calls) == 1
    assert retry_waits(vt) == []
    assert err.value.model == "list[ExportJob]"
    assert not isinstance(err.value, GladlyConnectionError)


@responses.activate
def test_a_body_shorter_than_its_content_length_is_retried(
    client: GladlyClient, vt: VirtualTime
) -> None:
    """requests itself refuses the short read (a connection fault); either way it is retried."""
    url = f"{API}/customer-profiles/c1"
    whole = json.dumps(payloads.customer(id="c1")).encode()
    responses.get(url, body=whole[:20], headers={"Content-Length": str(len(whole))})
    responses.get(url, body=whole, content_type="application/json")
    assert client.customers.get("c1").id == "c1"
    assert len(responses.calls) == 2
    assert len(retry_waits(vt)) == 1


@responses.activate
def test_empty_answers_where_no_body_is_expected_stay_fine(
    client: GladlyClient, vt: VirtualTime
) -> None:
    responses.delete(f"{API}/customer-profiles/c1", status=204)
    responses.post(f"{API}/conversation-items/i1/redact", status=204)
    responses.patch(f"{API}/conversations/conv-1", status=204)
    responses.post(f"{API}/conversation-items/i2/redact", body=b"<not json>", status=200)
    client.customers.delete("c1")
    client.items.redact("i1")
    client.conversations.close("conv-1")
    client.items.redact("i2")
    assert len(responses.calls) == 4
    assert retry_waits(vt) == []


def _validation_error(body: bytes) -> ValidationError:
    try:
        Customer.model_validate_json(body)
    except ValidationError as exc:
        return exc
    raise AssertionError("expected a validation error")


def _map(
    body: bytes, headers: dict[str, str], validation: ValidationError | None = None
) -> MalformedResponseError | ResponseValidationError:
    return error_from_body(
        status=200,
        method="GET",
        path_template="/customer-profiles/{customer_id}",
        headers=headers,
        body=body,
        validation=validation,
    )


def test_error_from_body_is_the_one_mapping_of_an_unusable_2xx_body() -> None:
    short = b'{"id": "c1"'
    cut = _map(short, {"Content-Length": "40"})
    assert isinstance(cut, MalformedResponseError)
    assert (cut.received, cut.expected) == (len(short), 40)
    assert "cut short after 11 of 40 announced bytes" in str(cut)

    garbled = _map(GARBLED, {}, _validation_error(GARBLED))
    assert isinstance(garbled, MalformedResponseError)
    assert EMAIL not in str(garbled)

    shape = b'{"id": 5, "name": "' + EMAIL.encode() + b'"}'
    wrong = _map(shape, {}, _validation_error(shape))
    assert isinstance(wrong, ResponseValidationError)
    assert wrong.model == "Customer"
    assert wrong.locations == ["id"]
    assert EMAIL not in str(wrong)


def test_cut_short_is_judged_on_unencoded_bodies_only() -> None:
    assert body_cut_short({"Content-Length": "10"}, b"12345")
    assert not body_cut_short({"Content-Length": "5"}, b"12345")
    assert not body_cut_short({}, b"12345")
    assert not body_cut_short({"Content-Length": "nonsense"}, b"12345")
    assert not body_cut_short({"Content-Length": "10", "Content-Encoding": "gzip"}, b"12345")


class _ShortThenWhole:
    """A session whose first answer lets a short body through, as a lax adapter might."""

    def __init__(self, whole: bytes) -> None:
        self.whole = whole
        self.calls = 0
        self.headers: dict[str, str] = {}

    def mount(self, *_: object) -> None:
        pass

    def request(self, method: str, url: str, **_: object) -> requests.Response:
        self.calls += 1
        resp = requests.Response()
        resp.status_code = 200
        resp.headers["Content-Length"] = str(len(self.whole))
        resp.raw = io.BytesIO(self.whole if self.calls > 1 else self.whole[: len(self.whole) // 2])
        return resp


def test_a_short_body_that_requests_lets_through_is_malformed_and_retried(
    vt: VirtualTime,
) -> None:
    whole = json.dumps(payloads.customer(id="c1")).encode()
    session = _ShortThenWhole(whole)
    transport = Transport(
        base_url=BASE,
        user="api-user@acme.example.com",
        api_token=TOKEN,
        requests_per_second=1000.0,
        timeout=5.0,
        max_attempts=ATTEMPTS,
        sleep=vt.sleep,
        clock=vt.clock,
        session=session,  # type: ignore[arg-type]
    )
    seen: list[int] = []

    def parse(result: HTTPResult) -> Customer:
        seen.append(len(result.body))
        return Customer.model_validate_json(result.body)

    customer = transport.request(
        "GET", "/customer-profiles/{customer_id}", path_params={"customer_id": "c1"}, parse=parse
    )
    assert customer.id == "c1"
    assert session.calls == 2
    assert seen == [len(whole)]  # the short body never reached the parser
    assert len(retry_waits(vt)) == 1
