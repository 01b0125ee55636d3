"""The generated organisation as data: directory entries, customers and the row tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from gladly_sandbox.profiles import Customer
from gladly_sandbox.tables import ConversationTable, IdCodec, ItemTable

if TYPE_CHECKING:
    from gladly_sandbox.generate import OrgSpec


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
