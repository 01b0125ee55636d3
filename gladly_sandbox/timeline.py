"""Each customer's history: conversations dated across the years, each filled with its items."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import NamedTuple

from gladly_sandbox import tables as t
from gladly_sandbox.ids import make_id
from gladly_sandbox.orgdata import OrgData
from gladly_sandbox.people import PeopleFactory
from gladly_sandbox.profiles import Customer
from gladly_sandbox.tables import digits_for, from_micros, quantize, to_micros
from gladly_sandbox.texts import THEMES
from gladly_sandbox.traits import ConversationTraits, conversation_traits

SECOND = 1_000_000
DAY = 86_400 * SECOND
# Gladly's Twitter channel was closed on this day; no tweet is dated later (api.md §4).
TWITTER_CLOSED = datetime(2023, 4, 20, tzinfo=UTC)

# Channel mix of conversations (weights) and, per channel, items per conversation (low, mode,
# high) and the typical gap between two messages in seconds.
CHANNEL_WEIGHTS = (
    (t.CH_CHAT, 30),
    (t.CH_EMAIL, 25),
    (t.CH_SMS, 11),
    (t.CH_PHONE, 14),
    (t.CH_WHATSAPP, 6),
    (t.CH_FACEBOOK, 8),  # "social": becomes TWITTER / FACEBOOK / INSTAGRAM once dated
    (t.CH_CUSTOM, 6),
)
_PHONE_CHANNELS = frozenset({t.CH_SMS, t.CH_PHONE, t.CH_WHATSAPP})
CHANNEL_SHAPE = {
    t.CH_CHAT: (3, 7, 16, 45),
    t.CH_EMAIL: (2, 3, 7, 4 * 3600),
    t.CH_SMS: (2, 4, 9, 900),
    t.CH_PHONE: (2, 3, 4, 600),
    t.CH_WHATSAPP: (2, 4, 8, 1200),
    t.CH_TWITTER: (2, 3, 6, 3600),
    t.CH_FACEBOOK: (2, 3, 6, 3600),
    t.CH_INSTAGRAM: (2, 3, 6, 3600),
    t.CH_CUSTOM: (2, 4, 7, 120),
}
# The most recent conversation of an "open" customer started at most this long ago.
OPEN_WITHIN = 3 * DAY


class _Plan(NamedTuple):
    channel: int
    length: int


class TimelineBuilder:
    """Fills an OrgData customer by customer; one RNG, so the result depends only on the spec."""

    def __init__(self, data: OrgData, rng: random.Random) -> None:
        self.data = data
        self.spec = data.spec
        self.rng = rng
        self.people = PeopleFactory(rng)
        self.newer = self.spec.newer_spec_fields
        self.twitter_until = to_micros(TWITTER_CLOSED)
        self.inbox_by_name = {inbox.name: n for n, inbox in enumerate(data.inboxes)}
        total = 0
        self.channel_cumulative: list[tuple[int, int]] = []
        for channel, weight in CHANNEL_WEIGHTS:
            total += weight
            self.channel_cumulative.append((total, channel))
        # Customer numbers in emails walk a permutation, so they look random yet never repeat.
        self.email_modulus = 10 ** max(4, len(str(self.spec.customers * 10)))
        self.waiting_rows: set[int] = set()

    def run(self) -> None:
        spec, rng = self.spec, self.rng
        n = spec.customers
        open_rows = sorted(rng.sample(range(n), min(n, round(n * spec.open_share))))
        # An exact split (not a coin per customer), so small orgs have both OPEN and WAITING.
        waiting = round(len(open_rows) * spec.waiting_share)
        if len(open_rows) >= 2 and 0 < spec.waiting_share < 1:
            waiting = min(max(1, waiting), len(open_rows) - 1)
        self.waiting_rows = set(rng.sample(open_rows, waiting))
        huge = set(rng.sample(range(n), min(n, spec.huge_conversations)))
        busy = set(rng.sample(range(n), min(n, spec.busy_customers)))
        merged_count = min(n, round(n * spec.merged_customers))
        if spec.merged_customers > 0 and n:
            merged_count = max(1, merged_count)
        merged = rng.sample(range(n), merged_count)
        open_set = set(open_rows)
        for row in range(n):
            self._customer(row, row in open_set, row in huge, row in busy)
        id_rng = random.Random(spec.seed ^ 0x5EED)
        for row in sorted(merged):
            self.data.merged[make_id(id_rng)] = row
        self.data.items.build_order()

    def _customer(self, row: int, is_open: bool, huge: bool, busy: bool) -> None:
        data, rng, spec = self.data, self.rng, self.spec
        first, last = self.people.name()
        number = (row * 7_654_321 + 1_234_567) % self.email_modulus
        emails = self.people.emails(first, last, number)
        phones = self.people.phones()
        external_id, external_ids = self.people.external()
        customer = Customer(
            id=make_id(rng),
            name=f"{first} {last}",
            address=self.people.address(),
            emails=emails,
            phones=phones,
            attrs={},
            created=0,
            updated=0,
            image=self.people.image(first),
            external_id=external_id,
            external_ids=external_ids,
            contact_email=emails[0].normalized,
            contact_phone=next((p.normalized for p in phones if p.type == "MOBILE"), ""),
        )
        if not customer.contact_phone and phones:
            customer.contact_phone = phones[0].normalized
        data.customers.append(customer)

        budget = (
            round(rng.expovariate(1.0 / spec.items_per_customer))
            if spec.items_per_customer > 0
            else 0
        )
        if is_open and spec.items_per_customer > 0:
            budget = max(budget, 2)  # room for the open conversation
        activities = int(budget * spec.activity_share + rng.random()) if budget > 2 else 0
        plans = self._plans(budget - activities, bool(customer.contact_phone))
        if busy:
            plans.extend(
                _Plan(t.CH_EMAIL if rng.random() < 0.5 else t.CH_CHAT, 2 + rng.randrange(2))
                for _ in range(101 + rng.randrange(30))
            )
        if huge:
            plans.append(_Plan(t.CH_CHAT, 1001 + rng.randrange(300)))
        rng.shuffle(plans)

        arrival = data.start_us + int(rng.random() * 0.9 * (data.now_us - data.start_us))
        first_seen = self._conversations(row, customer, plans, arrival, is_open)
        for _ in range(activities):
            when = arrival + int(rng.random() * (data.now_us - 60 * SECOND - arrival))
            item = len(data.items)
            data.items.append(
                quantize(when, digits_for(data.ts_key, item)), t.K_ACTIVITY, t.R_API, -1, row
            )
            customer.activities.append(item)
            first_seen = min(first_seen, when)
        created = max(data.start_us, first_seen - int(rng.random() * 3 * DAY))
        customer.created = created
        customer.updated = created + int(rng.random() * (data.now_us - created))
        customer.attrs = self.people.attributes(from_micros(created).year)

    def _plans(self, budget: int, has_phone: bool) -> list[_Plan]:
        rng = self.rng
        plans = []
        while budget > 0:
            roll = rng.random() * self.channel_cumulative[-1][0]
            channel = next(ch for top, ch in self.channel_cumulative if roll < top)
            if channel in _PHONE_CHANNELS and not has_phone:
                channel = t.CH_CHAT if rng.random() < 0.55 else t.CH_EMAIL  # no phone to use
            low, mode, high, _ = CHANNEL_SHAPE[channel]
            length = max(2, min(budget, round(rng.triangular(low, high, mode))))
            plans.append(_Plan(channel, length))
            budget -= length
        return plans

    def _conversations(
        self, row: int, customer: Customer, plans: list[_Plan], arrival: int, is_open: bool
    ) -> int:
        """Date and fill the customer's conversations; returns the earliest timestamp."""
        data, rng = self.data, self.rng
        horizon = data.now_us - OPEN_WITHIN if is_open else data.now_us - 3600 * SECOND
        horizon = max(horizon, arrival + SECOND)
        closed_plans = plans[:-1] if is_open and plans else plans
        starts = sorted(arrival + int(rng.random() * (horizon - arrival)) for _ in closed_plans)
        earliest = data.now_us
        previous_end = 0
        for plan, start in zip(closed_plans, starts, strict=True):
            start = max(start, previous_end + 60 * SECOND)
            previous_end = self._conversation(row, customer, plan, start, t.S_CLOSED)
            earliest = min(earliest, start)
        if is_open and plans:
            start = data.now_us - int((0.01 + rng.random() * 0.98) * OPEN_WITHIN)
            start = max(start, previous_end + 60 * SECOND)
            status = t.S_WAITING if row in self.waiting_rows else t.S_OPEN
            self._conversation(row, customer, plans[-1], start, status)
            earliest = min(earliest, start)
        return earliest

    def _conversation(
        self, row: int, customer: Customer, plan: _Plan, start: int, status: int
    ) -> int:
        """Write one conversation and its items; returns the last item's timestamp."""
        data, rng = self.data, self.rng
        convs, items = data.convs, data.items
        channel, length = plan
        closed = status == t.S_CLOSED
        gap = CHANNEL_SHAPE[channel][3]
        # Keep the whole conversation before `now` even at one second per item.
        latest_start = data.now_us - (length * 2 + 120) * SECOND
        start = max(min(start, latest_start), data.start_us)
        if channel == t.CH_FACEBOOK:
            channel = self._social(start, length * gap * SECOND * 3)
        conv = convs.append(row, 0, -1, status, channel, 0)
        traits = conversation_traits(data, conv)
        convs.inbox[conv] = self._inbox_for(traits)
        if rng.random() < 0.92 and data.agents:
            convs.agent[conv] = int(rng.random() * len(data.agents))
        kinds = self._sequence(channel, length, status, traits)
        steps = [_step(kind, gap, rng) for kind, _ in kinds[1:]]
        # Squeeze the conversation in before `now` (leaving a second per item after rounding).
        room = data.now_us - 60 * SECOND - start - len(kinds) * SECOND
        total = sum(steps)
        if total > room:
            factor = max(0.0, room / total)
            steps = [int(step * factor) for step in steps]
        first = len(items)
        ts_key = data.ts_key
        when = start
        stamps = [quantize(when, digits_for(ts_key, first))]
        for n, step in enumerate(steps, start=first + 1):
            when += max(SECOND, step)
            stamps.append(quantize(when, digits_for(ts_key, n)))
        items.extend(stamps, bytes(k for k, _ in kinds), bytes(r for _, r in kinds), conv, row)
        convs.first_item[conv] = first
        convs.item_count[conv] = len(kinds)
        convs.created[conv] = items.ts[first]
        if closed:
            convs.closed[conv] = items.ts[len(items) - 1]
        customer.conversations.append(conv)
        return when

    def _social(self, start: int, duration: int) -> int:
        if start + duration < self.twitter_until and self.rng.random() < 0.6:
            return t.CH_TWITTER
        return t.CH_FACEBOOK if self.rng.random() < 0.55 else t.CH_INSTAGRAM

    def _inbox_for(self, traits: ConversationTraits) -> int:
        if traits.spanish and "Spanish" in self.inbox_by_name:
            return self.inbox_by_name["Spanish"]
        if self.rng.random() < 0.75:
            return self.inbox_by_name.get(THEMES[traits.theme].inbox, 0)
        return self.rng.randrange(len(self.data.inboxes))

    def _sequence(
        self, channel: int, length: int, status: int, traits: ConversationTraits
    ) -> list[tuple[int, int]]:
        """The (kind, role) of each item of a conversation, in order."""
        rng, newer = self.rng, self.newer
        main = t.CHANNEL_KIND[channel]
        closed = status == t.S_CLOSED
        messages = length - (1 if closed else 0)
        result: list[tuple[int, int]] = []
        if channel == t.CH_PHONE and newer and messages >= 2 and rng.random() < 0.35:
            result.append((t.K_VOICE_AI, t.R_SYSTEM))
        if channel == t.CH_PHONE and rng.random() < 0.12:
            result.append((t.K_VOICEMAIL, t.R_CUSTOMER))
        result.append((main, t.R_CUSTOMER if rng.random() < 0.9 else t.R_AGENT))
        if traits.topics and messages >= 4:
            result.append((t.K_TOPIC_CHANGE, t.R_AGENT))
        bot = t.R_SYSTEM if newer else t.R_AUTOMATION
        while len(result) < messages:
            previous_role = result[-1][1]
            room = messages - len(result)
            roll = rng.random()
            if channel == t.CH_CHAT and room >= 3 and roll < 0.08:
                result.append((t.K_CHAT_QR_REQUEST, bot))
                result.append((t.K_CHAT_QR_RESPONSE, t.R_CUSTOMER))
            elif room >= 2 and roll < 0.13:
                result.append((t.K_NOTE, t.R_AGENT))
            elif channel != t.CH_EMAIL and roll < 0.16:
                result.append((t.K_EMAIL, t.R_AGENT))  # a follow-up on another channel
            else:
                role = t.R_AGENT if previous_role == t.R_CUSTOMER else t.R_CUSTOMER
                if main == t.K_EMAIL and role == t.R_AGENT and roll > 0.97:
                    role = t.R_INTERNAL if roll > 0.985 else t.R_EXTERNAL
                result.append((main, role))
        if traits.removed_topic is not None and (t.K_TOPIC_CHANGE, t.R_AGENT) in result[:4]:
            # The first topic change also added this topic (content.py renders it that way).
            result.insert(len(result) - 1, (t.K_TOPIC_REMOVED, t.R_AGENT))
        if status == t.S_WAITING:
            result[-1] = (main, t.R_CUSTOMER)  # waiting: the customer spoke last
        if closed:
            result.append((t.K_STATUS_CLOSED, t.R_AGENT if rng.random() < 0.85 else t.R_AUTOMATION))
        return result


_QUICK_KINDS = frozenset({t.K_NOTE, t.K_TOPIC_CHANGE, t.K_TOPIC_REMOVED})


def _step(kind: int, gap: int, rng: random.Random) -> int:
    """Microseconds between the previous item and one of `kind` in a channel with `gap`."""
    if kind in _QUICK_KINDS:
        seconds = 5 + 55 * rng.random()
    elif kind == t.K_CHAT_QR_RESPONSE or kind == t.K_VOICE_AI:
        seconds = 3 + 17 * rng.random()
    elif kind == t.K_STATUS_CLOSED:
        seconds = gap * (0.5 + 2.5 * rng.random())
    else:
        seconds = gap * (0.2 + 1.6 * rng.random())
    return int(seconds * SECOND)
