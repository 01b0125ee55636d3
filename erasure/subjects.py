"""What the engine knows of each target before calling Gladly: contacts, attributes, facts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from gladly_client.models import Customer
from retention_policies.facts import ITEM_FACTS, Tables
from retention_policies.facts_cache import facts_tables
from retention_policies.holds import HeldConversation
from retention_policies.references import References

__all__ = ["FactRows", "Subject", "Subjects"]


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


@dataclass(frozen=True)
class FactRows:
    """The archive's fact rows by id, kept as Arrow (a dict per row would cost ten times the
    memory at a million conversations); a row becomes a dict only when asked for."""

    table: pa.Table | None = None
    index: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, table: pa.Table, key: str) -> FactRows:
        """Rows of `table` by their `key` column."""
        ids = table.column(key).to_pylist()
        return cls(table, {k: i for i, k in enumerate(ids) if k is not None})

    def get(self, key: str | None) -> dict[str, Any] | None:
        """The row with this id as a dict (the fact schema's columns), or None."""
        at = self.index.get(key) if key is not None else None
        if at is None or self.table is None:
            return None
        row: dict[str, Any] = self.table.slice(at, 1).to_pylist()[0]
        return row


@dataclass
class Subjects:
    """Subjects by customer id, conversations by id, and inbox/topic names, for hold checks;
    the archive's fact rows of the targets, for the live re-check of their policy's filters."""

    customers: dict[str, Subject] = field(default_factory=dict)
    conversations: dict[str, HeldConversation] = field(default_factory=dict)
    # customer id → the conversations the archive knows of that customer (for customer holds)
    owned: dict[str, list[HeldConversation]] = field(default_factory=dict)
    names: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # Customer ids our archive holds (profiles or conversations): what we must erase ourselves.
    archived: set[str] = field(default_factory=set)
    # The archive's fact rows (CUSTOMER_FACTS without contacts, CONVERSATION_FACTS, ITEM_FACTS)
    # of the targets' customers, their conversations, and the items asked for.
    fact_customers: FactRows = field(default_factory=FactRows)
    fact_conversations: FactRows = field(default_factory=FactRows)
    fact_items: FactRows = field(default_factory=FactRows)

    @classmethod
    def load(
        cls,
        root: str,
        customer_ids: Iterable[str],
        conversation_ids: Iterable[str],
        item_ids: Iterable[str] = (),
    ) -> Subjects:
        """``from_tables`` over the archive's (saved) fact tables, closed afterwards."""
        tables, _ = facts_tables(root)
        try:
            return cls.from_tables(tables, customer_ids, conversation_ids, item_ids)
        finally:
            tables.con.close()

    @classmethod
    def from_tables(
        cls,
        tables: Tables,
        customer_ids: Iterable[str],
        conversation_ids: Iterable[str],
        item_ids: Iterable[str] = (),
    ) -> Subjects:
        """Read the archive's facts for just these customers (with all their conversations),
        conversations and items: one query per table, whatever the number of targets."""
        items = sorted(set(item_ids))
        con = tables.con.cursor()
        try:
            wanted = pa.table({"id": pa.array(sorted(set(customer_ids)), pa.string())})
            convs = pa.table({"id": pa.array(sorted(set(conversation_ids)), pa.string())})
            con.register("_want_c", wanted)
            con.register("_want_v", convs)
            customers = con.sql(
                "SELECT c.* FROM customers c JOIN _want_c ON _want_c.id = c.customer_id"
            ).to_arrow_table()
            conversations = con.sql(
                "SELECT * FROM conversations WHERE conversation_id IN (SELECT id FROM _want_v) "
                "OR customer_id IN (SELECT id FROM _want_c)"
            ).to_arrow_table()
            item_rows = ITEM_FACTS.empty_table()
            if items:  # the items are a view over every Parquet file: scanned only if needed
                con.register("_want_i", pa.table({"id": pa.array(items, pa.string())}))
                item_rows = con.sql(
                    "SELECT * FROM items WHERE item_id IN (SELECT id FROM _want_i)"
                ).to_arrow_table()
            names = References.from_connection(con).lookups()
        finally:
            con.close()
        subjects = cls(names=names)
        contacts = customers.select(["customer_id", "emails", "phones", "custom_attributes"])
        for row in contacts.to_pylist():
            cid = row["customer_id"]
            subjects.customers[cid] = Subject(
                cid,
                tuple(row["emails"] or ()),
                tuple(row["phones"] or ()),
                _attrs(row["custom_attributes"]),
            )
        held_columns = ["conversation_id", "inbox_id", "topic_ids", "customer_id"]
        for row in conversations.select(held_columns).to_pylist():
            vid = row["conversation_id"]
            held = HeldConversation(vid, row["inbox_id"], tuple(row["topic_ids"] or ()))
            subjects.conversations[vid] = held
            subjects.owned.setdefault(row["customer_id"], []).append(held)
        subjects.archived = set(subjects.customers) | {o for o in subjects.owned if o}
        # Contacts stay in the Subjects (clear, in memory only); no filter reads them.
        facts = customers.drop_columns(["emails", "phones"])
        subjects.fact_customers = FactRows.of(facts, "customer_id")
        subjects.fact_conversations = FactRows.of(conversations, "conversation_id")
        subjects.fact_items = FactRows.of(item_rows, "item_id")
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
