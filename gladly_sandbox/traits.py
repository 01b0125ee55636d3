"""What a conversation is about (theme, topics, order number), derived from its row and seed."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from gladly_sandbox.tables import mix64
from gladly_sandbox.texts import SUPPORT_CITIES, THEMES

if TYPE_CHECKING:
    from gladly_sandbox.orgdata import OrgData


class ConversationTraits(NamedTuple):
    """What a conversation is about; a pure function of the seed and the conversation row."""

    theme: int
    spanish: bool
    topics: tuple[int, ...]  # topic rows, in the order they were added
    removed_topic: int | None  # added at first, removed later (two TOPIC_CHANGE items)
    attributes: tuple[tuple[int, str], ...]  # (attribute definition, value)
    order: str
    tracking: str
    amount: str
    city: str


def conversation_traits(data: OrgData, conv: int) -> ConversationTraits:
    """The traits of conversation row `conv`."""
    h = mix64(data.conv_key ^ conv)
    h2 = mix64(h)
    enabled = data.enabled_topics
    topics: list[int] = []
    wanted = (0, 1, 1, 1, 1, 2, 2, 3)[(h >> 16) % 8] if enabled else 0
    for k in range(wanted):
        topic = enabled[(h2 >> (k * 12)) % len(enabled)]
        if topic not in topics:
            topics.append(topic)
    removed = None
    if enabled and topics and (h >> 24) % 10 == 0:
        candidate = enabled[(h2 >> 40) % len(enabled)]
        removed = None if candidate in topics else candidate
    order = f"ORD-{10000 + (h >> 36) % 90000}"
    attributes: list[tuple[int, str]] = []
    if (h >> 28) % 10 < 3:
        attributes.append((0, order))
        if (h >> 32) % 3 == 0:
            attributes.append((1, ("UPS", "FedEx", "USPS", "DHL")[(h >> 34) % 4]))
    return ConversationTraits(
        theme=h % len(THEMES),
        spanish=(h >> 8) % 17 == 0,
        topics=tuple(topics),
        removed_topic=removed,
        attributes=tuple(attributes),
        order=order,
        tracking=f"1Z999AA1{h2 % 10**8:08d}",
        amount=f"{(h >> 44) % 200 + 9}.{(h >> 52) % 100:02d}",
        city=SUPPORT_CITIES[(h >> 56) % len(SUPPORT_CITIES)],
    )


def topic_rows(data: OrgData, conv: int, traits: ConversationTraits) -> tuple[int, ...]:
    """The conversation's topics now: the generated ones, then those added through the API."""
    added = data.convs.added_topics.get(conv)
    return traits.topics + tuple(added) if added else traits.topics


def topic_change_rows(data: OrgData, row: int, traits: ConversationTraits) -> tuple[int, ...]:
    """The topics a TOPIC_CHANGE item added (runtime items name theirs; generated ones derive)."""
    runtime = data.items.added_topics.get(row)
    if runtime is not None:
        return runtime
    added = traits.topics
    return added if traits.removed_topic is None else (*added, traits.removed_topic)
