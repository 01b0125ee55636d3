"""The data dictionary's entries for what people said: items and transcripts."""

from __future__ import annotations

from gladly_archive.dictionary.terms import NONE, PERSONAL, PSEUDONYMOUS, Column, DatasetEntry

__all__ = ["ENTRIES"]

_ITEMS_FILE = "export file conversation_items.jsonl"
_PIPELINE_JOB = Column(
    "The export job that brought the row, or the per-customer run (`api-…`) that fetched it.",
    "pipeline: the job's or run's id",
    NONE,
)
_PIPELINE_ARCHIVED = Column(
    "When the run that archived the row started (UTC); every row of one run has the same.",
    "pipeline: the run's clock",
    NONE,
)
_AGENT_NAME_SOURCE = (
    "derived: agent_id named by the export job's agents.jsonl, else the archive's newest agents row"
)
_FACTS_SOURCE = "derived: the conversation's newest conversations row, named by inboxes"
_TOPICS_SOURCE = "derived: the conversation's newest conversations row, named by topics"

ITEMS = DatasetEntry(
    directory="items/",
    summary=(
        "One row per conversation item: a message, email, call, voicemail, note, customer "
        "activity, status or topic change. It holds the item's ids, time, parties, the text a "
        "person reads and the original JSON. Rows come from each export job's "
        "`conversation_items.jsonl`; rows of a per-customer run (`job_id` `api-…`) come from "
        "GET /api/v1/conversations/{id}/items, which has the same shape, with call transcripts "
        "from GET /api/v1/conversation-items/{id}/voice-transcript."
    ),
    layout=(
        "`items/YYYY-MM-DD/` (the item's UTC day) for recent rows; about once a month rows older "
        "than a month move to `items/folded/<bucket>/` (one file per bucket of about 500 "
        "customers). Rows are moved, never changed: read `items/**/*.parquet`."
    ),
    reading=(
        "An item has one row: a job that exports it again replaces the earlier copy when it "
        "commits. A redacted item keeps its row with its text columns NULL; a deleted one "
        "has none."
    ),
    columns={
        "item_id": Column(
            "Gladly's id of the item; unique in the dataset.", f"{_ITEMS_FILE}: id", NONE
        ),
        "conversation_id": Column(
            "The conversation the item belongs to; NULL for a customer activity, which belongs "
            "to no conversation.",
            f"{_ITEMS_FILE}: conversationId",
            NONE,
        ),
        "customer_id": Column(
            "Gladly's id of the customer whose timeline holds the item.",
            f"{_ITEMS_FILE}: customerId",
            PSEUDONYMOUS,
        ),
        "session_id": Column(
            "The contact session: the item's sessionId (voice AI), else its content's "
            "(chat, custom channel); NULL for other channels.",
            f"{_ITEMS_FILE}: sessionId, content.sessionId",
            NONE,
        ),
        "timestamp": Column(
            "When the item happened, UTC, to the microsecond (finer digits are cut off).",
            f"{_ITEMS_FILE}: timestamp",
            NONE,
        ),
        "date": Column(
            "The UTC date of timestamp; the same day as the directory the row was written to.",
            "derived: timestamp's UTC date",
            NONE,
        ),
        "initiator_id": Column(
            "Who started the item: a customer's or agent's Gladly id, or a system's name such "
            "as SIDEKICK_V2; NULL when Gladly names none.",
            f"{_ITEMS_FILE}: initiator.id",
            PSEUDONYMOUS,
        ),
        "initiator_type": Column(
            "The initiator's kind: CUSTOMER, AGENT, API, SYSTEM and so on.",
            f"{_ITEMS_FILE}: initiator.type",
            NONE,
        ),
        "responder_id": Column(
            "Who answered, e.g. the agent who took a call: a Gladly id; NULL without responder.",
            f"{_ITEMS_FILE}: responder.id",
            PSEUDONYMOUS,
        ),
        "responder_type": Column(
            "The responder's kind (AGENT, …); NULL without responder.",
            f"{_ITEMS_FILE}: responder.type",
            NONE,
        ),
        "content_type": Column(
            "The item's type: CHAT_MESSAGE, EMAIL, SMS, PHONE_CALL, VOICEMAIL, WHATSAPP, "
            "CONVERSATION_NOTE, CUSTOMER_ACTIVITY, TOPIC_CHANGE, CONVERSATION_STATUS_CHANGE, "
            "VOICE_AI_MESSAGE, …; CUSTOM_CHANNEL_MESSAGE for a custom channel's message.",
            f"{_ITEMS_FILE}: content.type (content.customChannelId marks a custom channel)",
            NONE,
        ),
        "message_type": Column(
            "A chat message's messageType (TEXT, QUICK_REPLY_REQUEST, QUICK_REPLY_RESPONSE, …); "
            "for a custom-channel message its own type (TEXT or FILES); NULL otherwise.",
            f"{_ITEMS_FILE}: content.messageType, content.type",
            NONE,
        ),
        "channel": Column(
            "A readable channel name: Chat, Email, SMS, Phone call, Voicemail, WhatsApp, "
            "Facebook Messenger, Instagram Direct, Twitter, Custom channel, Voice AI, Note, "
            "Customer activity, Topic change, Status change; else the content type itself.",
            "derived: content_type",
            NONE,
        ),
        "internal": Column(
            "True for an internal note (CONVERSATION_NOTE), which the customer never sees; "
            "false for every other item (never NULL).",
            "derived: content_type",
            NONE,
        ),
        "agent_id": Column(
            "The agent who wrote or answered the item: the initiator when it is an AGENT, else "
            "the responder when that is an AGENT; NULL otherwise.",
            "derived: initiator_id, initiator_type, responder_id, responder_type",
            PSEUDONYMOUS,
        ),
        "agent_name": Column(
            "That agent's name as known when the row was written (a later rename does not "
            "change it); NULL when the agent is unknown.",
            _AGENT_NAME_SOURCE,
            PERSONAL,
        ),
        "inbox_name": Column(
            "The conversation's inbox name from the newest conversation facts enrichment "
            "fetched: set when the row is written, and again by every enrichment pass that "
            "reads the conversation's facts; NULL before the conversation was enriched.",
            _FACTS_SOURCE,
            NONE,
        ),
        "topic_names": Column(
            "The names of the conversation's topics (sorted), kept current like inbox_name; "
            "an empty list for a conversation without topics, NULL before it was enriched.",
            _TOPICS_SOURCE,
            NONE,
        ),
        "text": Column(
            "What a person reads: the message, the email body (HTML turned into plain text, "
            "quoted replies trimmed; the original stays in raw_json), a note's or activity's "
            "body (HTML likewise), a voice-AI line, a custom channel's text or caption, a call's "
            "transcript where one was fetched, or what a topic or status change did (topics by "
            "name). NULL when the item has none, and in a redacted item.",
            f"{_ITEMS_FILE}: content.content, content.content.text, content.content.caption, "
            "content.body; Gladly API GET /api/v1/conversation-items/{id}/voice-transcript: "
            "paragraphs (per-customer runs)",
            PERSONAL,
        ),
        "subject": Column(
            "An email's subject, or a customer activity's title; NULL for other items and in a "
            "redacted item.",
            f"{_ITEMS_FILE}: content.subject, content.title",
            PERSONAL,
        ),
        "from_address": Column(
            "The sender's email address or phone number (email, SMS, call); NULL when Gladly "
            "sends none and in a redacted item.",
            f"{_ITEMS_FILE}: content.from",
            PERSONAL,
        ),
        "to_addresses": Column(
            "The recipients' email addresses, or the number texted or called as a list of one; "
            "NULL when Gladly sends none and in a redacted item.",
            f"{_ITEMS_FILE}: content.to",
            PERSONAL,
        ),
        "cc_addresses": Column(
            "An email's cc addresses; NULL when Gladly sends none and in a redacted item.",
            f"{_ITEMS_FILE}: content.cc",
            PERSONAL,
        ),
        "bcc_addresses": Column(
            "An email's bcc addresses; NULL when Gladly sends none and in a redacted item.",
            f"{_ITEMS_FILE}: content.bcc",
            PERSONAL,
        ),
        "call_started_at": Column(
            "When a phone call or voicemail started (UTC); NULL for other items.",
            f"{_ITEMS_FILE}: content.startedAt",
            NONE,
        ),
        "call_answered_at": Column(
            "When the call was answered (UTC); NULL when it was not, and for other items.",
            f"{_ITEMS_FILE}: content.answeredAt",
            NONE,
        ),
        "call_completed_at": Column(
            "When the call ended (UTC); NULL for other items.",
            f"{_ITEMS_FILE}: content.completedAt",
            NONE,
        ),
        "recording_status": Column(
            "The call's or voicemail's recording status (AVAILABLE, DELETED, …); NULL without "
            "recording.",
            f"{_ITEMS_FILE}: content.recordingStatus",
            NONE,
        ),
        "recording_duration_seconds": Column(
            "The recording's length in seconds (Gladly sends a number or numeric text); NULL "
            "without recording.",
            f"{_ITEMS_FILE}: content.recordingDuration",
            NONE,
        ),
        "recording_summary": Column(
            "Gladly's written summary of the call; NULL when there is none and in a redacted item.",
            f"{_ITEMS_FILE}: content.recordingSummary.summary",
            PERSONAL,
        ),
        "activity_type": Column(
            "A customer activity's type (e.g. SURVEY); NULL for other items.",
            f"{_ITEMS_FILE}: content.activityType",
            NONE,
        ),
        "attachments": Column(
            "The item's attachments: id, content_type (MIME type), filename and file_size "
            "(bytes); NULL when the item has no attachments field. A redacted item keeps only "
            "each one's content type and size.",
            f"{_ITEMS_FILE}: content.attachments",
            PERSONAL,
        ),
        "raw_json": Column(
            "The whole item exactly as Gladly sent it (envelope and content), so nothing is "
            "lost; in a redacted item a stub of its ids, time and content type.",
            f"{_ITEMS_FILE}: the whole line",
            PERSONAL,
        ),
        "job_id": _PIPELINE_JOB,
        "archived_at": _PIPELINE_ARCHIVED,
    },
)

TRANSCRIPTS = DatasetEntry(
    directory="transcripts/",
    summary=(
        "One row per conversation: its customer, first and last time, channels, item count "
        "and the readable transcript, built from the conversation's rows in `items/` (customer "
        "activities belong to no conversation and have no transcript). A conversation's row is "
        "rebuilt whenever a job brings items of it, and when one of its items is redacted or "
        "deleted."
    ),
    layout=(
        "`transcripts/recent/` for recent rows (an archive an earlier release wrote may still "
        "hold `transcripts/shard-NN/` directories of them), `transcripts/folded/<bucket>/` once "
        "folded: read `transcripts/**/*.parquet`."
    ),
    reading="A conversation has one row.",
    columns={
        "conversation_id": Column(
            "Gladly's id of the conversation; unique in the dataset.",
            "derived: items.conversation_id",
            NONE,
        ),
        "customer_id": Column(
            "The customer of the conversation's latest item.",
            "derived: items.customer_id",
            PSEUDONYMOUS,
        ),
        "first_timestamp": Column(
            "The time of the conversation's first archived item (UTC).",
            "derived: items.timestamp",
            NONE,
        ),
        "last_timestamp": Column(
            "The time of its last archived item (UTC).",
            "derived: items.timestamp",
            NONE,
        ),
        "channels": Column(
            "The distinct content types of its items, in order of first appearance.",
            "derived: items.content_type",
            NONE,
        ),
        "item_count": Column("How many of its items the archive holds.", "derived: items", NONE),
        "transcript": Column(
            "One line per item in time order, `2025-01-08T16:02:11Z · Chat · Customer · text` "
            "(time to the second · channel · who · text); who is Customer, the agent's name, "
            "`Internal note (<agent name>)` for a note, `Agent <id>` for an agent not in any "
            "listing, else System, Integration, Automation or the initiator type. Calls and "
            "voicemails say "
            "their duration and recording status, attachments are listed by file name, an item "
            "without text shows `[<channel>]`; line breaks become spaces.",
            "derived: items.timestamp, channel, initiator_type, agent_name, internal, text, "
            "recording_duration_seconds, recording_status, attachments",
            PERSONAL,
        ),
        "built_at": Column("When this row was built (UTC).", "pipeline: the run's clock", NONE),
        "agent_name": Column(
            "The name of the agent of the conversation's latest agent line (who last wrote or "
            "answered); NULL when no agent line is named.",
            "derived: items.agent_name",
            PERSONAL,
        ),
        "agent_names": Column(
            "The names of the agents who wrote in the conversation, in order of first appearance.",
            "derived: items.agent_name",
            PERSONAL,
        ),
        "inbox_name": Column(
            "The conversation's inbox name, kept current like items.inbox_name (set when the "
            "transcript is built, and again by every enrichment pass that reads the "
            "conversation's facts); NULL before the conversation was enriched.",
            _FACTS_SOURCE,
            NONE,
        ),
        "topic_names": Column(
            "The names of the conversation's topics (sorted), kept current like inbox_name; "
            "NULL before the conversation was enriched.",
            _TOPICS_SOURCE,
            NONE,
        ),
        "internal_notes": Column(
            "How many of the transcript's lines are internal notes.",
            "derived: items.internal",
            NONE,
        ),
    },
)

ENTRIES = {"items": ITEMS, "transcripts": TRANSCRIPTS}
