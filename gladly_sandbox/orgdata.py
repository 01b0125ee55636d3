"""The organisation's spec and its generated data: directory, customers and row tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from gladly_sandbox.profiles import Customer
from gladly_sandbox.tables import ConversationTable, IdCodec, ItemTable


@dataclass(frozen=True)
class OrgSpec:
    """What to generate. Same spec (seed, sizes, `now`) → byte-identical data."""

    seed: int = 42
    customers: int = 2000
    items_per_customer: float = 10.0  # average; item count scales linearly
    agents: int = 25
    inboxes: int = 6
    topics: int = 24
    years: float = 3.0  # activity spread over this many years before `now`
    merged_customers: float = 0.005  # share of customers that also have an old, merged-away id
    newer_spec_fields: bool = True  # envelope sessionId, attachments, VOICE_AI_MESSAGE, SYSTEM
    now: datetime | None = None  # the data's "now"; default: the clock's day at 00:00 UTC
    # --- extra knobs ---
    huge_conversations: int = 0  # conversations with more than 1000 items (list truncation)
    busy_customers: int = 0  # customers with more than 100 conversations (list truncation)
    open_share: float = 0.05  # share of customers whose latest conversation is OPEN or WAITING
    waiting_share: float = 0.4  # of those, the share that is WAITING (customer awaits a reply)
    activity_share: float = 0.06  # share of items that are CUSTOMER_ACTIVITY (no conversation)


class Agent(NamedTuple):
    """An agent (`GET /agents`)."""

    id: str
    name: str
    email: str


class Inbox(NamedTuple):
    """An inbox, with the address and number its conversations use."""

    id: str
    name: str
    address: str
    number: str  # E.164


class Topic(NamedTuple):
    """A topic; `parent` is a topic row or None."""

    id: str
    name: str
    disabled: bool
    parent: int | None


@dataclass
class OrgData:
    """Everything generated for one organisation; the store owns and mutates it afterwards."""

    spec: OrgSpec
    now_us: int
    start_us: int
    item_codec: IdCodec
    conv_codec: IdCodec
    session_codec: IdCodec
    attachment_codec: IdCodec
    ts_key: int
    item_key: int
    conv_key: int
    agents: list[Agent]
    inboxes: list[Inbox]
    topics: list[Topic]
    enabled_topics: list[int]
    attribute_ids: tuple[str, str]  # conversation custom attribute definitions
    automation_id: str
    integration_id: str
    custom_channel_id: str
    facebook_page_id: str
    customers: list[Customer] = field(default_factory=list)
    merged: dict[str, int] = field(default_factory=dict)  # old id → surviving customer row
    convs: ConversationTable = field(default_factory=ConversationTable)
    items: ItemTable = field(default_factory=ItemTable)
