"""Compact column storage for conversations and items, with ids derived from row numbers."""

from __future__ import annotations

import base64
import hashlib
import string
from array import array
from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from gladly_sandbox.ids import FRACTION_DIGITS

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MASK64 = (1 << 64) - 1
_SCRAMBLE = 0x9E3779B1  # odd, so invertible modulo 2**32
_UNSCRAMBLE = pow(_SCRAMBLE, -1, 1 << 32)
_OFFSET = 0x6A09E667
_STEPS = (1_000_000, 100_000, 10_000, 1000, 100, 10)  # microseconds per last shown digit
_ID_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")

# Internal item kinds. Several map to one Gladly `content.type` (CHAT_MESSAGE has three).
K_CHAT_TEXT = 0
K_CHAT_QR_REQUEST = 1
K_CHAT_QR_RESPONSE = 2
K_EMAIL = 3
K_SMS = 4
K_PHONE_CALL = 5
K_VOICEMAIL = 6
K_WHATSAPP = 7
K_TWITTER = 8
K_FACEBOOK = 9
K_INSTAGRAM = 10
K_NOTE = 11
K_ACTIVITY = 12
K_TOPIC_CHANGE = 13
K_STATUS_CLOSED = 14
K_STATUS_OPEN = 15
K_VOICE_AI = 16
K_CUSTOM_TEXT = 17
K_TOPIC_REMOVED = 18

CONTENT_TYPE = (
    "CHAT_MESSAGE",
    "CHAT_MESSAGE",
    "CHAT_MESSAGE",
    "EMAIL",
    "SMS",
    "PHONE_CALL",
    "VOICEMAIL",
    "WHATSAPP",
    "TWITTER",
    "FACEBOOK_MESSAGE",
    "INSTAGRAM_DIRECT",
    "CONVERSATION_NOTE",
    "CUSTOMER_ACTIVITY",
    "TOPIC_CHANGE",
    "CONVERSATION_STATUS_CHANGE",
    "CONVERSATION_STATUS_CHANGE",
    "VOICE_AI_MESSAGE",
    # A custom channel message's `content.type` is TEXT / FILES, not a channel name (api.md §4).
    "TEXT",
    "TOPIC_CHANGE",
)

# Who started an item (the envelope's `initiator.type`).
R_CUSTOMER = 0
R_AGENT = 1
R_SYSTEM = 2
R_AUTOMATION = 3
R_API = 4
R_INTERNAL = 5
R_EXTERNAL = 6
ROLE_TYPE = ("CUSTOMER", "AGENT", "SYSTEM", "AUTOMATION", "API", "INTERNAL", "EXTERNAL")

# A conversation's channel decides what most of its items are.
CH_CHAT = 0
CH_EMAIL = 1
CH_SMS = 2
CH_PHONE = 3
CH_WHATSAPP = 4
CH_TWITTER = 5
CH_FACEBOOK = 6
CH_INSTAGRAM = 7
CH_CUSTOM = 8
CHANNEL_KIND = (
    K_CHAT_TEXT,
    K_EMAIL,
    K_SMS,
    K_PHONE_CALL,
    K_WHATSAPP,
    K_TWITTER,
    K_FACEBOOK,
    K_INSTAGRAM,
    K_CUSTOM_TEXT,
)

# Item flags.
F_REDACTED = 1
F_DELETED = 2

# Conversation statuses.
S_OPEN = 0
S_WAITING = 1
S_CLOSED = 2
STATUS_NAME = ("OPEN", "WAITING", "CLOSED")


def mix64(value: int) -> int:
    """splitmix64's finaliser: a cheap, well-spread 64-bit hash of an integer."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def derive_key(seed: int, label: str) -> int:
    """A 64-bit key for one purpose (`label`) of one seed; stable across runs and platforms."""
    digest = hashlib.blake2b(f"{seed}:{label}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def digits_for(key: int, row: int) -> int:
    """How many fraction digits row `row` shows in its timestamps (fixed per row)."""
    return FRACTION_DIGITS[(((row ^ key) * 0x9E3779B1) >> 13) % len(FRACTION_DIGITS)]


def quantize(micros: int, digits: int) -> int:
    """Cut `micros` to what `digits` fraction digits can show, so the rendered text is exact."""
    if digits >= 6:
        return micros
    step = _STEPS[max(0, digits)]
    return micros - micros % step


def to_micros(when: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    delta = when - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime of `micros` since the epoch."""
    return EPOCH + timedelta(microseconds=micros)


def render_time(micros: int, digits: int) -> str:
    """RFC 3339 text of `micros` with `digits` fraction digits (= ids.format_timestamp, faster)."""
    days, rest = divmod(micros, 86_400_000_000)
    seconds, micro = divmod(rest, 1_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    head = f"{_day_text(days)}T{hours:02d}:{minutes:02d}:{seconds:02d}"
    if digits <= 0:
        return head + "Z"
    fraction = f"{micro:06d}"
    fraction = fraction[:digits] if digits <= 6 else fraction + "7" * (digits - 6)
    return f"{head}.{fraction}Z"


@lru_cache(maxsize=8192)
def _day_text(days: int) -> str:
    return (EPOCH + timedelta(days=days)).strftime("%Y-%m-%d")


class IdCodec:
    """Gladly-looking 22-character ids that encode a row number, so no id string is stored.

    The first 12 bytes are a keyed hash of the row, the last 4 the row (scrambled) masked by
    that hash; a decoded row is accepted only if re-encoding gives the same text.
    """

    def __init__(self, seed: int, label: str) -> None:
        key = hashlib.blake2b(f"{seed}:{label}".encode(), digest_size=32).digest()
        self._hasher = hashlib.blake2b(key=key, digest_size=12)

    def encode(self, row: int) -> str:
        """The id of row `row`."""
        hasher = self._hasher.copy()
        hasher.update(row.to_bytes(5, "big"))
        head = hasher.digest()
        # Scramble the row before masking it, or small rows would echo the head's first bytes.
        tail = ((row * _SCRAMBLE + _OFFSET) & 0xFFFF_FFFF) ^ int.from_bytes(head[:4], "big")
        return base64.urlsafe_b64encode(head + tail.to_bytes(4, "big"))[:22].decode()

    def decode(self, text: str, rows: int) -> int | None:
        """The row that `text` names, or None when it names no row below `rows`."""
        if len(text) != 22 or not _ID_ALPHABET.issuperset(text):
            return None
        raw = base64.urlsafe_b64decode(text + "==")
        scrambled = int.from_bytes(raw[12:], "big") ^ int.from_bytes(raw[:4], "big")
        row = ((scrambled - _OFFSET) * _UNSCRAMBLE) & 0xFFFF_FFFF
        if row >= rows or self.encode(row) != text:
            return None
        return row


class ItemTable:
    """Every item as a few bytes of columns; content is rendered on demand from the row."""

    def __init__(self) -> None:
        self.ts = array("q")  # microseconds since the epoch, already cut to the row's digits
        self.kind = bytearray()
        self.role = bytearray()
        self.conv = array("i")  # conversation row, -1 for items outside a conversation
        self.cust = array("i")  # customer row
        self.flags = bytearray()
        self.order = array("i")  # rows sorted by (ts, row), for windowed export
        # Items a customer merge moved to another customer: row → the customer who wrote them
        # (their content stays as written; `cust` names the owner now).
        self.author: dict[int, int] = {}
        # TOPIC_CHANGE items added at runtime (POST /conversations/{id}/topics): row → the topic
        # rows they added (generated ones derive theirs from the conversation's traits).
        self.added_topics: dict[int, tuple[int, ...]] = {}
        # Words a test put in a person's mouth: row → the item's text instead of generated text.
        self.said: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.ts)

    def append(self, ts: int, kind: int, role: int, conv: int, cust: int) -> int:
        """Add one row (not yet in `order`); returns its row number."""
        self.ts.append(ts)
        self.kind.append(kind)
        self.role.append(role)
        self.conv.append(conv)
        self.cust.append(cust)
        self.flags.append(0)
        return len(self.ts) - 1

    def extend(self, ts: list[int], kinds: bytes, roles: bytes, conv: int, cust: int) -> None:
        """Add a run of rows of one conversation and customer (bulk generation)."""
        count = len(ts)
        self.ts.extend(ts)
        self.kind.extend(kinds)
        self.role.extend(roles)
        self.conv.extend([conv] * count)
        self.cust.extend([cust] * count)
        self.flags.extend(bytes(count))

    def build_order(self) -> None:
        """Sort every row by time once, after bulk generation."""
        ts = self.ts
        self.order = array("i", sorted(range(len(ts)), key=ts.__getitem__))

    def insert_order(self, row: int) -> None:
        """Put a row added after `build_order` into time order (rare: runtime appends)."""
        ts = self.ts
        position = bisect_right(self.order, (ts[row], row), key=lambda r: (ts[r], r))
        self.order.insert(position, row)


class ConversationTable:
    """Every conversation as columns; its generated items are one contiguous block of rows."""

    def __init__(self) -> None:
        self.cust = array("i")
        self.inbox = array("h")
        self.agent = array("h")  # -1 = unassigned
        self.status = bytearray()
        self.channel = bytearray()
        self.created = array("q")
        self.closed = array("q")  # 0 = not closed
        self.first_item = array("i")
        self.item_count = array("i")
        self.extra_items: dict[int, list[int]] = {}  # items appended at runtime
        # Customer merges: an open conversation absorbed into another open one (source → holder),
        # and the holder's rows in time order at the merge (its later items go to extra_items).
        self.absorbed_into: dict[int, int] = {}
        self.merged_rows: dict[int, list[int]] = {}
        # Topics added at runtime, in the order added, after the generated ones (traits).
        self.added_topics: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return len(self.cust)

    def append(
        self, cust: int, inbox: int, agent: int, status: int, channel: int, created: int
    ) -> int:
        """Add one conversation with no items yet; returns its row number."""
        self.cust.append(cust)
        self.inbox.append(inbox)
        self.agent.append(agent)
        self.status.append(status)
        self.channel.append(channel)
        self.created.append(created)
        self.closed.append(0)
        self.first_item.append(0)
        self.item_count.append(0)
        return len(self.cust) - 1

    def item_rows(self, conv: int) -> list[int]:
        """Rows of the conversation's items in time order."""
        merged = self.merged_rows.get(conv)
        if merged is not None:
            rows = list(merged)
        else:
            first = self.first_item[conv]
            rows = list(range(first, first + self.item_count[conv]))
        rows.extend(self.extra_items.get(conv, ()))
        return rows

    def holder(self, conv: int) -> int:
        """The conversation that now holds `conv`'s items (itself unless a merge absorbed it)."""
        absorbed = self.absorbed_into
        while conv in absorbed:
            conv = absorbed[conv]
        return conv

    def absorb(self, source: int, holder: int, ts: array[int]) -> None:
        """Move every item of `source` into `holder` (a customer merge of two open ones)."""
        rows = self.item_rows(holder) + self.item_rows(source)
        rows.sort(key=lambda r: (ts[r], r))
        self.merged_rows[holder] = rows
        self.extra_items.pop(holder, None)
        self.merged_rows.pop(source, None)
        self.extra_items.pop(source, None)
        self.absorbed_into[source] = holder
