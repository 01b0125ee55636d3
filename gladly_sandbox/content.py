"""Item and conversation JSON, rendered on demand from a table row and its hash."""

from __future__ import annotations

import html
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from gladly_sandbox import tables as t
from gladly_sandbox.ids import FRACTION_DIGITS
from gladly_sandbox.tables import digits_for, mix64, render_time
from gladly_sandbox.texts import (
    ACTIVITIES,
    AGENT_GENERIC,
    ATTACHMENTS,
    BOT_LINES,
    CUSTOMER_GENERIC,
    NOTES,
    SOCIAL_SHORT,
    SPANISH_AGENT,
    SPANISH_CUSTOMER,
    THEMES,
    TWEETS,
    VOICE_AI_LINES,
)
from gladly_sandbox.traits import (
    ConversationTraits,
    conversation_traits,
    topic_change_rows,
    topic_rows,
)
from gladly_sandbox.voice import VoiceContent

if TYPE_CHECKING:
    from gladly_sandbox.orgdata import OrgData
    from gladly_sandbox.profiles import Customer

SECOND = 1_000_000
REDACTABLE = frozenset(
    {"CHAT_MESSAGE", "EMAIL", "SMS", "PHONE_CALL", "VOICEMAIL", "WHATSAPP", "TWITTER"}
)
# ASSUMPTION (undocumented): a redacted item keeps an `attachments` key as an empty list, as in
# our fixtures; False drops the key instead.
REDACTED_ATTACHMENTS_AS_EMPTY_LIST = True
# ASSUMPTION (undocumented): redaction also drops quick-reply `messageData` (its labels are text).
REDACT_MESSAGE_DATA = True
_TEXT_FIELDS = ("content", "body", "subject")


class Renderer(VoiceContent):
    """Turns rows into Gladly's JSON. GET item, list items and export lines all come from here."""

    def __init__(self, data: OrgData) -> None:
        self.data = data
        self.newer = data.spec.newer_spec_fields
        self.traits = lru_cache(maxsize=4096)(self._traits)
        # Items of one conversation repeat its id and session ids; encoding is the costly part.
        self.conversation_id = lru_cache(maxsize=65536)(data.conv_codec.encode)
        self._session = lru_cache(maxsize=65536)(data.session_codec.encode)

    def _traits(self, conv: int) -> ConversationTraits:
        return conversation_traits(self.data, conv)

    # --- conversations ---

    def conversation(self, conv: int) -> dict[str, Any]:
        """The conversation object (`GET /conversations/{id}`)."""
        data = self.data
        convs = data.convs
        h = mix64(data.conv_key ^ conv)
        out: dict[str, Any] = {
            "id": self.conversation_id(conv),
            "customerId": data.customers[convs.cust[conv]].id,
        }
        if convs.agent[conv] >= 0:
            out["agentId"] = data.agents[convs.agent[conv]].id
        out["inboxId"] = data.inboxes[convs.inbox[conv]].id
        out["status"] = t.STATUS_NAME[convs.status[conv]]
        digits = FRACTION_DIGITS[(h >> 20) % len(FRACTION_DIGITS)]
        out["createdAt"] = render_exact(convs.created[conv], digits)
        if convs.status[conv] == t.S_CLOSED and convs.closed[conv]:
            out["closedAt"] = render_exact(convs.closed[conv], digits)
        traits = self.traits(conv)
        out["topicIds"] = [data.topics[topic].id for topic in topic_rows(data, conv, traits)]
        out["customAttributes"] = [
            {"id": data.attribute_ids[which], "value": value} for which, value in traits.attributes
        ]
        return out

    # --- items ---

    def session_id(self, row: int) -> str | None:
        """The session an item belongs to (chat, voice AI, custom channel), or None."""
        items = self.data.items
        kind = items.kind[row]
        conv = items.conv[row]
        if conv < 0:
            return None
        if kind in (t.K_CHAT_TEXT, t.K_CHAT_QR_REQUEST, t.K_CHAT_QR_RESPONSE):
            convs = self.data.convs
            first, count = convs.first_item[conv], convs.item_count[conv]
            second = count >= 12 and first <= row < first + count and row - first >= count // 2
            return self._session(conv * 4 + (1 if second else 0))
        if kind == t.K_VOICE_AI:
            return self._session(conv * 4 + 2)
        if kind == t.K_CUSTOM_TEXT:
            return self._session(conv * 4 + 3)
        return None

    def item(self, row: int) -> dict[str, Any]:
        """The item envelope with its content, as GET item and export lines show it."""
        data = self.data
        items = data.items
        kind, role, conv = items.kind[row], items.role[row], items.conv[row]
        owner = data.customers[items.cust[row]]
        # After a customer merge the item belongs to the survivor (ids in the envelope) but its
        # content stays as its author wrote it.
        author = items.author.get(row) if items.author else None
        customer = owner if author is None else data.customers[author]
        h = mix64(data.item_key ^ row)
        out: dict[str, Any] = {"id": data.item_codec.encode(row)}
        if conv >= 0:
            # A customer merge may have moved the item into another conversation; its content
            # stays as written (rendered from the conversation it was written in).
            holder = data.convs.holder(conv) if data.convs.absorbed_into else conv
            out["conversationId"] = self.conversation_id(holder)
        out["customerId"] = owner.id
        out["timestamp"] = render_time(items.ts[row], digits_for(data.ts_key, row))
        out["initiator"] = {"id": self._actor(role, owner, conv, h), "type": t.ROLE_TYPE[role]}
        content = self._content(row, kind, role, conv, customer, h)
        if kind == t.K_PHONE_CALL and "answeredAt" in content:
            # Whoever picked up: an agent for inbound calls, the customer for outbound ones.
            if role == t.R_CUSTOMER:
                out["responder"] = {"id": self._agent(conv, h >> 7), "type": "AGENT"}
            else:
                out["responder"] = {"id": owner.id, "type": "CUSTOMER"}
        session = self.session_id(row)
        if session is not None and self.newer and kind != t.K_CUSTOM_TEXT:
            out["sessionId"] = session
        said = items.said.get(row) if items.said else None
        if said is not None:
            content = with_text(content, said)
        if items.flags[row] & t.F_REDACTED:
            content = redact_content(content)
        out["content"] = content
        return out

    def _actor(self, role: int, customer: Customer, conv: int, h: int) -> str:
        data = self.data
        if role == t.R_CUSTOMER:
            return customer.id
        if role == t.R_AGENT:
            return self._agent(conv, h)
        if role == t.R_SYSTEM:
            return "SIDEKICK_V2"
        if role == t.R_AUTOMATION:
            return data.automation_id
        if role == t.R_API:
            return data.integration_id
        return data.attachment_codec.encode(0xFFFF_0000 + role)  # an outside email sender

    def _agent(self, conv: int, h: int) -> str:
        agents = self.data.agents
        if conv >= 0 and self.data.convs.agent[conv] >= 0:
            return agents[self.data.convs.agent[conv]].id
        return agents[h % len(agents)].id if agents else self.data.automation_id

    def _words(self, conv: int, customer: Customer) -> dict[str, str]:
        traits = self.traits(conv) if conv >= 0 else conversation_traits(self.data, 0)
        first = customer.name.split()[0] if customer.name.strip() else "there"
        return {
            "order": traits.order,
            "tracking": traits.tracking,
            "amount": traits.amount,
            "city": traits.city,
            "first": first,
            "score": str(traits.order[-1]),
        }

    def _line(self, conv: int, role: int, customer: Customer, h: int, stage: int) -> str:
        """One message line; `stage` 0 opens the conversation, 2 winds it down, 1 is between."""
        traits = self.traits(conv) if conv >= 0 else None
        words = self._words(conv, customer)
        pool: tuple[str, ...]
        if traits is not None and traits.spanish:
            pool = SPANISH_CUSTOMER if role == t.R_CUSTOMER else SPANISH_AGENT
        else:
            theme = THEMES[traits.theme if traits else 0]
            if role == t.R_CUSTOMER:
                pool = theme.opening if stage == 0 else theme.follow_up + CUSTOMER_GENERIC
            elif stage == 2:
                pool = AGENT_GENERIC[2:]
            else:
                pool = theme.agent + AGENT_GENERIC[:2]
        return pool[(h >> 11) % len(pool)].format(**words)

    def _stage(self, row: int, conv: int) -> int:
        """0 for a conversation's first message, 2 for its last two items, else 1."""
        if conv < 0:
            return 1
        convs, kinds = self.data.convs, self.data.items.kind
        first, count = convs.first_item[conv], convs.item_count[conv]
        if not first <= row < first + count:
            return 1
        if all(kinds[r] == t.K_VOICE_AI for r in range(first, row)):
            return 0
        return 2 if row >= first + count - 2 else 1

    def _content(
        self, row: int, kind: int, role: int, conv: int, customer: Customer, h: int
    ) -> dict[str, Any]:
        data = self.data
        inbox = data.inboxes[data.convs.inbox[conv]] if conv >= 0 else data.inboxes[0]
        inbound = role == t.R_CUSTOMER
        stage = self._stage(row, conv)
        if kind == t.K_CHAT_TEXT:
            content: dict[str, Any] = {"type": "CHAT_MESSAGE", "messageType": "TEXT"}
            content["sessionId"] = self.session_id(row)
            content["content"] = self._line(conv, role, customer, h, stage)
            self._attachments(content, row, h, inbound)
            return content
        if kind == t.K_CHAT_QR_REQUEST:
            options = self._options(conv)
            return {
                "type": "CHAT_MESSAGE",
                "messageType": "QUICK_REPLY_REQUEST",
                "sessionId": self.session_id(row),
                "content": BOT_LINES[(h >> 11) % len(BOT_LINES)],
                "messageData": {"options": options},
            }
        if kind == t.K_CHAT_QR_RESPONSE:
            options = self._options(conv)
            chosen = options[(h >> 11) % len(options)]
            return {
                "type": "CHAT_MESSAGE",
                "messageType": "QUICK_REPLY_RESPONSE",
                "sessionId": self.session_id(row),
                "content": chosen["label"],
                "messageData": {
                    "quickReplyRequest": {"options": options},
                    "selectedOptionId": chosen["id"],
                    # Generation always puts the request right before its response.
                    "requestMessageId": data.item_codec.encode(row - 1),
                },
            }
        if kind == t.K_EMAIL:
            return self._email(row, role, conv, customer, inbox.address, h, stage)
        if kind == t.K_SMS:
            ends = (customer.contact_phone or inbox.number, inbox.number)
            content = {
                "type": "SMS",
                "from": ends[0 if inbound else 1],
                "to": ends[1 if inbound else 0],
            }
            content["content"] = self._line(conv, role, customer, h, stage)
            self._attachments(content, row, h, inbound)
            return content
        if kind in (t.K_PHONE_CALL, t.K_VOICEMAIL):
            return self._call(row, kind, inbound, conv, customer, inbox.number, h)
        if kind in (t.K_WHATSAPP, t.K_INSTAGRAM):
            name = "WHATSAPP" if kind == t.K_WHATSAPP else "INSTAGRAM_DIRECT"
            text = self._line(conv, role, customer, h, stage)
            if kind == t.K_INSTAGRAM and inbound and (h >> 20) % 3 == 0:
                text = SOCIAL_SHORT[(h >> 22) % len(SOCIAL_SHORT)]
            content = {"type": name, "content": text}
            self._attachments(content, row, h, inbound)
            return content
        if kind == t.K_TWITTER:
            words = self._words(conv, customer)
            text = (
                TWEETS[(h >> 11) % len(TWEETS)].format(**words)
                if inbound
                else self._line(conv, role, customer, h, 1)
            )
            return {"type": "TWITTER", "content": text}
        if kind == t.K_FACEBOOK:
            content = {
                "type": "FACEBOOK_MESSAGE",
                "pageId": data.facebook_page_id,
                "userId": str(
                    5_550_000_000_000_000 + mix64(data.item_key ^ customer.created) % 10**12
                ),
                "content": self._line(conv, role, customer, h, stage),
            }
            self._attachments(content, row, h, inbound)
            return content
        if kind == t.K_NOTE:
            content = {
                "type": "CONVERSATION_NOTE",
                "body": NOTES[(h >> 11) % len(NOTES)].format(**self._words(conv, customer)),
            }
            self._attachments(content, row, h, False)
            return content
        if kind == t.K_ACTIVITY:
            return self._activity(row, customer, h)
        if kind == t.K_TOPIC_CHANGE:
            added = topic_change_rows(data, row, self.traits(conv))
            return {"type": "TOPIC_CHANGE", "addedTopicIds": [data.topics[x].id for x in added]}
        if kind == t.K_TOPIC_REMOVED:
            removed = self.traits(conv).removed_topic
            ids = [] if removed is None else [data.topics[removed].id]
            return {"type": "TOPIC_CHANGE", "removedTopicIds": ids}
        if kind in (t.K_STATUS_CLOSED, t.K_STATUS_OPEN):
            status = "CLOSED" if kind == t.K_STATUS_CLOSED else "OPEN"
            return {"type": "CONVERSATION_STATUS_CHANGE", "status": status}
        if kind == t.K_VOICE_AI:
            return {
                "type": "VOICE_AI_MESSAGE",
                "customerNumber": customer.contact_phone or inbox.number,
                "companyNumber": inbox.number,
                "body": VOICE_AI_LINES[(h >> 11) % len(VOICE_AI_LINES)],
                "status": "PLAYED" if (h >> 20) % 5 else "INTERRUPTED",
            }
        # K_CUSTOM_TEXT: the custom channel message shape (its `type` is TEXT, api.md §4).
        return {
            "customChannelId": data.custom_channel_id,
            "companyAddress": "shop-app",
            "customerAddress": f"app-user-{mix64(data.item_key ^ customer.created) % 100000}",
            "sessionId": self.session_id(row),
            "type": "TEXT",
            "content": {"text": self._line(conv, role, customer, h, stage)},
            "status": {"value": ("DELIVERED", "READ", "SENT", "ACCEPTED")[(h >> 20) % 4]},
        }

    def _options(self, conv: int) -> list[dict[str, str]]:
        theme = THEMES[self.traits(conv).theme]
        return [{"id": key, "label": label} for key, label in theme.options]

    def _attachments(self, content: dict[str, Any], row: int, h: int, inbound: bool) -> None:
        """Attachments exist only in the newer spec; most messages have none (key absent or [])."""
        if not self.newer:
            return
        roll = (h >> 30) % 100
        if roll < (14 if inbound else 4):
            count = 1 + (h >> 37) % 2
            found = []
            for k in range(count):
                content_type, filename = ATTACHMENTS[(h >> (40 + 3 * k)) % len(ATTACHMENTS)]
                found.append(
                    {
                        "id": self.data.attachment_codec.encode(row * 2 + k),
                        "contentType": content_type,
                        "filename": filename,
                        "fileSize": 2048 + (h >> (20 + k * 5)) % 900_000,
                    }
                )
            content["attachments"] = found
        elif roll < 30:
            content["attachments"] = []

    def _email(
        self,
        row: int,
        role: int,
        conv: int,
        customer: Customer,
        address: str,
        h: int,
        stage: int,
    ) -> dict[str, Any]:
        theme = THEMES[self.traits(conv).theme] if conv >= 0 else THEMES[0]
        words = self._words(conv, customer)
        subject = theme.subject.format(**words)
        person = customer.contact_email or f"{customer.id.lower()}@example.invalid"
        body = self._line(conv, role, customer, h, stage)
        if role == t.R_CUSTOMER:
            sender, to = person, [address]
            text = f"Hello,\n{body}\n{words['first']}"
        elif role in (t.R_INTERNAL, t.R_EXTERNAL):
            sender = (
                "ops@shop.example.com" if role == t.R_INTERNAL else "claims@carrier.example.net"
            )
            to, text = [address], f"Re: {words['order']}\n{body}"
        else:
            sender, to = address, [person]
            text = f"Hi {words['first']},\n{body}\n\nBest,\nShop Support"
        if stage:
            subject = "Re: " + subject
        if role == t.R_AGENT and (h >> 17) % 2 == 0:
            # Gladly sends and keeps agents' emails as rich-content HTML; a reply quotes the
            # customer's last message the way mail clients do.
            text = _email_html(text, words["first"] if stage else None)
        content: dict[str, Any] = {"type": "EMAIL", "from": sender, "to": to}
        roll = (h >> 14) % 10
        if roll < 4:
            content["cc"] = []
        elif roll == 4:
            content["cc"] = ["orders@shop.example.com"]
        elif roll == 5 and role != t.R_CUSTOMER:
            content["bcc"] = ["qa@shop.example.com"]
        content["subject"] = subject
        content["content"] = text
        self._attachments(content, row, h, role == t.R_CUSTOMER)
        return content

    def _time(self, micros: int, h: int) -> str:
        digits = FRACTION_DIGITS[h % len(FRACTION_DIGITS)]
        return render_time(micros, digits)

    def _activity(self, row: int, customer: Customer, h: int) -> dict[str, Any]:
        ts = self.data.items.ts[row]
        activity_type, title, body, source = ACTIVITIES[(h >> 11) % len(ACTIVITIES)]
        words = self._words(-1, customer)
        words["order"] = f"ORD-{10000 + (h >> 16) % 90000}"
        words["score"] = str(1 + (h >> 24) % 10)
        content: dict[str, Any] = {
            "type": "CUSTOMER_ACTIVITY",
            "title": title.format(**words),
            "body": body.format(**words),
            "activityType": activity_type,
            "sourceName": source,
        }
        if (h >> 28) % 2:
            content["link"] = {
                "url": f"https://records.example.com/r/{(h >> 32) % 100000}",
                "text": "View record",
            }
        content["expandByDefault"] = bool((h >> 29) % 4 == 0)
        content["occurredAt"] = render_time(ts, digits_for(self.data.ts_key, row))
        content["receivedAt"] = self._time(ts + (1 + (h >> 40) % 9) * SECOND + 400_000, h >> 44)
        return content


def render_exact(micros: int, digits: int) -> str:
    """`micros` as text with at least `digits` fraction digits, more if needed to stay exact.

    Conversation times equal item times; showing fewer digits would put an item outside its
    conversation's window by a fraction of a second.
    """
    while digits < 6 and micros % 10 ** (6 - digits):
        digits += 1
    return render_time(micros, digits)


def with_text(content: dict[str, Any], text: str) -> dict[str, Any]:
    """The content with its text (a message, email body, note or activity body) replaced."""
    out = dict(content)
    if isinstance(out.get("content"), dict):  # a custom-channel message: {"text": …}
        out["content"] = {**out["content"], "text": text}
    elif "content" in out:
        out["content"] = text
    else:
        out["body"] = text
    return out


def redact_content(content: dict[str, Any]) -> dict[str, Any]:
    """What a redactable item's content looks like after POST /redact (shape is an ASSUMPTION).

    Text emptied, attachments removed, recording fields dropped, recordingStatus DELETED and
    recordingSummary REDACTED; addresses and times stay (the item stays on the timeline).
    """
    out = dict(content)
    for key in _TEXT_FIELDS:
        if key in out:
            out[key] = ""
    if "attachments" in out:
        if REDACTED_ATTACHMENTS_AS_EMPTY_LIST:
            out["attachments"] = []
        else:
            del out["attachments"]
    if REDACT_MESSAGE_DATA:
        out.pop("messageData", None)
    if out.get("type") in ("PHONE_CALL", "VOICEMAIL"):
        out.pop("recordingUrl", None)
        out.pop("recordingDuration", None)
        out["recordingStatus"] = "DELETED"
        out["recordingSummary"] = {"status": "REDACTED"}
    return out


def _email_html(text: str, quoted_name: str | None) -> str:
    """An agent's email body as Gladly's rich-content HTML; with ``quoted_name``, followed by the
    quoted history a reply carries (a gmail-style quote block)."""
    first, *rest = [html.escape(line) for line in text.split("\n") if line]
    body = f"<div><p>{first}</p><p>{'<br>'.join(rest)}</p></div>"
    if quoted_name is None:
        return body
    return (
        f'{body}<div class="gmail_quote">On an earlier day, {html.escape(quoted_name)} '
        "wrote:<br><blockquote>Thanks &amp; regards</blockquote></div>"
    )
