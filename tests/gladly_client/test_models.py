"""Tests for gladly_client.models: parsing, leniency, privacy of repr and raw preservation."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from gladly_client.models import (
    KNOWN_CONTENT_TYPES,
    Attachment,
    ChatMessageContent,
    Conversation,
    ConversationList,
    ConversationNoteContent,
    ConversationStatusChangeContent,
    CustomChannelMessageContent,
    Customer,
    CustomerActivityContent,
    EmailContent,
    ExportJob,
    ExportSchedule,
    FacebookMessageContent,
    GenericContent,
    Initiator,
    InstagramDirectContent,
    Item,
    ItemContent,
    ItemList,
    PhoneCallContent,
    SmsContent,
    Timestamp,
    TopicChangeContent,
    TwitterContent,
    VoiceAiMessageContent,
    VoicemailContent,
    VoiceTranscript,
    WhatsAppContent,
    parse_timestamp,
)
from tests.gladly_client import payloads
from tests.gladly_client.payloads import (
    CONTENT_BY_TYPE,
    CUSTOMER_EMAIL,
    CUSTOMER_EMAIL_NORMALIZED,
    CUSTOMER_ID,
    CUSTOMER_NAME,
    CUSTOMER_PHONE,
    OMIT,
    TEXT_BY_TYPE,
    content_for,
)

MODEL_BY_TYPE: dict[str, type[BaseModel]] = {
    "CHAT_MESSAGE": ChatMessageContent,
    "EMAIL": EmailContent,
    "SMS": SmsContent,
    "PHONE_CALL": PhoneCallContent,
    "VOICEMAIL": VoicemailContent,
    "WHATSAPP": WhatsAppContent,
    "TWITTER": TwitterContent,
    "FACEBOOK_MESSAGE": FacebookMessageContent,
    "INSTAGRAM_DIRECT": InstagramDirectContent,
    "CONVERSATION_NOTE": ConversationNoteContent,
    "CUSTOMER_ACTIVITY": CustomerActivityContent,
    "TOPIC_CHANGE": TopicChangeContent,
    "CONVERSATION_STATUS_CHANGE": ConversationStatusChangeContent,
    "VOICE_AI_MESSAGE": VoiceAiMessageContent,
    "CUSTOM_CHANNEL_MESSAGE": CustomChannelMessageContent,
}
ALL_TYPES = sorted(CONTENT_BY_TYPE)

CONTENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(ItemContent)


def _strings_in(value: Any) -> list[str]:
    """Every string leaf of a JSON-like value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings_in(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings_in(v)]
    return []


# --------------------------------------------------------------------------------------------
# Content types
# --------------------------------------------------------------------------------------------


def test_payload_table_covers_every_known_type() -> None:
    assert set(CONTENT_BY_TYPE) == KNOWN_CONTENT_TYPES == set(MODEL_BY_TYPE) == set(TEXT_BY_TYPE)


@pytest.mark.parametrize("content_type", ALL_TYPES)
def test_every_content_type_parses_to_its_model(content_type: str) -> None:
    parsed = Item.model_validate(payloads.item(content_for(content_type)))

    assert type(parsed.content) is MODEL_BY_TYPE[content_type]
    assert parsed.content_type == content_type
    assert parsed.content.content_type == content_type
    assert parsed.content.type == content_type


@pytest.mark.parametrize("content_type", ALL_TYPES)
def test_text_property_per_type(content_type: str) -> None:
    parsed = Item.model_validate(payloads.item(content_for(content_type)))

    assert parsed.content.text == TEXT_BY_TYPE[content_type]
    assert parsed.text == TEXT_BY_TYPE[content_type]


@pytest.mark.parametrize("content_type", ALL_TYPES)
def test_item_parses_from_json_bytes(content_type: str) -> None:
    payload = payloads.item(content_for(content_type))

    parsed = Item.model_validate_json(json.dumps(payload).encode())

    assert parsed.content_type == content_type
    assert parsed.raw == payload


@pytest.mark.parametrize("content_type", ALL_TYPES)
def test_item_survives_a_json_round_trip(content_type: str) -> None:
    parsed = Item.model_validate(payloads.item(content_for(content_type)))

    again = Item.model_validate_json(parsed.model_dump_json(by_alias=True))

    assert again == parsed


def test_chat_message_fields() -> None:
    chat = ChatMessageContent.model_validate(content_for("CHAT_MESSAGE"))

    assert chat.message_type == "TEXT"
    assert chat.session_id == CONTENT_BY_TYPE["CHAT_MESSAGE"]["sessionId"]
    assert chat.attachments == (
        Attachment(
            id=payloads.ATTACHMENT_ID,
            content_type="image/jpeg",
            filename="spout.jpg",
            file_size=20480,
        ),
    )


def test_chat_message_without_message_type_parses() -> None:
    # Gladly's own documentation examples omit messageType.
    chat = CONTENT_ADAPTER.validate_python(content_for("CHAT_MESSAGE", messageType=OMIT))

    assert isinstance(chat, ChatMessageContent)
    assert chat.message_type is None


def test_quick_reply_message_data_is_kept() -> None:
    data = {"options": [{"id": "refund", "label": "Refund"}]}
    chat = ChatMessageContent.model_validate(
        content_for("CHAT_MESSAGE", messageType="QUICK_REPLY_REQUEST", messageData=data)
    )

    assert chat.message_type == "QUICK_REPLY_REQUEST"
    assert chat.message_data == data


def test_email_from_alias_and_address_lists() -> None:
    email = EmailContent.model_validate(content_for("EMAIL", bcc=["audit@example.com"]))

    assert email.from_ == CUSTOMER_EMAIL_NORMALIZED
    assert email.to == (payloads.SUPPORT_EMAIL,)
    assert email.cc == ()
    assert email.bcc == ("audit@example.com",)
    assert email.subject == "Chipped teapot"
    assert email.model_dump(by_alias=True)["from"] == CUSTOMER_EMAIL_NORMALIZED


def test_email_accepts_from_by_field_name() -> None:
    email = EmailContent(from_="x@example.com", to=("y@example.com",))

    assert email.from_ == "x@example.com"


def test_email_null_lists_become_empty() -> None:
    email = EmailContent.model_validate(content_for("EMAIL", cc=None, bcc=None, attachments=None))

    assert (email.cc, email.bcc, email.attachments) == ((), (), ())


def test_sms_from_and_to() -> None:
    sms = SmsContent.model_validate(content_for("SMS"))

    assert (sms.from_, sms.to) == (payloads.COMPANY_PHONE, CUSTOMER_PHONE)


def test_phone_call_fields() -> None:
    call = PhoneCallContent.model_validate(content_for("PHONE_CALL"))

    assert call.started_at == datetime(2024, 11, 21, 9, 1, 12, 300000, tzinfo=UTC)
    assert call.completed_at == datetime(2024, 11, 21, 9, 7, 55, 918000, tzinfo=UTC)
    assert call.recording_status == "AVAILABLE"
    assert call.recording_duration == 385
    assert call.recording_summary is not None
    assert call.recording_summary.status == "READY"
    assert call.recording_summary.language == "en"


def test_recording_duration_given_as_string_is_accepted() -> None:
    call = PhoneCallContent.model_validate(content_for("PHONE_CALL", recordingDuration="100"))
    voicemail = VoicemailContent.model_validate(content_for("VOICEMAIL", recordingDuration="100"))

    assert call.recording_duration == 100
    assert voicemail.recording_duration == 100


def test_redacted_phone_call_parses() -> None:
    redacted = content_for(
        "PHONE_CALL",
        recordingStatus="DELETED",
        recordingUrl=OMIT,
        recordingDuration=OMIT,
        recordingSummary={"status": "REDACTED"},
    )

    call = PhoneCallContent.model_validate(redacted)

    assert call.recording_status == "DELETED"
    assert call.recording_url is None
    assert call.recording_duration is None
    assert call.recording_summary is not None
    assert call.recording_summary.summary is None


def test_known_type_with_malformed_field_is_a_validation_error() -> None:
    broken = payloads.item(content_for("PHONE_CALL", startedAt="yesterday afternoon"))

    with pytest.raises(ValidationError):
        Item.model_validate(broken)


def test_customer_activity_fields() -> None:
    activity = CustomerActivityContent.model_validate(content_for("CUSTOMER_ACTIVITY"))

    assert activity.activity_type == "SURVEY"
    assert activity.source_name == "SurveyTool"
    assert activity.link is not None
    assert activity.link.url == "https://surveys.example.com/r/42"
    assert activity.expand_by_default is False
    assert activity.received_at == datetime(2024, 10, 1, 12, 0, 5, 400000, tzinfo=UTC)


def test_topic_change_lists_default_to_empty() -> None:
    change = TopicChangeContent.model_validate(
        content_for("TOPIC_CHANGE", removedTopicIds=OMIT, addedTopicIds=None)
    )

    assert change.added_topic_ids == ()
    assert change.removed_topic_ids == ()


def test_voice_ai_message_and_top_level_session_id() -> None:
    session = payloads.make_id("voice ai session")
    parsed = Item.model_validate(payloads.item(content_for("VOICE_AI_MESSAGE"), sessionId=session))

    assert isinstance(parsed.content, VoiceAiMessageContent)
    assert parsed.session_id == session
    assert parsed.content.company_number == payloads.COMPANY_PHONE
    assert parsed.content.status == "PLAYED"


# --------------------------------------------------------------------------------------------
# Custom channel and unknown content
# --------------------------------------------------------------------------------------------


def test_custom_channel_text_message_is_detected_by_custom_channel_id() -> None:
    parsed = CONTENT_ADAPTER.validate_python(content_for("CUSTOM_CHANNEL_MESSAGE"))

    assert isinstance(parsed, CustomChannelMessageContent)
    assert parsed.type == "CUSTOM_CHANNEL_MESSAGE"
    assert parsed.content_type == "CUSTOM_CHANNEL_MESSAGE"
    assert parsed.message_type == "TEXT"
    assert parsed.custom_channel_id == payloads.CUSTOM_CHANNEL_ID
    assert parsed.status == {"value": "DELIVERED"}


def test_custom_channel_files_message_uses_caption_as_text() -> None:
    files = {
        "caption": "Photo of the chipped spout",
        "files": [{"fileName": "spout.jpg", "url": "https://files.example.com/spout.jpg"}],
    }
    parsed = CONTENT_ADAPTER.validate_python(
        content_for("CUSTOM_CHANNEL_MESSAGE", type="FILES", content=files, groupId="g-1")
    )

    assert isinstance(parsed, CustomChannelMessageContent)
    assert parsed.message_type == "FILES"
    assert parsed.content == files
    assert parsed.group_id == "g-1"
    assert parsed.text == "Photo of the chipped spout"


def test_custom_channel_files_message_without_caption_has_no_text() -> None:
    parsed = CONTENT_ADAPTER.validate_python(
        content_for("CUSTOM_CHANNEL_MESSAGE", type="FILES", content={"files": []})
    )

    assert parsed.text is None


@pytest.mark.parametrize("raw_type", ["HOLOGRAM_CALL", "TASK", "TEXT", "FILES"])
def test_unknown_content_type_becomes_generic_content(raw_type: str) -> None:
    raw_content = {"type": raw_type, "hologramId": "holo-1", "nested": {"depth": [1, 2]}}

    parsed = Item.model_validate(payloads.item(raw_content))

    assert isinstance(parsed.content, GenericContent)
    assert parsed.content.type == raw_type
    assert parsed.content.raw == raw_content
    assert parsed.content_type == raw_type
    assert parsed.text is None


def test_content_without_type_becomes_generic_unknown() -> None:
    parsed = CONTENT_ADAPTER.validate_python({"something": "new"})

    assert isinstance(parsed, GenericContent)
    assert parsed.content_type == "UNKNOWN"
    assert parsed.raw == {"something": "new"}


def test_content_with_non_string_type_becomes_generic() -> None:
    parsed = CONTENT_ADAPTER.validate_python({"type": 7, "value": "x"})

    assert isinstance(parsed, GenericContent)
    assert parsed.raw == {"type": 7, "value": "x"}


def test_content_models_are_accepted_as_instances() -> None:
    note = ConversationNoteContent(body="internal")
    generic = GenericContent.model_validate({"type": "HOLOGRAM_CALL", "x": 1})

    assert CONTENT_ADAPTER.validate_python(note) is note
    assert CONTENT_ADAPTER.validate_python(generic) is generic


# --------------------------------------------------------------------------------------------
# Unknown fields, raw preservation, immutability
# --------------------------------------------------------------------------------------------


def test_unknown_top_level_and_content_fields_are_ignored_but_kept_in_raw() -> None:
    content = content_for("SMS", deliveryReceipt={"carrier": "x"}, segmentCount=2)
    payload = payloads.item(content, futureEnvelopeField=[1, 2, 3], channelHints=None)

    parsed = Item.model_validate(payload)

    assert isinstance(parsed.content, SmsContent)
    dumped = parsed.model_dump(by_alias=True, exclude={"raw"})
    assert "futureEnvelopeField" not in dumped
    assert "segmentCount" not in dumped["content"]
    assert parsed.raw["futureEnvelopeField"] == [1, 2, 3]
    assert parsed.raw["content"]["deliveryReceipt"] == {"carrier": "x"}


def test_unknown_fields_are_ignored_on_every_model() -> None:
    assert Customer.model_validate(payloads.customer(loyaltyEngine="v2")).id == CUSTOMER_ID
    assert Conversation.model_validate(payloads.conversation(priority="HIGH")).is_open
    assert ExportJob.model_validate(payloads.export_job(region="us-1")).status == "COMPLETED"
    transcript = VoiceTranscript.model_validate(payloads.voice_transcript(model="v9"))
    assert transcript.number_of_speakers == 2


def test_item_raw_equals_the_input() -> None:
    payload = payloads.item(
        content_for("EMAIL"),
        responder={"id": payloads.AGENT_ID, "type": "AGENT"},
        extra={"a": [1.5, None, True]},
    )
    expected = copy.deepcopy(payload)

    parsed = Item.model_validate(payload)

    assert parsed.raw == expected


def test_item_raw_is_detached_from_the_input() -> None:
    payload = payloads.item(content_for("CHAT_MESSAGE"))
    parsed = Item.model_validate(payload)

    payload["content"]["content"] = "changed later"

    assert parsed.raw["content"]["content"] == TEXT_BY_TYPE["CHAT_MESSAGE"]


def test_item_raw_given_explicitly_is_kept() -> None:
    payload = payloads.item(content_for("SMS"))
    archived = {"original": True}

    parsed = Item.model_validate({**payload, "raw": archived})

    assert parsed.raw == archived


def test_item_built_from_python_objects_gets_a_json_raw() -> None:
    parsed = Item(
        id=payloads.ITEM_ID,
        customer_id=CUSTOMER_ID,
        timestamp=datetime(2025, 1, 8, 16, 0, tzinfo=UTC),
        content=ConversationNoteContent(body="note"),
    )

    assert parsed.content_type == "CONVERSATION_NOTE"
    assert parsed.raw["content"] == {"type": "CONVERSATION_NOTE", "body": "note", "attachments": []}
    json.dumps(parsed.raw)  # JSON-safe throughout


def test_item_without_conversation_or_initiator() -> None:
    payload = payloads.item(content_for("CUSTOMER_ACTIVITY"), conversationId=OMIT, initiator=OMIT)

    parsed = Item.model_validate(payload)

    assert parsed.conversation_id is None
    assert parsed.initiator is None
    assert parsed.responder is None


@pytest.mark.parametrize(
    "initiator_type",
    ["AGENT", "API", "AUTOMATION", "CUSTOMER", "INTERNAL", "EXTERNAL", "SYSTEM", "HOLOGRAM"],
)
def test_initiator_type_is_free_text(initiator_type: str) -> None:
    parsed = Item.model_validate(
        payloads.item(content_for("SMS"), initiator={"id": "SIDEKICK_V2", "type": initiator_type})
    )

    assert parsed.initiator == Initiator(id="SIDEKICK_V2", type=initiator_type)


@pytest.mark.parametrize(
    ("model", "payload", "field", "value"),
    [
        (Customer, payloads.customer(), "name", "Someone Else"),
        (Conversation, payloads.conversation(), "status", "CLOSED"),
        (Item, payloads.item(content_for("SMS")), "raw", {}),
        (ExportJob, payloads.export_job(), "files", ()),
        (VoiceTranscript, payloads.voice_transcript(), "language", "fr"),
    ],
)
def test_models_are_frozen(model: type[BaseModel], payload: Any, field: str, value: Any) -> None:
    parsed = model.model_validate(payload)

    with pytest.raises(ValidationError):
        setattr(parsed, field, value)


def test_content_models_are_frozen() -> None:
    parsed = Item.model_validate(payloads.item(content_for("EMAIL")))

    with pytest.raises(ValidationError):
        parsed.content.subject = "changed"  # type: ignore[misc, union-attr]


# --------------------------------------------------------------------------------------------
# Privacy of repr
# --------------------------------------------------------------------------------------------


def test_customer_repr_shows_no_personal_data() -> None:
    parsed = Customer.model_validate(payloads.customer())

    shown = repr(parsed) + str(parsed) + repr(parsed.emails) + repr(parsed.phones)

    for secret in (
        CUSTOMER_NAME,
        "Dana",
        CUSTOMER_EMAIL,
        CUSTOMER_EMAIL_NORMALIZED,
        CUSTOMER_PHONE,
        "555-0123",
        payloads.CUSTOMER_ADDRESS,
        "gold",
        "cust-0042",
        "avatars",
    ):
        assert secret not in shown
    assert CUSTOMER_ID in repr(parsed)


@pytest.mark.parametrize("content_type", ALL_TYPES)
def test_item_repr_shows_no_message_text_or_addresses(content_type: str) -> None:
    parsed = Item.model_validate(payloads.item(content_for(content_type)))

    shown = repr(parsed) + str(parsed)

    assert parsed.id in shown
    for secret in (
        "teapot",
        "Dana",
        CUSTOMER_EMAIL_NORMALIZED,
        CUSTOMER_PHONE,
        payloads.COMPANY_PHONE,
        payloads.SUPPORT_EMAIL,
        "app-user-0042",
        "spout.jpg",
        "200000000000002",
        "surveys.example.com",
    ):
        assert secret not in shown, secret


def test_generic_content_repr_hides_raw() -> None:
    parsed = Item.model_validate(
        payloads.item({"type": "HOLOGRAM_CALL", "transcript": "Dana said hello"})
    )

    assert "Dana" not in repr(parsed)
    assert "HOLOGRAM_CALL" in repr(parsed)


def test_conversation_and_transcript_repr_hide_values() -> None:
    conversation = Conversation.model_validate(payloads.conversation())
    transcript = VoiceTranscript.model_validate(payloads.voice_transcript())

    assert "ORD-0042" not in repr(conversation)
    assert "teapot" not in repr(transcript)


# --------------------------------------------------------------------------------------------
# Timestamps
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected_microsecond"),
    [
        ("2019-02-21T07:15:18Z", 0),
        ("2019-02-21T07:15:18.0Z", 0),
        ("2019-02-21T07:15:18.7Z", 700000),
        ("2019-02-21T07:15:18.07Z", 70000),
        ("2019-02-21T07:15:18.000Z", 0),
        ("2019-02-21T07:15:18.123Z", 123000),
        ("2019-02-21T07:15:18.123456Z", 123456),
        ("2019-02-21T07:15:18.07272933Z", 72729),
        ("2019-02-21T07:15:18.999999999Z", 999999),
        ("2019-02-21T07:15:18.5+00:00", 500000),
        ("2019-02-21T07:15:18.25-00:00", 250000),
        ("2019-02-21t07:15:18.1z", 100000),
        ("2019-02-21T07:15:18.123", 123000),
    ],
)
def test_timestamps_with_any_fraction_digits(text: str, expected_microsecond: int) -> None:
    parsed = parse_timestamp(text)

    assert parsed == datetime(2019, 2, 21, 7, 15, 18, expected_microsecond, tzinfo=UTC)
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-02-21T09:15:18.5+02:00", datetime(2019, 2, 21, 7, 15, 18, 500000, tzinfo=UTC)),
        ("2019-02-21T02:15:18-0500", datetime(2019, 2, 21, 7, 15, 18, tzinfo=UTC)),
        ("2019-02-21T12:45:18.07272933+05:30", datetime(2019, 2, 21, 7, 15, 18, 72729, tzinfo=UTC)),
        ("2019-02-21 07:15:18Z", datetime(2019, 2, 21, 7, 15, 18, tzinfo=UTC)),
        ("2019-02-21", datetime(2019, 2, 21, tzinfo=UTC)),
    ],
)
def test_timestamps_with_offsets_become_utc(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)

    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_parse_timestamp_accepts_datetimes() -> None:
    naive = datetime(2025, 1, 8, 16, 0)
    aware = datetime(2025, 1, 8, 18, 0, tzinfo=timezone(timedelta(hours=2)))

    assert parse_timestamp(naive) == datetime(2025, 1, 8, 16, 0, tzinfo=UTC)
    assert parse_timestamp(aware) == datetime(2025, 1, 8, 16, 0, tzinfo=UTC)
    assert parse_timestamp(aware).tzinfo is UTC


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2019-13-01T00:00:00Z", "2019-02-21T25:00:00Z", "1550733318"]
)
def test_parse_timestamp_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_timestamp(text)


def test_timestamp_type_in_a_model() -> None:
    adapter: TypeAdapter[datetime] = TypeAdapter(Timestamp)

    assert adapter.validate_python("2019-07-01T11:46:45.01Z") == datetime(
        2019, 7, 1, 11, 46, 45, 10000, tzinfo=UTC
    )
    assert adapter.validate_json('"2019-07-01T11:46:45.01Z"').microsecond == 10000
    assert adapter.validate_python(0) == datetime(1970, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError):
        adapter.validate_python("not a time")


def test_item_timestamp_is_utc() -> None:
    parsed = Item.model_validate(
        payloads.item(content_for("SMS"), timestamp="2025-01-08T18:20:00.2+01:00")
    )

    assert parsed.timestamp == datetime(2025, 1, 8, 17, 20, 0, 200000, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# Customers
# --------------------------------------------------------------------------------------------


def test_customer_full_profile() -> None:
    parsed = Customer.model_validate(payloads.customer())

    assert parsed.name == CUSTOMER_NAME
    assert parsed.emails[0].primary is True
    assert parsed.phones[0].region_code == "US"
    assert parsed.phones[0].sms_preference == "ON"
    assert parsed.phones[0].type == "MOBILE"
    assert parsed.external_customer_ids == {"shop-app": "cust-0042"}
    assert parsed.external_customer_id is None
    assert parsed.custom_attributes == {"loyaltyTier": "gold"}
    assert parsed.updated_at == datetime(2025, 1, 9, 10, 1, 44, 903120, tzinfo=UTC)


def test_customer_email_addresses_and_phone_numbers() -> None:
    parsed = Customer.model_validate(
        payloads.customer(
            emails=[
                {"original": CUSTOMER_EMAIL, "normalized": CUSTOMER_EMAIL_NORMALIZED},
                {"original": "Dana.Work@Example.com"},
                {"original": "DANA.EXAMPLE@example.com"},
            ],
            phones=[
                {"original": "(415) 555-0123", "normalized": CUSTOMER_PHONE},
                {"original": "+14155550177"},
            ],
        )
    )

    assert parsed.email_addresses == (CUSTOMER_EMAIL_NORMALIZED, "dana.work@example.com")
    assert parsed.phone_numbers == (CUSTOMER_PHONE, "+14155550177")


def test_legacy_customer_with_external_customer_id_and_missing_lists() -> None:
    legacy = payloads.customer(
        externalCustomerId="ext-7f3a",
        externalCustomerIds=OMIT,
        emails=OMIT,
        phones=OMIT,
        customAttributes=OMIT,
        image=OMIT,
    )

    parsed = Customer.model_validate(legacy)

    assert parsed.external_customer_id == "ext-7f3a"
    assert parsed.external_customer_ids == {}
    assert parsed.emails == ()
    assert parsed.phones == ()
    assert parsed.custom_attributes == {}
    assert parsed.image is None
    assert parsed.email_addresses == ()
    assert parsed.phone_numbers == ()


def test_customer_null_lists_and_objects_become_empty() -> None:
    parsed = Customer.model_validate(
        payloads.customer(emails=None, phones=None, customAttributes=None, externalCustomerIds=None)
    )

    assert (parsed.emails, parsed.phones) == ((), ())
    assert parsed.custom_attributes == {}
    assert parsed.external_customer_ids == {}


def test_customer_with_only_an_id() -> None:
    parsed = Customer.model_validate({"id": CUSTOMER_ID})

    assert parsed.name is None
    assert parsed.created_at is None


def test_customer_without_id_is_invalid() -> None:
    with pytest.raises(ValidationError):
        Customer.model_validate(payloads.customer(id=OMIT))


def test_customer_list_from_search_response() -> None:
    body = json.dumps([payloads.customer(), payloads.customer(id=payloads.make_id("other"))])

    parsed = TypeAdapter(list[Customer]).validate_json(body)

    assert [c.id for c in parsed] == [CUSTOMER_ID, payloads.make_id("other")]


# --------------------------------------------------------------------------------------------
# Conversations and lists
# --------------------------------------------------------------------------------------------


def test_conversation_fields_and_is_open() -> None:
    parsed = Conversation.model_validate(payloads.conversation())

    assert parsed.status == "OPEN"
    assert parsed.is_open
    assert parsed.topic_ids == (payloads.TOPIC_ID,)
    assert parsed.custom_attributes[0].value == "ORD-0042"
    assert parsed.closed_at is None


@pytest.mark.parametrize(
    ("status", "is_open"), [("OPEN", True), ("WAITING", True), ("CLOSED", False), ("SNOOZED", True)]
)
def test_conversation_status_is_free_text(status: str, is_open: bool) -> None:
    parsed = Conversation.model_validate(payloads.conversation(status=status))

    assert parsed.is_open is is_open


def test_closed_conversation_with_missing_lists() -> None:
    parsed = Conversation.model_validate(
        payloads.conversation(
            status="CLOSED",
            closedAt="2025-01-09T09:30:00.07Z",
            agentId=OMIT,
            topicIds=OMIT,
            customAttributes=None,
        )
    )

    assert parsed.closed_at == datetime(2025, 1, 9, 9, 30, 0, 70000, tzinfo=UTC)
    assert parsed.agent_id is None
    assert parsed.topic_ids == ()
    assert parsed.custom_attributes == ()


def test_conversation_list_behaves_like_a_sequence() -> None:
    first = Conversation.model_validate(payloads.conversation())
    second = Conversation.model_validate(
        payloads.conversation(id=payloads.make_id("conversation two"), status="CLOSED")
    )

    listing = ConversationList(conversations=(first, second), truncated=True)

    assert len(listing) == 2
    assert list(listing) == [first, second]
    assert listing[0] == first
    assert listing[-1] == second
    assert listing[0:1] == (first,)
    assert listing.truncated
    assert not ConversationList(conversations=()).truncated
    assert len(ConversationList(conversations=())) == 0


def test_item_list_behaves_like_a_sequence() -> None:
    items = tuple(
        Item.model_validate(payloads.item(content_for(t), id=payloads.make_id(t)))
        for t in ("SMS", "EMAIL", "TOPIC_CHANGE")
    )

    listing = ItemList(items=items)

    assert len(listing) == 3
    assert [i.content_type for i in listing] == ["SMS", "EMAIL", "TOPIC_CHANGE"]
    assert listing[1] is items[1]
    assert listing[1:] == items[1:]
    assert listing.truncated is False
    assert ItemList.model_validate({"items": None}).items == ()


def test_item_list_from_json_array() -> None:
    body = json.dumps([payloads.item(content_for(t)) for t in ALL_TYPES] + [payloads.item({})])

    parsed = TypeAdapter(list[Item]).validate_json(body)

    assert [i.content_type for i in parsed] == [*ALL_TYPES, "UNKNOWN"]


# --------------------------------------------------------------------------------------------
# Export API and transcripts
# --------------------------------------------------------------------------------------------


def test_export_job_completed() -> None:
    parsed = ExportJob.model_validate(payloads.export_job())

    assert parsed.status == "COMPLETED"
    assert parsed.schedule_id == payloads.SCHEDULE_ID
    assert parsed.files == (
        "agents.jsonl",
        "conversation_items.jsonl",
        "customers.jsonl",
        "topics.jsonl",
    )
    assert parsed.parameters is not None
    assert parsed.parameters.type == "CONVERSATIONS"
    assert parsed.parameters.start_at == datetime(2025, 1, 8, tzinfo=UTC)
    assert parsed.parameters.end_at == datetime(2025, 1, 9, tzinfo=UTC)
    assert parsed.updated_at == datetime(2025, 1, 9, 3, 12, 44, 88120, tzinfo=UTC)


@pytest.mark.parametrize("files", [[], None, OMIT])
def test_export_job_with_no_files(files: Any) -> None:
    parsed = ExportJob.model_validate(payloads.export_job(status="IN_PROGRESS", files=files))

    assert parsed.status == "IN_PROGRESS"
    assert parsed.files == ()


def test_export_job_minimal() -> None:
    parsed = ExportJob.model_validate(
        {"id": payloads.JOB_ID, "status": "PENDING", "updatedAt": "2025-01-11T00:00:01Z"}
    )

    assert parsed.schedule_id is None
    assert parsed.parameters is None


def test_export_schedule() -> None:
    parsed = ExportSchedule.model_validate(payloads.export_schedule())

    assert parsed.frequency == "DAILY"
    assert parsed.type == "CONVERSATIONS"
    assert parsed.next_start_at == datetime(2025, 1, 10, tzinfo=UTC)
    assert parsed.updated_at == datetime(2024, 6, 1, 17, 42, 10, 551210, tzinfo=UTC)


def test_voice_transcript_fields_and_text() -> None:
    parsed = VoiceTranscript.model_validate(payloads.voice_transcript())

    assert parsed.customer_id == CUSTOMER_ID
    assert parsed.language == "en"
    assert [p.speaker for p in parsed.paragraphs] == [0, 1]
    assert parsed.paragraphs[0].start_time == pytest.approx(0.52)
    assert parsed.paragraphs[1].end_time == pytest.approx(6.1)
    assert parsed.text == (
        "Thanks for calling Example Shop, this is Avery.\nHi, my teapot arrived chipped."
    )


def test_voice_transcript_without_paragraphs() -> None:
    parsed = VoiceTranscript.model_validate(payloads.voice_transcript(paragraphs=None))

    assert parsed.paragraphs == ()
    assert parsed.text == ""


def test_a_contact_detail_keeps_fields_this_client_does_not_know_and_never_shows_them() -> None:
    from gladly_client.models import CustomerEmail, CustomerPhone
    from gladly_client.resources import _entry

    wire = {"original": "Ann@Example.com", "primary": True, "verifiedBy": "Ann Example"}
    email = CustomerEmail.model_validate(wire)
    # Sent back whole in a PATCH (Gladly replaces the list): nothing Gladly holds is dropped.
    assert _entry(email) == wire
    assert "Ann" not in repr(email)  # neither the address nor the unknown field
    phone = CustomerPhone.model_validate({"original": "+12135550123", "newField": {"a": 1}})
    assert _entry(phone) == {"original": "+12135550123", "newField": {"a": 1}}
    assert "newField" not in repr(phone)
    # An entry that differs only in a field we do not know is another entry.
    assert email != CustomerEmail.model_validate({"original": "Ann@Example.com", "primary": True})
