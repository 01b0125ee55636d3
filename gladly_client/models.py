"""Pydantic models of Gladly's customers, conversations, items, exports, transcripts, directory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, overload

from pydantic import (
    ConfigDict,
    Field,
    model_validator,
)

from gladly_client._base import (
    AnyDict,
    GladlyModel,
    NullAsEmptyTuple,
    StrDict,
    StrTuple,
    Timestamp,
    parse_timestamp,
    with_raw,
)
from gladly_client.item_models import (
    CUSTOM_CHANNEL_MESSAGE,
    KNOWN_CONTENT_TYPES,
    ActivityLink,
    Attachment,
    BaseContent,
    ChatMessageContent,
    ConversationNoteContent,
    ConversationStatusChangeContent,
    CustomChannelMessageContent,
    CustomerActivityContent,
    EmailContent,
    FacebookMessageContent,
    GenericContent,
    Initiator,
    InstagramDirectContent,
    Item,
    ItemContent,
    ItemList,
    PhoneCallContent,
    RecordingSummary,
    SmsContent,
    TopicChangeContent,
    TwitterContent,
    VoiceAiMessageContent,
    VoicemailContent,
    WhatsAppContent,
)

__all__ = [
    "CUSTOM_CHANNEL_MESSAGE",
    "KNOWN_CONTENT_TYPES",
    "ActivityLink",
    "Agent",
    "Attachment",
    "BaseContent",
    "ChatMessageContent",
    "Conversation",
    "ConversationCustomAttribute",
    "ConversationList",
    "ConversationNoteContent",
    "ConversationStatusChangeContent",
    "CustomChannelMessageContent",
    "Customer",
    "CustomerActivityContent",
    "CustomerEmail",
    "CustomerPhone",
    "EmailContent",
    "ExportJob",
    "ExportJobParameters",
    "ExportSchedule",
    "FacebookMessageContent",
    "GenericContent",
    "GladlyModel",
    "Inbox",
    "Initiator",
    "InstagramDirectContent",
    "Item",
    "ItemContent",
    "ItemList",
    "PhoneCallContent",
    "RecordingSummary",
    "SmsContent",
    "Timestamp",
    "Topic",
    "TopicChangeContent",
    "TwitterContent",
    "VoiceAiMessageContent",
    "VoiceTranscript",
    "VoiceTranscriptParagraph",
    "VoicemailContent",
    "WhatsAppContent",
    "parse_timestamp",
]


# --------------------------------------------------------------------------------------------
# Customers
# --------------------------------------------------------------------------------------------


class _ContactDetail(GladlyModel):
    """An email or phone entry, kept whole: fields this client does not know are kept too, so
    that a PATCH sending the entry back (Gladly replaces the whole list) loses nothing. They
    never show in a repr (they may be personal)."""

    model_config = ConfigDict(extra="allow")

    def __repr_args__(self) -> Any:
        known = type(self).model_fields
        return [(name, value) for name, value in super().__repr_args__() if name in known]


class CustomerEmail(_ContactDetail):
    """One email address of a customer profile."""

    original: str = Field(repr=False)
    normalized: str | None = Field(default=None, repr=False)
    primary: bool | None = None


class CustomerPhone(_ContactDetail):
    """One phone number of a customer profile (`normalized` is E.164)."""

    original: str = Field(repr=False)
    normalized: str | None = Field(default=None, repr=False)
    extension: str | None = Field(default=None, repr=False)
    region_code: str | None = None
    primary: bool | None = None
    sms_preference: str | None = None
    type: str | None = None


class Customer(GladlyModel):
    """A Gladly customer profile. Personal fields are kept out of `repr()`."""

    id: str
    name: str | None = Field(default=None, repr=False)
    image: str | None = Field(default=None, repr=False)
    address: str | None = Field(default=None, repr=False)
    emails: Annotated[tuple[CustomerEmail, ...], NullAsEmptyTuple] = Field(default=(), repr=False)
    phones: Annotated[tuple[CustomerPhone, ...], NullAsEmptyTuple] = Field(default=(), repr=False)
    external_customer_id: str | None = Field(default=None, repr=False)
    external_customer_ids: StrDict = Field(default_factory=dict, repr=False)
    custom_attributes: AnyDict = Field(default_factory=dict, repr=False)
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None

    @property
    def email_addresses(self) -> tuple[str, ...]:
        """Lower-cased addresses (normalized form when known), without duplicates, in order."""
        addresses = ((e.normalized or e.original).strip().lower() for e in self.emails)
        return tuple(dict.fromkeys(a for a in addresses if a))

    @property
    def phone_numbers(self) -> tuple[str, ...]:
        """Phone numbers (E.164 when Gladly normalized them), without duplicates, in order."""
        numbers = ((p.normalized or p.original).strip() for p in self.phones)
        return tuple(dict.fromkeys(n for n in numbers if n))


# --------------------------------------------------------------------------------------------
# Conversations
# --------------------------------------------------------------------------------------------


class ConversationCustomAttribute(GladlyModel):
    """A custom attribute set on a conversation; the value may be personal and is not shown."""

    id: str
    value: Any = Field(default=None, repr=False)


class Conversation(GladlyModel):
    """A conversation: status is OPEN, WAITING or CLOSED (kept as text for future values)."""

    id: str
    customer_id: str
    agent_id: str | None = None
    inbox_id: str
    status: str
    created_at: Timestamp
    closed_at: Timestamp | None = None
    topic_ids: StrTuple = ()
    custom_attributes: Annotated[tuple[ConversationCustomAttribute, ...], NullAsEmptyTuple] = ()

    @property
    def is_open(self) -> bool:
        """True unless the conversation is CLOSED (WAITING counts as open)."""
        return self.status != "CLOSED"


class ConversationList(GladlyModel):
    """A customer's conversations; `truncated` when Gladly sent `Gladly-Limited-Data`."""

    conversations: Annotated[tuple[Conversation, ...], NullAsEmptyTuple] = ()
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.conversations)

    def __iter__(self) -> Iterator[Conversation]:  # type: ignore[override]
        return iter(self.conversations)

    @overload
    def __getitem__(self, index: int) -> Conversation: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Conversation, ...]: ...

    def __getitem__(self, index: int | slice) -> Conversation | tuple[Conversation, ...]:
        return self.conversations[index]


# --------------------------------------------------------------------------------------------
# Export API
# --------------------------------------------------------------------------------------------


class ExportJobParameters(GladlyModel):
    """The window an export job covers."""

    type: str | None = None
    start_at: Timestamp
    end_at: Timestamp


class ExportJob(GladlyModel):
    """An export job: PENDING, IN_PROGRESS, COMPLETED or FAILED; `files` name its JSONL files."""

    id: str
    schedule_id: str | None = None
    status: str
    updated_at: Timestamp
    parameters: ExportJobParameters | None = None
    files: StrTuple = ()


class ExportSchedule(GladlyModel):
    """The organisation's export schedule (HOURLY or DAILY)."""

    id: str
    frequency: str | None = None
    type: str | None = None
    next_start_at: Timestamp | None = None
    updated_at: Timestamp | None = None


# --------------------------------------------------------------------------------------------
# Voice transcripts
# --------------------------------------------------------------------------------------------


class VoiceTranscriptParagraph(GladlyModel):
    """One paragraph of a call transcript; times are seconds from the start of the recording."""

    transcript: str = Field(default="", repr=False)
    speaker: int | None = None
    start_time: float
    end_time: float


class VoiceTranscript(GladlyModel):
    """The transcript of a phone call or voicemail recording."""

    paragraphs: Annotated[tuple[VoiceTranscriptParagraph, ...], NullAsEmptyTuple] = ()
    customer_id: str | None = None
    number_of_speakers: int | None = None
    language: str | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None

    @property
    def text(self) -> str:
        """All paragraphs, one per line."""
        return "\n".join(p.transcript for p in self.paragraphs if p.transcript)


# --------------------------------------------------------------------------------------------
# The organisation's directory: agents, topics, inboxes (GET /agents, /topics, /inboxes)
# --------------------------------------------------------------------------------------------


class _DirectoryEntry(GladlyModel):
    """An entry of one of the directory lists, with the object exactly as Gladly sent it."""

    id: str
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _keep_raw(cls, data: Any) -> Any:
        return with_raw(data)


class Agent(_DirectoryEntry):
    """An agent. Name and login email are a person's data and are kept out of `repr()`."""

    name: str | None = Field(default=None, repr=False)
    email_address: str | None = Field(default=None, repr=False)


class Topic(_DirectoryEntry):
    """A topic; `parent_id` names its parent in the topic hierarchy.

    `disabled` is None when Gladly left it out: unknown is not "enabled".
    """

    name: str | None = None
    disabled: bool | None = None
    parent_id: str | None = None


class Inbox(_DirectoryEntry):
    """An inbox; `disabled` is None when Gladly left it out."""

    name: str | None = None
    disabled: bool | None = None


class Event(GladlyModel):
    """One entry of `GET /events`: what changed, when, and the ids it concerns (`content`)."""

    id: str
    type: str
    timestamp: Timestamp
    content: dict[str, Any] = Field(default_factory=dict)
    initiator: dict[str, Any] | None = None


@dataclass(frozen=True)
class Report:
    """A report (`POST /reports`) as Gladly sent it: the CSV header and its rows, as text.

    The columns are the report's, undocumented per metric set; callers look theirs up with
    `index` and fail when one is missing rather than guess.
    """

    metric_set: str
    start: date
    end: date
    header: tuple[str, ...]
    rows: list[list[str]]

    def index(self, column: str) -> int | None:
        """The position of `column` (compared without surrounding blanks), None if absent."""
        wanted = column.strip()
        for position, name in enumerate(self.header):
            if name.strip() == wanted:
                return position
        return None
