"""The data dictionary: every dataset's columns described, and stamped into their Arrow fields.

`gladly_archive.schemas.with_metadata` calls `describe` for every schema it stamps, so a column
added without an entry here (or an entry left behind by a removed column) fails at import.
`python -m gladly_archive.dictionary_doc > docs/datasets.md` prints the dictionary as Markdown.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from gladly_archive.dictionary import (
    audit_data,
    bookkeeping_data,
    conversation_data,
    facts_data,
    records_data,
)
from gladly_archive.dictionary.terms import (
    NONE,
    PERSONAL,
    PERSONAL_LEVELS,
    PSEUDONYMOUS,
    SOURCE_KINDS,
    Column,
    DatasetEntry,
    entry_problems,
)

__all__ = [
    "DESCRIPTION",
    "DICTIONARY",
    "NONE",
    "PERSONAL",
    "PERSONAL_KEY",
    "PERSONAL_LEVELS",
    "PSEUDONYMOUS",
    "SOURCE",
    "SOURCE_KINDS",
    "Column",
    "DatasetEntry",
    "DictionaryError",
    "describe",
]

_MODULES = (conversation_data, records_data, facts_data, bookkeeping_data, audit_data)

# Dataset (the name `with_metadata` stamps) -> its entry.
DICTIONARY: Mapping[str, DatasetEntry] = {
    name: entry for module in _MODULES for name, entry in module.ENTRIES.items()
}
_WHERE = {name: module.__name__ for module in _MODULES for name in module.ENTRIES}

# Field metadata keys (bytes, as Arrow keeps them).
DESCRIPTION = b"description"
SOURCE = b"source"
PERSONAL_KEY = b"personal"


class DictionaryError(ValueError):
    """A schema and the data dictionary disagree, or an entry's wording is not allowed."""


def _check_dictionary() -> None:
    problems = [p for name, entry in DICTIONARY.items() for p in entry_problems(name, entry)]
    if problems:
        raise DictionaryError("data dictionary: " + "; ".join(problems))


def describe(name: str, schema: pa.Schema) -> pa.Schema:
    """`schema` with each field's metadata holding its entry's description, source and personal
    level; raises DictionaryError naming the dataset and columns when they do not match."""
    entry = DICTIONARY.get(name)
    if entry is None:
        raise DictionaryError(
            f"dataset {name!r} has no entry in the data dictionary (gladly_archive.dictionary); "
            f"add one describing its columns. Known: {', '.join(sorted(DICTIONARY))}"
        )
    where = _WHERE[name]
    undocumented = [n for n in schema.names if n not in entry.columns]
    if undocumented:
        raise DictionaryError(
            f"{name}: column(s) {', '.join(undocumented)} have no entry in the data dictionary; "
            f"describe each in {where} (description, source, personal)"
        )
    stale = [c for c in entry.columns if c not in schema.names]
    if stale:
        raise DictionaryError(
            f"{name}: the data dictionary ({where}) describes column(s) {', '.join(stale)} "
            "that the schema lacks; remove the entries or add the columns"
        )
    fields = []
    for field in schema:
        column = entry.columns[field.name]
        fields.append(
            field.with_metadata(
                {
                    **(field.metadata or {}),
                    DESCRIPTION: column.description.encode(),
                    SOURCE: column.source.encode(),
                    PERSONAL_KEY: column.personal.encode(),
                }
            )
        )
    return pa.schema(fields, metadata=schema.metadata)


_check_dictionary()
