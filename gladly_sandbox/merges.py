"""Customer merges, as an agent makes them in Gladly's UI (the REST API has no call for it)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gladly_sandbox import tables as t
from gladly_sandbox.tables import to_micros

if TYPE_CHECKING:
    from gladly_sandbox.clock import SandboxClock
    from gladly_sandbox.orgdata import OrgData
    from gladly_sandbox.profiles import Email, Phone


class MergeOperations:
    """`merge_customers` of an Organisation (mixed into it; relies on its state below)."""

    data: OrgData
    lock: threading.RLock
    clock: SandboxClock
    _by_id: dict[str, int]
    _merged_away: int
    _status_counts: Counter[int]

    # Provided by CustomerOperations and EventOperations; declared so the MRO finds them.
    _index: Callable[[int], None]
    _unindex: Callable[[int], None]
    _emit: Callable[..., dict[str, Any]]

    def merge_customers(self, source_id: str, destination_id: str) -> dict[str, Any]:
        """Merge the source profile into the destination, as Gladly does; returns the event.

        The source's conversations and activities move to the destination (items keep their
        content; their `customerId` becomes the destination's); when both have an open
        conversation, the source's is combined into the destination's and stops existing.
        The destination gains the source's email addresses and phone numbers it lacks; the
        source id becomes a merged-away id (GET answers 301). Records `CUSTOMER/MERGED`.
        Raises ValueError for an unknown, deleted or merged-away id, or the same id twice.
        """
        with self.lock:
            src = self._merge_row(source_id, "source")
            dst = self._merge_row(destination_id, "destination")
            if src == dst:
                raise ValueError(
                    f"source and destination are the same customer ({source_id!r}); "
                    "merge two different profiles"
                )
            data = self.data
            convs, customers = data.convs, data.customers
            source, dest = customers[src], customers[dst]
            src_open = _open_conversation(source.conversations, convs)
            dst_open = _open_conversation(dest.conversations, convs)
            content: dict[str, Any] = {"destinationCustomerId": dest.id}
            # "The combined open conversation (if applicable) that remains after the merge".
            remaining = dst_open if dst_open is not None else src_open
            if remaining is not None:
                content["destinationConversationId"] = data.conv_codec.encode(remaining)
            content["sourceCustomerId"] = source.id
            if src_open is not None and dst_open is not None:
                content["sourceConversationId"] = data.conv_codec.encode(src_open)

            for conv in source.conversations:
                convs.cust[conv] = dst
                for row in convs.item_rows(conv):
                    self._move_item(row, dst)
            for row in source.activities:
                self._move_item(row, dst)
            moved = list(source.conversations)
            if src_open is not None and dst_open is not None:
                # Gladly combines the two open conversations; the destination's keeps its
                # status, inbox and assignee.
                convs.absorb(src_open, dst_open, data.items.ts)
                self._status_counts[convs.status[src_open]] -= 1
                moved.remove(src_open)
            dest.conversations.extend(moved)
            dest.activities.extend(source.activities)
            source.conversations = []
            source.activities = []

            self._unindex(src)
            self._unindex(dst)
            dest.emails.extend(_missing_emails(dest.emails, source.emails))
            dest.phones.extend(_missing_phones(dest.phones, source.phones))
            dest.updated = max(dest.updated + 1, to_micros(self.clock.now()))
            self._index(dst)

            del self._by_id[source.id]
            for old_id, row in list(data.merged.items()):
                if row == src:
                    data.merged[old_id] = dst
            data.merged[source.id] = dst
            self._merged_away += 1
            self._emit("CUSTOMER/MERGED", content, self._merge_initiator())
            return dict(content)  # the event keeps its own

    def _merge_row(self, customer_id: Any, role: str) -> int:
        if not isinstance(customer_id, str) or not customer_id.strip():
            raise ValueError(f"{role} must be a customer id (got {customer_id!r})")
        customers = self.data.customers
        row = self._by_id.get(customer_id)
        if row is not None and not customers[row].deleted:
            return row
        if row is not None:
            raise ValueError(f"{role} customer {customer_id!r} was deleted")
        survivor = self.data.merged.get(customer_id)
        if survivor is not None:
            if customers[survivor].deleted:
                raise ValueError(f"{role} customer {customer_id!r} was merged and then deleted")
            raise ValueError(
                f"{role} {customer_id!r} is a merged-away id; its profile is now "
                f"{customers[survivor].id!r}"
            )
        raise ValueError(f"{role}: no customer profile has the id {customer_id!r}")

    def _move_item(self, row: int, dst: int) -> None:
        items = self.data.items
        items.author.setdefault(row, items.cust[row])
        items.cust[row] = dst

    def _merge_initiator(self) -> dict[str, str]:
        # ASSUMPTION: a merge is made by an agent in Gladly's UI; the sandbox names its first.
        data = self.data
        if data.agents:
            return {"id": data.agents[0].id, "type": "AGENT"}
        return {"id": data.automation_id, "type": "SYSTEM"}


def _open_conversation(conversations: list[int], convs: t.ConversationTable) -> int | None:
    """The customer's conversation that is not CLOSED (Gladly allows at most one)."""
    return next((c for c in conversations if convs.status[c] != t.S_CLOSED), None)


def _missing_emails(have: list[Email], extra: list[Email]) -> list[Email]:
    known = {e.normalized for e in have}
    return [
        e._replace(primary=False) if e.primary else e for e in extra if e.normalized not in known
    ]


def _missing_phones(have: list[Phone], extra: list[Phone]) -> list[Phone]:
    known = {p.normalized for p in have}
    return [
        p._replace(primary=False) if p.primary else p for p in extra if p.normalized not in known
    ]
