"""Inbox and topic names as the archive knows them: what a policy or hold may name, resolved to ids.

Gladly identifies inboxes and topics by id; people write names. The archive's `inboxes/` and
`topics/` datasets (GET /inboxes and /topics, refreshed by every export and enrichment; topics
also from export files) say which ids exist and what each is called now. A name resolves to the
ids that carry it; an id resolves to itself, so a renamed inbox still matches by id. Anything
else is an error listing the valid names, never a filter that silently matches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import duckdb

__all__ = ["KINDS", "References", "Unresolved"]

# Filter or hold kind → the reference dataset that names its values.
KINDS: dict[str, str] = {"inbox": "inboxes", "topic": "topics"}
# How many valid names an error lists before it says how many more there are.
_SHOWN = 25
_FETCH = {
    "inboxes": "`gladly-pipeline enrich` (or an export) fetches them with GET /inboxes",
    "topics": "`gladly-pipeline enrich` (or an export) fetches them with GET /topics",
}


@dataclass(frozen=True)
class Unresolved:
    """Why a value names no inbox or topic, with the names it could have been."""

    message: str
    choices: list[str]


@dataclass(frozen=True)
class References:
    """Per dataset ("inboxes", "topics"): each id and its current name."""

    names_by_id: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)

    @classmethod
    def from_connection(cls, con: duckdb.DuckDBPyConnection) -> References:
        """From the planner's fact tables (tables `inboxes` and `topics`: id, name)."""
        out: dict[str, dict[str, str | None]] = {}
        for dataset in KINDS.values():
            rows = con.execute(
                f"SELECT id, name FROM {dataset} WHERE id IS NOT NULL ORDER BY id"  # noqa: S608
            ).fetchall()
            out[dataset] = {str(i): (None if n is None else str(n)) for i, n in rows}
        return cls(out)

    @classmethod
    def from_archive(cls, root: str) -> References:
        """The archive's inboxes and topics, read without building the fact tables."""
        from retention_policies.facts import lookup_tables

        con = lookup_tables(root)
        try:
            return cls.from_connection(con)
        finally:
            con.close()

    def lookups(self) -> dict[str, dict[str, list[str]]]:
        """{dataset: {name: [ids]}} — the shape the compiler and hold matching take."""
        out: dict[str, dict[str, list[str]]] = {}
        for dataset, names in self.names_by_id.items():
            by_name: dict[str, list[str]] = {}
            for ident, name in sorted(names.items()):
                if name is not None:
                    by_name.setdefault(name, []).append(ident)
            out[dataset] = by_name
        return out

    def known(self, kind: str) -> bool:
        """Whether the archive holds any reference data for this kind (inbox, topic)."""
        return bool(self.names_by_id.get(KINDS[kind]))

    def resolve(self, kind: str, value: str) -> list[str] | Unresolved:
        """The ids `value` stands for (itself when it is an id, else the ids of that name)."""
        dataset = KINDS[kind]
        names = self.names_by_id.get(dataset, {})
        if not names:
            return Unresolved(
                f"{kind} {value!r} cannot be checked: the archive has no {dataset} yet; "
                f"{_FETCH[dataset]}",
                [],
            )
        if value in names:
            return [value]
        ids = sorted(i for i, n in names.items() if n == value)
        if ids:
            return ids
        valid = sorted({n for n in names.values() if n is not None})
        shown = valid[:_SHOWN]
        if len(valid) > _SHOWN:
            shown.append(f"… {len(valid) - _SHOWN} more")
        return Unresolved(f"unknown {kind} {value!r}: no {kind} has this name or id", shown)
