"""Transcripts as a person reads them: plain text, Markdown or a standalone HTML page."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence

from gladly_archive.conversation_read import ConversationTranscript, Line
from gladly_archive.transcripts import SEPARATOR

__all__ = [
    "FORMATS",
    "render_html",
    "render_markdown",
    "render_text",
    "render_transcripts",
    "title",
]

FORMATS = ("text", "markdown", "html")
NOTES_LEFT_OUT = "left out of this copy"
# Control characters (but tab) would move a terminal's cursor or recolour it: shown as \xNN.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# What customer text could use to make links, images, HTML, entities, code, emphasis, table
# cells or headings: each such character is backslash-escaped (CommonMark allows it before any
# punctuation). Values never start a line, so list and heading markers need no escape.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&])")
_WHITESPACE = re.compile(r"\s+")


def _visible(value: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


def title(conversations: Sequence[ConversationTranscript]) -> str:
    """`Transcript of conversation <id>`, or `Transcripts of customer(s) <ids>`: ids only."""
    if len(conversations) == 1:
        return f"Transcript of conversation {conversations[0].conversation_id}"
    customers = list(dict.fromkeys(c.customer_id for c in conversations))
    whose = "customer" if len(customers) == 1 else "customers"
    return f"Transcripts of {whose} {', '.join(customers)} ({len(conversations)} conversations)"


def _facts(conversation: ConversationTranscript) -> list[tuple[str, str]]:
    """The header's (label, value) pairs; inbox and topics only where known."""
    c = conversation
    facts = [
        ("Customer", c.customer_id),
        ("First item", c.first),
        ("Last item", c.last),
        ("Items", str(len(c.lines))),
        ("Channels", ", ".join(c.channels)),
    ]
    if c.inbox_name is not None:
        facts.append(("Inbox", c.inbox_name))
    if c.topic_names is not None:
        facts.append(("Topics", ", ".join(c.topic_names) or "none"))
    facts.append(("Agents", ", ".join(c.agents) or "none"))
    if c.notes_left_out:
        facts.append(("Internal notes", NOTES_LEFT_OUT))
    return facts


def render_text(conversations: Sequence[ConversationTranscript]) -> str:
    """Each conversation: its id underlined, `Label: value` lines, a blank line, then its
    lines exactly as the `transcripts` dataset writes them (`stamp · channel · who · body`)."""
    blocks = []
    for c in conversations:
        heading = f"Conversation {c.conversation_id}"
        header = [heading, "=" * len(heading)]
        header += [f"{label}: {_visible(value)}" for label, value in _facts(c)]
        lines = [_visible(SEPARATOR.join(line[:4])) for line in c.lines]
        blocks.append("\n".join([*header, "", *lines]) + "\n")
    return "\n".join(blocks)


def _md(value: str) -> str:
    """Text as Markdown that shows exactly it: one line, special characters escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _WHITESPACE.sub(" ", _visible(value)).strip())


def _markdown_row(line: Line) -> str:
    who = f"**\\[internal\\] {_md(line.who)}**" if line.internal else _md(line.who)
    return f"| {line.stamp} | {_md(line.channel)} | {who} | {_md(line.body)} |"


def render_markdown(conversations: Sequence[ConversationTranscript]) -> str:
    """A `#` title, then per conversation a `## Conversation <id>` heading, its facts as a
    list and a table of its lines (time, channel, who, message); a note's who is in bold and
    starts with [internal]."""
    out = [f"# {_md(title(conversations))}", ""]
    for c in conversations:
        out += [f"## Conversation {_md(c.conversation_id)}", ""]
        out += [f"- **{label}:** {_md(value)}" for label, value in _facts(c)]
        out += ["", "| Time | Channel | Who | Message |", "| --- | --- | --- | --- |"]
        out += [*(_markdown_row(line) for line in c.lines), ""]
    return "\n".join(out)


_STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f;
  max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2.5rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.1rem 1rem; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
ol.lines { list-style: none; padding: 0; }
li.line { border-left: 3px solid #c7c7cc; padding: 0.3rem 0.8rem; margin: 0.5rem 0; }
li.line .meta { color: #6e6e73; font-size: 0.85rem; }
li.line .who { font-weight: 600; color: #1d1d1f; }
li.line .body { white-space: pre-wrap; overflow-wrap: anywhere; }
li.internal { background: #fff4d6; border-left: 3px dashed #b7791f; }
li.internal .who { color: #8a4b00; }
@media print { li.line { break-inside: avoid; } }
""".strip()


def _h(value: str) -> str:
    return html.escape(_visible(value), quote=True)


def _html_line(line: Line) -> str:
    kind = "line internal" if line.internal else "line"
    return (
        f'<li class="{kind}"><div class="meta"><time datetime="{_h(line.stamp)}">'
        f"{_h(line.stamp)}</time> · {_h(line.channel)} · "
        f'<span class="who">{_h(line.who)}</span></div>'
        f'<div class="body">{_h(line.body)}</div></li>'
    )


def render_html(conversations: Sequence[ConversationTranscript]) -> str:
    """A standalone HTML5 page (inline CSS, no external assets, not to be indexed): every
    value escaped; internal notes shaded and named "Internal note"."""
    heading = _h(title(conversations))
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="robots" content="noindex">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{heading}</title>",
        f"<style>\n{_STYLE}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{heading}</h1>",
    ]
    for c in conversations:
        cid = _h(c.conversation_id)
        out += [f'<section class="conversation" id="conversation-{cid}">']
        out += [f"<h2>Conversation {cid}</h2>", '<dl class="facts">']
        out += [f"<dt>{_h(label)}</dt><dd>{_h(value)}</dd>" for label, value in _facts(c)]
        out += ["</dl>", '<ol class="lines">', *(_html_line(line) for line in c.lines)]
        out += ["</ol>", "</section>"]
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


_RENDERERS: dict[str, Callable[[Sequence[ConversationTranscript]], str]] = {
    "text": render_text,
    "markdown": render_markdown,
    "html": render_html,
}


def render_transcripts(conversations: Sequence[ConversationTranscript], fmt: str) -> str:
    """The conversations in `fmt` (one of FORMATS); ValueError for another."""
    try:
        render = _RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}") from None
    return render(conversations)
