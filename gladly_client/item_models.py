"""Pydantic models of conversation items and every content type Gladly documents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Literal, TypeAlias, overload

from pydantic import (
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from gladly_client._base import (
    AnyDict,
    GladlyModel,
    NullAsEmptyTuple,
    Seconds,
    StrTuple,
    Timestamp,
    with_raw,
)

CUSTOM_CHANNEL_MESSAGE = "CUSTOM_CHANNEL_MESSAGE"
_GENERIC_TAG = "__generic__"
_UNKNOWN_TYPE = "UNKNOWN"


# --------------------------------------------------------------------------------------------
# Item content
# --------------------------------------------------------------------------------------------


class Attachment(GladlyModel):
    """Metadata of a file attached to an item; `file_size` is in bytes."""

    id: str
    content_type: str | None = None
    filename: str | None = Field(default=None, repr=False)
    file_size: int | None = None


Attachments: TypeAlias = Annotated[tuple[Attachment, ...], NullAsEmptyTuple]


class RecordingSummary(GladlyModel):
    """Gladly's AI summary of a call or voicemail recording."""

    status: str | None = None
    summary: str | None = Field(default=None, repr=False)
    language: str | None = None


class ActivityLink(GladlyModel):
    """The link shown on a customer activity."""

    url: str | None = Field(default=None, repr=False)
    text: str | None = Field(default=None, repr=False)


class BaseContent(GladlyModel):
    """Shared behaviour of every item content model."""

    CONTENT_TYPE: ClassVar[str] = ""

    @property
    def content_type(self) -> str:
        """Gladly's name for this kind of content, e.g. `EMAIL`."""
        return self.CONTENT_TYPE

    @property
    def text(self) -> str | None:
        """The human-readable text of the item, or None when it has none."""
        return None


class ChatMessageContent(BaseContent):
    """A chat message (TEXT, QUICK_REPLY_REQUEST or QUICK_REPLY_RESPONSE)."""

    CONTENT_TYPE: ClassVar[str] = "CHAT_MESSAGE"
    type: Literal["CHAT_MESSAGE"] = "CHAT_MESSAGE"
    message_type: str | None = None
    session_id: str | None = None
    content: str | None = Field(default=None, repr=False)
    message_data: dict[str, Any] | None = Field(default=None, repr=False)
    attachments: Attachments = ()

    @property
    def text(self) -> str | None:
        """The message text."""
        return self.content


class EmailContent(BaseContent):
    """An email; `content` is the plain-text body."""

    CONTENT_TYPE: ClassVar[str] = "EMAIL"
    type: Literal["EMAIL"] = "EMAIL"
    from_: str | None = Field(default=None, alias="from", repr=False)
    to: StrTuple = Field(default=(), repr=False)
    cc: StrTuple = Field(default=(), repr=False)
    bcc: StrTuple = Field(default=(), repr=False)
    subject: str | None = Field(default=None, repr=False)
    content: str | None = Field(default=None, repr=False)
    attachments: Attachments = ()

    @property
    def text(self) -> str | None:
        """The plain-text body."""
        return self.content


class SmsContent(BaseContent):
    """An SMS between two E.164 numbers."""

    CONTENT_TYPE: ClassVar[str] = "SMS"
    type: Literal["SMS"] = "SMS"
    from_: str | None = Field(default=None, alias="from", repr=False)
    to: str | None = Field(default=None, repr=False)
    content: str | None = Field(default=None, repr=False)
    attachments: Attachments = ()

    @property
    def text(self) -> str | None:
        """The message text."""
        return self.content


class PhoneCallContent(BaseContent):
    """A phone call; the recording itself is fetched separately."""

    CONTENT_TYPE: ClassVar[str] = "PHONE_CALL"
    type: Literal["PHONE_CALL"] = "PHONE_CALL"
    from_: str | None = Field(default=None, alias="from", repr=False)
    to: str | None = Field(default=None, repr=False)
    started_at: Timestamp | None = None
    answered_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    recording_status: str | None = None
    recording_url: str | None = None
    recording_duration: Seconds = None
    recording_summary: RecordingSummary | None = None


class VoicemailContent(BaseContent):
    """A voicemail left by a customer."""

    CONTENT_TYPE: ClassVar[str] = "VOICEMAIL"
    type: Literal["VOICEMAIL"] = "VOICEMAIL"
    started_at: Timestamp | None = None
    recording_status: str | None = None
    recording_url: str | None = None
    recording_duration: Seconds = None
    recording_summary: RecordingSummary | None = None


class WhatsAppContent(BaseContent):
    """A WhatsApp message."""

    CONTENT_TYPE: ClassVar[str] = "WHATSAPP"
    type: Literal["WHATSAPP"] = "WHATSAPP"
    content: str | None = Field(default=None, repr=False)
    attachments: Attachments = ()

    @property
    def text(self) -> str | None:
        """The message text."""
        return self.content


class TwitterContent(BaseContent):
    """A Twitter message (channel retired in 2023, old items remain)."""

    CONTENT_TYPE: ClassVar[str] = "TWITTER"
    type: Literal["TWITTER"] = "TWITTER"
    content: str | None = Field(default=None, repr=False)

    @property
    def text(self) -> str | None:
        """The message text."""
        return self.content


class FacebookMessageContent(BaseContent):
    """A Facebook Messenger message."""

    CONTENT_TYPE: ClassVar[str] = "FACEBOOK_MESSAGE"
    type: Literal["FACEBOOK_MESSAGE"] = "FACEBOOK_MESSAGE"
    page_id: str | None = None
    user_id: str | None = Field(default=None, repr=False)
    content: str | None = Field(default=None, repr=False)
    attachments: Attachments = ()

    @property
    def text(self) -> str | None:
        """The message text."""
        return self.content


class InstagramDirectContent(BaseContent):
    """An Instagram direct message."""

    CONTENT_TYPE: ClassVar[str] = "INSTAGRAM_DIRECT"
    type: Literal["INSTAGRAM_DIRECT"] = "INSTAGRAM_DIRECT"
    content: str | None = Field(default=None, repr=False)
    attachments: Attachments = ()

    @property
    def text(self) -> str | None:
        """The message text."""
        return self.content


class ConversationNoteContent(BaseContent):
    """An internal note written by an agent; `body` may be rich text."""

    CONTENT_TYPE: ClassVar[str] = "CONVERSATION_NOTE"
    type: Literal["CONVERSATION_NOTE"] = "CONVERSATION_NOTE"
    body: str | None = Field(default=None, repr=False)
    attachments: Attachments = ()

    @property
    def text(self) -> str | None:
        """The note body."""
        return self.body


class CustomerActivityContent(BaseContent):
    """An activity posted by an integration (survey, issue, email or SMS sent elsewhere)."""

    CONTENT_TYPE: ClassVar[str] = "CUSTOMER_ACTIVITY"
    type: Literal["CUSTOMER_ACTIVITY"] = "CUSTOMER_ACTIVITY"
    activity_type: str | None = None
    title: str | None = Field(default=None, repr=False)
    body: str | None = Field(default=None, repr=False)
    source_name: str | None = None
    link: ActivityLink | None = None
    expand_by_default: bool | None = None
    occurred_at: Timestamp | None = None
    received_at: Timestamp | None = None

    @property
    def text(self) -> str | None:
        """The activity body."""
        return self.body


class TopicChangeContent(BaseContent):
    """Topics added to or removed from the conversation."""

    CONTENT_TYPE: ClassVar[str] = "TOPIC_CHANGE"
    type: Literal["TOPIC_CHANGE"] = "TOPIC_CHANGE"
    added_topic_ids: StrTuple = ()
    removed_topic_ids: StrTuple = ()


class ConversationStatusChangeContent(BaseContent):
    """The conversation was opened or closed."""

    CONTENT_TYPE: ClassVar[str] = "CONVERSATION_STATUS_CHANGE"
    type: Literal["CONVERSATION_STATUS_CHANGE"] = "CONVERSATION_STATUS_CHANGE"
    status: str | None = None


class VoiceAiMessageContent(BaseContent):
    """A spoken message in a voice AI session (the item's `session_id` names the session)."""

    CONTENT_TYPE: ClassVar[str] = "VOICE_AI_MESSAGE"
    type: Literal["VOICE_AI_MESSAGE"] = "VOICE_AI_MESSAGE"
    company_number: str | None = Field(default=None, repr=False)
    customer_number: str | None = Field(default=None, repr=False)
    body: str | None = Field(default=None, repr=False)
    status: str | None = None

    @property
    def text(self) -> str | None:
        """What was said."""
        return self.body


class CustomChannelMessageContent(BaseContent):
    """A custom channel message.

    Gladly sends `type` TEXT or FILES here, not a channel name; that value is kept in
    `message_type`, and `type` is always CUSTOM_CHANNEL_MESSAGE.
    """

    CONTENT_TYPE: ClassVar[str] = CUSTOM_CHANNEL_MESSAGE
    type: Literal["CUSTOM_CHANNEL_MESSAGE"] = "CUSTOM_CHANNEL_MESSAGE"
    custom_channel_id: str
    company_address: str | None = None
    customer_address: str | None = Field(default=None, repr=False)
    session_id: str | None = None
    message_type: str | None = None
    content: AnyDict = Field(default_factory=dict, repr=False)
    status: dict[str, Any] | None = None
    group_id: str | None = None
    group_name: str | None = Field(default=None, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _move_raw_type(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        raw_type = data.get("type")
        if raw_type == CUSTOM_CHANNEL_MESSAGE:
            return data
        moved = {k: v for k, v in data.items() if k != "type"}
        if "messageType" not in moved and "message_type" not in moved:
            moved["messageType"] = raw_type
        return moved

    @property
    def text(self) -> str | None:
        """The text, or the caption of a FILES message."""
        for key in ("text", "caption"):
            value = self.content.get(key)
            if isinstance(value, str):
                return value
        return None


class GenericContent(BaseContent):
    """Content of a type this client does not know; the original dict is kept in `raw`."""

    type: str
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _keep_raw(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if set(data) == {"type", "raw"} and isinstance(data["raw"], dict):
            return data  # already in this model's own shape (e.g. a model_dump round trip)
        raw_type = data.get("type")
        return {
            "type": raw_type if isinstance(raw_type, str) and raw_type else _UNKNOWN_TYPE,
            "raw": dict(data),
        }

    @property
    def content_type(self) -> str:
        """The type name Gladly sent (UNKNOWN when it sent none)."""
        return self.type


_CONTENT_MODELS: tuple[type[BaseContent], ...] = (
    ChatMessageContent,
    EmailContent,
    SmsContent,
    PhoneCallContent,
    VoicemailContent,
    WhatsAppContent,
    TwitterContent,
    FacebookMessageContent,
    InstagramDirectContent,
    ConversationNoteContent,
    CustomerActivityContent,
    TopicChangeContent,
    ConversationStatusChangeContent,
    VoiceAiMessageContent,
    CustomChannelMessageContent,
)

KNOWN_CONTENT_TYPES: frozenset[str] = frozenset(m.CONTENT_TYPE for m in _CONTENT_MODELS)
"""Every `content_type` with a dedicated model (custom channel included)."""


def _content_tag(value: Any) -> str:
    if isinstance(value, dict):
        if "customChannelId" in value or "custom_channel_id" in value:
            return CUSTOM_CHANNEL_MESSAGE
        raw_type = value.get("type")
        if isinstance(raw_type, str) and raw_type in KNOWN_CONTENT_TYPES:
            return raw_type
        return _GENERIC_TAG
    if isinstance(value, BaseContent) and not isinstance(value, GenericContent):
        return value.CONTENT_TYPE
    return _GENERIC_TAG


ItemContent: TypeAlias = Annotated[
    Annotated[ChatMessageContent, Tag("CHAT_MESSAGE")]
    | Annotated[EmailContent, Tag("EMAIL")]
    | Annotated[SmsContent, Tag("SMS")]
    | Annotated[PhoneCallContent, Tag("PHONE_CALL")]
    | Annotated[VoicemailContent, Tag("VOICEMAIL")]
    | Annotated[WhatsAppContent, Tag("WHATSAPP")]
    | Annotated[TwitterContent, Tag("TWITTER")]
    | Annotated[FacebookMessageContent, Tag("FACEBOOK_MESSAGE")]
    | Annotated[InstagramDirectContent, Tag("INSTAGRAM_DIRECT")]
    | Annotated[ConversationNoteContent, Tag("CONVERSATION_NOTE")]
    | Annotated[CustomerActivityContent, Tag("CUSTOMER_ACTIVITY")]
    | Annotated[TopicChangeContent, Tag("TOPIC_CHANGE")]
    | Annotated[ConversationStatusChangeContent, Tag("CONVERSATION_STATUS_CHANGE")]
    | Annotated[VoiceAiMessageContent, Tag("VOICE_AI_MESSAGE")]
    | Annotated[CustomChannelMessageContent, Tag(CUSTOM_CHANNEL_MESSAGE)]
    | Annotated[GenericContent, Tag(_GENERIC_TAG)],
    Discriminator(_content_tag),
]
"""Any item content; unknown `content.type`s become `GenericContent` instead of failing."""

# --------------------------------------------------------------------------------------------
# Items
# --------------------------------------------------------------------------------------------


class Initiator(GladlyModel):
    """Who started or answered an item; `type` is kept as text (AGENT, CUSTOMER, SYSTEM, ...)."""

    id: str | None = None
    type: str


class Item(GladlyModel):
    """A conversation item (one message, call, note, ...) with its complete original JSON."""

    id: str
    customer_id: str
    conversation_id: str | None = None
    timestamp: Timestamp
    initiator: Initiator | None = None
    responder: Initiator | None = None
    session_id: str | None = None
    content: ItemContent
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _keep_raw(cls, data: Any) -> Any:
        return with_raw(data)

    @property
    def content_type(self) -> str:
        """Gladly's content type name, e.g. `EMAIL` or `CUSTOM_CHANNEL_MESSAGE`."""
        return self.content.content_type

    @property
    def text(self) -> str | None:
        """The human-readable text of the content, or None when it has none."""
        return self.content.text


class ItemList(GladlyModel):
    """A conversation's items; `truncated` when Gladly sent `Gladly-Limited-Data`."""

    items: Annotated[tuple[Item, ...], NullAsEmptyTuple] = ()
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:  # type: ignore[override]
        return iter(self.items)

    @overload
    def __getitem__(self, index: int) -> Item: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Item, ...]: ...

    def __getitem__(self, index: int | slice) -> Item | tuple[Item, ...]:
        return self.items[index]
