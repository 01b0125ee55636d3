"""What the engine knows of each target's customer before calling Gladly: contacts, attributes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from gladly_client.models import Customer
from retention_policies.facts import Tables
from retention_policies.facts_cache import facts_tables
from retention_policies.holds import HeldConversation

__all__ = ["Subject", "Subjects"]


@dataclass(frozen=True)
class Subject:
    """One customer's contacts (clear, in memory only: hashed for holds and tombstones, used
    for the verification search) and custom attributes."""

    customer_id: str
    emails: tuple[str, ...] = field(default=(), repr=False)
    phones: tuple[str, ...] = field(default=(), repr=False)
    custom_attributes: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_profile(cls, customer: Customer) -> Subject:
        """From a live Gladly profile."""
        return cls(
            customer.id,
            customer.email_addresses,
            customer.phone_numbers,
            dict(customer.custom_attributes),
        )


@dataclass
class Subjects:
    """Subjects by customer id, conversations by id, and inbox/topic names, for hold checks."""

    customers: dict[str, Subject] = field(default_factory=dict)
    conversations: dict[str, HeldConversation] = field(default_factory=dict)
    # customer id → the conversations the archive knows of that customer (for customer holds)
    owned: dict[str, list[HeldConversation]] = field(default_factory=dict)
    names: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # Customer ids our archive holds (profiles or conversations): what we must erase ourselves.
    archived: set[str] = field(default_factory=set)

    @classmethod
    def load(
        cls, root: str, customer_ids: Iterable[str], conversation_ids: Iterable[str]
    ) -> Subjects:
        """``from_tables`` over the archive's (saved) fact tables, closed afterwards."""
        tables, _ = facts_tables(root)
        try:
            return cls.from_tables(tables, customer_ids, conversation_ids)
        finally:
            tables.con.close()

    @classmethod
    def from_tables(
        cls, tables: Tables, customer_ids: Iterable[str], conversation_ids: Iterable[str]
    ) -> Subjects:
        """Read the archive's facts for just these customers and conversations (set-based)."""
        con = tables.con.cursor()
        try:
            wanted = pa.table({"id": pa.array(sorted(set(customer_ids)), pa.string())})
            convs = pa.table({"id": pa.array(sorted(set(conversation_ids)), pa.string())})
            con.register("_want_c", wanted)
            con.register("_want_v", convs)
            rows = con.execute(
                "SELECT customer_id, emails, phones, custom_attributes FROM customers "
                "JOIN _want_c ON _want_c.id = customer_id"
            ).fetchall()
            conv_rows = con.execute(
                "SELECT conversation_id, inbox_id, topic_ids, customer_id FROM conversations "
                "WHERE conversation_id IN (SELECT id FROM _want_v) "
                "OR customer_id IN (SELECT id FROM _want_c)"
            ).fetchall()
            names: dict[str, dict[str, list[str]]] = {}
            for table in ("inboxes", "topics"):
                found = con.execute(
                    f"SELECT name, list(id ORDER BY id) FROM {table} "  # noqa: S608 (constant)
                    "WHERE name IS NOT NULL GROUP BY name"
                ).fetchall()
                names[table] = {str(n): list(ids) for n, ids in found}
        finally:
            con.close()
        subjects = cls(names=names)
        for cid, emails, phones, attrs in rows:
            subjects.customers[cid] = Subject(
                cid, tuple(emails or ()), tuple(phones or ()), _attrs(attrs)
            )
        for vid, inbox, topics, owner in conv_rows:
            held = HeldConversation(vid, inbox, tuple(topics or ()))
            subjects.conversations[vid] = held
            subjects.owned.setdefault(owner, []).append(held)
        subjects.archived = set(subjects.customers) | {o for o in subjects.owned if o}
        return subjects

    def add_profile(self, customer: Customer) -> Subject:
        """Merge what a live profile says into what the archive said (live contacts first)."""
        return self.merge(Subject.from_profile(customer))

    def merge(self, live: Subject) -> Subject:
        """Add a subject; contacts and attributes already known are kept beside the new ones."""
        known = self.customers.get(live.customer_id)
        if known is not None:
            live = Subject(
                live.customer_id,
                tuple(dict.fromkeys((*live.emails, *known.emails))),
                tuple(dict.fromkeys((*live.phones, *known.phones))),
                {**known.custom_attributes, **live.custom_attributes},
            )
        self.customers[live.customer_id] = live
        return live

    @property
    def known(self) -> set[str]:
        """Customer ids we know of: in our archive, or seen live by this request's lookup."""
        return self.archived | set(self.customers)

    def subject(self, customer_id: str | None) -> Subject:
        """The subject for a customer id (empty when the archive never saw it)."""
        if customer_id is None:
            return Subject("")
        return self.customers.get(customer_id) or Subject(customer_id)


def _attrs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
