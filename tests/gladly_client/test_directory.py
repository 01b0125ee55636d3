"""`client.org`: the organisation's agents, topics and inboxes, typed, safe on bad answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import responses

from gladly_client import GladlyClient, MalformedResponseError, ResponseValidationError
from gladly_client.models import Agent, Inbox, Topic
from gladly_client.retry import BACKOFF_MIN_SECONDS
from gladly_sandbox import Sandbox
from tests.gladly_client.payloads import make_id

BASE = "https://acme.gladly.com"
API = f"{BASE}/api/v1"
TOKEN = "tok-SECRET-d1r3"
AGENT_NAME = "Avery Private-Agent"
AGENT_EMAIL = "avery.private@acme.example.com"
NOW = datetime(2026, 6, 1, tzinfo=UTC)

INBOX = {"id": make_id("inbox vip"), "name": "Priority Care", "disabled": False}
TOPIC = {"id": make_id("topic returns"), "name": "Order Return", "disabled": False}
NESTED = {
    "id": make_id("topic damaged"),
    "name": "Damaged Merchandise",
    "disabled": True,
    "parentId": TOPIC["id"],
}
AGENT = {"id": make_id("agent avery"), "name": AGENT_NAME, "emailAddress": AGENT_EMAIL}


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sleeps: list[float]) -> Iterator[GladlyClient]:
    with GladlyClient(
        BASE,
        "api-user@acme.example.com",
        TOKEN,
        requests_per_second=1000.0,
        max_attempts=3,
        sleep=sleeps.append,
    ) as c:
        yield c


@responses.activate
def test_each_list_is_one_get_parsed_into_its_model(client: GladlyClient) -> None:
    responses.get(f"{API}/inboxes", json=[INBOX, {**INBOX, "id": make_id("x"), "new": 1}])
    responses.get(f"{API}/topics", json=[TOPIC, NESTED])
    responses.get(f"{API}/agents", json=[AGENT])

    inboxes, topics, agents = client.org.inboxes(), client.org.topics(), client.org.agents()

    assert [type(i) for i in (*inboxes, *topics, *agents)] == [Inbox, Inbox, Topic, Topic, Agent]
    first = inboxes[0]
    assert (first.id, first.name, first.disabled) == (INBOX["id"], "Priority Care", False)
    assert inboxes[1].raw["new"] == 1  # a field Gladly adds later is kept in `raw`, not refused
    assert (topics[1].parent_id, topics[1].disabled) == (TOPIC["id"], True)
    assert topics[0].parent_id is None
    assert (agents[0].name, agents[0].email_address) == (AGENT_NAME, AGENT_EMAIL)
    assert agents[0].raw == AGENT
    assert [(c.request.method, c.request.url) for c in responses.calls] == [
        ("GET", f"{API}/inboxes"),
        ("GET", f"{API}/topics"),
        ("GET", f"{API}/agents"),
    ]


def test_a_missing_flag_stays_unknown_and_an_agent_repr_names_no_one() -> None:
    assert Inbox.model_validate({"id": "i1", "name": "Support"}).disabled is None
    assert Topic.model_validate({"id": "t1"}).disabled is None
    shown = repr(Agent.model_validate(AGENT))
    assert AGENT["id"] in shown
    assert AGENT_NAME not in shown
    assert AGENT_EMAIL not in shown


@responses.activate
def test_an_empty_organisation_lists_nothing(client: GladlyClient) -> None:
    responses.get(f"{API}/inboxes", json=[])
    assert client.org.inboxes() == []


@responses.activate
@pytest.mark.parametrize("path", ["/agents", "/topics", "/inboxes"])
def test_a_garbled_body_is_retried_then_raised_without_its_content(
    client: GladlyClient, sleeps: list[float], path: str
) -> None:
    garbled = f'[{{"id": "a1", "name": "{AGENT_NAME}", "emailAddress": "{AGENT_EMAIL}'
    for _ in range(3):
        responses.get(f"{API}{path}", body=garbled.encode(), content_type="application/json")
    with pytest.raises(MalformedResponseError) as raised:
        getattr(client.org, path[1:])()
    assert len(responses.calls) == 3  # the client's attempt budget, with no real sleep
    assert len([s for s in sleeps if s >= BACKOFF_MIN_SECONDS]) == 2
    message = str(raised.value)
    assert f"GET {path}" in message
    for secret in (AGENT_NAME, AGENT_EMAIL, TOKEN):
        assert secret not in message


@responses.activate
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/inboxes", {"id": "i1", "name": "Support"}),  # an object, not the documented array
        ("/topics", [{"name": "no id"}]),
        ("/agents", [{"id": "a1", "name": AGENT_NAME, "emailAddress": ["not", AGENT_EMAIL]}]),
    ],
)
def test_a_body_of_the_wrong_shape_fails_at_once_naming_fields_not_values(
    client: GladlyClient, path: str, body: object
) -> None:
    responses.get(f"{API}{path}", body=json.dumps(body), content_type="application/json")
    with pytest.raises(ResponseValidationError) as raised:
        getattr(client.org, path[1:])()
    assert len(responses.calls) == 1  # a changed API stays changed: not retried
    assert AGENT_EMAIL not in str(raised.value)
    assert AGENT_NAME not in str(raised.value)


@pytest.mark.integration
def test_the_lists_agree_with_the_sandbox_and_follow_a_rename() -> None:
    with (
        Sandbox(seed=7, customers=20, now=NOW, frozen_clock=True, rate_limit_per_second=None) as sb,
        GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as client,
    ):
        assert [i.raw for i in client.org.inboxes()] == sb.org.list_inboxes()
        assert [t.raw for t in client.org.topics()] == sb.org.list_topics()
        assert [a.raw for a in client.org.agents()] == sb.org.list_agents()
        assert any(t.parent_id for t in client.org.topics())

        first = sb.org.list_inboxes()[0]["id"]
        assert sb.org.list_inboxes()[0]["name"] != "Priority Care"
        sb.rename_inbox(first, "Priority Care")
        renamed = {i.id: i.name for i in client.org.inboxes()}
        assert renamed[first] == "Priority Care"
