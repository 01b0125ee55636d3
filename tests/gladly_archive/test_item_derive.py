"""Derived item columns: plain text from rich-content HTML, quoted replies, channel, internal
notes, the agent and the names of agent, inbox and topics."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from gladly_archive.convert import convert_items_lines
from gladly_archive.item_derive import ReferenceNames, derive_items
from gladly_archive.item_text import QUOTE_MARK, plain_text, plain_texts
from gladly_archive.schemas import ITEMS

AT = datetime(2025, 1, 8, tzinfo=UTC)
NAMES = ReferenceNames(
    agents={"amy": "Amy Agent", "ben": "Ben Boateng"},
    inboxes={"in1": "Returns"},
    topics={"t1": "Order Returns", "t2": "Damaged Merchandise"},
    conversations={"c1": ("in1", ("t1", "t2")), "c2": (None, ())},
)


def _item(n: int, content: dict[str, Any], **envelope: Any) -> bytes:
    body = {
        "id": f"i{n}",
        "conversationId": "c1",
        "customerId": "u1",
        "timestamp": f"2025-01-08T16:0{n}:00Z",
        "initiator": {"id": "u1", "type": "CUSTOMER"},
        "content": content,
        **envelope,
    }
    return json.dumps(body).encode()


def _derived(*lines: bytes, names: ReferenceNames = NAMES) -> list[dict[str, Any]]:
    (batch,) = list(convert_items_lines(list(lines), job_id="J1", archived_at=AT))
    out = derive_items(batch, names)
    assert out.schema.equals(ITEMS, check_metadata=True)
    return out.to_pylist()


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>Called back, <b>no answer</b>.</p>", "Called back, no answer."),
        ("<div>One<br>Two</div>", "One\nTwo"),
        ("Fish &amp; chips &#8364;5", "Fish & chips €5"),
        ("<p>a</p>\n\n\n\n<p>b</p>", "a\n\nb"),
    ],
)
def test_rich_content_html_becomes_plain_text(html: str, expected: str) -> None:
    assert plain_text(html, email=False) == expected


def test_text_that_merely_holds_angle_brackets_is_left_as_typed() -> None:
    assert plain_text("I <3 it; 2 < 3 > 1; a<b", email=False) == "I <3 it; 2 < 3 > 1; a<b"


def test_quoted_history_of_an_html_reply_is_cut_and_marked() -> None:
    html = (
        "<div><p>Your jar ships today.</p></div><div class='gmail_quote'>On Mon, Dana wrote:"
        "<br><blockquote>my card is 4111 1111 1111 1111</blockquote></div>"
    )
    text = plain_text(html, email=True)
    assert text == f"Your jar ships today.\n{QUOTE_MARK}"


def test_quoted_lines_of_a_plain_email_and_their_attribution_are_cut() -> None:
    text = "Thanks!\n\nOn Mon, 3 Mar 2025 at 10:02, Shop <s@x.example> wrote:\n> old\n>> older"
    assert plain_text(text, email=True) == f"Thanks!\n{QUOTE_MARK}"
    # Only emails quote: a chat line starting with '>' is what the customer typed.
    assert plain_texts(pa.array(["CHAT_MESSAGE"]), pa.array(["> hi"])).to_pylist() == ["> hi"]


def test_only_rich_content_types_are_converted() -> None:
    kinds = pa.array(["EMAIL", "CONVERSATION_NOTE", "CUSTOMER_ACTIVITY", "CHAT_MESSAGE", "SMS"])
    texts = pa.array(["<p>a</p>", "<b>b</b>", "<p>c &amp; d</p>", "<b>e</b>", None])
    assert plain_texts(kinds, texts).to_pylist() == ["a", "b", "c & d", "<b>e</b>", None]


def test_channel_internal_agent_and_names() -> None:
    rows = _derived(
        _item(1, {"type": "CHAT_MESSAGE", "content": "hi"}),
        _item(
            2,
            {"type": "CONVERSATION_NOTE", "body": "<p>Do <b>not</b> refund.</p>"},
            initiator={"id": "amy", "type": "AGENT"},
        ),
        _item(
            3,
            {"type": "PHONE_CALL", "startedAt": "2025-01-08T16:03:00Z"},
            responder={"id": "ben", "type": "AGENT"},
        ),
        _item(4, {"type": "SMS", "content": "x"}, initiator={"id": "zed", "type": "AGENT"}),
    )
    got = [(r["channel"], r["internal"], r["agent_id"], r["agent_name"], r["text"]) for r in rows]
    assert got == [
        ("Chat", False, None, None, "hi"),
        ("Note", True, "amy", "Amy Agent", "Do not refund."),
        ("Phone call", False, "ben", "Ben Boateng", None),
        ("SMS", False, "zed", None, "x"),  # an agent no listing names
    ]
    assert {r["inbox_name"] for r in rows} == {"Returns"}
    assert rows[0]["topic_names"] == ["Damaged Merchandise", "Order Returns"]  # sorted


def test_a_conversation_not_yet_enriched_has_no_inbox_or_topics() -> None:
    (row,) = _derived(_item(1, {"type": "CHAT_MESSAGE", "content": "hi"}, conversationId="c9"))
    assert row["inbox_name"] is None
    assert row["topic_names"] is None
    (row,) = _derived(_item(1, {"type": "CHAT_MESSAGE", "content": "hi"}, conversationId="c2"))
    assert row["inbox_name"] is None
    assert row["topic_names"] == []


def test_topic_and_status_changes_say_what_changed_by_name() -> None:
    rows = _derived(
        _item(1, {"type": "TOPIC_CHANGE", "addedTopicIds": ["t1", "tX"]}),
        _item(2, {"type": "TOPIC_CHANGE", "removedTopicIds": ["t2"]}),
        _item(3, {"type": "CONVERSATION_STATUS_CHANGE", "status": "CLOSED"}),
    )
    assert [r["text"] for r in rows] == [
        "Topics added: Order Returns, topic tX",
        "Topics removed: Damaged Merchandise",
        "Status changed to CLOSED",
    ]


def test_the_job_listing_overrides_the_archive_and_rederiving_changes_nothing() -> None:
    names = NAMES.with_listings(
        pa.table(
            {
                "agent_id": ["amy"],
                "name": ["Amy Renamed"],
                "archived_at": pa.array([AT], pa.timestamp("us", tz="UTC")),
            }
        ),
        None,
    )
    line = _item(
        1, {"type": "EMAIL", "content": "<p>x</p>"}, initiator={"id": "amy", "type": "AGENT"}
    )
    (batch,) = list(convert_items_lines([line], job_id="J1", archived_at=AT))
    once = derive_items(batch, names)
    assert once.column("agent_name").to_pylist() == ["Amy Renamed"]
    assert derive_items(once, names).equals(once)
    # The original stays in raw_json.
    assert json.loads(once.column("raw_json")[0].as_py())["content"]["content"] == "<p>x</p>"


def test_an_event_the_patterns_do_not_fit_is_read_whole() -> None:
    # An escaped id ("t\u0031" is "t1") is not cut out by pattern: the line is parsed whole.
    line = _item(1, {"type": "TOPIC_CHANGE", "addedTopicIds": ["PLACEHOLDER"]})
    (row,) = _derived(line.replace(b"PLACEHOLDER", b"t\\u0031"))
    assert row["text"] == "Topics added: Order Returns"
