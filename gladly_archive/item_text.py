"""Readable item text: Gladly's rich-content HTML as plain text, quoted email replies trimmed.

Gladly stores emails, internal notes and customer activities as constrained HTML ("Rich
Content"). Analysts and transcripts want what a person reads, so those texts become plain text
(inscriptis, which keeps paragraphs and line breaks) and the quoted history an email reply
repeats (``<blockquote>``, a mail client's quote block, ``> `` lines) is cut and marked
``[quoted reply trimmed]``. Chat-like channels are left as typed: a customer may write ``<b>``.
The original is always kept in ``raw_json``.
"""

from __future__ import annotations

import functools
import re

import lxml.html
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from inscriptis import Inscriptis
from inscriptis.model.config import ParserConfig

__all__ = [
    "QUOTE_MARK",
    "RICH_CONTENT_TYPES",
    "plain_text",
    "plain_text_rows",
    "plain_texts",
    "replace_rows",
]

# The content types whose text Gladly keeps as Rich Content HTML (or that email clients fill
# with HTML and quoted history).
RICH_CONTENT_TYPES = ("EMAIL", "CONVERSATION_NOTE", "CUSTOMER_ACTIVITY")
QUOTE_MARK = "[quoted reply trimmed]"

# A tag from Gladly's Rich Content list (and an email's html/body/head), a closing tag, or an
# entity: enough to tell HTML from plain text that merely holds a '<'.
_HTML = (
    r"<(?:p|br|div|span|b|i|u|s|em|strong|a|ul|ol|li|h[1-6]|hr|img|font|dl|dt|dd|table|"
    r"tbody|thead|tfoot|tr|td|th|col|colgroup|caption|blockquote|pre|html|head|body|style)"
    r"(?:\s[^<>]*)?/?>|</[a-zA-Z][a-zA-Z0-9]*\s*>|&(?:[a-zA-Z]{2,8}|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});"
)
_HTML_RE = re.compile(_HTML, re.IGNORECASE)
_QUOTED_LINE = r"(?m)^[ \t]*>"
# "On Mon, 3 Mar 2025 at 10:02, Shop Support <support@…> wrote:" before a quoted block.
_ATTRIBUTION = re.compile(r"^\s*(On\b.{0,300}\bwrote:|-{2,}\s*Original Message\s*-{2,})\s*$", re.I)
# Elements that hold quoted history in the HTML of common mail clients.
_QUOTE_XPATH = (
    "//blockquote | //*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote ')]"
    " | //*[@id='divRplyFwdMsg'] | //*[@id='appendonsend']"
)
_CONFIG = ParserConfig(display_links=False, display_images=False)
_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_RICH = pa.array(RICH_CONTENT_TYPES)


def _html_to_text(html: str) -> tuple[str, bool]:
    """The text of an HTML fragment, with quoted history cut; and whether any was cut."""
    try:
        tree = lxml.html.fragment_fromstring(html, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return html, False
    quoted = tree.xpath(_QUOTE_XPATH)
    for element in quoted:
        if element.getparent() is not None:
            element.drop_tree()
    text = Inscriptis(tree, _CONFIG).get_text()
    # inscriptis indents nested blocks; a transcript wants the words, not the layout.
    return "\n".join(line.strip() for line in text.split("\n")), bool(quoted)


def _trim_quoted_lines(text: str) -> tuple[str, bool]:
    """Cut ``> `` quoted lines and the attribution line right before them."""
    kept: list[str] = []
    cut = False
    for line in text.split("\n"):
        if line.lstrip(" \t").startswith(">"):
            cut = True
            while kept and not kept[-1].strip():
                kept.pop()
            if kept and _ATTRIBUTION.match(kept[-1]):
                kept.pop()
            continue
        kept.append(line)
    return "\n".join(kept), cut


@functools.lru_cache(maxsize=4096)
def plain_text(text: str, *, email: bool) -> str:
    """``text`` as plain text: HTML converted, an email's quoted history cut and marked.

    Remembered for the last few thousand texts: canned answers, signatures-only replies and
    rule-generated messages repeat often, and conversion costs about 0.1-0.3 ms a text."""
    cut = False
    if _HTML_RE.search(text):
        text, cut = _html_to_text(text)
    if email:
        text, cut_lines = _trim_quoted_lines(text)
        cut = cut or cut_lines
    text = _BLANK_RUNS.sub("\n\n", text.replace("\r\n", "\n")).strip()
    if cut:
        text = f"{text}\n{QUOTE_MARK}" if text else QUOTE_MARK
    return text


def plain_texts(content_type: pa.Array, text: pa.Array) -> pa.Array:
    """``text`` with every rich-content item's text made plain (see plain_text); other rows,
    and rows that hold neither HTML nor quoted lines, are returned as they are."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    changed = plain_text_rows(content_type, text)
    return text if changed is None else replace_rows(text, [changed])


def plain_text_rows(content_type: pa.Array, text: pa.Array) -> tuple[np.ndarray, pa.Array] | None:
    """The rows plain_texts changes (ascending) and their plain text, or None for none.

    Only the rich-content rows are searched, and each distinct (text, email) is converted
    once a batch: canned answers, signatures and notes repeat."""
    if isinstance(content_type, pa.ChunkedArray):
        content_type = content_type.combine_chunks()
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    rich = pc.indices_nonzero(pc.fill_null(pc.is_in(content_type, value_set=_RICH), False))
    if not len(rich):
        return None
    texts = text.take(rich)
    email = pc.equal(content_type.take(rich), "EMAIL")
    looks = pc.match_substring_regex(texts, _HTML, ignore_case=True)
    quoted = pc.and_(email, pc.match_substring_regex(texts, _QUOTED_LINE))
    todo = pc.fill_null(pc.or_(looks, quoted), False)
    if not pc.any(todo).as_py():
        return None
    texts, email = texts.filter(todo), email.filter(todo)
    encoded = pc.dictionary_encode(texts)
    # One key per distinct (text, email) pair: the text's dictionary index, doubled, + email.
    keys = encoded.indices.to_numpy().astype(np.int64) * 2 + email.to_numpy(zero_copy_only=False)
    distinct, where = np.unique(keys, return_inverse=True)
    dictionary = encoded.dictionary.to_pylist()
    plain = [plain_text(dictionary[key >> 1], email=bool(key & 1)) for key in distinct.tolist()]
    values = pa.array(plain, text.type).take(pa.array(where.reshape(-1)))
    return rich.filter(todo).to_numpy(), values


def replace_rows(array: pa.Array, changes: list[tuple[np.ndarray, pa.Array]]) -> pa.Array:
    """``array`` with new values at some rows: (ascending rows, their values) pairs whose rows
    no two pairs share. One copy of the array, however many pairs."""
    changes = [(rows, values) for rows, values in changes if len(rows)]
    if not changes:
        return array
    rows = np.concatenate([rows for rows, _ in changes])
    values = pa.concat_arrays([values.cast(array.type) for _, values in changes])
    if len(changes) > 1:
        order = np.argsort(rows, kind="stable")
        rows, values = rows[order], values.take(pa.array(order))
    mask = np.zeros(len(array), np.bool_)
    mask[rows] = True
    return pc.replace_with_mask(array, pa.array(mask), values)
