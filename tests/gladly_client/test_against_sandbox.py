"""The client end to end against gladly_sandbox: two independent implementations must agree."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from gladly_client import (
    AuthenticationError,
    BadRequestError,
    CustomerMovedError,
    GladlyClient,
    NotFoundError,
    PermissionDeniedError,
    ProfileHasOpenConversationsError,
)
from gladly_client.constants import DELETABLE_CONTENT_TYPES, REDACTABLE_CONTENT_TYPES
from gladly_sandbox import Sandbox

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    # Functional tests switch the rate limit off; the pacing test below switches it back on.
    with Sandbox(
        seed=7, customers=150, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        yield sb


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[GladlyClient]:
    with GladlyClient(
        sandbox.base_url, sandbox.user, sandbox.api_token, requests_per_second=500.0
    ) as c:
        yield c


def _live_customer(sandbox: Sandbox, *, open_conversation: bool) -> dict[str, object]:
    for customer_id in sandbox.org.customer_ids():
        raw = sandbox.org.raw_customer(customer_id)
        if raw is None or raw.get("deleted"):
            continue
        conversations, _ = sandbox.org.list_conversations(customer_id)
        has_open = any(c["status"] != "CLOSED" for c in conversations)
        if conversations and has_open == open_conversation:
            return sandbox.org.get_customer(customer_id)
    raise AssertionError("the seeded org has no such customer")


def test_find_and_get_customer(sandbox: Sandbox, client: GladlyClient) -> None:
    truth = _live_customer(sandbox, open_conversation=False)
    email = truth["emails"][0]["original"]  # type: ignore[index]
    found = client.customers.find(email=email.upper())
    assert truth["id"] in [c.id for c in found]
    customer = client.customers.get(str(truth["id"]))
    assert customer.id == truth["id"]
    assert customer.email_addresses
    if truth.get("phones"):
        phone = truth["phones"][0]["normalized"]  # type: ignore[index]
        assert truth["id"] in [c.id for c in client.customers.find(phone=phone)]


def test_merged_customer_raises_moved_with_new_id(sandbox: Sandbox, client: GladlyClient) -> None:
    merged = {
        cid: raw for cid in sandbox.org.customer_ids() if (raw := sandbox.org.raw_customer(cid))
    }
    old_ids = [cid for cid, raw in merged.items() if raw.get("merged_into")]
    if not old_ids:
        pytest.fail("the seeded org should contain merged ids")
    with pytest.raises(CustomerMovedError) as moved:
        client.customers.get(old_ids[0])
    assert moved.value.new_id == merged[old_ids[0]]["merged_into"]


def test_list_conversations_and_items_match_the_sandbox(
    sandbox: Sandbox, client: GladlyClient
) -> None:
    truth = _live_customer(sandbox, open_conversation=False)
    conversations = client.conversations.list_for_customer(str(truth["id"]))
    expected, truncated = sandbox.org.list_conversations(str(truth["id"]))
    assert [c.id for c in conversations] == [c["id"] for c in expected]
    assert conversations.truncated is truncated
    for conversation in conversations:
        assert client.conversations.get(conversation.id).status == conversation.status
        items = client.items.list_for_conversation(conversation.id)
        raw_items, _ = sandbox.org.list_items(conversation.id)
        assert [i.id for i in items] == [i["id"] for i in raw_items]
        # The client's models keep the original JSON losslessly.
        assert [i.raw for i in items] == raw_items


def test_close_then_delete_customer_and_verify_it_is_gone(
    sandbox: Sandbox, client: GladlyClient
) -> None:
    truth = _live_customer(sandbox, open_conversation=True)
    customer_id = str(truth["id"])
    email = truth["emails"][0]["normalized"]  # type: ignore[index]
    with pytest.raises(ProfileHasOpenConversationsError):
        client.customers.delete(customer_id)
    for conversation in client.conversations.list_for_customer(customer_id):
        if conversation.is_open:
            client.conversations.close(conversation.id, force=True)
            assert client.conversations.get(conversation.id).status == "CLOSED"
    client.customers.delete(customer_id)
    with pytest.raises(NotFoundError):
        client.customers.get(customer_id)
    assert client.customers.find(email=email) == []
    with pytest.raises(NotFoundError):
        client.customers.delete(customer_id)


def test_redact_and_delete_items_by_type(sandbox: Sandbox, client: GladlyClient) -> None:
    redacted = deleted = refused = 0
    for customer_id in sandbox.org.customer_ids()[:60]:
        if (redacted, refused) == (5, 2):
            break
        if sandbox.org.raw_customer(customer_id) is None:
            continue
        try:
            conversations = client.conversations.list_for_customer(customer_id)
        except (NotFoundError, CustomerMovedError):
            continue
        for conversation in conversations:
            for item in client.items.list_for_conversation(conversation.id):
                if item.content_type in REDACTABLE_CONTENT_TYPES and redacted < 5:
                    client.items.redact(item.id)
                    after = client.items.get(item.id)
                    assert after.text in (None, ""), item.content_type
                    redacted += 1
                elif (
                    item.content_type not in REDACTABLE_CONTENT_TYPES | DELETABLE_CONTENT_TYPES
                    and refused < 2
                ):
                    with pytest.raises(BadRequestError):
                        client.items.redact(item.id)
                    refused += 1
    activities = [
        line
        for line in sandbox.org.export_items(datetime(2000, 1, 1, tzinfo=UTC), NOW)
        if line["content"]["type"] in DELETABLE_CONTENT_TYPES
    ]
    assert activities, "the seeded org should have CUSTOMER_ACTIVITY items"
    client.items.delete(activities[0]["id"])
    with pytest.raises(NotFoundError):
        client.items.get(activities[0]["id"])
    deleted += 1
    assert (redacted, deleted, refused) == (5, 1, 2)


def test_voice_transcript_of_a_call(sandbox: Sandbox, client: GladlyClient) -> None:
    calls = [
        line
        for line in sandbox.org.export_items(datetime(2000, 1, 1, tzinfo=UTC), NOW)
        if line["content"]["type"] == "PHONE_CALL"
        and line["content"].get("recordingStatus") == "AVAILABLE"
    ]
    assert calls
    transcript = client.items.voice_transcript(calls[0]["id"])
    assert transcript.paragraphs


def test_export_jobs_listing_and_streaming_match_the_rendered_files(
    sandbox: Sandbox, client: GladlyClient
) -> None:
    jobs = client.exports.list_jobs(status="COMPLETED")
    assert jobs
    assert all(j.status == "COMPLETED" and j.files for j in jobs)
    job = max(jobs, key=lambda j: len(j.files) and j.updated_at)
    assert client.exports.get_job(job.id).id == job.id
    for name in job.files:
        stream = client.exports.stream_file(job.id, name)
        lines = list(stream)
        on_disk = sandbox.exports.file_path(job.id, name).read_bytes()
        assert stream.bytes_read == len(on_disk)
        assert b"\n".join(lines) + (b"\n" if lines else b"") == on_disk
        for line in lines:
            json.loads(line)
    assert client.exports.list_schedules()


def test_wrong_token_and_missing_role(sandbox: Sandbox) -> None:
    with (
        GladlyClient(sandbox.base_url, sandbox.user, "wrong-token") as bad,
        pytest.raises(AuthenticationError),
    ):
        bad.exports.list_jobs()
    agent = next(u for u in sandbox.settings.users if "COMPLIANCE_ADMIN" not in u.roles)
    truth = _live_customer(sandbox, open_conversation=False)
    with (
        GladlyClient(sandbox.base_url, agent.email, agent.token) as limited,
        pytest.raises(PermissionDeniedError),
    ):
        limited.customers.delete(str(truth["id"]))


def test_client_paces_itself_under_the_sandbox_rate_limit(sandbox: Sandbox) -> None:
    """At the default 8 of 10 requests/second the client sees no 429 at all."""
    truth = _live_customer(sandbox, open_conversation=False)
    sandbox.configure(rate_limit_per_second=10.0)
    sandbox.reset_stats()
    with GladlyClient(sandbox.base_url, sandbox.user, sandbox.api_token) as paced:
        for _ in range(12):
            paced.customers.get(str(truth["id"]))
    stats = sandbox.stats()
    assert _count_status(stats, 429) == 0
    assert _count_status(stats, 200) == 12


def _count_status(stats: dict[str, object], status: int) -> int:
    by_status = stats.get("by_status", {})
    assert isinstance(by_status, dict)
    return int(by_status.get(str(status), 0))
