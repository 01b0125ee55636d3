"""The HTTP contract of every /api/v1 route: statuses, headers, body shapes, quirks, auth."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from gladly_sandbox import Sandbox
from gladly_sandbox.errors import ApiError

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
SPEC: dict[str, Any] = {
    "seed": 21,
    "customers": 60,
    "now": NOW,
    "frozen_clock": True,
    "huge_conversations": 1,
    "busy_customers": 1,
    "merged_customers": 0.05,
    "open_share": 0.2,
    "rate_limit_per_second": 1000,  # headers on every answer, but no 429 in these tests
}
# Tests that change data get a sandbox of their own, without the slow-to-build huge lists.
FRESH_SPEC = {**SPEC, "huge_conversations": 0, "busy_customers": 0}
RATE_HEADERS = ("Ratelimit-Limit-Second", "Ratelimit-Remaining-Second")


@dataclass
class Sample:
    """Ids of the data each test needs, found through the organisation's Python API."""

    closed_customer: str = ""
    closed_email: str = ""
    open_customer: str = ""
    open_conversation: str = ""
    waiting_conversation: str = ""
    merged_id: str = ""
    merged_into: str = ""
    busy_customer: str = ""
    huge_conversation: str = ""
    small_conversation: str = ""
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # content type → an item
    recorded_call: str = ""


def _sample(sb: Sandbox) -> Sample:
    org, sample = sb.org, Sample()
    for customer_id in org.customer_ids():
        raw = org.raw_customer(customer_id) or {}
        if raw.get("merged_into"):
            sample.merged_id, sample.merged_into = customer_id, raw["merged_into"]
            continue
        conversations, truncated = org.list_conversations(customer_id)
        statuses = {c["status"] for c in conversations}
        if truncated:
            sample.busy_customer = customer_id
        elif statuses == {"CLOSED"} and raw.get("emails") and not sample.closed_customer:
            sample.closed_customer = customer_id
            sample.closed_email = raw["emails"][0]["original"]
        for conversation in conversations:
            if conversation["status"] == "OPEN" and not sample.open_conversation:
                sample.open_customer, sample.open_conversation = customer_id, conversation["id"]
            if conversation["status"] == "WAITING":
                sample.waiting_conversation = conversation["id"]
            items, huge = org.list_items(conversation["id"])
            if huge:
                sample.huge_conversation = conversation["id"]
            elif len(items) >= 3 and not sample.small_conversation:
                sample.small_conversation = conversation["id"]
    for item in org.export_items(org.earliest_activity(), NOW):
        content = item["content"]
        sample.items.setdefault(content["type"], item)
        recorded = content["type"] == "PHONE_CALL" and content.get("recordingUrl")
        if recorded and not sample.recorded_call and _has_transcript(sb, item["id"]):
            sample.recorded_call = item["id"]
    return sample


def _has_transcript(sb: Sandbox, item_id: str) -> bool:
    try:
        sb.org.voice_transcript(item_id)
    except ApiError:
        return False  # some recordings have no transcript
    return True


class Api:
    """Raw HTTP against one sandbox, with the admin's (or given) credentials."""

    def __init__(self, sb: Sandbox, auth: tuple[str, str] | None = None) -> None:
        self.sb = sb
        self.session = requests.Session()
        self.session.auth = auth or (sb.user, sb.api_token)

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(
            method, f"{self.sb.base_url}/api/v1{path}", timeout=10, **kwargs
        )

    def settings(self, **changes: Any) -> None:
        """PATCH the control surface (as a person would)."""
        url = f"{self.sb.base_url}/_sandbox/settings"
        assert requests.patch(url, json=changes, timeout=10).status_code == 200


@pytest.fixture(scope="module")
def shared() -> Iterator[Sandbox]:
    with Sandbox(**SPEC) as sb:
        yield sb


@pytest.fixture(scope="module")
def sample(shared: Sandbox) -> Sample:
    return _sample(shared)


@pytest.fixture
def api(shared: Sandbox) -> Iterator[Api]:
    """Read-only calls against the shared sandbox; quirk switches restored afterwards."""
    client = Api(shared)
    yield client
    shared.configure(
        quirk_object_errors=True,
        quirk_bare_list_errors=True,
        quirk_empty_404=True,
        limited_data_header_value="true",
    )


@pytest.fixture
def fresh() -> Iterator[tuple[Api, Sample]]:
    """A sandbox of its own, for tests that change data."""
    with Sandbox(**FRESH_SPEC) as sb:
        yield Api(sb), _sample(sb)


def _is_json(response: requests.Response) -> bool:
    return response.headers.get("Content-Type") == "application/json"


def _empty(response: requests.Response) -> bool:
    return response.content == b"" and "Content-Type" not in response.headers


# --- auth ----------------------------------------------------------------------------------------


def test_missing_or_wrong_credentials_are_401(api: Api) -> None:
    anonymous = requests.get(f"{api.sb.base_url}/api/v1/agents", timeout=10)
    wrong = Api(api.sb, (api.sb.user, "not-the-token"))("GET", "/agents")
    stranger = Api(api.sb, ("who@example.com", api.sb.api_token))("GET", "/agents")
    for response in (anonymous, wrong, stranger):
        assert response.status_code == 401
        assert _is_json(response)
        assert response.json()["errors"][0]["code"] == "unauthorized"
        assert all(h in response.headers for h in RATE_HEADERS)


def test_user_without_api_permission_is_403(api: Api) -> None:
    users = [*api.sb.settings.users]
    try:
        api.sb.configure(users=[*users, {"email": "ui@x.example", "token": "t-ui", "roles": []}])
        response = Api(api.sb, ("ui@x.example", "t-ui"))("GET", "/agents")
        assert response.status_code == 403
        assert response.json()["errors"][0]["code"] == "forbidden"
    finally:
        api.sb.configure(users=users)


def test_deleting_a_profile_needs_compliance_admin(api: Api, sample: Sample) -> None:
    agent = next(u for u in api.sb.settings.users if u.email.startswith("agent"))
    as_agent = Api(api.sb, (agent.email, agent.token))
    assert as_agent("GET", f"/customer-profiles/{sample.closed_customer}").status_code == 200
    denied = as_agent("DELETE", f"/customer-profiles/{sample.closed_customer}")
    assert denied.status_code == 403
    assert api("GET", f"/customer-profiles/{sample.closed_customer}").status_code == 200


# --- customers -----------------------------------------------------------------------------------


def test_search_by_email_phone_and_nothing(api: Api, sample: Sample) -> None:
    found = api("GET", "/customer-profiles", params={"email": sample.closed_email.upper()})
    assert found.status_code == 200
    assert _is_json(found)
    assert sample.closed_customer in [c["id"] for c in found.json()]
    customer = api.sb.org.get_customer(sample.closed_customer)
    phones = [p["normalized"] for p in customer.get("phones", []) if p.get("normalized")]
    if phones:
        by_phone = api("GET", "/customer-profiles", params={"phoneNumber": phones[0]})
        assert sample.closed_customer in [c["id"] for c in by_phone.json()]
    none = api("GET", "/customer-profiles", params={"email": "nobody@nowhere.example"})
    assert none.json() == []
    no_criterion = api("GET", "/customer-profiles")
    assert no_criterion.status_code == 400
    assert isinstance(no_criterion.json()["errors"], list)


def test_get_customer_and_unknown_with_object_quirk(api: Api, sample: Sample) -> None:
    got = api("GET", f"/customer-profiles/{sample.closed_customer}")
    assert got.status_code == 200
    assert _is_json(got)
    assert got.json()["id"] == sample.closed_customer
    assert all(h in got.headers for h in RATE_HEADERS)
    unknown = api("GET", "/customer-profiles/AAAAAAAAAAAAAAAAAAAAAA")
    assert unknown.status_code == 404
    assert unknown.json()["errors"]["code"] == "not_exist"  # an object, as documented
    api.settings(quirk_object_errors=False)
    listed = api("GET", "/customer-profiles/AAAAAAAAAAAAAAAAAAAAAA").json()
    assert listed["errors"][0]["code"] == "not_exist"


def test_merged_id_answers_301_with_body_and_no_location(api: Api, sample: Sample) -> None:
    moved = api("GET", f"/customer-profiles/{sample.merged_id}")
    assert moved.status_code == 301
    assert "Location" not in moved.headers
    assert moved.json() == {
        "errors": [
            {
                "attr": "customerId",
                "code": "moved",
                "detail": "customer id has changed",
                "meta": {"old": sample.merged_id, "new": sample.merged_into},
            }
        ]
    }
    assert api("PATCH", f"/customer-profiles/{sample.merged_id}", json={}).status_code == 404


def test_create_update_and_conflict(fresh: tuple[Api, Sample]) -> None:
    api, _ = fresh
    body = {"name": "Sam Sandbox", "emails": [{"original": "sam@sandbox-test.example"}]}
    created = api("POST", "/customer-profiles", json=body)
    assert created.status_code == 201
    assert created.content == b""
    location = created.headers["Location"]
    assert location.startswith("/api/v1/customer-profiles/")
    customer_id = location.rsplit("/", 1)[1]
    assert api("GET", f"/customer-profiles/{customer_id}").json()["name"] == "Sam Sandbox"
    updated = api("PATCH", f"/customer-profiles/{customer_id}", json={"name": "Sam S."})
    assert updated.status_code == 204
    assert updated.content == b""
    assert api("GET", f"/customer-profiles/{customer_id}").json()["name"] == "Sam S."
    taken = api("POST", "/customer-profiles", json={**body, "id": customer_id})
    assert taken.status_code == 409
    assert taken.json()["errors"][0]["code"] == "taken"
    assert api("POST", "/customer-profiles", data=b"{not json").status_code == 400


def test_delete_customer_blocked_while_open_then_allowed(fresh: tuple[Api, Sample]) -> None:
    api, sample = fresh
    blocked = api("DELETE", f"/customer-profiles/{sample.open_customer}")
    assert blocked.status_code == 400
    assert blocked.json() == {
        "errors": {
            "attr": "conversation",
            "code": "invalid_state",
            "detail": "Unable to delete the profile. "
            "Please close any open or waiting conversations.",
        }
    }
    api.settings(quirk_object_errors=False)
    listed = api("DELETE", f"/customer-profiles/{sample.open_customer}").json()
    assert listed["errors"][0]["code"] == "invalid_state"
    deleted = api("DELETE", f"/customer-profiles/{sample.closed_customer}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert api("GET", f"/customer-profiles/{sample.closed_customer}").status_code == 404
    assert api("GET", "/customer-profiles", params={"email": sample.closed_email}).json() == []


# --- conversations -------------------------------------------------------------------------------


def test_list_conversations_and_limited_data(api: Api, sample: Sample) -> None:
    plain = api("GET", f"/customers/{sample.open_customer}/conversations")
    assert plain.status_code == 200
    assert "Gladly-Limited-Data" not in plain.headers
    created = [c["createdAt"] for c in plain.json()]
    assert created == sorted(created)
    busy = api("GET", f"/customers/{sample.busy_customer}/conversations")
    assert len(busy.json()) == 100
    assert busy.headers["Gladly-Limited-Data"] == "true"
    api.settings(limited_data_header_value="1")
    again = api("GET", f"/customers/{sample.busy_customer}/conversations")
    assert again.headers["Gladly-Limited-Data"] == "1"
    assert api("GET", "/customers/AAAAAAAAAAAAAAAAAAAAAA/conversations").status_code == 404


def test_get_conversation_and_empty_404(api: Api, sample: Sample) -> None:
    got = api("GET", f"/conversations/{sample.open_conversation}")
    assert got.status_code == 200
    assert got.json()["status"] == "OPEN"
    unknown = api("GET", "/conversations/AAAAAAAAAAAAAAAAAAAAAA")
    assert unknown.status_code == 404
    assert _empty(unknown)  # documented without a body
    assert all(h in unknown.headers for h in RATE_HEADERS)
    api.settings(quirk_empty_404=False)
    listed = api("GET", "/conversations/AAAAAAAAAAAAAAAAAAAAAA")
    assert listed.json()["errors"][0]["code"] == "not_exist"


def test_close_conversation_force_rules(fresh: tuple[Api, Sample]) -> None:
    api, sample = fresh
    path = f"/conversations/{sample.waiting_conversation}"
    refused = api("PATCH", path, json={"status": {"value": "CLOSED"}})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "invalid_state"
    assert "status.force" in refused.json()["errors"][0]["detail"]
    closed = api("PATCH", path, json={"status": {"value": "CLOSED", "force": True}})
    assert closed.status_code == 204
    assert closed.content == b""
    conversation = api("GET", path).json()
    assert conversation["status"] == "CLOSED"
    assert "closedAt" in conversation
    items = api("GET", f"{path}/items").json()
    assert items[-1]["content"]["type"] == "CONVERSATION_STATUS_CHANGE"
    assert api("PATCH", path, json={"status": "CLOSED"}).status_code == 400


def test_list_items_truncation_and_session_filter(api: Api, sample: Sample) -> None:
    small = api("GET", f"/conversations/{sample.small_conversation}/items")
    assert small.status_code == 200
    assert "Gladly-Limited-Data" not in small.headers
    stamps = [i["timestamp"] for i in small.json()]
    assert len(stamps) >= 3
    huge = api("GET", f"/conversations/{sample.huge_conversation}/items")
    assert len(huge.json()) == 1000
    assert huge.headers["Gladly-Limited-Data"] == "true"
    chat = sample.items["CHAT_MESSAGE"]
    session_id = chat.get("sessionId") or chat["content"]["sessionId"]
    filtered = api(
        "GET", f"/conversations/{chat['conversationId']}/items", params={"sessionId": session_id}
    ).json()
    assert chat["id"] in [i["id"] for i in filtered]
    assert all(session_id in (i.get("sessionId"), i["content"].get("sessionId")) for i in filtered)
    assert api("GET", "/conversations/AAAAAAAAAAAAAAAAAAAAAA/items").status_code == 404


# --- conversation items --------------------------------------------------------------------------


def test_get_item_and_empty_404(api: Api, sample: Sample) -> None:
    item = sample.items["EMAIL"]
    got = api("GET", f"/conversation-items/{item['id']}")
    assert got.status_code == 200
    assert got.json() == item  # the same shape the export lines use
    unknown = api("GET", "/conversation-items/AAAAAAAAAAAAAAAAAAAAAA")
    assert unknown.status_code == 404
    assert _empty(unknown)


def test_redact_rules(fresh: tuple[Api, Sample]) -> None:
    api, sample = fresh
    chat = sample.items["CHAT_MESSAGE"]["id"]
    redacted = api("POST", f"/conversation-items/{chat}/redact")
    assert redacted.status_code == 201
    assert redacted.headers["Location"] == f"/api/v1/conversation-items/{chat}"
    assert redacted.content == b""
    assert api("GET", f"/conversation-items/{chat}").json()["content"]["content"] == ""
    assert api("POST", f"/conversation-items/{chat}/redact").status_code == 201  # idempotent
    facebook = sample.items["FACEBOOK_MESSAGE"]["id"]
    refused = api("POST", f"/conversation-items/{facebook}/redact")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "invalid"
    assert _empty(api("POST", "/conversation-items/AAAAAAAAAAAAAAAAAAAAAA/redact"))


def test_recording_and_transcript_until_redacted(fresh: tuple[Api, Sample]) -> None:
    api, sample = fresh
    call = sample.recorded_call
    recording = api("GET", f"/conversation-items/{call}/media/recording")
    assert recording.status_code == 200
    assert recording.headers["Content-Type"] == "audio/mpeg"
    assert int(recording.headers["Content-Length"]) == len(recording.content) > 0
    transcript = api("GET", f"/conversation-items/{call}/voice-transcript")
    assert transcript.status_code == 200
    assert transcript.json()["paragraphs"]
    assert api("POST", f"/conversation-items/{call}/redact").status_code == 201
    assert api("GET", f"/conversation-items/{call}/media/recording").status_code == 404
    assert api("GET", f"/conversation-items/{call}/voice-transcript").status_code == 404


def test_delete_item_rules(fresh: tuple[Api, Sample]) -> None:
    api, sample = fresh
    activity = sample.items["CUSTOMER_ACTIVITY"]
    chat = sample.items["CHAT_MESSAGE"]
    refused = api("DELETE", f"/conversation-items/{chat['id']}")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "invalid"
    other = (
        sample.open_customer
        if activity["customerId"] != sample.open_customer
        else chat["customerId"]
    )
    scoped = f"/customers/{other}/conversation-items/{activity['id']}"
    assert api("DELETE", scoped).status_code == 404  # not that customer's item
    own = f"/customers/{activity['customerId']}/conversation-items/{activity['id']}"
    deleted = api("DELETE", own)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert api("GET", f"/conversation-items/{activity['id']}").status_code == 404
    assert api("DELETE", f"/conversation-items/{activity['id']}").status_code == 404


# --- lookups and exports -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/agents", "/topics", "/inboxes", "/export/schedules"])
def test_lookup_lists(api: Api, path: str) -> None:
    response = api("GET", path)
    assert response.status_code == 200
    assert _is_json(response)
    assert isinstance(response.json(), list)
    assert response.json()


def test_export_jobs_filters_and_404(api: Api) -> None:
    jobs = api("GET", "/export/jobs", params={"status": "COMPLETED"})
    assert jobs.status_code == 200
    assert jobs.json()
    assert {j["status"] for j in jobs.json()} == {"COMPLETED"}
    job = jobs.json()[0]
    assert api("GET", f"/export/jobs/{job['id']}").json() == job
    assert api("GET", "/export/jobs", params={"status": "DONE"}).status_code == 400
    assert api("GET", "/export/jobs", params={"startAt": "yesterday"}).status_code == 400
    unknown = api("GET", "/export/jobs/AAAAAAAAAAAAAAAAAAAAAA")
    assert unknown.status_code == 404
    assert unknown.json() == {"errors": [{"code": "not_exist", "detail": "entity does not exist"}]}


def test_export_file_streams_what_was_rendered(api: Api) -> None:
    job = api("GET", "/export/jobs", params={"status": "COMPLETED"}).json()[0]
    for name in job["files"]:
        on_disk = api.sb.exports.file_path(job["id"], name).read_bytes()
        response = api("GET", f"/export/jobs/{job['id']}/files/{name}", stream=True)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/x-ndjson"
        assert int(response.headers["Content-Length"]) == len(on_disk)
        body = b"".join(response.iter_content(64 * 1024))
        assert body == on_disk
        assert all(json.loads(line) for line in body.splitlines())
    missing = api("GET", f"/export/jobs/{job['id']}/files/other.jsonl")
    assert missing.status_code == 404


def test_delete_export_job_rules() -> None:
    in_progress_at = datetime(2025, 6, 2, 3, 5, tzinfo=UTC)  # the daily job runs 03:00-03:10
    with Sandbox(**{**FRESH_SPEC, "customers": 10, "now": in_progress_at}) as sb:
        api = Api(sb)
        running = api("GET", "/export/jobs", params={"status": "IN_PROGRESS"}).json()
        assert len(running) == 1
        refused = api("DELETE", f"/export/jobs/{running[0]['id']}")
        assert refused.status_code == 400
        assert refused.json() == [  # a bare list, as documented
            {
                "attr": "status",
                "code": "temporary_failure",
                "detail": "unable to delete job with status [IN_PROGRESS]. "
                "Please try again after it has finished",
            }
        ]
        api.settings(quirk_bare_list_errors=False)
        wrapped = api("DELETE", f"/export/jobs/{running[0]['id']}").json()
        assert wrapped["errors"][0]["code"] == "temporary_failure"
        done = api("GET", "/export/jobs", params={"status": "COMPLETED"}).json()[0]
        deleted = api("DELETE", f"/export/jobs/{done['id']}")
        assert deleted.status_code == 204
        assert api("GET", f"/export/jobs/{done['id']}").status_code == 404


def test_export_jobs_expire_after_the_clock_moves() -> None:
    with Sandbox(**{**FRESH_SPEC, "customers": 10}) as sb:
        api = Api(sb)
        job = api("GET", "/export/jobs", params={"status": "COMPLETED"}).json()[0]
        file_path = f"/export/jobs/{job['id']}/files/{job['files'][0]}"
        assert api("GET", file_path).status_code == 200
        moved = requests.post(
            f"{sb.base_url}/_sandbox/clock", json={"advance_seconds": 15 * 86400}, timeout=10
        )
        assert moved.status_code == 200
        assert api("GET", f"/export/jobs/{job['id']}").status_code == 404
        assert api("GET", file_path).status_code == 404
        listed = api("GET", "/export/jobs").json()
        assert job["id"] not in [j["id"] for j in listed]
        assert listed  # newer jobs were made as the days passed
        assert sb.clock.now() == NOW + timedelta(days=15)


# --- routing -------------------------------------------------------------------------------------


def test_unknown_route_404_and_wrong_method_405(api: Api) -> None:
    missing = api("GET", "/customer-profile")
    assert missing.status_code == 404
    assert _is_json(missing)
    assert all(h in missing.headers for h in RATE_HEADERS)
    wrong = api("PUT", "/agents")
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "GET"
    assert all(h in wrong.headers for h in RATE_HEADERS)
    assert api("DELETE", "/conversations/AAAAAAAAAAAAAAAAAAAAAA").status_code == 405


# --- HTTP transport ------------------------------------------------------------------------------


def _raw(sb: Sandbox, payload: bytes) -> bytes:
    """Send raw bytes on a new connection and read until the server closes it."""
    host, port = sb.base_url.removeprefix("http://").split(":")
    received = b""
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(payload)
        while chunk := raw.recv(65536):
            received += chunk
    return received


def _auth_line(sb: Sandbox) -> bytes:
    token = base64.b64encode(f"{sb.user}:{sb.api_token}".encode())
    return b"Authorization: Basic " + token + b"\r\n"


def test_keep_alive_serves_several_requests_on_one_connection(api: Api) -> None:
    one = b"GET /api/v1/agents HTTP/1.1\r\nHost: x\r\n" + _auth_line(api.sb) + b"\r\n"
    last = (
        b"GET /api/v1/topics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + _auth_line(api.sb)
        + b"\r\n"
    )
    answers = _raw(api.sb, one + one + last)  # returns only because the third one closes
    assert answers.count(b"HTTP/1.1 200 OK") == 3
    assert answers.count(b"Connection: close") == 1


def test_http_1_0_gets_an_answer_and_a_close(api: Api) -> None:
    answer = _raw(api.sb, b"GET /api/v1/agents HTTP/1.0\r\n" + _auth_line(api.sb) + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b"Connection: close" in answer


def test_expect_100_continue_and_bad_headers(api: Api) -> None:
    body = b"{}"
    request = (
        b"POST /api/v1/conversation-items/AAAAAAAAAAAAAAAAAAAAAA/redact HTTP/1.1\r\nHost: x\r\n"
        b"Expect: 100-continue\r\nConnection: close\r\nContent-Length: 2\r\n"
        + _auth_line(api.sb)
        + b"\r\n"
        + body
    )
    answer = _raw(api.sb, request)
    assert answer.startswith(b"HTTP/1.1 100 Continue")
    assert b"HTTP/1.1 404 Not Found" in answer
    broken = _raw(api.sb, b"GET /api/v1/agents HTTP/1.1\r\nno colon here\r\n\r\n")
    assert broken.startswith(b"HTTP/1.1 400")
