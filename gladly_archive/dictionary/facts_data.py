"""The data dictionary's entries for facts enrichment fetches: conversations, customer profiles."""

from __future__ import annotations

from gladly_archive.dictionary.terms import NONE, PERSONAL, PSEUDONYMOUS, Column, DatasetEntry

__all__ = ["ENTRIES"]

# A conversation's facts come from one of two answers; each source names both.
_REPORT = "Gladly API POST /api/v1/reports (ConversationExportReport): "
_GET = "Gladly API GET /api/v1/conversations/{id}: "


def _conversation_source(report_column: str, field: str) -> str:
    return f"{_REPORT}{report_column}; {_GET}{field}"


CONVERSATIONS = DatasetEntry(
    directory="conversations/",
    summary=(
        "Facts about a conversation that export files lack (inbox, status, topics, assigned "
        "agent), fetched by `enrich`: in bulk from Gladly's ConversationExportReport, one "
        "report per window of creation days, or, within 24 hours of the last pass, one GET "
        "per conversation Gladly's events say changed. Only conversations the archive knows "
        "(or of customers it knows) are kept, and a row is written only when a fact changed. "
        "The report's column headers can be remapped (`enrich --report-columns`); the sources "
        "below name the defaults."
    ),
    layout=(
        "`conversations/run=<enrich run id>-NNNN/`, then `conversations/run=folded/<bucket>/` "
        "once folded."
    ),
    reading="Keep the newest fetched_at per conversation_id.",
    columns={
        "conversation_id": Column(
            "Gladly's id of the conversation.",
            _conversation_source("Conversation ID", "id"),
            NONE,
        ),
        "customer_id": Column(
            "Gladly's id of the conversation's customer.",
            _conversation_source("Customer ID", "customerId"),
            PSEUDONYMOUS,
        ),
        "inbox_id": Column(
            "The inbox the conversation was in when fetched; NULL when Gladly gave none.",
            _conversation_source("Inbox ID - Current", "inboxId"),
            NONE,
        ),
        "status": Column(
            "OPEN, WAITING or CLOSED when fetched (upper case); NULL when Gladly gave none.",
            _conversation_source("Status", "status"),
            NONE,
        ),
        "created_at": Column(
            "When the conversation was created (UTC).",
            _conversation_source("Created At", "createdAt"),
            NONE,
        ),
        "closed_at": Column(
            "When the conversation was last closed (UTC); NULL when it never was.",
            _conversation_source("Last Closed At", "closedAt"),
            NONE,
        ),
        "topic_ids": Column(
            "The ids of its topics when fetched, sorted; an empty list when it has none.",
            _conversation_source("Topic IDs", "topicIds"),
            NONE,
        ),
        "agent_id": Column(
            "The assigned agent's Gladly id when fetched; NULL when none is assigned.",
            _conversation_source("Assigned Agent ID - Current", "agentId"),
            PSEUDONYMOUS,
        ),
        "fetched_at": Column(
            "When the facts were read (UTC): the newest per conversation is the current one.",
            "pipeline: the enrichment run's clock",
            NONE,
        ),
    },
)

_EVENTS = "Gladly API GET /api/v1/events"
_PROFILE = "Gladly API GET /api/v1/customer-profiles/{id}"

CUSTOMER_PROFILES = DatasetEntry(
    directory="customer_profiles/",
    summary=(
        "Profile facts export files lack, fetched by `enrich`: a customer's custom attributes "
        "(one GET per profile, only for the customers a policy needs), and marker rows for "
        "Gladly's events CUSTOMER_PROFILE/UPDATED, CUSTOMER_PROFILE/DELETED and "
        "CUSTOMER/MERGED, after which the attributes are unknown until fetched again."
    ),
    layout=(
        "`customer_profiles/run=<enrich run id>-profiles/` (profiles read) and "
        "`customer_profiles/run=<enrich run id>-NNNN/` (events' rows), then "
        "`customer_profiles/run=folded/<bucket>/` once folded."
    ),
    reading=(
        "Keep the newest fetched_at per customer_id; when that row is an event's (event not "
        "NULL), the customer's attributes are unknown."
    ),
    columns={
        "customer_id": Column(
            "Gladly's id of the customer.",
            f"{_PROFILE}: id; {_EVENTS}: content.customerId, content.sourceCustomerId, "
            "content.destinationCustomerId",
            PSEUDONYMOUS,
        ),
        "custom_attributes_json": Column(
            "The profile's custom attributes as a JSON object (keys sorted); NULL in an "
            "event's row: unknown as of fetched_at.",
            f"{_PROFILE}: customAttributes",
            PERSONAL,
        ),
        "updated_at": Column(
            "When Gladly last changed the profile (UTC); in an event's row, the event's time.",
            f"{_PROFILE}: updatedAt; {_EVENTS}: timestamp",
            NONE,
        ),
        "fetched_at": Column(
            "When the profile was read (UTC), or the event's time in an event's row.",
            f"pipeline: the enrichment run's clock; {_EVENTS}: timestamp",
            NONE,
        ),
        "event": Column(
            "NULL for a profile read with GET; else the event the row records: "
            "CUSTOMER_PROFILE/UPDATED, CUSTOMER_PROFILE/DELETED or CUSTOMER/MERGED.",
            f"{_EVENTS}: type",
            NONE,
        ),
        "merged_into": Column(
            "In the CUSTOMER/MERGED row of the customer merged away: the surviving customer's "
            "id; NULL otherwise.",
            f"{_EVENTS}: content.destinationCustomerId",
            PSEUDONYMOUS,
        ),
    },
)

ENTRIES = {"conversations": CONVERSATIONS, "customer_profiles": CUSTOMER_PROFILES}
