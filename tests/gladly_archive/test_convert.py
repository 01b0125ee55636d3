"""Tests for gladly_archive.convert: JSONL export files → Arrow batches in the archive schemas."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from gladly_archive.convert import (
    ConvertStats,
    QuarantinedLine,
    convert_agents_file,
    convert_customers_file,
    convert_items_file,
    convert_items_lines,
    convert_topics_file,
)
from gladly_archive.convert_fallback import item_row, load_line, rows_to_batch
from gladly_archive.convert_fast import convert_fast
from gladly_archive.schemas import AGENTS, CONVERTED_ITEMS, CUSTOMERS, TOPICS, UTC_MICROS

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
AT_MICROS = (AT - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
JOB = "rBWlLlnzY9ZTRCpZj_q0hA"
CUSTOMER = "a7CGCp3DqbtOuWXdckwQeQ"
AGENT = "eDngGkSzNMYYKQ6nof6nyA"
CONVERSATION = "ouZT1WCcewJK5TyPyBvwFg"
SESSION = "BHJUE3Xc_8qmr9d9mUyWXA"
ATTACHMENT = {
    "id": "WpEKSf5zwA9bA4rWmKmXJg",
    "contentType": "image/jpeg",
    "filename": "lid.jpg",
    "fileSize": 284113,
}


def envelope(item_id: str, content: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An item line as Gladly's export writes it (conversationId, initiator, …)."""
    item: dict[str, Any] = {
        "id": item_id,
        "conversationId": CONVERSATION,
        "customerId": CUSTOMER,
        "timestamp": "2025-01-08T16:02:11.412Z",
        "initiator": {"id": CUSTOMER, "type": "CUSTOMER"},
    }
    item.update(extra)
    item["content"] = content
    return item


def line(item: Any) -> bytes:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# (name, item, expected column values): one realistic line per content type and variant.
CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "chat text with attachment",
        envelope(
            "Sx9MIqOse3FaY3b8I_S1dA",
            {
                "type": "CHAT_MESSAGE",
                "messageType": "TEXT",
                "sessionId": SESSION,
                "content": "Here you go",
                "attachments": [ATTACHMENT],
            },
        ),
        {
            "content_type": "CHAT_MESSAGE",
            "message_type": "TEXT",
            "session_id": SESSION,
            "text": "Here you go",
            "initiator_type": "CUSTOMER",
            "attachments": [
                {
                    "id": "WpEKSf5zwA9bA4rWmKmXJg",
                    "content_type": "image/jpeg",
                    "filename": "lid.jpg",
                    "file_size": 284113,
                }
            ],
        },
    ),
    (
        "chat quick reply request by Gladly AI",
        envelope(
            "lcT2E3nX08f19V_N3hYK5g",
            {
                "type": "CHAT_MESSAGE",
                "messageType": "QUICK_REPLY_REQUEST",
                "sessionId": SESSION,
                "content": "How would you like us to fix this?",
                "messageData": {"options": [{"id": "refund", "label": "Refund"}]},
            },
            initiator={"id": "SIDEKICK_V2", "type": "SYSTEM"},
        ),
        {
            "message_type": "QUICK_REPLY_REQUEST",
            "initiator_id": "SIDEKICK_V2",
            "initiator_type": "SYSTEM",
            "text": "How would you like us to fix this?",
            "attachments": None,
        },
    ),
    (
        "chat quick reply response",
        envelope(
            "qxgLV-xsR5uFRcCM_Uxuqw",
            {
                "type": "CHAT_MESSAGE",
                "messageType": "QUICK_REPLY_RESPONSE",
                "sessionId": SESSION,
                "content": "Send a replacement",
                "messageData": {"selectedOptionId": "replace"},
                "attachments": [],
            },
        ),
        {"message_type": "QUICK_REPLY_RESPONSE", "text": "Send a replacement", "attachments": []},
    ),
    (
        "inbound email with attachments and empty cc",
        envelope(
            "bsQ1wtSFs1s7CJSbopmYQQ",
            {
                "type": "EMAIL",
                "from": "dana.rivera@example.com",
                "to": ["support@shop.example.com"],
                "cc": [],
                "subject": "Damaged blender",
                "content": "Hello,\nThe blender jar is cracked. Photos attached.\nDana",
                "attachments": [
                    {**ATTACHMENT, "contentType": "application/pdf", "filename": "r.pdf"},
                    {"id": "AhVUtjaPQjR_GCL3fWGD3A", "contentType": "image/png"},
                ],
            },
        ),
        {
            "content_type": "EMAIL",
            "subject": "Damaged blender",
            "text": "Hello,\nThe blender jar is cracked. Photos attached.\nDana",
            "from_address": "dana.rivera@example.com",
            "to_addresses": ["support@shop.example.com"],
            "cc_addresses": [],
            "bcc_addresses": None,
            "attachments": [
                {
                    "id": "WpEKSf5zwA9bA4rWmKmXJg",
                    "content_type": "application/pdf",
                    "filename": "r.pdf",
                    "file_size": 284113,
                },
                {
                    "id": "AhVUtjaPQjR_GCL3fWGD3A",
                    "content_type": "image/png",
                    "filename": None,
                    "file_size": None,
                },
            ],
        },
    ),
    (
        "outbound email with cc and bcc",
        envelope(
            "k-i81IC1FcymQcxSsOH6Bw",
            {
                "type": "EMAIL",
                "from": "support@shop.example.com",
                "to": ["dana.rivera@example.com", "ops@shop.example.com"],
                "cc": ["orders@shop.example.com"],
                "bcc": ["qa@shop.example.com"],
                "subject": "Re: Damaged blender",
                "content": "Hi Dana, a replacement jar ships today.",
            },
            initiator={"id": AGENT, "type": "AGENT"},
        ),
        {
            "to_addresses": ["dana.rivera@example.com", "ops@shop.example.com"],
            "cc_addresses": ["orders@shop.example.com"],
            "bcc_addresses": ["qa@shop.example.com"],
            "initiator_id": AGENT,
        },
    ),
    (
        "sms: to is one number, not a list",
        envelope(
            "5py30qWgVdqAcIusNsNpvw",
            {
                "type": "SMS",
                "from": "+14155550100",
                "to": "+14155550142",
                "content": "Your replacement shipped: tracking 1Z999AA10123456784",
            },
        ),
        {
            "content_type": "SMS",
            "from_address": "+14155550100",
            "to_addresses": ["+14155550142"],
            "text": "Your replacement shipped: tracking 1Z999AA10123456784",
        },
    ),
    (
        "phone call with recording and summary",
        envelope(
            "pgbcmyJT9VZJXBQVijjZ5w",
            {
                "type": "PHONE_CALL",
                "from": "+14155550142",
                "to": "+18005550199",
                "startedAt": "2024-11-21T09:01:12.300Z",
                "answeredAt": "2024-11-21T09:01:30.004Z",
                "completedAt": "2024-11-21T09:07:55.918Z",
                "recordingStatus": "AVAILABLE",
                "recordingUrl": "/api/v1/conversation-items/pgbcmyJT9VZJXBQVijjZ5w/media/recording",
                "recordingDuration": 385,
                "recordingSummary": {
                    "status": "READY",
                    "summary": "Customer called about a cracked blender jar.",
                    "language": "en",
                },
            },
            responder={"id": AGENT, "type": "AGENT"},
        ),
        {
            "content_type": "PHONE_CALL",
            "to_addresses": ["+18005550199"],
            "responder_id": AGENT,
            "responder_type": "AGENT",
            "call_started_at": ts("2024-11-21T09:01:12.300Z"),
            "call_answered_at": ts("2024-11-21T09:01:30.004Z"),
            "call_completed_at": ts("2024-11-21T09:07:55.918Z"),
            "recording_status": "AVAILABLE",
            "recording_duration_seconds": 385,
            "recording_summary": "Customer called about a cracked blender jar.",
            "text": None,
        },
    ),
    (
        "phone call after redaction",
        envelope(
            "pgbcmyJT9VZJXBQVijjZ5w",
            {
                "type": "PHONE_CALL",
                "from": "+14155550142",
                "to": "+18005550199",
                "startedAt": "2024-11-21T09:01:12.300Z",
                "recordingStatus": "DELETED",
                "recordingSummary": {"status": "REDACTED"},
            },
        ),
        {
            "recording_status": "DELETED",
            "recording_summary": None,
            "recording_duration_seconds": None,
            "call_answered_at": None,
        },
    ),
    (
        "voicemail with the duration as a string",
        envelope(
            "qCgvhyXActD5dCrneJQpcA",
            {
                "type": "VOICEMAIL",
                "startedAt": "2024-11-20T22:14:50.703Z",
                "recordingStatus": "AVAILABLE",
                "recordingDuration": "100",
            },
        ),
        {
            "content_type": "VOICEMAIL",
            "call_started_at": ts("2024-11-20T22:14:50.703Z"),
            "recording_duration_seconds": 100,
        },
    ),
    (
        "whatsapp",
        envelope("AX28LJNgTz4bQJMLGGM5eg", {"type": "WHATSAPP", "content": "Got it, thanks!"}),
        {"content_type": "WHATSAPP", "text": "Got it, thanks!"},
    ),
    (
        "twitter",
        envelope("_w005AmhPvVu6lTFKikRJg", {"type": "TWITTER", "content": "@shop my order?"}),
        {"content_type": "TWITTER", "text": "@shop my order?"},
    ),
    (
        "facebook message",
        envelope(
            "U8xjjBXevE1bO_EvlJ9deQ",
            {
                "type": "FACEBOOK_MESSAGE",
                "pageId": "102938475610293",
                "userId": "5551234567890123",
                "content": "Do you ship to Canada?",
            },
        ),
        {"content_type": "FACEBOOK_MESSAGE", "text": "Do you ship to Canada?"},
    ),
    (
        "instagram direct",
        envelope("fxMX02NIeMXeRTwJ0zArvA", {"type": "INSTAGRAM_DIRECT", "content": "Love it!"}),
        {"content_type": "INSTAGRAM_DIRECT", "text": "Love it!"},
    ),
    (
        "conversation note",
        envelope(
            "1gidbBKVrV-31653HArYIQ",
            {"type": "CONVERSATION_NOTE", "body": "Replacement approved. Do not refund."},
            initiator={"id": AGENT, "type": "AGENT"},
        ),
        {"content_type": "CONVERSATION_NOTE", "text": "Replacement approved. Do not refund."},
    ),
    (
        "customer activity without a conversation",
        {
            "id": "_KrfStlQLzfUk9cu6f3X7w",
            "customerId": CUSTOMER,
            "timestamp": "2024-10-01T12:00:00.000Z",
            "initiator": {"id": "b4OTiS3B76nlwPfTL56gqw", "type": "API"},
            "content": {
                "type": "CUSTOMER_ACTIVITY",
                "title": "NPS survey answered",
                "body": "Score: 9 - 'Fast shipping'",
                "activityType": "SURVEY",
                "sourceName": "SurveyTool",
                "link": {"url": "https://surveys.example.com/r/123", "text": "View"},
                "expandByDefault": False,
                "occurredAt": "2024-10-01T12:00:00.000Z",
            },
        },
        {
            "conversation_id": None,
            "content_type": "CUSTOMER_ACTIVITY",
            "subject": "NPS survey answered",
            "text": "Score: 9 - 'Fast shipping'",
            "activity_type": "SURVEY",
            "initiator_type": "API",
        },
    ),
    (
        "topic change",
        envelope(
            "GQaRbPev3DgK9PZnhX4vww",
            {"type": "TOPIC_CHANGE", "addedTopicIds": ["W8l4f3Gle-7GaVnOHf1sHw"]},
        ),
        {"content_type": "TOPIC_CHANGE", "text": None, "subject": None},
    ),
    (
        "conversation status change",
        envelope("ppPqK3JF6NqqMj4ljdyelQ", {"type": "CONVERSATION_STATUS_CHANGE", "status": "X"}),
        {"content_type": "CONVERSATION_STATUS_CHANGE", "text": None},
    ),
    (
        "voice AI message with a top-level session",
        envelope(
            "l2lRrwHjjTNO1Qzr3o1EKA",
            {
                "type": "VOICE_AI_MESSAGE",
                "customerNumber": "+14155550142",
                "companyNumber": "+18005550199",
                "body": "Thanks for calling. How can I help you today?",
                "status": "PLAYED",
            },
            sessionId="IRB1e6Ja29OGSHeHcAbuKA",
            initiator={"id": "SIDEKICK_V2", "type": "SYSTEM"},
        ),
        {
            "content_type": "VOICE_AI_MESSAGE",
            "session_id": "IRB1e6Ja29OGSHeHcAbuKA",
            "text": "Thanks for calling. How can I help you today?",
        },
    ),
    (
        "custom channel text message",
        envelope(
            "1oAFzPNiuC0IRVG2KReSow",
            {
                "customChannelId": "fNvvxmvUIF25utne_dlsiQ",
                "companyAddress": "shop-app",
                "customerAddress": "app-user-8812",
                "sessionId": "x8brXJKeUk7WaO1YMOwqsg",
                "type": "TEXT",
                "content": {"text": "Is the replacement the same color?"},
                "status": {"value": "DELIVERED"},
            },
        ),
        {
            "content_type": "CUSTOM_CHANNEL_MESSAGE",
            "message_type": "TEXT",
            "session_id": "x8brXJKeUk7WaO1YMOwqsg",
            "text": "Is the replacement the same color?",
        },
    ),
    (
        "custom channel files message with a caption",
        envelope(
            "2oAFzPNiuC0IRVG2KReSow",
            {
                "customChannelId": "fNvvxmvUIF25utne_dlsiQ",
                "companyAddress": "shop-app",
                "customerAddress": "app-user-8812",
                "sessionId": "x8brXJKeUk7WaO1YMOwqsg",
                "type": "FILES",
                "content": {
                    "caption": "Photo of the lid",
                    "files": [{"fileName": "lid.jpg", "url": "https://f.example.com/1"}],
                },
                "status": {"value": "SENT"},
            },
        ),
        {
            "content_type": "CUSTOM_CHANNEL_MESSAGE",
            "message_type": "FILES",
            "text": "Photo of the lid",
        },
    ),
    (
        "unknown content type is kept",
        envelope(
            "9xXcoBrowseSessionIdAA",
            {"type": "CO_BROWSE_SESSION", "body": "Co-browse ended", "pages": [1, 2]},
        ),
        {"content_type": "CO_BROWSE_SESSION", "text": "Co-browse ended", "message_type": None},
    ),
]
CASE_IDS = [name for name, _, _ in CASES]
FRACTIONS = {
    "2025-01-08T16:02:11Z": "2025-01-08T16:02:11+00:00",
    "2025-01-08T16:02:11.4Z": "2025-01-08T16:02:11.400000+00:00",
    "2025-01-08T16:02:11.41Z": "2025-01-08T16:02:11.410000+00:00",
    "2025-01-08T16:02:11.412Z": "2025-01-08T16:02:11.412000+00:00",
    "2025-01-08T16:02:11.412345Z": "2025-01-08T16:02:11.412345+00:00",
    "2025-01-08T16:02:11.41234567Z": "2025-01-08T16:02:11.412345+00:00",
    "2025-01-08T16:02:11.412345999Z": "2025-01-08T16:02:11.412345+00:00",
    "2025-01-08T17:02:11.5+01:00": "2025-01-08T16:02:11.500000+00:00",
}


def all_shapes() -> list[dict[str, Any]]:
    """Every case, plus every fraction length on both the envelope and a call's times."""
    shapes = [item for _, item, _ in CASES]
    for n, text in enumerate(FRACTIONS):
        call = json.loads(
            json.dumps(CASES[CASE_IDS.index("phone call with recording and summary")][1])
        )
        call["id"] = f"fraction-{n}"
        call["timestamp"] = text
        call["content"]["completedAt"] = text
        shapes.append(call)
    return shapes


class Collected:
    """The output of one conversion: table, quarantined lines and counts."""

    def __init__(
        self,
        batches: Iterator[pa.RecordBatch],
        quarantined: list[QuarantinedLine],
        stats: ConvertStats,
    ) -> None:
        self.batches = list(batches)
        self.quarantined = quarantined
        self.stats = stats
        self.table = pa.Table.from_batches(self.batches, schema=CONVERTED_ITEMS)

    def rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.table.to_pylist()
        return rows


def from_lines(lines: Iterable[bytes], **options: Any) -> Collected:
    quarantined: list[QuarantinedLine] = []
    stats = ConvertStats()
    batches = convert_items_lines(
        lines, job_id=JOB, archived_at=AT, on_quarantine=quarantined.append, stats=stats, **options
    )
    return Collected(batches, quarantined, stats)


def from_file(path: Path, **options: Any) -> Collected:
    quarantined: list[QuarantinedLine] = []
    stats = ConvertStats()
    batches = convert_items_file(
        path, job_id=JOB, archived_at=AT, on_quarantine=quarantined.append, stats=stats, **options
    )
    return Collected(batches, quarantined, stats)


def per_line_rows(lines: list[bytes]) -> list[dict[str, Any]]:
    """The reference: each line through the per-line Python converter."""
    rows = []
    for raw in lines:
        value, error = load_line(raw)
        assert error is None
        rows.append(item_row(value, raw.decode(), JOB, AT_MICROS))
    converted: list[dict[str, Any]] = rows_to_batch(rows).to_pylist()
    return converted


def fast_rows(lines: list[bytes]) -> list[dict[str, Any]]:
    """The same lines through the vectorised path alone (fails the test if it declines)."""
    batch = convert_fast(
        bytearray(b"\n".join(lines)),
        pa.array([raw.decode() for raw in lines], pa.large_string()),
        max(map(len, lines)),
        JOB,
        pa.scalar(AT_MICROS, UTC_MICROS),
    )
    assert batch is not None, "the fast path declined lines it should take"
    converted: list[dict[str, Any]] = batch.to_pylist()
    return converted


# --- column values ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "item", "expected"), CASES, ids=CASE_IDS)
def test_every_content_type_fills_the_expected_columns(
    name: str, item: dict[str, Any], expected: dict[str, Any]
) -> None:
    raw = line(item)
    [row] = from_lines([raw]).rows()
    for column, value in expected.items():
        assert row[column] == value, column
    assert row["item_id"] == item["id"]
    assert row["customer_id"] == CUSTOMER
    assert row["timestamp"] == ts(item["timestamp"])
    assert row["raw_json"] == raw.decode()
    assert row["job_id"] == JOB
    assert row["archived_at"] == AT


@pytest.mark.parametrize(("text", "expected"), list(FRACTIONS.items()), ids=list(FRACTIONS))
def test_timestamps_with_any_number_of_fraction_digits(text: str, expected: str) -> None:
    call = json.loads(json.dumps(CASES[CASE_IDS.index("phone call after redaction")][1]))
    call["timestamp"] = text
    call["content"]["startedAt"] = text
    [row] = from_lines([line(call)]).rows()
    # Digits past the microsecond are dropped (truncated, not rounded).
    assert row["timestamp"] == datetime.fromisoformat(expected)
    assert row["call_started_at"] == datetime.fromisoformat(expected)


def test_recording_duration_as_number_as_string_and_as_garbage() -> None:
    base = CASES[CASE_IDS.index("voicemail with the duration as a string")][1]
    values: list[Any] = [27, "100", "soon", None]
    lines = [
        line({**base, "id": f"v{n}", "content": {**base["content"], "recordingDuration": v}})
        for n, v in enumerate(values)
    ]
    rows = from_lines(lines).rows()
    assert [r["recording_duration_seconds"] for r in rows] == [27, 100, None, None]


def test_an_unparseable_optional_time_becomes_null_but_keeps_the_row() -> None:
    call = json.loads(json.dumps(CASES[CASE_IDS.index("phone call after redaction")][1]))
    call["content"]["startedAt"] = "yesterday"
    result = from_lines([line(call)])
    assert result.stats.quarantined == 0
    assert result.rows()[0]["call_started_at"] is None


# --- the two paths agree ---------------------------------------------------------------------


def test_fast_path_and_per_line_path_produce_identical_rows() -> None:
    lines = [line(item) for item in all_shapes()]
    assert fast_rows(lines) == per_line_rows(lines)


def test_fast_path_and_per_line_path_agree_on_sandbox_export_lines() -> None:
    from gladly_sandbox import OrgSpec
    from gladly_sandbox.clock import SandboxClock
    from gladly_sandbox.store import Organisation

    now = datetime(2026, 6, 1, tzinfo=UTC)
    org = Organisation(OrgSpec(customers=120, now=now), SandboxClock(now, frozen=True))
    lines = [line(item) for item in org.export_items(now - timedelta(days=400), now)]
    kinds = {json.loads(raw)["content"]["type"] for raw in lines}
    assert {"EMAIL", "SMS", "PHONE_CALL", "TEXT", "CHAT_MESSAGE"} <= kinds
    assert fast_rows(lines) == per_line_rows(lines)


def test_fast_path_takes_json_dumps_default_separators() -> None:
    lines = [json.dumps(item).encode() for item in all_shapes()]
    assert fast_rows(lines) == per_line_rows(lines)


def test_a_block_with_a_bad_line_still_converts_the_rest_in_order() -> None:
    odd = json.loads(json.dumps(CASES[CASE_IDS.index("outbound email with cc and bcc")][1]))
    odd["content"]["cc"] = "orders@shop.example.com"  # a string where a list belongs
    lines = [line(item) for item in all_shapes()]
    mixed = [*lines[:5], b'{"id": broken', *lines[5:9], line(odd), *lines[9:]]
    result = from_lines(mixed)
    assert [q.line_number for q in result.quarantined] == [6]
    expected = per_line_rows([raw for raw in mixed if raw != b'{"id": broken'])
    assert result.rows() == expected
    assert expected[9]["cc_addresses"] == ["orders@shop.example.com"]


def test_a_block_the_fast_parser_rejects_is_restored_for_the_per_line_path() -> None:
    odd = json.loads(json.dumps(CASES[CASE_IDS.index("outbound email with cc and bcc")][1]))
    odd["content"]["cc"] = "orders@shop.example.com"  # parses as a string where a list belongs
    lines = [line(item) for item in all_shapes()]
    lines.insert(3, line(odd))
    result = from_lines(lines)
    assert result.rows() == per_line_rows(lines)
    sms = result.rows()[CASE_IDS.index("sms: to is one number, not a list") + 1]
    assert sms["to_addresses"] == ["+14155550142"]  # the renamed key was put back
    assert "\x7f" not in "".join(r["raw_json"] for r in result.rows())


def test_clean_blocks_never_take_the_per_line_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(raw: bytes) -> Any:
        raise AssertionError("a clean block went line by line")

    monkeypatch.setattr("gladly_archive.convert.load_line", refuse)
    path = tmp_path / "conversation_items.jsonl"
    lines = write_items(path, 300)
    result = from_file(path, block_bytes=30_000)
    assert len(result.batches) > 2
    assert result.stats.rows == len(lines)


def test_a_line_with_a_del_byte_is_converted_line_by_line() -> None:
    chat = json.loads(json.dumps(CASES[0][1]))
    chat["content"]["content"] = "odd \x7f byte"
    lines = [line(chat), *[line(item) for item in all_shapes()[1:6]]]
    result = from_lines(lines)
    assert result.rows() == per_line_rows(lines)
    assert result.rows()[0]["text"] == "odd \x7f byte"


@pytest.mark.parametrize(
    "odd_line",
    [
        # A repeated key, once a list and once a string: json keeps the last one.
        b'{"id":"i1","customerId":"c1","timestamp":"2025-01-08T16:02:11Z",'
        b'"content":{"type":"EMAIL","to":["a@example.com"],"to":"b@example.com"}}',
        # A key spelt like the fast path's private names (they end in a DEL byte).
        b'{"id":"i1","customerId":"c1","timestamp":"2025-01-08T16:02:11Z",'
        b'"content":{"type":"SMS","t\x7f":"x"}}',
        # An object content without a custom channel id.
        b'{"id":"i1","customerId":"c1","timestamp":"2025-01-08T16:02:11Z",'
        b'"content":{"type":"NEW_THING","content":{"text":"hi"}}}',
    ],
    ids=["repeated key", "private key name", "object content"],
)
def test_shapes_the_fast_path_declines_match_the_per_line_path(odd_line: bytes) -> None:
    assert (
        convert_fast(
            bytearray(odd_line),
            pa.array([odd_line.decode()], pa.large_string()),
            len(odd_line),
            JOB,
            pa.scalar(AT_MICROS, UTC_MICROS),
        )
        is None
    )
    assert from_lines([odd_line]).rows() == per_line_rows([odd_line])


# --- quarantine --------------------------------------------------------------------------------

SECRET = "dana.rivera@example.com"


def test_bad_lines_are_quarantined_with_physical_line_numbers(tmp_path: Path) -> None:
    good = [line(item) for item in all_shapes()[:4]]
    base = json.loads(good[0])
    without = {k: {kk: vv for kk, vv in base.items() if kk != k} for k in ("id", "customerId")}
    bad = {
        3: b'{"id":"x","customerId":"' + SECRET.encode() + b'",',  # truncated JSON
        5: b'["' + SECRET.encode() + b'"]',  # not an object
        6: line(without["id"]),
        7: line(without["customerId"]),
        8: line({**base, "timestamp": "08/01/2025 " + SECRET}),
        9: line({**base, "content": {"body": SECRET}}),
        11: b'{"id":"x","customerId":"y","timestamp":"2025-01-08T16:02:11Z",'
        b'"content":{"type":"SMS","content":"' + b"\xff\xfe" + SECRET.encode() + b'"}}',
        12: line({**base, "id": 7}),
        13: b'{"id":"x","customerId":"y","timestamp":"2025-01-08T16:02:11Z",'
        b'"content":{"type":"SMS","size":NaN}}',
    }
    layout = {1: good[0], 2: b"", 4: b" \t ", 10: good[1], 14: good[2], 15: good[3], **bad}
    path = tmp_path / "conversation_items.jsonl"
    path.write_bytes(b"\n".join(layout[n] for n in range(1, 16)) + b"\n")

    result = from_file(path)

    assert [q.line_number for q in result.quarantined] == sorted(bad)
    assert [q.raw_line for q in result.quarantined] == [bad[n] for n in sorted(bad)]
    assert [r["raw_json"] for r in result.rows()] == [raw.decode() for raw in good]
    assert result.stats == ConvertStats(
        lines_read=len(good) + len(bad),
        rows=len(good),
        quarantined=len(bad),
        bytes_read=path.stat().st_size,
    )
    errors = {q.line_number: q.error for q in result.quarantined}
    expected_words = {
        3: "not valid JSON",
        5: "not a JSON object",
        6: "'id'",
        7: "'customerId'",
        8: "'timestamp'",
        9: "'content.type'",
        11: "UTF-8",
        12: "'id'",
        13: "NaN",
    }
    assert {n: expected_words[n] in errors[n] for n in errors} == dict.fromkeys(errors, True)
    for error in errors.values():
        assert SECRET not in error
        assert "example" not in error


def test_error_messages_never_contain_line_content() -> None:
    lines = [
        b'{"id":"' + SECRET.encode() + b'", oops}',
        b'"' + SECRET.encode() + b'"',
        line({"id": SECRET, "customerId": SECRET, "timestamp": SECRET, "content": SECRET}),
        b"{" + SECRET.encode() * 3,
    ]
    result = from_lines(lines)
    assert len(result.quarantined) == len(lines)
    for quarantined in result.quarantined:
        assert SECRET not in quarantined.error
        assert "rivera" not in quarantined.error


# --- files, blocks and batches ---------------------------------------------------------------


def write_items(path: Path, count: int) -> list[bytes]:
    shapes = all_shapes()
    lines = []
    for n in range(count):
        item = json.loads(json.dumps(shapes[n % len(shapes)]))
        item["id"] = f"item-{n:06d}"
        lines.append(line(item))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return lines


def test_a_file_bigger_than_a_block_streams_as_bounded_batches(tmp_path: Path) -> None:
    path = tmp_path / "conversation_items.jsonl"
    lines = write_items(path, 600)
    block_bytes = 20_000
    result = from_file(path, block_bytes=block_bytes)
    assert len(result.batches) >= path.stat().st_size // block_bytes
    for batch in result.batches:
        assert batch.schema.equals(CONVERTED_ITEMS, check_metadata=True)
        raw_bytes = sum(len(v.encode()) + 1 for v in batch.column("raw_json").to_pylist())
        assert raw_bytes <= block_bytes
    assert [r["raw_json"] for r in result.rows()] == [raw.decode() for raw in lines]
    assert result.stats.rows == result.stats.lines_read == 600


def test_every_batch_has_exactly_the_items_schema(tmp_path: Path) -> None:
    path = tmp_path / "conversation_items.jsonl"
    write_items(path, 60)
    batches = list(convert_items_file(path, job_id=JOB, archived_at=AT, block_bytes=4000))
    assert len(batches) > 3
    for batch in batches:
        assert batch.schema.equals(CONVERTED_ITEMS, check_metadata=True)
        assert batch.schema.metadata == CONVERTED_ITEMS.metadata


def test_a_slow_block_keeps_the_schema_and_order(tmp_path: Path) -> None:
    path = tmp_path / "conversation_items.jsonl"
    lines = write_items(path, 30)
    path.write_bytes(path.read_bytes() + b"not json\n")
    [batch] = list(convert_items_file(path, job_id=JOB, archived_at=AT))
    assert batch.schema.equals(CONVERTED_ITEMS, check_metadata=True)
    assert batch.column("raw_json").to_pylist() == [raw.decode() for raw in lines]


def test_crlf_bom_blank_lines_and_no_final_newline(tmp_path: Path) -> None:
    lines = [line(item) for item in all_shapes()[:3]]
    path = tmp_path / "conversation_items.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + lines[0] + b"\r\n\r\n" + lines[1] + b"\r\n \t\r\n" + lines[2]
    )
    result = from_file(path)
    assert [r["raw_json"] for r in result.rows()] == [raw.decode() for raw in lines]
    assert result.stats.lines_read == 3
    assert result.stats.bytes_read == path.stat().st_size
    path.write_bytes(lines[0] + b"\n\nnot json\r\n" + lines[1])
    result = from_file(path)
    assert [q.line_number for q in result.quarantined] == [3]
    assert [q.raw_line for q in result.quarantined] == [b"not json"]


def test_convert_items_lines_matches_the_file_converter(tmp_path: Path) -> None:
    path = tmp_path / "conversation_items.jsonl"
    lines = write_items(path, 200)
    lines.insert(50, b"{broken")
    path.write_bytes(b"\n".join(lines) + b"\n")
    from_path = from_file(path, block_bytes=8000)
    from_memory = from_lines([raw + b"\n" for raw in lines], block_bytes=8000)
    assert from_memory.table.equals(from_path.table)
    assert from_memory.quarantined == from_path.quarantined
    assert from_memory.stats == from_path.stats


def test_convert_items_lines_accepts_pretty_printed_items() -> None:
    items = all_shapes()[:3]
    pretty = [json.dumps(item, indent=2).encode() for item in items]
    result = from_lines([*pretty, b"", b"[1]"])
    assert [r["item_id"] for r in result.rows()] == [item["id"] for item in items]
    assert [r["raw_json"] for r in result.rows()] == [raw.decode() for raw in pretty]
    assert [q.line_number for q in result.quarantined] == [5]


def test_stopping_early_ends_the_read_ahead_thread(tmp_path: Path) -> None:
    path = tmp_path / "conversation_items.jsonl"
    write_items(path, 400)
    before = threading.active_count()
    batches = convert_items_file(path, job_id=JOB, archived_at=AT, block_bytes=5000)
    next(batches)
    batches.close()  # type: ignore[attr-defined]
    assert threading.active_count() == before


def test_errors_reach_the_caller() -> None:
    with pytest.raises(FileNotFoundError):
        next(convert_items_file("/nonexistent/items.jsonl", job_id=JOB, archived_at=AT))
    with pytest.raises(ValueError, match="timezone"):
        next(convert_items_lines([b"{}"], job_id=JOB, archived_at=datetime(2026, 1, 1)))


# --- customers, agents, topics ---------------------------------------------------------------


def test_customers_file(tmp_path: Path) -> None:
    path = tmp_path / "customers.jsonl"
    first = (
        b'{"id":"a7CGCp3DqbtOuWXdckwQeQ","name":"Dana Rivera","address":"1200 Market St",'
        b'"emailAddresses":["Dana.Rivera@example.com"],"phoneNumbers":["+14155550142"],'
        b'"externalCustomerIds":{"shopify-store-1":"7781234"}}'
    )
    second = (
        b'{"id":"_Gmxmj42V7ba131dKcX5_w","name":"Chidi Okafor","address":"",'
        b'"emailAddresses":["chidi.okafor@example.org"],"phoneNumbers":[],'
        b'"externalCustomerId":"a3f1c9e2"}'
    )
    path.write_bytes(first + b"\n" + b'{"name":"' + SECRET.encode() + b'"}\n' + second + b"\n")
    quarantined: list[QuarantinedLine] = []
    stats = ConvertStats()
    batches = list(
        convert_customers_file(
            path, job_id=JOB, archived_at=AT, on_quarantine=quarantined.append, stats=stats
        )
    )
    assert all(b.schema.equals(CUSTOMERS, check_metadata=True) for b in batches)
    rows = pa.Table.from_batches(batches).to_pylist()
    assert rows[0] | {"raw_json": None} == {
        "customer_id": "a7CGCp3DqbtOuWXdckwQeQ",
        "name": "Dana Rivera",
        "address": "1200 Market St",
        "emails": ["Dana.Rivera@example.com"],
        "phones": ["+14155550142"],
        "external_customer_id": None,
        "external_customer_ids_json": '{"shopify-store-1":"7781234"}',
        "raw_json": None,
        "job_id": JOB,
        "archived_at": AT,
    }
    assert rows[0]["raw_json"] == first.decode()
    assert rows[1]["external_customer_id"] == "a3f1c9e2"
    assert rows[1]["phones"] == []
    assert [(q.line_number, q.error) for q in quarantined] == [
        (2, "'id' is missing or not a non-empty string")
    ]
    assert stats == ConvertStats(
        lines_read=3, rows=2, quarantined=1, bytes_read=path.stat().st_size
    )


def test_agents_and_topics_files(tmp_path: Path) -> None:
    agents = tmp_path / "agents.jsonl"
    agents.write_bytes(
        b'{"id":"eDngGkSzNMYYKQ6nof6nyA","name":"Amy Agent",'
        b'"emailAddress":"amy@shop.example.com"}\n'
        b"\n{bad\n"
    )
    quarantined: list[QuarantinedLine] = []
    [batch] = list(
        convert_agents_file(agents, job_id=JOB, archived_at=AT, on_quarantine=quarantined.append)
    )
    assert batch.schema.equals(AGENTS, check_metadata=True)
    assert batch.to_pylist()[0]["email_address"] == "amy@shop.example.com"
    assert [q.line_number for q in quarantined] == [3]

    topics = tmp_path / "topics.jsonl"
    topics.write_bytes(
        b'{"id":"W8l4f3Gle-7GaVnOHf1sHw","name":"Order Returns","disabled":false}\n'
        b'{"id":"pNaNExxE5nisk0rw6lOClw","name":"Damaged","disabled":true,'
        b'"parentId":"W8l4f3Gle-7GaVnOHf1sHw"}\n'
    )
    [batch] = list(convert_topics_file(topics, job_id=JOB, archived_at=AT))
    assert batch.schema.equals(TOPICS, check_metadata=True)
    assert [(r["topic_id"], r["disabled"], r["parent_id"]) for r in batch.to_pylist()] == [
        ("W8l4f3Gle-7GaVnOHf1sHw", False, None),
        ("pNaNExxE5nisk0rw6lOClw", True, "W8l4f3Gle-7GaVnOHf1sHw"),
    ]
