"""Organisation.say: an item with chosen words, as GET, lists and export lines show it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gladly_sandbox.clock import SandboxClock
from gladly_sandbox.errors import ApiError
from gladly_sandbox.orgdata import OrgSpec
from gladly_sandbox.store import Organisation

NOW = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture
def org() -> Organisation:
    return Organisation(OrgSpec(customers=8, now=NOW), SandboxClock(NOW, frozen=True))


def _conversation(org: Organisation) -> str:
    return org.conversation_ids(org.customer_ids()[0])[0]


@pytest.mark.parametrize(
    ("content_type", "field"),
    [
        ("CHAT_MESSAGE", "content"),
        ("SMS", "content"),
        ("EMAIL", "content"),
        ("WHATSAPP", "content"),
        ("CONVERSATION_NOTE", "body"),
    ],
)
def test_said_words_are_what_every_read_shows(
    org: Organisation, content_type: str, field: str
) -> None:
    conversation = _conversation(org)
    item_id = org.say(conversation, content_type, "card 4111 1111 1111 1111")
    item = org.get_item(item_id)
    assert item["content"]["type"] == content_type
    assert item["content"][field] == "card 4111 1111 1111 1111"
    assert item["conversationId"] == conversation
    listed, _ = org.list_items(conversation)
    assert listed[-1] == item
    exported = list(org.export_items(NOW - timedelta(seconds=1), NOW + timedelta(seconds=2)))
    assert item in exported


def test_redaction_empties_said_words(org: Organisation) -> None:
    item_id = org.say(_conversation(org), "CHAT_MESSAGE", "card 4111 1111 1111 1111")
    org.redact_item(item_id)
    assert org.get_item(item_id)["content"]["content"] == ""


def test_other_types_and_unknown_conversations_are_refused(org: Organisation) -> None:
    with pytest.raises(ValueError, match="content_type must be one of"):
        org.say(_conversation(org), "PHONE_CALL", "hello")
    with pytest.raises(ApiError) as unknown:
        org.say("NoSuchConversation0000", "CHAT_MESSAGE", "hello")
    assert unknown.value.status == 404
