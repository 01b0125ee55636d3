"""The data dictionary's vocabulary: what a column entry says, and the words it may use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "NONE",
    "PERSONAL",
    "PERSONAL_LEVELS",
    "PSEUDONYMOUS",
    "SOURCE_KINDS",
    "Column",
    "DatasetEntry",
    "entry_problems",
]

# Whether a column can hold personal data; exactly one of these three words.
PERSONAL = "personal"
PSEUDONYMOUS = "pseudonymous"
NONE = "none"
PERSONAL_LEVELS: Mapping[str, str] = {
    PERSONAL: (
        "can name, reach or describe a person by itself: names, emails, phone numbers, postal "
        "addresses, external ids, custom attributes, anything people wrote or said (message "
        "text, subjects, call summaries, attachment file names) and the raw JSON or lines that "
        "hold them"
    ),
    PSEUDONYMOUS: (
        "points to one person only through a lookup: a customer's or an agent's Gladly id, an "
        "operator's handle, or a keyed hash (HMAC-SHA256 with GLADLY_AUDIT_KEY) of one of a "
        "person's details"
    ),
    NONE: (
        "says nothing about a person by itself: ids of items, conversations, jobs and runs, "
        "times, types, counts, inbox and topic names, unkeyed hashes of plans and files"
    ),
}

# Where a column's value comes from: each `; `-separated part of a source starts with one of
# these, followed by what exactly (a file and its field, an endpoint and its field, the rule).
SOURCE_KINDS: Mapping[str, str] = {
    "export file": (
        "a field of a line of an export job's file (`export file conversation_items.jsonl: "
        "content.subject`); in rows of a per-customer run (`job_id` `api-…`) the same field "
        "of the item or profile Gladly's API returned"
    ),
    "Gladly API": (
        "fetched through Gladly's REST API by enrichment, a directory listing or `unlink` "
        "(`Gladly API GET /api/v1/inboxes: name`)"
    ),
    "derived": "computed by the pipeline from other columns or datasets (the rule follows)",
    "pipeline": "the pipeline's own bookkeeping: run and job ids, its clock, counts, hashes",
}


@dataclass(frozen=True)
class Column:
    """One column's entry: what it means, where its value comes from, whether it is personal."""

    description: str  # one or two plain sentences: meaning, units, when NULL
    source: str  # "<kind>: <detail>" parts joined by "; ", kinds from SOURCE_KINDS
    personal: str  # one of PERSONAL_LEVELS


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset's entry: what a row is, where its files are, how to read it, its columns."""

    directory: str  # under the archive root, e.g. "items/"
    summary: str  # what one row is and where it comes from
    layout: str  # the directories and files under `directory`
    reading: str  # how to read it: which row per id is the current one
    columns: Mapping[str, Column]


def entry_problems(dataset: str, entry: DatasetEntry) -> list[str]:
    """What is wrong with an entry's wording (empty texts, unknown words), one line each."""
    problems = [
        f"{dataset}: {name} is empty"
        for name in ("directory", "summary", "layout", "reading")
        if not getattr(entry, name).strip()
    ]
    for name, column in entry.columns.items():
        where = f"{dataset}.{name}"
        if not column.description.strip():
            problems.append(f"{where}: the description is empty")
        for label, text in (("description", column.description), ("source", column.source)):
            if "\n" in text or "|" in text:
                problems.append(f"{where}: the {label} holds a line break or '|' (a table cell)")
        if column.personal not in PERSONAL_LEVELS:
            problems.append(
                f"{where}: personal is {column.personal!r}; use one of {', '.join(PERSONAL_LEVELS)}"
            )
        for part in column.source.split("; "):
            if _source_kind(part) is None:
                problems.append(
                    f"{where}: source part {part!r} does not start with one of "
                    f"{', '.join(repr(k) for k in SOURCE_KINDS)}"
                )
    return problems


def _source_kind(part: str) -> str | None:
    """The kind a source part starts with: the kind alone, or followed by ' ' or ':'."""
    for kind in SOURCE_KINDS:
        if part.startswith(kind) and part[len(kind) : len(kind) + 1] in ("", " ", ":"):
            return kind
    return None
