"""The client against what the sandbox does not model, conversation topics and typed phones."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from gladly_client import (
    BadRequestError,
    GladlyAPIError,
    GladlyClient,
    NotFoundError,
    NotModelledError,
)
from gladly_client.transport import Transport
from gladly_sandbox import Sandbox

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
ABSENT = "AAAAAAAAAAAAAAAAAAAAAA"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(
        seed=5, customers=25, now=NOW, frozen_clock=True, open_share=0.3, rate_limit_per_second=None
    ) as sb:
        yield sb


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[GladlyClient]:
    with GladlyClient(
        sandbox.base_url, sandbox.user, sandbox.api_token, requests_per_second=500.0
    ) as c:
        yield c


def _conversation(sandbox: Sandbox, *, closed: bool, topics: bool) -> dict[str, Any]:
    for conversation_id in sandbox.org.conversation_ids():
        conversation = sandbox.org.get_conversation(conversation_id)
        is_closed = conversation["status"] == "CLOSED"
        if is_closed == closed and bool(conversation["topicIds"]) == topics:
            return conversation
    raise AssertionError("the seeded org has no such conversation")


def _enabled_topics(sandbox: Sandbox) -> list[str]:
    return [t["id"] for t in sandbox.org.list_topics() if not t["disabled"]]


@pytest.mark.parametrize(
    ("method", "template", "params"),
    [
        ("POST", "/tasks", {}),
        ("GET", "/audiences", {}),
        ("PATCH", "/tasks/{task_id}", {"task_id": "t1"}),
        ("PATCH", "/topics/{topic_id}", {"topic_id": "t1"}),
    ],
)
def test_a_call_the_sandbox_does_not_model_is_not_modelled_and_sent_once(
    sandbox: Sandbox, method: str, template: str, params: dict[str, str]
) -> None:
    transport = Transport(
        base_url=sandbox.base_url,
        user=sandbox.user,
        api_token=sandbox.api_token,
        requests_per_second=500.0,
        timeout=10.0,
        max_attempts=6,
        sleep=lambda seconds: None,  # a retry would not wait for real either
    )
    with pytest.raises(NotModelledError) as caught:
        transport.request(method, template, path_params=params, json={})
    transport.close()
    assert str(caught.value) == (
        f"the sandbox does not model {method} {template}: this is not Gladly's answer"
    )
    assert not isinstance(caught.value, GladlyAPIError)
    assert sandbox.stats()["total"] == 1  # sent once: never retried


def test_add_topics_reaches_the_sandbox_and_reads_back(
    sandbox: Sandbox, client: GladlyClient
) -> None:
    conversation = _conversation(sandbox, closed=True, topics=False)
    wanted = _enabled_topics(sandbox)[:2]
    client.conversations.add_topics(conversation["id"], wanted)
    assert sandbox.org.get_conversation(conversation["id"])["topicIds"] == wanted
    assert list(client.conversations.get(conversation["id"]).topic_ids) == wanted
    items = client.items.list_for_conversation(conversation["id"]).items
    assert items[-1].content.type == "TOPIC_CHANGE"


def test_add_topics_refusals_are_gladly_s_errors_and_change_nothing(
    sandbox: Sandbox, client: GladlyClient
) -> None:
    conversation = _conversation(sandbox, closed=True, topics=False)
    with pytest.raises(BadRequestError) as bad:
        client.conversations.add_topics(conversation["id"], [ABSENT])
    assert bad.value.code == "invalid"
    with pytest.raises(NotFoundError):
        client.conversations.add_topics(ABSENT, _enabled_topics(sandbox)[:1])
    with pytest.raises(ValueError, match="topic_ids"):
        client.conversations.add_topics(conversation["id"], [])
    assert sandbox.org.get_conversation(conversation["id"]) == conversation


def test_closing_needs_topics_only_while_the_org_requires_them(
    sandbox: Sandbox, client: GladlyClient
) -> None:
    conversation = _conversation(sandbox, closed=False, topics=False)
    sandbox.configure(topics_required_to_close=True)
    with pytest.raises(BadRequestError) as refused:
        client.conversations.close(conversation["id"])
    assert refused.value.code == "invalid_state"
    assert sandbox.org.get_conversation(conversation["id"])["status"] != "CLOSED"
    client.conversations.add_topics(conversation["id"], _enabled_topics(sandbox)[:1])
    client.conversations.close(conversation["id"])
    assert sandbox.org.get_conversation(conversation["id"])["status"] == "CLOSED"
    client.conversations.close(conversation["id"])  # closing it again is accepted
    assert sandbox.org.get_conversation(conversation["id"])["status"] == "CLOSED"


def test_phone_types_parse_as_the_sandbox_holds_them(
    sandbox: Sandbox, client: GladlyClient
) -> None:
    seen: set[str | None] = set()
    for customer_id in sandbox.org.customer_ids():
        truth = sandbox.org.raw_customer(customer_id)
        if truth is None or truth.get("deleted") or truth.get("merged_into"):
            continue
        customer = client.customers.get(customer_id)
        assert [p.type for p in customer.phones] == [p.get("type") for p in truth["phones"]]
        assert customer.phone_numbers == tuple(
            dict.fromkeys(p["normalized"] for p in truth["phones"])
        )
        seen.update(p.type for p in customer.phones)
    assert seen == {"HOME", "MOBILE", "OFFICE", None}
