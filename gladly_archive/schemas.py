"""Every dataset's explicit, versioned Arrow schema: the archive's contract with its readers."""

from __future__ import annotations

import pyarrow as pa

from gladly_archive.dictionary import describe

__all__ = [
    "AGENTS",
    "ATTACHMENT",
    "CONVERSATIONS",
    "CONVERTED_ITEMS",
    "CUSTOMERS",
    "CUSTOMER_FILES",
    "CUSTOMER_PROFILES",
    "DATASETS",
    "INBOXES",
    "ITEMS",
    "MANIFEST",
    "MANIFEST_FILE",
    "QUARANTINE",
    "REFILL_WATCH",
    "SCHEMA_VERSION",
    "TOMBSTONES",
    "TOPICS",
    "TRANSCRIPTS",
    "UTC_MICROS",
    "with_metadata",
]

# Bump when a column is added, removed or changes type; readers compare it from file metadata.
# 2: items carry `date`; the folded tier (docs/erasure-layout.md). 3: readable transcripts, names
# and plain text (item_derive), directories without Hive keys (`gladly-pipeline migrate`).
SCHEMA_VERSION = 3

UTC_MICROS = pa.timestamp("us", tz="UTC")
_STRINGS = pa.list_(pa.string())


def with_metadata(name: str, schema: pa.Schema) -> pa.Schema:
    """Stamp a schema with its dataset name and version, and each field with its description,
    source and personal level from the data dictionary (all kept in every Parquet file's
    footer); raises DictionaryError when a column and the dictionary disagree."""
    return describe(name, schema).with_metadata(
        {
            b"gladly_pipeline.dataset": name.encode(),
            b"gladly_pipeline.schema_version": str(SCHEMA_VERSION).encode(),
        }
    )


ATTACHMENT = pa.struct(
    [
        pa.field("id", pa.string()),
        pa.field("content_type", pa.string()),
        pa.field("filename", pa.string()),
        pa.field("file_size", pa.int64()),
    ]
)

# The item columns the converters read from Gladly's JSON (gladly_archive.convert); ITEMS adds
# the columns gladly_archive.item_derive derives from them and from the archive's listings.
_CONVERTED_FIELDS = [
    pa.field("item_id", pa.string(), nullable=False),
    pa.field("conversation_id", pa.string()),  # absent for CUSTOMER_ACTIVITY items
    pa.field("customer_id", pa.string(), nullable=False),
    pa.field("session_id", pa.string()),  # envelope sessionId, else content.sessionId
    pa.field("timestamp", UTC_MICROS, nullable=False),
    pa.field("date", pa.date32(), nullable=False),  # the timestamp's UTC date
    pa.field("initiator_id", pa.string()),
    pa.field("initiator_type", pa.string()),
    pa.field("responder_id", pa.string()),
    pa.field("responder_type", pa.string()),
    pa.field("content_type", pa.string(), nullable=False),
    # Chat messageType; for a custom-channel message its raw TEXT / FILES type.
    pa.field("message_type", pa.string()),
    # What a person reads: message, email body, SMS, note or activity body, voice-AI
    # line, custom-channel text, or a call's transcript where one was fetched. Rich-content
    # HTML becomes plain text and quoted email history is trimmed (gladly_archive.item_text).
    pa.field("text", pa.large_string()),
    pa.field("subject", pa.string()),  # email subject, or a customer activity's title
    pa.field("from_address", pa.string()),
    pa.field("to_addresses", _STRINGS),
    pa.field("cc_addresses", _STRINGS),
    pa.field("bcc_addresses", _STRINGS),
    pa.field("call_started_at", UTC_MICROS),
    pa.field("call_answered_at", UTC_MICROS),
    pa.field("call_completed_at", UTC_MICROS),
    pa.field("recording_status", pa.string()),
    pa.field("recording_duration_seconds", pa.int64()),
    pa.field("recording_summary", pa.large_string()),
    pa.field("activity_type", pa.string()),
    pa.field("attachments", pa.list_(ATTACHMENT)),
    # The complete original item (envelope and content) exactly as Gladly sent it, so
    # nothing is ever lost: json_extract(raw_json, '$.content') gives the content.
    pa.field("raw_json", pa.large_string(), nullable=False),
    pa.field("job_id", pa.string(), nullable=False),  # export job, or "api-…" run
    pa.field("archived_at", UTC_MICROS, nullable=False),
]
_DERIVED_FIELDS = [
    pa.field("channel", pa.string(), nullable=False),  # "Chat", "Email", "Note", …
    pa.field("internal", pa.bool_(), nullable=False),  # an internal note: never customer-facing
    pa.field("agent_id", pa.string()),  # the agent who wrote or answered it
    pa.field("agent_name", pa.string()),  # that agent's name, as known when written
    pa.field("inbox_name", pa.string()),  # the conversation's inbox (conversation facts)
    pa.field("topic_names", _STRINGS),  # the conversation's topics (conversation facts)
]
_AFTER = [f.name for f in _CONVERTED_FIELDS].index("message_type") + 1

CONVERTED_ITEMS = pa.schema(_CONVERTED_FIELDS)

# items/YYYY-MM-DD/… (the item's UTC day) and items/folded/<bucket>/… — one row per item.
ITEMS = with_metadata(
    "items",
    pa.schema([*_CONVERTED_FIELDS[:_AFTER], *_DERIVED_FIELDS, *_CONVERTED_FIELDS[_AFTER:]]),
)

# customers/job-<id>/… and customers/folded/<bucket>/… — the export's flattened customer
# records, one file set per job until folded.
CUSTOMERS = with_metadata(
    "customers",
    pa.schema(
        [
            pa.field("customer_id", pa.string(), nullable=False),
            pa.field("name", pa.string()),
            pa.field("address", pa.string()),
            pa.field("emails", _STRINGS),
            pa.field("phones", _STRINGS),
            pa.field("external_customer_id", pa.string()),
            pa.field("external_customer_ids_json", pa.string()),  # {appId: externalId} as JSON
            pa.field("raw_json", pa.large_string(), nullable=False),
            pa.field("job_id", pa.string(), nullable=False),
            pa.field("archived_at", UTC_MICROS, nullable=False),
        ]
    ),
)

# agents/job-<id>/… (the export's agents.jsonl, and GET /agents snapshots under their run id).
# Readers keep the newest `archived_at` per agent.
AGENTS = with_metadata(
    "agents",
    pa.schema(
        [
            pa.field("agent_id", pa.string(), nullable=False),
            pa.field("name", pa.string()),
            pa.field("email_address", pa.string()),
            pa.field("raw_json", pa.large_string(), nullable=False),
            pa.field("job_id", pa.string(), nullable=False),
            pa.field("archived_at", UTC_MICROS, nullable=False),
        ]
    ),
)

# topics/job-<id>/… (the export's topics.jsonl, and GET /topics snapshots under their run id).
# Readers keep the newest `archived_at` per topic.
TOPICS = with_metadata(
    "topics",
    pa.schema(
        [
            pa.field("topic_id", pa.string(), nullable=False),
            pa.field("name", pa.string()),
            pa.field("disabled", pa.bool_()),
            pa.field("parent_id", pa.string()),
            pa.field("raw_json", pa.large_string(), nullable=False),
            pa.field("job_id", pa.string(), nullable=False),
            pa.field("archived_at", UTC_MICROS, nullable=False),
        ]
    ),
)

# inboxes/job-<run id>/…  — snapshots of GET /inboxes (no export file lists inboxes), so policies
# and holds may name inboxes. `job_id` holds the run id; the newest `archived_at` per inbox wins.
INBOXES = with_metadata(
    "inboxes",
    pa.schema(
        [
            pa.field("inbox_id", pa.string(), nullable=False),
            pa.field("name", pa.string()),
            pa.field("disabled", pa.bool_()),
            pa.field("raw_json", pa.large_string(), nullable=False),
            pa.field("job_id", pa.string(), nullable=False),
            pa.field("archived_at", UTC_MICROS, nullable=False),
        ]
    ),
)

# transcripts/recent/… and transcripts/folded/<bucket>/… — one row per conversation, rebuilt
# for the conversations a run touched.
TRANSCRIPTS = with_metadata(
    "transcripts",
    pa.schema(
        [
            pa.field("conversation_id", pa.string(), nullable=False),
            pa.field("customer_id", pa.string(), nullable=False),
            pa.field("first_timestamp", UTC_MICROS, nullable=False),
            pa.field("last_timestamp", UTC_MICROS, nullable=False),
            pa.field("channels", _STRINGS),  # distinct content types, in order of appearance
            pa.field("item_count", pa.int64(), nullable=False),
            pa.field("agent_name", pa.string()),  # the agent of the latest agent line
            pa.field("agent_names", _STRINGS),  # agents who wrote, in order of first line
            pa.field("inbox_name", pa.string()),  # as on the latest item that knows it
            pa.field("topic_names", _STRINGS),  # likewise
            pa.field("internal_notes", pa.int64(), nullable=False),  # lines that are notes
            # "2025-03-01T10:02:11Z · Chat · Customer · …" one line per item, in time order
            pa.field("transcript", pa.large_string(), nullable=False),
            pa.field("built_at", UTC_MICROS, nullable=False),
        ]
    ),
)

MANIFEST_FILE = pa.struct(
    [
        pa.field("name", pa.string()),
        pa.field("rows_written", pa.int64()),
        pa.field("lines_read", pa.int64()),
        pa.field("bytes_read", pa.int64()),
        pa.field("sha256", pa.string()),
    ]
)

# _manifest/…  — one record per archived export job (or per-customer API run).
MANIFEST = with_metadata(
    "manifest",
    pa.schema(
        [
            pa.field("job_id", pa.string(), nullable=False),
            pa.field("kind", pa.string(), nullable=False),  # "export_job" | "api"
            pa.field("window_start", UTC_MICROS),
            pa.field("window_end", UTC_MICROS),
            pa.field("job_updated_at", UTC_MICROS),
            pa.field("files", pa.list_(MANIFEST_FILE)),
            pa.field("quarantined_lines", pa.int64(), nullable=False),
            pa.field("archived_at", UTC_MICROS, nullable=False),
            pa.field("schema_version", pa.int32(), nullable=False),
        ]
    ),
)

# _quarantine/job-<id>/…  — lines that could not be read, with where they came from.
QUARANTINE = with_metadata(
    "quarantine",
    pa.schema(
        [
            pa.field("job_id", pa.string(), nullable=False),
            pa.field("file_name", pa.string(), nullable=False),
            pa.field("line_number", pa.int64(), nullable=False),  # 1-based, as editors count
            pa.field("error", pa.string(), nullable=False),
            pa.field("raw_line", pa.large_binary(), nullable=False),
            pa.field("quarantined_at", UTC_MICROS, nullable=False),
        ]
    ),
)

# _index/customer_files/…  — which data files hold a customer's rows, so erasure rewrites only
# those files (issue: erasure follows the data).
CUSTOMER_FILES = with_metadata(
    "customer_files",
    pa.schema(
        [
            pa.field("customer_id", pa.string(), nullable=False),
            pa.field("dataset", pa.string(), nullable=False),
            pa.field("path", pa.string(), nullable=False),  # relative to the archive root
            pa.field("job_id", pa.string(), nullable=False),
        ]
    ),
)

# conversations/run-<id>/…  — conversation facts fetched through the API (GET conversation):
# the export files carry no inbox, status or topics. Appended per enrichment run; the latest
# `fetched_at` per conversation wins.
CONVERSATIONS = with_metadata(
    "conversations",
    pa.schema(
        [
            pa.field("conversation_id", pa.string(), nullable=False),
            pa.field("customer_id", pa.string(), nullable=False),
            pa.field("inbox_id", pa.string()),
            pa.field("status", pa.string()),
            pa.field("created_at", UTC_MICROS),
            pa.field("closed_at", UTC_MICROS),
            pa.field("topic_ids", _STRINGS),
            pa.field("agent_id", pa.string()),
            pa.field("fetched_at", UTC_MICROS, nullable=False),
        ]
    ),
)

# customer_profiles/run-<id>/…  — profile facts fetched through the API (GET customer): custom
# attributes are not in the export's flattened customers. Latest `fetched_at` per customer wins.
CUSTOMER_PROFILES = with_metadata(
    "customer_profiles",
    pa.schema(
        [
            pa.field("customer_id", pa.string(), nullable=False),
            pa.field("custom_attributes_json", pa.string()),  # NULL: unknown as of fetched_at
            pa.field("updated_at", UTC_MICROS),
            pa.field("fetched_at", UTC_MICROS, nullable=False),
            # NULL for a profile read with GET; else the Gladly event this row records (the
            # profile changed, was deleted or merged away at `fetched_at`; attributes unknown).
            pa.field("event", pa.string()),
            pa.field("merged_into", pa.string()),  # CUSTOMER/MERGED: the surviving customer
        ]
    ),
)

DATASETS: dict[str, pa.Schema] = {
    "items": ITEMS,
    "customers": CUSTOMERS,
    "agents": AGENTS,
    "topics": TOPICS,
    "inboxes": INBOXES,
    "transcripts": TRANSCRIPTS,
    "_manifest": MANIFEST,
    "_quarantine": QUARANTINE,
    "_index/customer_files": CUSTOMER_FILES,
    "conversations": CONVERSATIONS,
    "customer_profiles": CUSTOMER_PROFILES,
}

# tombstones/run-<run_id>/…  — one row per customer a deletion run erased: what keeps the customer
# from coming back. Emails and phones only as the caller's HMAC-SHA256 hex digests, never clear.
# Not in DATASETS: written and read by gladly_archive.tombstones, not by commits.
TOMBSTONES = with_metadata(
    "tombstones",
    pa.schema(
        [
            pa.field("customer_id", pa.string(), nullable=False),
            pa.field("email_hashes", _STRINGS),
            pa.field("phone_hashes", _STRINGS),
            pa.field("deleted_at", UTC_MICROS, nullable=False),
            pa.field("run_id", pa.string(), nullable=False),
            pa.field("plan_hash", pa.string(), nullable=False),
        ]
    ),
)

# refill_watch/watch-<watch_id>/…  — one row per detail (email, phone, external id) unlinked from
# a profile: what the exports and enrichment watch for, in case a lookup adaptor or a new
# contact brings it back. The detail only as the caller's HMAC-SHA256 hex digest, never clear.
# Not in DATASETS: written and read by gladly_archive.refill_watch, not by commits.
REFILL_WATCH = with_metadata(
    "refill_watch",
    pa.schema(
        [
            pa.field("watch_id", pa.string(), nullable=False),
            pa.field("kind", pa.string(), nullable=False),  # email | phone | external_id
            pa.field("detail_hash", pa.string(), nullable=False),
            pa.field("customer_id", pa.string(), nullable=False),  # the profile it left
            # When the profile lost it, on Gladly's clock (the profile's updatedAt read back):
            # export files Gladly made later show whether it came back.
            pa.field("unlinked_at", UTC_MICROS, nullable=False),
            pa.field("recorded_at", UTC_MICROS, nullable=False),  # our clock
            pa.field("request_id", pa.string(), nullable=False),  # the unlink request's hash
        ]
    ),
)
