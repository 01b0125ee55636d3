"""The organisation's item rules: list, get, redact, delete, voice media, and windowed export."""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from gladly_sandbox import tables as t
from gladly_sandbox.clock import SandboxClock
from gladly_sandbox.content import REDACTABLE, Renderer
from gladly_sandbox.errors import ApiError
from gladly_sandbox.profiles import customer_export_json
from gladly_sandbox.tables import digits_for, from_micros, quantize, to_micros
from gladly_sandbox.voice import RECORDING_SECONDS, silent_mp3

if TYPE_CHECKING:
    from gladly_sandbox.orgdata import OrgData

ITEM_LIST_LIMIT = 1000  # documented
EXPORT_BATCH = 2000  # items rendered per lock hold while exporting
DELETABLE = frozenset({"CUSTOMER_ACTIVITY"})
# What `say` can add, and the kind of row each is.
_SAYABLE = {
    "CHAT_MESSAGE": t.K_CHAT_TEXT,
    "SMS": t.K_SMS,
    "EMAIL": t.K_EMAIL,
    "WHATSAPP": t.K_WHATSAPP,
    "CONVERSATION_NOTE": t.K_NOTE,
}


class ItemOperations:
    """Item endpoints of an Organisation (mixed into it; relies on its state below)."""

    data: OrgData
    render: Renderer
    lock: threading.RLock
    clock: SandboxClock
    item_list_keeps: Literal["oldest", "newest"]
    _by_id: dict[str, int]
    _type_counts: Counter[str]
    _redacted: int

    def list_items(
        self, conversation_id: str, session_id: str | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        """At most 1000 items ascending by timestamp (optionally one session's), and truncation."""
        with self.lock:
            conv = self._conversation_row(conversation_id, quirk="empty")
            rows = [
                r
                for r in self.data.convs.item_rows(conv)
                if not self.data.items.flags[r] & t.F_DELETED
            ]
            if session_id is not None:
                rows = [r for r in rows if self.render.session_id(r) == session_id]
            truncated = len(rows) > ITEM_LIST_LIMIT
            if truncated:
                keep = ITEM_LIST_LIMIT
                rows = rows[:keep] if self.item_list_keeps == "oldest" else rows[-keep:]
            return [self.render.item(r) for r in rows], truncated

    def get_item(self, item_id: str) -> dict[str, Any]:
        """The item; 404 (no body documented) when unknown, deleted, or its customer is gone."""
        with self.lock:
            return self.render.item(self._item_row(item_id))

    def redact_item(self, item_id: str) -> None:
        """Remove a supported item's content; it stays on the timeline. Idempotent."""
        with self.lock:
            row = self._item_row(item_id)
            items = self.data.items
            content_type = t.CONTENT_TYPE[items.kind[row]]
            if content_type not in REDACTABLE:
                # ASSUMPTION: the unsupported-type error is undocumented; 400 `invalid`.
                raise ApiError(
                    400, "invalid", f"conversation item of type [{content_type}] cannot be redacted"
                )
            if not items.flags[row] & t.F_REDACTED:
                items.flags[row] |= t.F_REDACTED
                self._redacted += 1

    def delete_item(self, item_id: str, customer_id: str | None = None) -> None:
        """Delete a CUSTOMER_ACTIVITY item; with `customer_id`, 404 unless it is theirs."""
        with self.lock:
            row = self._item_row(item_id)
            items = self.data.items
            if customer_id is not None and self.data.customers[items.cust[row]].id != customer_id:
                raise _item_not_found()
            content_type = t.CONTENT_TYPE[items.kind[row]]
            if content_type not in DELETABLE:
                # ASSUMPTION: the error for other types is undocumented; 400 `invalid`.
                raise ApiError(
                    400, "invalid", f"conversation item of type [{content_type}] cannot be deleted"
                )
            self._forget_item(row)
            items.flags[row] |= t.F_DELETED

    def say(self, conversation_id: str, content_type: str, text: str) -> str:
        """A new item in the conversation at the clock's now, saying `text`: a customer's
        message (CHAT_MESSAGE, SMS, EMAIL, WHATSAPP) or an agent's CONVERSATION_NOTE — e.g. a
        card number typed into a chat. Export jobs that complete later carry it. Returns its
        id. Raises ApiError 404 for an unknown conversation, ValueError for another type."""
        kind = _SAYABLE.get(content_type)
        if kind is None or not isinstance(text, str):
            raise ValueError(f"content_type must be one of {', '.join(sorted(_SAYABLE))}")
        role = t.R_AGENT if kind == t.K_NOTE else t.R_CUSTOMER
        with self.lock:
            conv = self._conversation_row(conversation_id, quirk=None)
            row = self._append_item(conv, kind, role)
            self.data.items.said[row] = text
            return self.data.item_codec.encode(row)

    def voice_transcript(self, item_id: str) -> dict[str, Any]:
        """Transcript of a recorded call or voicemail; 404 when there is none or it was redacted."""
        with self.lock:
            transcript = self.render.transcript(self._item_row(item_id))
            if transcript is None:
                raise ApiError(404, "not_exist", "transcript does not exist", quirk="empty")
            return transcript

    def recording(self, item_id: str) -> bytes:
        """The call / voicemail recording as MP3 bytes; 404 when none is available."""
        with self.lock:
            row = self._item_row(item_id)
            if not self.render.has_recording(row):
                raise ApiError(404, "not_exist", "recording does not exist", quirk="empty")
            return silent_mp3(RECORDING_SECONDS, self.data.item_codec.encode(row))

    # --- for the export service ---

    def export_items(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """Live items with start <= timestamp < end, ascending, as export lines (= GET item).

        The lock is held per batch, so API calls interleave with a long export; the cursor is a
        (timestamp, row) pair, so rows added meanwhile are neither repeated nor skipped.
        """
        start_us, end_us = to_micros(start), to_micros(end)
        items = self.data.items
        ts = items.ts
        cursor = (start_us, -1)
        while True:
            batch: list[dict[str, Any]] = []
            with self.lock:
                order = items.order
                position = bisect_left(order, cursor, key=lambda r: (ts[r], r))
                last = -1
                while position < len(order) and len(batch) < EXPORT_BATCH:
                    row = order[position]
                    if ts[row] >= end_us:
                        break
                    last = row
                    position += 1
                    if self._item_live(row):
                        batch.append(self.render.item(row))
                if last < 0:
                    return
                cursor = (ts[last], last + 1)
            yield from batch

    def export_customers(self, customer_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Flattened `customers.jsonl` lines for those ids that are live profiles."""
        with self.lock:
            result = []
            for customer_id in customer_ids:
                row = self._by_id.get(customer_id)
                if row is not None and not self.data.customers[row].deleted:
                    result.append(customer_export_json(self.data.customers[row]))
            return result

    def earliest_activity(self) -> datetime:
        """Timestamp of the oldest live item (the clock's now when there is none)."""
        with self.lock:
            for row in self.data.items.order:
                if self._item_live(row):
                    return from_micros(self.data.items.ts[row])
            return self.clock.now()

    # --- internals ---

    def _item_live(self, row: int) -> bool:
        items = self.data.items
        return (
            not items.flags[row] & t.F_DELETED and not self.data.customers[items.cust[row]].deleted
        )

    def _item_row(self, item_id: str) -> int:
        row = self.data.item_codec.decode(item_id, len(self.data.items))
        if row is None or not self._item_live(row):
            raise _item_not_found()
        return row

    def _conversation_row(self, conversation_id: str, *, quirk: Literal["empty"] | None) -> int:
        data = self.data
        conv = data.conv_codec.decode(conversation_id, len(data.convs))
        if (
            conv is None
            or data.customers[data.convs.cust[conv]].deleted
            or conv in data.convs.absorbed_into
        ):
            raise ApiError(404, "not_exist", "conversation does not exist", quirk=quirk)
        return conv

    def _append_item(self, conv: int, kind: int, role: int) -> int:
        """Add an item at the clock's now (after the conversation's last item) to `conv`."""
        data = self.data
        items, convs = data.items, data.convs
        when = to_micros(self.clock.now())
        existing = convs.item_rows(conv)
        if existing:
            # Keep the timeline ascending even if the clock lags the data; rounding down to the
            # row's fraction digits still leaves it after the previous item.
            when = max(when, items.ts[existing[-1]] + 1_000_000)
        row = len(items)
        items.append(
            quantize(when, digits_for(data.ts_key, row)), kind, role, conv, convs.cust[conv]
        )
        items.insert_order(row)
        if (
            convs.item_count[conv] == 0
            and conv not in convs.extra_items
            and conv not in convs.merged_rows
        ):
            convs.first_item[conv] = row
            convs.item_count[conv] = 1
        else:
            convs.extra_items.setdefault(conv, []).append(row)
        self._type_counts[t.CONTENT_TYPE[kind]] += 1
        return row

    def _forget_item(self, row: int) -> None:
        """Take a live item out of the counters (before it is deleted or its customer is)."""
        items = self.data.items
        if items.flags[row] & t.F_DELETED:
            return
        self._type_counts[t.CONTENT_TYPE[items.kind[row]]] -= 1
        if items.flags[row] & t.F_REDACTED:
            self._redacted -= 1


def _item_not_found() -> ApiError:
    return ApiError(404, "not_exist", "conversation item does not exist", quirk="empty")
