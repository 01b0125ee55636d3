"""A seeded synthetic Gladly organisation: the directory and the entry point."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from gladly_sandbox.ids import make_id
from gladly_sandbox.orgdata import Agent, Inbox, OrgData, OrgSpec, Topic
from gladly_sandbox.tables import IdCodec, derive_key, to_micros
from gladly_sandbox.texts import AGENT_FIRST, AGENT_LAST, INBOX_NAMES, TOPIC_NAMES
from gladly_sandbox.timeline import DAY, TimelineBuilder

__all__ = ["data_now", "generate"]


def data_now(spec: OrgSpec, clock_now: datetime) -> datetime:
    """The data's "now": `spec.now`, else the clock's day at midnight UTC."""
    if spec.now is not None:
        return spec.now if spec.now.tzinfo else spec.now.replace(tzinfo=UTC)
    day = clock_now.astimezone(UTC)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def generate(spec: OrgSpec, now: datetime) -> OrgData:
    """Build the organisation `spec` describes as of `now`."""
    rng = random.Random(spec.seed)
    now_us = to_micros(now)
    data = OrgData(
        spec=spec,
        now_us=now_us,
        start_us=now_us - int(spec.years * 365.25 * DAY),
        item_codec=IdCodec(spec.seed, "item"),
        conv_codec=IdCodec(spec.seed, "conversation"),
        session_codec=IdCodec(spec.seed, "session"),
        attachment_codec=IdCodec(spec.seed, "attachment"),
        ts_key=derive_key(spec.seed, "digits"),
        item_key=derive_key(spec.seed, "item"),
        conv_key=derive_key(spec.seed, "conversation"),
        agents=_agents(rng, spec.agents),
        inboxes=_inboxes(rng, spec.inboxes),
        topics=_topics(rng, spec.topics),
        enabled_topics=[],
        attribute_ids=(make_id(rng), make_id(rng)),
        automation_id=make_id(rng),
        integration_id=make_id(rng),
        custom_channel_id=make_id(rng),
        facebook_page_id=str(rng.randrange(10**14, 10**15)),
    )
    data.enabled_topics = [n for n, topic in enumerate(data.topics) if not topic.disabled]
    TimelineBuilder(data, rng).run()
    return data


def _agents(rng: random.Random, count: int) -> list[Agent]:
    result = []
    for n in range(count):
        first = AGENT_FIRST[n % len(AGENT_FIRST)]
        last = AGENT_LAST[(n // len(AGENT_FIRST) + n) % len(AGENT_LAST)]
        suffix = "" if n < len(AGENT_FIRST) * len(AGENT_LAST) else str(n)
        email = f"{first.lower()}.{last.lower()}{suffix}@shop.example.com"
        result.append(Agent(make_id(rng), f"{first} {last}", email))
    return result


def _inboxes(rng: random.Random, count: int) -> list[Inbox]:
    result = []
    for n in range(max(1, count)):
        name = INBOX_NAMES[n] if n < len(INBOX_NAMES) else f"Inbox {n + 1}"
        local = name.lower().replace(" ", "")
        result.append(Inbox(make_id(rng), name, f"{local}@shop.example.com", f"+1800555{n:04d}"))
    return result


def _topics(rng: random.Random, count: int) -> list[Topic]:
    result = []
    for n in range(count):
        if n < len(TOPIC_NAMES):
            name, parent, disabled = TOPIC_NAMES[n]
        else:
            name, parent, disabled = f"Topic {n + 1}", None, False
        result.append(Topic(make_id(rng), name, disabled, parent))
    return result
