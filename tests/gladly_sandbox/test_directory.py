"""GET /agents, /topics, /inboxes answer the spec's shapes; an admin can rename an inbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
import requests

from gladly_sandbox import Sandbox

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)

# Gladly's OpenAPI spec (Agent, Topic, Inbox schemas): every field and its JSON type.
SPEC_FIELDS: dict[str, dict[str, type]] = {
    "/agents": {"id": str, "name": str, "emailAddress": str},
    "/topics": {"id": str, "name": str, "disabled": bool, "parentId": str},
    "/inboxes": {"id": str, "name": str, "disabled": bool},
}
# The fields every entry carries (`parentId` only on nested topics).
ALWAYS: dict[str, set[str]] = {
    "/agents": {"id", "name", "emailAddress"},
    "/topics": {"id", "name", "disabled"},
    "/inboxes": {"id", "name", "disabled"},
}


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(
        seed=9, customers=30, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sandbox:
        yield sandbox


def _get(sb: Sandbox, path: str) -> requests.Response:
    return requests.get(f"{sb.base_url}/api/v1{path}", auth=(sb.user, sb.api_token), timeout=10)


def _patch(sb: Sandbox, inbox_id: str, **kwargs: Any) -> requests.Response:
    url = f"{sb.base_url}/_sandbox/inboxes/{quote(inbox_id, safe='')}"
    return requests.patch(url, timeout=10, **kwargs)


@pytest.mark.parametrize("path", sorted(SPEC_FIELDS))
def test_each_list_has_exactly_the_spec_fields_and_types(sb: Sandbox, path: str) -> None:
    response = _get(sb, path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    entries = response.json()
    assert isinstance(entries, list)
    assert entries
    fields = SPEC_FIELDS[path]
    for entry in entries:
        assert ALWAYS[path] <= set(entry) <= set(fields), entry
        for name, value in entry.items():
            assert isinstance(value, fields[name]), (name, value)
    assert len({e["id"] for e in entries}) == len(entries)
    if path == "/topics":
        ids = {e["id"] for e in entries}
        assert any("parentId" in e for e in entries)
        assert all(e["parentId"] in ids for e in entries if "parentId" in e)


def test_renaming_an_inbox_changes_its_name_and_nothing_else(sb: Sandbox) -> None:
    before = _get(sb, "/inboxes").json()
    target = before[2]
    assert target["name"] != "Priority Care"  # a rename that changes nothing proves nothing
    conversations = [
        c
        for c in sb.org.conversation_ids()
        if sb.org.get_conversation(c)["inboxId"] == target["id"]
    ]
    stats = sb.stats()["total"]

    answer = _patch(sb, target["id"], json={"name": "Priority Care"})

    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {**target, "name": "Priority Care"}
    after = _get(sb, "/inboxes").json()
    assert after == [{**i, "name": "Priority Care"} if i == target else i for i in before]
    assert all(sb.org.get_conversation(c)["inboxId"] == target["id"] for c in conversations)
    assert sb.stats()["total"] == stats + 1  # the control call is not counted; the GET is


def test_renaming_an_unknown_inbox_is_404_in_the_control_style(sb: Sandbox) -> None:
    before = _get(sb, "/inboxes").json()
    answer = _patch(sb, "no-such-inbox", json={"name": "Priority Care"})
    assert answer.status_code == 404
    errors = answer.json()["errors"]
    assert len(errors) == 1
    assert errors[0]["code"] == "invalid"
    assert "no-such-inbox" in errors[0]["detail"]
    assert _get(sb, "/inboxes").json() == before


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        (b"{not json", None),
        (b'["VIP"]', None),
        (b"{}", "name"),
        (b'{"name": ""}', "name"),
        (b'{"name": "   "}', "name"),
        (b'{"name": 7}', "name"),
        (b'{"name": null}', "name"),
        (b'{"name": "VIP", "disabled": true}', "disabled"),
    ],
)
def test_a_bad_rename_body_is_400_naming_the_field_and_changes_nothing(
    sb: Sandbox, body: bytes, attr: str | None
) -> None:
    before = _get(sb, "/inboxes").json()
    answer = _patch(sb, before[0]["id"], data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    error = answer.json()["errors"][0]
    assert error["code"] == "invalid"
    assert error.get("attr") == attr
    assert _get(sb, "/inboxes").json() == before


def test_only_patch_renames(sb: Sandbox) -> None:
    inbox_id = sb.org.list_inboxes()[0]["id"]
    assert requests.get(f"{sb.base_url}/_sandbox/inboxes/{inbox_id}", timeout=10).status_code == 405
    assert _patch(sb, f"{inbox_id}/extra", json={"name": "x"}).status_code == 404
    unknown = requests.get(f"{sb.base_url}/_sandbox/nope", timeout=10).json()
    assert "/_sandbox/inboxes/<inbox_id>" in unknown["errors"][0]["detail"]


def test_the_helper_renames_and_refuses_like_the_route(sb: Sandbox) -> None:
    inbox = sb.org.list_inboxes()[1]
    assert sb.rename_inbox(inbox["id"], "Returns & Exchanges") == {
        **inbox,
        "name": "Returns & Exchanges",
    }
    assert sb.org.list_inboxes()[1]["name"] == "Returns & Exchanges"
    with pytest.raises(KeyError):
        sb.rename_inbox("no-such-inbox", "x")
    with pytest.raises(ValueError, match="non-blank"):
        sb.rename_inbox(inbox["id"], " ")


def test_the_helper_works_against_a_child_process_sandbox() -> None:
    with Sandbox(seed=6, customers=5, now=NOW, process=True, rate_limit_per_second=None) as sb:
        session = requests.Session()
        session.auth = (sb.user, sb.api_token)
        inbox = session.get(f"{sb.base_url}/api/v1/inboxes", timeout=10).json()[0]
        assert sb.rename_inbox(inbox["id"], "Priority Care") == {**inbox, "name": "Priority Care"}
        listed = session.get(f"{sb.base_url}/api/v1/inboxes", timeout=10).json()[0]
        assert listed["name"] == "Priority Care"
        with pytest.raises(KeyError):
            sb.rename_inbox("no-such-inbox", "x")
        with pytest.raises(ValueError, match="non-blank"):
            sb.rename_inbox(inbox["id"], "")
