"""Synthetic Gladly JSON payloads (invented people, ids and texts) shared by the test suites."""

from __future__ import annotations

import base64
import copy
import hashlib
from typing import Any, Final


class _Omit:
    """Marker: pass as an override value to drop that key from a payload."""

    def __repr__(self) -> str:
        return "OMIT"


OMIT: Final = _Omit()


def make_id(seed: str) -> str:
    """A stable 22-character URL-safe id derived from `seed`, shaped like Gladly's ids."""
    digest = hashlib.sha256(seed.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _apply(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **overrides}
    return {k: v for k, v in merged.items() if v is not OMIT}


CUSTOMER_ID = make_id("customer dana example")
AGENT_ID = make_id("agent avery agent")
INBOX_ID = make_id("inbox support")
CONVERSATION_ID = make_id("conversation one")
TOPIC_ID = make_id("topic returns")
OTHER_TOPIC_ID = make_id("topic damaged")
SESSION_ID = make_id("chat session")
SCHEDULE_ID = make_id("export schedule")
JOB_ID = make_id("export job")
CUSTOM_CHANNEL_ID = make_id("custom channel")
ATTACHMENT_ID = make_id("attachment photo")
ITEM_ID = make_id("item one")

CUSTOMER_NAME = "Dana Example"
CUSTOMER_EMAIL = "Dana.Example@example.com"
CUSTOMER_EMAIL_NORMALIZED = "dana.example@example.com"
CUSTOMER_PHONE = "+14155550123"
CUSTOMER_PHONE_ORIGINAL = "(415) 555-0123"
COMPANY_PHONE = "+14155550199"
SUPPORT_EMAIL = "support@example.com"
CUSTOMER_ADDRESS = "1 Example Way, Springfield"


def customer(**overrides: Any) -> dict[str, Any]:
    """A full customer profile as GET /customer-profiles/{id} returns it."""
    base: dict[str, Any] = {
        "id": CUSTOMER_ID,
        "name": CUSTOMER_NAME,
        "image": "https://cdn.example.com/avatars/dana.png",
        "address": CUSTOMER_ADDRESS,
        "emails": [
            {
                "original": CUSTOMER_EMAIL,
                "normalized": CUSTOMER_EMAIL_NORMALIZED,
                "primary": True,
            }
        ],
        "phones": [
            {
                "original": CUSTOMER_PHONE_ORIGINAL,
                "normalized": CUSTOMER_PHONE,
                "regionCode": "US",
                "primary": True,
                "smsPreference": "ON",
                "type": "MOBILE",
            }
        ],
        "customAttributes": {"loyaltyTier": "gold"},
        "externalCustomerIds": {"shop-app": "cust-0042"},
        "createdAt": "2023-03-14T18:22:05.118Z",
        "updatedAt": "2025-01-09T10:01:44.90312Z",
    }
    return _apply(base, overrides)


def conversation(**overrides: Any) -> dict[str, Any]:
    """An OPEN conversation of `customer()`."""
    base: dict[str, Any] = {
        "id": CONVERSATION_ID,
        "customerId": CUSTOMER_ID,
        "agentId": AGENT_ID,
        "inboxId": INBOX_ID,
        "status": "OPEN",
        "createdAt": "2025-01-08T16:02:11.000Z",
        "topicIds": [TOPIC_ID],
        "customAttributes": [{"id": make_id("attr order"), "value": "ORD-0042"}],
    }
    return _apply(base, overrides)


CONTENT_BY_TYPE: Final[dict[str, dict[str, Any]]] = {
    "CHAT_MESSAGE": {
        "type": "CHAT_MESSAGE",
        "messageType": "TEXT",
        "sessionId": SESSION_ID,
        "content": "Hi, my teapot arrived with a chipped spout.",
        "attachments": [
            {
                "id": ATTACHMENT_ID,
                "contentType": "image/jpeg",
                "filename": "spout.jpg",
                "fileSize": 20480,
            }
        ],
    },
    "EMAIL": {
        "type": "EMAIL",
        "from": CUSTOMER_EMAIL_NORMALIZED,
        "to": [SUPPORT_EMAIL],
        "cc": [],
        "subject": "Chipped teapot",
        "content": "Hello,\nThe teapot spout is chipped.\nDana",
    },
    "SMS": {
        "type": "SMS",
        "from": COMPANY_PHONE,
        "to": CUSTOMER_PHONE,
        "content": "Your replacement teapot has shipped.",
    },
    "PHONE_CALL": {
        "type": "PHONE_CALL",
        "from": CUSTOMER_PHONE,
        "to": COMPANY_PHONE,
        "startedAt": "2024-11-21T09:01:12.300Z",
        "answeredAt": "2024-11-21T09:01:30.004Z",
        "completedAt": "2024-11-21T09:07:55.918Z",
        "recordingStatus": "AVAILABLE",
        "recordingUrl": f"/api/v1/conversation-items/{ITEM_ID}/media/recording",
        "recordingDuration": 385,
        "recordingSummary": {
            "status": "READY",
            "summary": "Dana called about a chipped teapot; a replacement was agreed.",
            "language": "en",
        },
    },
    "VOICEMAIL": {
        "type": "VOICEMAIL",
        "startedAt": "2024-11-20T22:14:50.703Z",
        "recordingStatus": "AVAILABLE",
        "recordingUrl": f"/api/v1/conversation-items/{ITEM_ID}/media/recording",
        "recordingDuration": 27,
    },
    "WHATSAPP": {
        "type": "WHATSAPP",
        "content": "Thanks, got the tracking number!",
        "attachments": [],
    },
    "TWITTER": {
        "type": "TWITTER",
        "content": "@exampleshop where is my teapot?",
    },
    "FACEBOOK_MESSAGE": {
        "type": "FACEBOOK_MESSAGE",
        "pageId": "100000000000001",
        "userId": "200000000000002",
        "content": "Do you ship teapots abroad?",
    },
    "INSTAGRAM_DIRECT": {
        "type": "INSTAGRAM_DIRECT",
        "content": "Love the new teapot colours!",
    },
    "CONVERSATION_NOTE": {
        "type": "CONVERSATION_NOTE",
        "body": "Replacement approved for Dana. Do not refund.",
    },
    "CUSTOMER_ACTIVITY": {
        "type": "CUSTOMER_ACTIVITY",
        "activityType": "SURVEY",
        "title": "Survey answered",
        "body": "Score 9: quick teapot replacement",
        "sourceName": "SurveyTool",
        "link": {"url": "https://surveys.example.com/r/42", "text": "View response"},
        "expandByDefault": False,
        "occurredAt": "2024-10-01T12:00:00.000Z",
        "receivedAt": "2024-10-01T12:00:05.4Z",
    },
    "TOPIC_CHANGE": {
        "type": "TOPIC_CHANGE",
        "addedTopicIds": [TOPIC_ID],
        "removedTopicIds": [OTHER_TOPIC_ID],
    },
    "CONVERSATION_STATUS_CHANGE": {
        "type": "CONVERSATION_STATUS_CHANGE",
        "status": "CLOSED",
    },
    "VOICE_AI_MESSAGE": {
        "type": "VOICE_AI_MESSAGE",
        "companyNumber": COMPANY_PHONE,
        "customerNumber": CUSTOMER_PHONE,
        "body": "Thanks for calling Example Shop, how can I help?",
        "status": "PLAYED",
    },
    "CUSTOM_CHANNEL_MESSAGE": {
        "customChannelId": CUSTOM_CHANNEL_ID,
        "companyAddress": "example-shop-app",
        "customerAddress": "app-user-0042",
        "sessionId": make_id("custom channel session"),
        "type": "TEXT",
        "content": {"text": "Is the replacement teapot the same colour?"},
        "status": {"value": "DELIVERED"},
    },
}
"""One synthetic `content` dict per Gladly content type; copy before changing (`content_for`)."""

TEXT_BY_TYPE: Final[dict[str, str | None]] = {
    "CHAT_MESSAGE": "Hi, my teapot arrived with a chipped spout.",
    "EMAIL": "Hello,\nThe teapot spout is chipped.\nDana",
    "SMS": "Your replacement teapot has shipped.",
    "PHONE_CALL": None,
    "VOICEMAIL": None,
    "WHATSAPP": "Thanks, got the tracking number!",
    "TWITTER": "@exampleshop where is my teapot?",
    "FACEBOOK_MESSAGE": "Do you ship teapots abroad?",
    "INSTAGRAM_DIRECT": "Love the new teapot colours!",
    "CONVERSATION_NOTE": "Replacement approved for Dana. Do not refund.",
    "CUSTOMER_ACTIVITY": "Score 9: quick teapot replacement",
    "TOPIC_CHANGE": None,
    "CONVERSATION_STATUS_CHANGE": None,
    "VOICE_AI_MESSAGE": "Thanks for calling Example Shop, how can I help?",
    "CUSTOM_CHANNEL_MESSAGE": "Is the replacement teapot the same colour?",
}
"""What `Item.text` should give for each entry of `CONTENT_BY_TYPE`."""


def content_for(content_type: str, **overrides: Any) -> dict[str, Any]:
    """A fresh copy of `CONTENT_BY_TYPE[content_type]` with overrides applied."""
    return _apply(copy.deepcopy(CONTENT_BY_TYPE[content_type]), overrides)


def item(content: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """An item envelope around `content` (copied), as GET /conversation-items/{id} returns it."""
    base: dict[str, Any] = {
        "id": ITEM_ID,
        "conversationId": CONVERSATION_ID,
        "customerId": CUSTOMER_ID,
        "timestamp": "2025-01-08T16:02:11.412Z",
        "initiator": {"id": CUSTOMER_ID, "type": "CUSTOMER"},
        "content": copy.deepcopy(content),
    }
    return _apply(base, overrides)


def export_job(**overrides: Any) -> dict[str, Any]:
    """A COMPLETED daily export job with its four files."""
    base: dict[str, Any] = {
        "id": JOB_ID,
        "scheduleId": SCHEDULE_ID,
        "status": "COMPLETED",
        "updatedAt": "2025-01-09T03:12:44.08812Z",
        "parameters": {
            "type": "CONVERSATIONS",
            "startAt": "2025-01-08T00:00:00Z",
            "endAt": "2025-01-09T00:00:00Z",
        },
        "files": [
            "agents.jsonl",
            "conversation_items.jsonl",
            "customers.jsonl",
            "topics.jsonl",
        ],
    }
    return _apply(base, overrides)


def export_schedule(**overrides: Any) -> dict[str, Any]:
    """The organisation's daily export schedule."""
    base: dict[str, Any] = {
        "id": SCHEDULE_ID,
        "frequency": "DAILY",
        "type": "CONVERSATIONS",
        "nextStartAt": "2025-01-10T00:00:00.00Z",
        "updatedAt": "2024-06-01T17:42:10.55121Z",
    }
    return _apply(base, overrides)


def voice_transcript(**overrides: Any) -> dict[str, Any]:
    """A two-speaker call transcript."""
    base: dict[str, Any] = {
        "paragraphs": [
            {
                "transcript": "Thanks for calling Example Shop, this is Avery.",
                "speaker": 0,
                "startTime": 0.52,
                "endTime": 2.9,
            },
            {
                "transcript": "Hi, my teapot arrived chipped.",
                "speaker": 1,
                "startTime": 3.4,
                "endTime": 6.1,
            },
        ],
        "customerId": CUSTOMER_ID,
        "numberOfSpeakers": 2,
        "language": "en",
        "createdAt": "2024-11-21T09:08:30.000Z",
        "updatedAt": "2024-11-21T09:08:41.000Z",
    }
    return _apply(base, overrides)
