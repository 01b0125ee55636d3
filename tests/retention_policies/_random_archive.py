"""A small archive changed at random through the archive's own writers, for the fact-refresh
tests: export commits (new customers and conversations, conversations continued, items exported
again, some under another customer as after a Gladly merge), enrichment runs (conversation
facts, profiles, merges), directory snapshots, purges, item deletions and folds.

Every change goes through gladly_archive (stage_job/commit, append_snapshot,
append_reference_snapshot, purge_customers, delete_items, fold_archive), so the files move as
they do in production: new day files, rewritten folded buckets, merged small files, files
renamed over themselves. Times come from a clock that moves a few hours a step; the seed
decides everything else.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from gladly_archive import Archive, delete_items, purge_customers, redact_items
from gladly_archive.enrichment import append_reference_snapshot, append_snapshot
from gladly_archive.fold import fold_archive
from gladly_archive.layout import read_layout
from gladly_archive.schemas import (
    CONVERSATIONS,
    CONVERTED_ITEMS,
    CUSTOMER_PROFILES,
    CUSTOMERS,
    INBOXES,
    TOPICS,
)

START = datetime(2025, 1, 6, 9, tzinfo=UTC)
PLAIN_TYPES = ("CHAT_MESSAGE", "EMAIL", "SMS", "PHONE_CALL", "CONVERSATION_NOTE", "VOICEMAIL")
STATUSES = ("OPEN", "CLOSED", "WAITING")
TOPIC_IDS = ("t1", "t2", "t3", "t4")
INBOX_IDS = ("ib1", "ib2", "ib3")


class RandomArchive:
    """An archive under `root` and what was put in it, changed one random step at a time."""

    def __init__(self, root: Path, seed: int, *, moves: bool = True, fresh: bool = True) -> None:
        """`fresh=False`: `root` holds an archive made by another RandomArchive; its items,
        conversations and customers are read back, and the clock starts after its last job."""
        self.root = root
        self.rng = random.Random(seed)
        self.now = START
        self.archive = Archive.open(root, clock=lambda: self.now)
        self.moves = moves  # items exported again under another customer (Gladly merges)
        self.customers: list[str] = []
        self.conversations: dict[str, str] = {}  # conversation → its customer
        self.items: dict[str, dict[str, Any]] = {}  # item → its row
        self.folded = False
        self.serial = 0
        self.log: list[str] = []
        if not fresh:
            self._read_back()

    def _read_back(self) -> None:
        columns = [f.name for f in CONVERTED_ITEMS]
        items = self.archive.dataset("items").to_table(columns=columns).to_pylist()
        for row in sorted(items, key=lambda r: r["item_id"]):
            self.items[row["item_id"]] = row
            if row["conversation_id"] is not None:
                self.conversations.setdefault(row["conversation_id"], row["customer_id"])
            if row["customer_id"] not in self.customers:
                self.customers.append(row["customer_id"])
        self.now = max(r["archived_at"] for r in items) if items else START
        self.serial = 10_000  # ids made from here on are new
        self.folded = read_layout(self.archive.fs, self.archive.root).buckets is not None

    def _id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial:04d}"

    def _tick(self, hours: float) -> datetime:
        self.now += timedelta(hours=hours, microseconds=self.rng.randrange(1, 999))
        return self.now

    # -- the steps ---------------------------------------------------------------------------

    def step(self) -> str:
        """One random change; its name."""
        choices: list[tuple[int, Callable[[], None]]] = [
            (10, self.commit),
            (3, self.enrich_conversations),
            (3, self.enrich_profiles),
            (1, self.directory),
        ]
        if self.customers:
            choices += [(2, self.purge), (1, self.delete_some_items), (1, self.redact_some_items)]
        if self.now - START > timedelta(days=4):
            choices.append((2, self.fold))
        weights = [w for w, _ in choices]
        action = self.rng.choices([a for _, a in choices], weights)[0]
        action()
        name = action.__name__
        self.log.append(name)
        return name

    def commit(self) -> None:
        rng = self.rng
        job_id = self._id("job")
        self._tick(rng.choice((2, 6, 20, 30)))
        rows: list[dict[str, Any]] = []
        for _ in range(rng.randint(1, 9)):
            kind = rng.random()
            if kind < 0.2 or not self.customers:
                customer = self._id("c")
                self.customers.append(customer)
                if rng.random() < 0.2:  # known only by what they did outside conversations
                    rows.append(self.item(None, customer, "CUSTOMER_ACTIVITY"))
                else:
                    rows += self._conversation(customer, rng.randint(1, 4))
            elif kind < 0.45:
                rows += self._conversation(rng.choice(self.customers), rng.randint(1, 3))
            elif kind < 0.65 and self.conversations:
                conversation = rng.choice(sorted(self.conversations))
                customer = self.conversations[conversation]
                if self.moves and rng.random() < 0.15:
                    customer = rng.choice(self.customers)  # merged in Gladly meanwhile
                rows += [self.item(conversation, customer) for _ in range(rng.randint(1, 3))]
            elif kind < 0.85 and self.items:
                # Exported again: the same item, perhaps reworded, perhaps under a survivor.
                again = dict(self.items[rng.choice(sorted(self.items))])
                again["text"] = f"again {self.serial}"
                if self.moves and rng.random() < 0.2:
                    again["customer_id"] = rng.choice(self.customers)
                again["job_id"] = job_id
                rows.append(again)
            else:
                rows.append(self.item(None, rng.choice(self.customers), "CUSTOMER_ACTIVITY"))
        self.export(rows, job_id)

    def export(self, rows: list[dict[str, Any]], job_id: str | None = None) -> None:
        """Commit these item rows (from `item`) as one export job, with their customers."""
        job_id = job_id or self._id("job")
        for row in rows:
            row["job_id"] = job_id
            row["archived_at"] = self.now
            self.items[row["item_id"]] = row
            if row["conversation_id"] is not None:
                self.conversations.setdefault(row["conversation_id"], row["customer_id"])
            if row["customer_id"] not in self.customers:
                self.customers.append(row["customer_id"])
        # Several items of one id in a job: the export lists it once.
        unique = list({row["item_id"]: row for row in rows}.values())
        job = self.archive.stage_job(job_id)
        job.write_items(pa.Table.from_pylist(unique, schema=CONVERTED_ITEMS).to_batches())
        named = sorted({row["customer_id"] for row in unique})
        job.write_customers(self._customers(named, job_id).to_batches())
        job.commit()

    def _conversation(self, customer: str, count: int) -> list[dict[str, Any]]:
        conversation = self._id("v")
        self.conversations[conversation] = customer
        return [self.item(conversation, customer) for _ in range(count)]

    def item(
        self, conversation: str | None, customer: str, content_type: str | None = None
    ) -> dict[str, Any]:
        """A new item row (CONVERTED_ITEMS) of a random kind unless `content_type` is given."""
        rng = self.rng
        item_id = self._id("i")
        when = self.now - timedelta(hours=rng.uniform(0, 30), microseconds=rng.randrange(999))
        content: dict[str, Any] = {}
        if content_type is None:
            pick = rng.random()
            if pick < 0.2:
                content_type = "CONVERSATION_STATUS_CHANGE"
                content = {"status": rng.choice(STATUSES)}
            elif pick < 0.35:
                content_type = "TOPIC_CHANGE"
                added = rng.sample(TOPIC_IDS, rng.randint(0, 2))
                removed = [t for t in rng.sample(TOPIC_IDS, rng.randint(0, 2)) if t not in added]
                content = {"addedTopicIds": added, "removedTopicIds": removed}
            else:
                content_type = rng.choice(PLAIN_TYPES)
        if rng.random() < 0.02:
            content_type = f"CUSTOM_{rng.randint(1, 3)}"  # a type the archive had not seen
        envelope = {
            "id": item_id,
            "conversationId": conversation,
            "customerId": customer,
            "content": {"type": content_type, **content},
        }
        return {
            "item_id": item_id,
            "conversation_id": conversation,
            "customer_id": customer,
            "timestamp": when,
            "date": when.date(),
            "initiator_type": rng.choice(("CUSTOMER", "AGENT")),
            "content_type": content_type,
            "text": f"text {item_id}",
            "raw_json": json.dumps(envelope),
        }

    def _customers(self, ids: list[str], job_id: str) -> pa.Table:
        rng = self.rng
        rows = [
            {
                "customer_id": cid,
                "name": f"Customer {cid}",
                "emails": [f" {cid}.{rng.randint(1, 3)}@Example.com "]
                + ([f"{cid}@other.org"] if rng.random() < 0.3 else []),
                "phones": [f"+1555{rng.randint(100, 999)}"] if rng.random() < 0.5 else [],
                "raw_json": json.dumps({"id": cid}),
                "job_id": job_id,
                "archived_at": self.now,
            }
            for cid in ids
        ]
        return pa.Table.from_pylist(rows, schema=CUSTOMERS)

    def enrich_conversations(self) -> None:
        rng = self.rng
        if not self.conversations:
            return
        fetched = self._tick(1)
        picked = rng.sample(sorted(self.conversations), min(len(self.conversations), 5))
        rows = []
        for n, conversation in enumerate(picked):
            status = rng.choice(STATUSES)
            created = fetched - timedelta(days=rng.randint(1, 5))
            rows.append(
                {
                    "conversation_id": conversation,
                    "customer_id": self.conversations[conversation],
                    "inbox_id": rng.choice((*INBOX_IDS, None)),
                    "status": status,
                    "created_at": created,
                    "closed_at": fetched if status == "CLOSED" else None,
                    "topic_ids": rng.sample(TOPIC_IDS, rng.randint(0, 2)),
                    "fetched_at": fetched + timedelta(microseconds=n),
                }
            )
        table = pa.Table.from_pylist(rows, schema=CONVERSATIONS)
        append_snapshot(self.archive, "conversations", table, run_id=self._id("enr"))

    def enrich_profiles(self) -> None:
        rng = self.rng
        if not self.customers:
            return
        picked = rng.sample(self.customers, min(len(self.customers), 4))
        rows = []
        for customer in picked:
            others = [c for c in self.customers if c != customer]
            if others and rng.random() < 0.3:
                rows.append((customer, None, rng.choice(others)))
            elif rng.random() < 0.15:
                rows.append((customer, None, None))
            else:
                rows.append((customer, rng.choice(("gold", "blue")), None))
        self.profiles(rows)

    def profiles(self, rows: list[tuple[str, str | None, str | None]]) -> None:
        """One enrichment run of profiles: (customer, tier or None, merged into or None); a
        merge or a missing tier is an event's row (attributes unknown)."""
        fetched = self._tick(1)
        table = pa.Table.from_pylist(
            [
                {
                    "customer_id": customer,
                    "custom_attributes_json": None if tier is None else json.dumps({"tier": tier}),
                    "updated_at": fetched,
                    "fetched_at": fetched + timedelta(microseconds=n),
                    "event": "CUSTOMER/MERGED"
                    if into
                    else ("CUSTOMER/UPDATED" if tier is None else None),
                    "merged_into": into,
                }
                for n, (customer, tier, into) in enumerate(rows)
            ],
            schema=CUSTOMER_PROFILES,
        )
        append_snapshot(self.archive, "customer_profiles", table, run_id=self._id("prof"))

    def directory(self) -> None:
        rng = self.rng
        at = self._tick(0.5)
        run = self._id("dir")
        inboxes = [
            {
                "inbox_id": inbox,
                "name": f"{inbox} {rng.randint(1, 3)}",
                "disabled": False,
                "raw_json": "{}",
                "job_id": run,
                "archived_at": at,
            }
            for inbox in INBOX_IDS
        ]
        append_reference_snapshot(
            self.archive, "inboxes", pa.Table.from_pylist(inboxes, schema=INBOXES), run_id=run
        )
        topics = [
            {
                "topic_id": topic,
                "name": f"{topic} {rng.randint(1, 3)}",
                "disabled": False,
                "parent_id": None,
                "raw_json": "{}",
                "job_id": run,
                "archived_at": at,
            }
            for topic in TOPIC_IDS
        ]
        append_reference_snapshot(
            self.archive, "topics", pa.Table.from_pylist(topics, schema=TOPICS), run_id=run
        )

    def purge(self, gone: list[str] | None = None) -> None:
        rng = self.rng
        self._tick(0.5)
        if gone is None:
            gone = rng.sample(self.customers, min(len(self.customers), rng.randint(1, 2)))
        purge_customers(self.archive, gone)
        self.customers = [c for c in self.customers if c not in gone]
        self.items = {k: v for k, v in self.items.items() if v["customer_id"] not in gone}
        self.conversations = {v: c for v, c in self.conversations.items() if c not in gone}

    def delete_some_items(self) -> None:
        if not self.items:
            return
        self._tick(0.5)
        picked = self.rng.sample(sorted(self.items), min(len(self.items), 3))
        delete_items(self.archive, {i: self.items[i]["customer_id"] for i in picked})
        for item_id in picked:
            del self.items[item_id]

    def redact_some_items(self) -> None:
        """Redaction keeps an item's row but not its content: a status or topic change no
        longer says which (its counts and times stay)."""
        events = sorted(
            i for i, row in self.items.items() if row["content_type"].endswith("_CHANGE")
        )
        if not events:
            return
        self._tick(0.5)
        picked = self.rng.sample(events, min(len(events), 2))
        redact_items(self.archive, {i: self.items[i]["customer_id"] for i in picked})

    def fold(self) -> None:
        through = (self.now - timedelta(days=self.rng.randint(1, 3))).date()
        fold_archive(self.archive, through, buckets=None if self.folded else 4)
        self.folded = True
