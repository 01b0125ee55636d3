"""Every dataset schema pinned exactly: a changed column, type, nullability or version fails."""

from __future__ import annotations

import pyarrow as pa
import pytest

from gladly_archive import schemas

TS = pa.timestamp("us", tz="UTC")
STRINGS = pa.list_(pa.field("item", pa.string()))


def _f(name: str, type_: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


EXPECTED: dict[str, list[pa.Field]] = {
    "items": [
        _f("item_id", pa.string(), False),
        _f("conversation_id", pa.string()),
        _f("customer_id", pa.string(), False),
        _f("session_id", pa.string()),
        _f("timestamp", TS, False),
        _f("date", pa.date32(), False),
        _f("initiator_id", pa.string()),
        _f("initiator_type", pa.string()),
        _f("responder_id", pa.string()),
        _f("responder_type", pa.string()),
        _f("content_type", pa.string(), False),
        _f("message_type", pa.string()),
        _f("channel", pa.string(), False),
        _f("internal", pa.bool_(), False),
        _f("agent_id", pa.string()),
        _f("agent_name", pa.string()),
        _f("inbox_name", pa.string()),
        _f("topic_names", STRINGS),
        _f("text", pa.large_string()),
        _f("subject", pa.string()),
        _f("from_address", pa.string()),
        _f("to_addresses", STRINGS),
        _f("cc_addresses", STRINGS),
        _f("bcc_addresses", STRINGS),
        _f("call_started_at", TS),
        _f("call_answered_at", TS),
        _f("call_completed_at", TS),
        _f("recording_status", pa.string()),
        _f("recording_duration_seconds", pa.int64()),
        _f("recording_summary", pa.large_string()),
        _f("activity_type", pa.string()),
        _f(
            "attachments",
            pa.list_(
                pa.struct(
                    [
                        _f("id", pa.string()),
                        _f("content_type", pa.string()),
                        _f("filename", pa.string()),
                        _f("file_size", pa.int64()),
                    ]
                )
            ),
        ),
        _f("raw_json", pa.large_string(), False),
        _f("job_id", pa.string(), False),
        _f("archived_at", TS, False),
    ],
    "customers": [
        _f("customer_id", pa.string(), False),
        _f("name", pa.string()),
        _f("address", pa.string()),
        _f("emails", STRINGS),
        _f("phones", STRINGS),
        _f("external_customer_id", pa.string()),
        _f("external_customer_ids_json", pa.string()),
        _f("raw_json", pa.large_string(), False),
        _f("job_id", pa.string(), False),
        _f("archived_at", TS, False),
    ],
    "agents": [
        _f("agent_id", pa.string(), False),
        _f("name", pa.string()),
        _f("email_address", pa.string()),
        _f("raw_json", pa.large_string(), False),
        _f("job_id", pa.string(), False),
        _f("archived_at", TS, False),
    ],
    "topics": [
        _f("topic_id", pa.string(), False),
        _f("name", pa.string()),
        _f("disabled", pa.bool_()),
        _f("parent_id", pa.string()),
        _f("raw_json", pa.large_string(), False),
        _f("job_id", pa.string(), False),
        _f("archived_at", TS, False),
    ],
    "inboxes": [
        _f("inbox_id", pa.string(), False),
        _f("name", pa.string()),
        _f("disabled", pa.bool_()),
        _f("raw_json", pa.large_string(), False),
        _f("job_id", pa.string(), False),
        _f("archived_at", TS, False),
    ],
    "transcripts": [
        _f("conversation_id", pa.string(), False),
        _f("customer_id", pa.string(), False),
        _f("first_timestamp", TS, False),
        _f("last_timestamp", TS, False),
        _f("channels", STRINGS),
        _f("item_count", pa.int64(), False),
        _f("agent_name", pa.string()),
        _f("agent_names", STRINGS),
        _f("inbox_name", pa.string()),
        _f("topic_names", STRINGS),
        _f("internal_notes", pa.int64(), False),
        _f("transcript", pa.large_string(), False),
        _f("built_at", TS, False),
    ],
    "_manifest": [
        _f("job_id", pa.string(), False),
        _f("kind", pa.string(), False),
        _f("window_start", TS),
        _f("window_end", TS),
        _f("job_updated_at", TS),
        _f(
            "files",
            pa.list_(
                pa.struct(
                    [
                        _f("name", pa.string()),
                        _f("rows_written", pa.int64()),
                        _f("lines_read", pa.int64()),
                        _f("bytes_read", pa.int64()),
                        _f("sha256", pa.string()),
                    ]
                )
            ),
        ),
        _f("quarantined_lines", pa.int64(), False),
        _f("archived_at", TS, False),
        _f("schema_version", pa.int32(), False),
    ],
    "_quarantine": [
        _f("job_id", pa.string(), False),
        _f("file_name", pa.string(), False),
        _f("line_number", pa.int64(), False),
        _f("error", pa.string(), False),
        _f("raw_line", pa.large_binary(), False),
        _f("quarantined_at", TS, False),
    ],
    "_index/customer_files": [
        _f("customer_id", pa.string(), False),
        _f("dataset", pa.string(), False),
        _f("path", pa.string(), False),
        _f("job_id", pa.string(), False),
    ],
    "conversations": [
        _f("conversation_id", pa.string(), False),
        _f("customer_id", pa.string(), False),
        _f("inbox_id", pa.string()),
        _f("status", pa.string()),
        _f("created_at", TS),
        _f("closed_at", TS),
        _f("topic_ids", pa.list_(pa.string())),
        _f("agent_id", pa.string()),
        _f("fetched_at", TS, False),
    ],
    "customer_profiles": [
        _f("customer_id", pa.string(), False),
        _f("custom_attributes_json", pa.string()),
        _f("updated_at", TS),
        _f("fetched_at", TS, False),
        _f("event", pa.string()),
        _f("merged_into", pa.string()),
    ],
}

METADATA_NAMES = {
    "items": b"items",
    "customers": b"customers",
    "agents": b"agents",
    "topics": b"topics",
    "inboxes": b"inboxes",
    "transcripts": b"transcripts",
    "_manifest": b"manifest",
    "_quarantine": b"quarantine",
    "_index/customer_files": b"customer_files",
    "conversations": b"conversations",
    "customer_profiles": b"customer_profiles",
}


def test_the_datasets_are_exactly_these() -> None:
    assert list(schemas.DATASETS) == list(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_schema_is_pinned_field_by_field(name: str) -> None:
    actual = schemas.DATASETS[name]
    expected = pa.schema(EXPECTED[name])
    assert actual.names == expected.names
    for got, want in zip(actual, expected, strict=True):
        assert got.equals(want), f"{name}.{want.name}: {got} != {want}"
    assert actual.equals(expected, check_metadata=False)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_schema_metadata_names_the_dataset_and_version(name: str) -> None:
    assert schemas.DATASETS[name].metadata == {
        b"gladly_pipeline.dataset": METADATA_NAMES[name],
        b"gladly_pipeline.schema_version": b"3",
    }


def test_version_is_pinned() -> None:
    # Changing it rewrites what readers rely on.
    assert schemas.SCHEMA_VERSION == 3
    assert TS.equals(schemas.UTC_MICROS)


def test_named_schemas_are_the_datasets_entries() -> None:
    assert schemas.ITEMS is schemas.DATASETS["items"]
    assert schemas.CUSTOMERS is schemas.DATASETS["customers"]
    assert schemas.AGENTS is schemas.DATASETS["agents"]
    assert schemas.TOPICS is schemas.DATASETS["topics"]
    assert schemas.INBOXES is schemas.DATASETS["inboxes"]
    assert schemas.TRANSCRIPTS is schemas.DATASETS["transcripts"]
    assert schemas.MANIFEST is schemas.DATASETS["_manifest"]
    assert schemas.QUARANTINE is schemas.DATASETS["_quarantine"]
    assert schemas.CUSTOMER_FILES is schemas.DATASETS["_index/customer_files"]
    assert schemas.CONVERSATIONS is schemas.DATASETS["conversations"]
    assert schemas.CUSTOMER_PROFILES is schemas.DATASETS["customer_profiles"]


def test_with_metadata_stamps_name_and_version() -> None:
    # A dataset the data dictionary knows (an unknown one is refused: test_dictionary.py).
    bare = pa.schema([_f(f.name, f.type, f.nullable) for f in schemas.INBOXES])
    stamped = schemas.with_metadata("inboxes", bare)
    assert stamped.metadata == {
        b"gladly_pipeline.dataset": b"inboxes",
        b"gladly_pipeline.schema_version": b"3",
    }
    assert stamped.field("name").metadata[b"personal"] == b"none"
