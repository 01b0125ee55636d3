"""Transcripts rendered as text, Markdown and HTML: what a reader sees, and nothing injected."""

from __future__ import annotations

import re

import lxml.html
import pytest
from markdown_it import MarkdownIt

from gladly_archive.conversation_read import ConversationTranscript, Line
from gladly_archive.transcript_render import (
    render_html,
    render_markdown,
    render_text,
    render_transcripts,
    title,
)

HOSTILE = (
    "# Heading <script>alert(1)</script> [click](https://evil.example) ![x](https://evil.example/"
    "p.png) <b>bold</b> *em* _em_ **strong** `code` | cell | &amp; ~~gone~~ <https://evil.example>"
)


def _conversation(
    lines: list[Line], *, cid: str = "c1", notes_left_out: bool = False, **kw: object
) -> ConversationTranscript:
    fields: dict[str, object] = {
        "conversation_id": cid,
        "customer_id": "u1",
        "first": lines[0].stamp,
        "last": lines[-1].stamp,
        "channels": tuple(dict.fromkeys(line.channel for line in lines)),
        "agents": ("Amy Agent",),
        "inbox_name": None,
        "topic_names": None,
        "lines": tuple(lines),
        "notes_left_out": notes_left_out,
    }
    fields.update(kw)
    return ConversationTranscript(**fields)  # type: ignore[arg-type]


CHAT = Line("2025-03-01T10:00:00Z", "Chat", "Customer", "Where is my order?", False)
NOTE = Line("2025-03-01T10:01:00Z", "Note", "Internal note (Amy Agent)", "VIP, be kind", True)
EVIL = Line("2025-03-01T10:02:00Z", "Chat", "Customer", HOSTILE, False)


def test_text_is_the_header_a_blank_line_and_the_transcripts_lines() -> None:
    one = _conversation([CHAT, NOTE], inbox_name="Billing", topic_names=("Refund", "Late"))
    assert render_text([one]) == (
        "Conversation c1\n"
        "===============\n"
        "Customer: u1\n"
        "First item: 2025-03-01T10:00:00Z\n"
        "Last item: 2025-03-01T10:01:00Z\n"
        "Items: 2\n"
        "Channels: Chat, Note\n"
        "Inbox: Billing\n"
        "Topics: Refund, Late\n"
        "Agents: Amy Agent\n"
        "\n"
        "2025-03-01T10:00:00Z · Chat · Customer · Where is my order?\n"
        "2025-03-01T10:01:00Z · Note · Internal note (Amy Agent) · VIP, be kind\n"
    )


def test_several_conversations_are_blocks_under_their_own_headings() -> None:
    text = render_text([_conversation([CHAT], cid="c1"), _conversation([NOTE], cid="c2")])
    assert text.count("\nConversation ") == 1
    assert text.startswith("Conversation c1\n")
    assert "\n\nConversation c2\n===============\n" in text


def test_a_copy_without_notes_says_so_in_every_format() -> None:
    one = _conversation([CHAT], notes_left_out=True, topic_names=())
    assert "Internal notes: left out of this copy\n" in render_text([one])
    assert "Topics: none\n" in render_text([one])
    assert "- **Internal notes:** left out of this copy\n" in render_markdown([one])
    assert "<dt>Internal notes</dt><dd>left out of this copy</dd>" in render_html([one])


def test_markdown_shows_customer_text_as_text_and_marks_notes() -> None:
    one = _conversation([CHAT, NOTE, EVIL], agents=("**Amy** [Agent](https://x.example)",))
    source = render_markdown([one])
    assert "| 2025-03-01T10:01:00Z | Note | **\\[internal\\] Internal note (Amy Agent)** |" in (
        source
    )
    page = lxml.html.fromstring(
        MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(source)
    )
    # Our own headings, list and table only: no link, image, HTML, code, emphasis or extra
    # cell from what a customer or an agent wrote.
    assert [h.text_content() for h in page.iter("h1", "h2")] == [
        "Transcript of conversation c1",
        "Conversation c1",
    ]
    for tag in ("a", "img", "script", "b", "em", "code", "s", "del"):
        assert not list(page.iter(tag)), tag
    assert [s.text_content() for s in page.iter("strong")] == [
        *(f"{label}:" for label in ("Customer", "First item", "Last item", "Items", "Channels")),
        "Agents:",
        "[internal] Internal note (Amy Agent)",
    ]
    assert "Agents: **Amy** [Agent](https://x.example)" in [
        li.text_content() for li in page.iter("li")
    ]
    rows = [[cell.text_content() for cell in tr] for tr in page.iter("tr")]
    assert rows == [
        ["Time", "Channel", "Who", "Message"],
        ["2025-03-01T10:00:00Z", "Chat", "Customer", "Where is my order?"],
        ["2025-03-01T10:01:00Z", "Note", "[internal] Internal note (Amy Agent)", "VIP, be kind"],
        ["2025-03-01T10:02:00Z", "Chat", "Customer", HOSTILE],
    ]


def test_html_is_a_standalone_page_with_every_value_escaped() -> None:
    one = _conversation(
        [CHAT, NOTE, EVIL],
        cid='c"><script>alert(2)</script>',
        agents=("<script>alert(3)</script>",),
        inbox_name="<i>Billing</i>",
        topic_names=("<u>Refund</u>",),
    )
    source = render_html([one])
    assert source.startswith("<!DOCTYPE html>\n")
    assert '<meta charset="utf-8">' in source
    assert '<meta name="robots" content="noindex">' in source
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in source
    assert "<script" not in source
    assert not re.search(r"\b(src|href)=|<link|@import|url\(", source)  # no external assets
    page = lxml.html.fromstring(source)
    for tag in ("script", "a", "img", "b", "i", "u"):
        assert not list(page.iter(tag)), tag
    bodies = [div.text_content() for div in page.find_class("body")]
    assert HOSTILE in bodies
    (note,) = page.find_class("internal")
    assert "Internal note" in note.text_content()
    facts = [dd.text_content() for dd in page.iter("dd")]
    assert "<i>Billing</i>" in facts
    assert "<u>Refund</u>" in facts


def test_control_characters_are_shown_never_sent_to_the_terminal() -> None:
    sneaky = Line("2025-03-01T10:00:00Z", "Chat", "Customer", "a\x1b[2Jb\x07c\x9bd\te", False)
    one = _conversation([sneaky], agents=("Amy\x1b]0;title\x07",))
    for text in (render_text([one]), render_markdown([one]), render_html([one])):
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text.replace("\n", ""))
    assert "a\\x1b[2Jb\\x07c\\x9bd\te" in render_text([one])
    assert "Agents: Amy\\x1b]0;title\\x07\n" in render_text([one])


def test_titles_name_ids_only() -> None:
    assert title([_conversation([CHAT])]) == "Transcript of conversation c1"
    two = [_conversation([CHAT], cid="c1"), _conversation([CHAT], cid="c2", customer_id="u2")]
    assert title(two) == "Transcripts of customers u1, u2 (2 conversations)"


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="text, markdown, html"):
        render_transcripts([_conversation([CHAT])], "pdf")
