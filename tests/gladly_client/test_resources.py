"""Every resource method against scripted HTTP answers (`responses`), with no real sleeps."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import responses
from responses import matchers

from gladly_client import (
    CustomerMovedError,
    GladlyClient,
    NotFoundError,
    ProfileHasOpenConversationsError,
    ResponseValidationError,
)
from tests.gladly_client import payloads

BASE = "https://acme.gladly.com"
API = f"{BASE}/api/v1"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sleeps: list[float]) -> GladlyClient:
    return GladlyClient(
        BASE,
        "api-user@acme.example.com",
        "tok-SECRET-123",
        requests_per_second=1000.0,
        max_attempts=4,
        sleep=sleeps.append,
    )


@responses.activate
def test_find_by_email_sends_exactly_that_query_and_parses_customers(client: GladlyClient) -> None:
    body = [payloads.customer(), payloads.customer(id="Xq3nT0cUQ5mYbX1kR2hH_w")]
    responses.get(
        f"{API}/customer-profiles",
        json=body,
        match=[matchers.query_param_matcher({"email": "dana@example.com"})],
    )
    found = client.customers.find(email="dana@example.com")
    assert [c.id for c in found] == [body[0]["id"], "Xq3nT0cUQ5mYbX1kR2hH_w"]
    request = responses.calls[0].request
    assert request.headers["Authorization"].startswith("Basic ")
    assert request.headers["Accept"] == "application/json"


@pytest.mark.parametrize(
    ("kwargs", "query"),
    [
        ({"phone": "+14155550142"}, {"phoneNumber": "+14155550142"}),
        ({"external_id": "ext-1"}, {"externalCustomerId": "ext-1"}),
    ],
)
@responses.activate
def test_find_by_phone_and_external_id(
    client: GladlyClient, kwargs: dict[str, str], query: dict[str, str]
) -> None:
    responses.get(f"{API}/customer-profiles", json=[], match=[matchers.query_param_matcher(query)])
    assert client.customers.find(**kwargs) == []


@pytest.mark.parametrize("kwargs", [{}, {"email": "a@example.com", "phone": "+1"}, {"email": "  "}])
def test_find_requires_exactly_one_non_empty_criterion(
    client: GladlyClient, kwargs: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match="find"):
        client.customers.find(**kwargs)


@responses.activate
def test_get_customer_and_merged_customer_raises_with_new_id(client: GladlyClient) -> None:
    responses.get(
        f"{API}/customer-profiles/a7CGCp3DqbtOuWXdckwQeQ",
        json=payloads.customer(id="a7CGCp3DqbtOuWXdckwQeQ"),
    )
    responses.get(
        f"{API}/customer-profiles/OLDidOLDidOLDidOLDid_w",
        status=301,
        json={
            "errors": [
                {
                    "attr": "customerId",
                    "code": "moved",
                    "detail": "customer id has changed",
                    "meta": {"old": "OLDidOLDidOLDidOLDid_w", "new": "a7CGCp3DqbtOuWXdckwQeQ"},
                }
            ]
        },
    )
    assert client.customers.get("a7CGCp3DqbtOuWXdckwQeQ").id == "a7CGCp3DqbtOuWXdckwQeQ"
    with pytest.raises(CustomerMovedError) as moved:
        client.customers.get("OLDidOLDidOLDidOLDid_w")
    assert moved.value.new_id == "a7CGCp3DqbtOuWXdckwQeQ"
    assert moved.value.old_id == "OLDidOLDidOLDidOLDid_w"
    # A 301 must never be followed automatically: only one request went out.
    assert len(responses.calls) == 2


@responses.activate
def test_delete_customer_success_and_open_conversation_refusal(client: GladlyClient) -> None:
    responses.delete(f"{API}/customer-profiles/cust-closed", status=204)
    responses.delete(
        f"{API}/customer-profiles/cust-open",
        status=400,
        json={
            "errors": {
                "attr": "conversation",
                "code": "invalid_state",
                "detail": "Unable to delete the profile. Please close any open conversations.",
            }
        },
    )
    assert client.customers.delete("cust-closed") is None
    with pytest.raises(ProfileHasOpenConversationsError) as err:
        client.customers.delete("cust-open")
    assert err.value.code == "invalid_state"


@responses.activate
def test_update_sends_each_whole_list_with_every_field_and_null_to_clear_the_id(
    client: GladlyClient,
) -> None:
    from gladly_client.models import Customer

    profile = Customer.model_validate(payloads.customer())
    sent: list[dict[str, object]] = []

    def answer(request: object) -> tuple[int, dict[str, str], str]:
        sent.append(json.loads(request.body))  # type: ignore[attr-defined]
        return 204, {}, ""

    responses.add_callback(responses.PATCH, f"{API}/customer-profiles/{profile.id}", answer)
    client.customers.update(profile.id, phones=profile.phones)
    client.customers.update(profile.id, emails=[], clear_external_customer_id=True)
    assert sent == [
        {"phones": [payloads.customer()["phones"][0]]},
        {"emails": [], "externalCustomerId": None},
    ]
    with pytest.raises(ValueError, match="nothing to change"):
        client.customers.update(profile.id)
    assert len(sent) == 2


@responses.activate
def test_update_of_a_merged_id_is_not_found(client: GladlyClient) -> None:
    responses.patch(
        f"{API}/customer-profiles/gone-id",
        status=404,
        json={"errors": [{"code": "not_exist", "detail": "customer profile does not exist"}]},
    )
    with pytest.raises(NotFoundError):
        client.customers.update("gone-id", emails=[])


@responses.activate
def test_list_conversations_reads_truncation_header(client: GladlyClient) -> None:
    convs = [payloads.conversation(id=f"conv{i:018d}") for i in range(3)]
    responses.get(f"{API}/customers/cust-1/conversations", json=convs)
    responses.get(
        f"{API}/customers/cust-2/conversations",
        json=convs,
        headers={"Gladly-Limited-Data": "true"},
    )
    full = client.conversations.list_for_customer("cust-1")
    cut = client.conversations.list_for_customer("cust-2")
    assert (len(full), full.truncated) == (3, False)
    assert (len(cut), cut.truncated) == (3, True)
    assert [c.id for c in full] == [c["id"] for c in convs]


@responses.activate
def test_get_and_close_conversation(client: GladlyClient) -> None:
    responses.get(f"{API}/conversations/conv-1", json=payloads.conversation(id="conv-1"))
    responses.patch(
        f"{API}/conversations/conv-1",
        status=204,
        match=[matchers.json_params_matcher({"status": {"value": "CLOSED", "force": True}})],
    )
    responses.patch(
        f"{API}/conversations/conv-2",
        status=204,
        match=[matchers.json_params_matcher({"status": {"value": "CLOSED", "force": False}})],
    )
    assert client.conversations.get("conv-1").id == "conv-1"
    client.conversations.close("conv-1")
    client.conversations.close("conv-2", force=False)
    assert len(responses.calls) == 3


@responses.activate
def test_list_items_with_session_filter_and_truncation(client: GladlyClient) -> None:
    items = [payloads.item(content) for content in payloads.CONTENT_BY_TYPE.values()]
    responses.get(
        f"{API}/conversations/conv-1/items",
        json=items,
        headers={"Gladly-Limited-Data": "true"},
        match=[matchers.query_param_matcher({"sessionId": "sess-1"})],
    )
    responses.get(
        f"{API}/conversations/conv-1/items",
        json=items[:2],
        match=[matchers.query_param_matcher({})],
    )
    filtered = client.items.list_for_conversation("conv-1", session_id="sess-1")
    assert filtered.truncated is True
    assert len(filtered) == len(items)
    assert {i.content_type for i in filtered} >= {"CHAT_MESSAGE", "EMAIL", "PHONE_CALL"}
    unfiltered = client.items.list_for_conversation("conv-1")
    assert (len(unfiltered), unfiltered.truncated) == (2, False)


@responses.activate
def test_item_get_redact_delete_and_voice_transcript(client: GladlyClient) -> None:
    call = payloads.item(payloads.CONTENT_BY_TYPE["PHONE_CALL"], id="item-call")
    responses.get(f"{API}/conversation-items/item-call", json=call)
    responses.post(
        f"{API}/conversation-items/item-call/redact",
        status=201,
        headers={"Location": "/api/v1/conversation-items/item-call"},
    )
    responses.delete(f"{API}/conversation-items/item-activity", status=204)
    responses.get(
        f"{API}/conversation-items/item-call/voice-transcript", json=payloads.voice_transcript()
    )
    assert client.items.get("item-call").content_type == "PHONE_CALL"
    assert client.items.redact("item-call") is None
    assert client.items.delete("item-activity") is None
    transcript = client.items.voice_transcript("item-call")
    assert transcript.paragraphs
    assert responses.calls[1].request.body in (None, b"")


@responses.activate
def test_redact_of_missing_item_with_empty_404_body(client: GladlyClient) -> None:
    responses.post(f"{API}/conversation-items/nope/redact", status=404, body=b"")
    with pytest.raises(NotFoundError) as err:
        client.items.redact("nope")
    assert err.value.errors == ()
    assert "POST /conversation-items/{item_id}/redact returned 404" in str(err.value)


@responses.activate
def test_export_jobs_list_with_filters_get_and_delete(client: GladlyClient) -> None:
    job = payloads.export_job()
    responses.get(
        f"{API}/export/jobs",
        json=[job],
        match=[
            matchers.query_param_matcher(
                {
                    "status": "COMPLETED",
                    "startAt": "2025-01-01T00:00:00.000000Z",
                    "endAt": "2025-01-02T12:30:00.000000Z",
                }
            )
        ],
    )
    responses.get(f"{API}/export/jobs/{job['id']}", json=job)
    responses.delete(f"{API}/export/jobs/{job['id']}", status=204)
    responses.get(
        f"{API}/export/schedules",
        json=[
            {
                "id": "sched-1",
                "frequency": "HOURLY",
                "type": "CONVERSATIONS",
                "nextStartAt": "2025-01-10T00:00:00.00Z",
                "updatedAt": "2024-06-01T17:42:10.55121Z",
            }
        ],
    )
    jobs = client.exports.list_jobs(
        status="completed",
        start_at=datetime(2025, 1, 1, tzinfo=UTC),
        end_at=datetime(2025, 1, 2, 12, 30),
    )
    assert [j.id for j in jobs] == [job["id"]]
    assert client.exports.get_job(job["id"]).files == tuple(job["files"])
    client.exports.delete_job(job["id"])
    assert client.exports.list_schedules()[0].frequency == "HOURLY"


@responses.activate
def test_stream_file_yields_lines_and_describes_what_was_read(client: GladlyClient) -> None:
    lines = [json.dumps(payloads.item(c)).encode() for c in payloads.CONTENT_BY_TYPE.values()]
    body = b"\n".join(lines) + b"\n"
    responses.get(
        f"{API}/export/jobs/job-1/files/conversation_items.jsonl",
        body=body,
        content_type="application/x-ndjson",
    )
    stream = client.exports.stream_file("job-1", "conversation_items.jsonl")
    assert stream.bytes_read == len(body)
    import hashlib

    assert stream.sha256 == hashlib.sha256(body).hexdigest()
    assert list(stream) == lines


@responses.activate
def test_malformed_success_body_raises_validation_error_naming_fields_not_values(
    client: GladlyClient,
) -> None:
    responses.get(
        f"{API}/conversations/conv-x",
        json={"id": "conv-x", "customerId": "dana@example.com", "status": "OPEN"},
    )
    with pytest.raises(ResponseValidationError) as err:
        client.conversations.get("conv-x")
    message = str(err.value)
    assert "Conversation" in message
    assert "dana@example.com" not in message
    assert err.value.__cause__ is None
