"""Which items are one contact's: sessions, calls, message exchanges, and what lies between."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from erasure.contact import ContactNotFoundError, attachment_ids, contact_of
from erasure.request import OneOffInputError, parse_request, request_hash
from gladly_client.item_models import Item

_N = iter(range(10_000))


def _item(kind: str, minute: int, **content: Any) -> Item:
    n = next(_N)
    return Item.model_validate(
        {
            "id": f"item{n:04d}xxxxxxxxxxxxx",
            "customerId": "cust000000000000000000",
            "conversationId": "conv000000000000000000",
            "timestamp": f"2026-03-01T10:{minute:02d}:00Z",
            "content": {"type": kind, **content},
        }
    )


def _chat(minute: int, session: str, **extra: Any) -> Item:
    return _item(
        "CHAT_MESSAGE", minute, messageType="TEXT", sessionId=session, content="hi", **extra
    )


def _ids(found: tuple[str, list[Item]] | None) -> list[str]:
    assert found is not None
    return [i.id for i in found[1]]


def test_a_chat_session_is_its_messages_and_the_notes_between_them() -> None:
    first = [_chat(0, "sessA"), _item("CONVERSATION_NOTE", 1, body="n"), _chat(2, "sessA")]
    email = _item("EMAIL", 3, subject="s", content="c", to=["x"], **{"from": "y"})
    second = [_chat(4, "sessB"), _item("TOPIC_CHANGE", 5, addedTopicIds=["t"]), _chat(6, "sessB")]
    closed = _item("CONVERSATION_STATUS_CHANGE", 7, status="CLOSED")
    items = [*first, email, *second, closed]
    found = contact_of(items, "sessA")
    assert found is not None
    assert found[0] == "session"
    assert _ids(found) == [i.id for i in first]
    assert _ids(contact_of(items, "sessB")) == [i.id for i in second]  # the status change is after
    assert contact_of(items, "sessC") is None


def test_a_call_is_its_item_and_what_happened_while_it_lasted() -> None:
    call = _item(
        "PHONE_CALL",
        0,
        startedAt="2026-03-01T10:00:00Z",
        completedAt="2026-03-01T10:05:00Z",
        to="+10000000000",
        **{"from": "+10000000001"},
    )
    during = _item("CONVERSATION_NOTE", 3, body="n")
    after = _item("CONVERSATION_NOTE", 9, body="later")
    other = _item("PHONE_CALL", 10, startedAt="2026-03-01T10:10:00Z", to="+1", **{"from": "+2"})
    found = contact_of([call, during, after, other], call.id)
    assert found is not None
    assert found[0] == "call"
    assert _ids(found) == [call.id, during.id]


def test_an_exchange_is_its_channels_run_up_to_another_channel() -> None:
    sms = [_item("SMS", m, content="x", to="+1", **{"from": "+2"}) for m in (0, 2)]
    note = _item("CONVERSATION_NOTE", 1, body="n")
    chat = _chat(3, "sessA")
    later = _item("SMS", 4, content="y", to="+1", **{"from": "+2"})
    items = [sms[0], note, sms[1], chat, later]
    found = contact_of(items, sms[1].id)
    assert found is not None
    assert found[0] == "exchange"
    assert _ids(found) == [sms[0].id, note.id, sms[1].id]
    assert _ids(contact_of(items, later.id)) == [later.id]


def test_the_id_of_a_note_is_no_contact() -> None:
    note = _item("CONVERSATION_NOTE", 1, body="n")
    with pytest.raises(ContactNotFoundError, match="CONVERSATION_NOTE item, which is no contact"):
        contact_of([_chat(0, "s"), note], note.id)


def test_attachments_are_named_by_id() -> None:
    listed = [{"id": "att1", "contentType": "image/png", "filename": "a.png", "fileSize": 3}]
    assert attachment_ids(_chat(0, "s", attachments=listed)) == ["att1"]
    assert attachment_ids(_chat(0, "s")) == []


def test_contact_implies_its_scope_and_is_part_of_the_identity() -> None:
    request = parse_request(customer_ids=["cust000000000000000000"], contact_ids=["sessA00"])
    assert request.scope == "contact"
    assert request.contact_ids == ("sessA00",)
    other = parse_request(customer_ids=["cust000000000000000000"], contact_ids=["sessB00"])
    assert request_hash(request, b"k") != request_hash(other, b"k")
    # A request without contacts keeps the identity it had before contacts existed, so a
    # rerun of an older request still resumes it.
    plain = parse_request(customer_ids=["cust000000000000000000"])
    before = {
        "ref": "",
        "subjects": [("customer_id", "cust000000000000000000")],
        "scope": "profile",
        "items": [],
        "close": False,
    }
    text = json.dumps(before, sort_keys=True, separators=(",", ":"))
    expected = hmac.new(b"k", b"one-off request\n" + text.encode(), hashlib.sha256).hexdigest()
    assert request_hash(plain, b"k") == expected


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"scope": "contact"}, "--scope contact: give the contact to erase with --contact"),
        ({"contact_ids": ["x y"]}, "--contact #1: not a Gladly id"),
        (
            {"scope": "items", "item_ids": ["item00"], "contact_ids": ["sessA00"]},
            "--contact: only with --scope contact",
        ),
    ],
)
def test_a_bad_contact_request_is_refused(kw: dict[str, Any], expected: str) -> None:
    with pytest.raises(OneOffInputError) as caught:
        parse_request(customer_ids=["cust000000000000000000"], **kw)
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems
