"""The data dictionary: every field described, mismatches refused, docs/datasets.md current."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audit_log.files import AUDIT_EVENTS
from gladly_archive import schemas
from gladly_archive.dictionary import (
    DICTIONARY,
    NONE,
    PERSONAL,
    PERSONAL_LEVELS,
    PSEUDONYMOUS,
    Column,
    DatasetEntry,
    DictionaryError,
    describe,
)
from gladly_archive.dictionary.terms import entry_problems
from gladly_archive.dictionary_doc import REGENERATE, arrow_type, render_markdown

DATASETS_MD = Path(__file__).resolve().parents[2] / "docs" / "datasets.md"

# Every described schema, by the dataset name with_metadata stamps.
DESCRIBED: dict[str, pa.Schema] = {
    **{s.metadata[b"gladly_pipeline.dataset"].decode(): s for s in schemas.DATASETS.values()},
    "tombstones": schemas.TOMBSTONES,
    "refill_watch": schemas.REFILL_WATCH,
    "audit": AUDIT_EVENTS,
}

# Columns that can hold a name, email, phone, address, external id, free text or what holds
# them: each must say so.
MUST_BE_PERSONAL = [
    ("items", "text"),
    ("items", "subject"),
    ("items", "from_address"),
    ("items", "to_addresses"),
    ("items", "cc_addresses"),
    ("items", "bcc_addresses"),
    ("items", "recording_summary"),
    ("items", "attachments"),
    ("items", "raw_json"),
    ("customers", "name"),
    ("customers", "address"),
    ("customers", "emails"),
    ("customers", "phones"),
    ("customers", "external_customer_id"),
    ("customers", "external_customer_ids_json"),
    ("customers", "raw_json"),
    ("agents", "name"),
    ("agents", "email_address"),
    ("agents", "raw_json"),
    ("transcripts", "transcript"),
    ("quarantine", "raw_line"),
    ("customer_profiles", "custom_attributes_json"),
]
# Ids of people and keyed hashes of their details: pseudonymous, never "none".
MUST_BE_PSEUDONYMOUS = [
    ("items", "customer_id"),
    ("items", "initiator_id"),
    ("items", "responder_id"),
    ("customers", "customer_id"),
    ("agents", "agent_id"),
    ("transcripts", "customer_id"),
    ("conversations", "customer_id"),
    ("conversations", "agent_id"),
    ("customer_profiles", "customer_id"),
    ("customer_profiles", "merged_into"),
    ("customer_files", "customer_id"),
    ("tombstones", "customer_id"),
    ("tombstones", "email_hashes"),
    ("tombstones", "phone_hashes"),
    ("refill_watch", "customer_id"),
    ("refill_watch", "detail_hash"),
    ("audit", "customer_id"),
    ("audit", "subject_hash"),
]


def _meta(field: pa.Field) -> dict[bytes, bytes]:
    return dict(field.metadata or {})


def _bare(schema: pa.Schema) -> list[pa.Field]:
    return [pa.field(f.name, f.type, f.nullable) for f in schema]


def test_every_dataset_is_described_and_every_entry_has_a_schema() -> None:
    assert sorted(DESCRIBED) == sorted(DICTIONARY)


@pytest.mark.parametrize("name", sorted(DESCRIBED))
def test_every_field_carries_its_description_source_and_personal_level(name: str) -> None:
    for field in DESCRIBED[name]:
        meta = _meta(field)
        assert meta.get(b"description", b"").strip(), f"{name}.{field.name}: no description"
        assert meta.get(b"source", b"").strip(), f"{name}.{field.name}: no source"
        assert meta.get(b"personal", b"").decode() in PERSONAL_LEVELS, f"{name}.{field.name}"
        column = DICTIONARY[name].columns[field.name]
        assert meta[b"description"] == column.description.encode()


@pytest.mark.parametrize("name", sorted(DESCRIBED))
def test_the_datasets_name_and_version_stay_in_the_schema_metadata(name: str) -> None:
    assert DESCRIBED[name].metadata[b"gladly_pipeline.dataset"] == name.encode()
    assert b"gladly_pipeline.schema_version" in DESCRIBED[name].metadata


def test_describe_refuses_an_undocumented_column() -> None:
    schema = pa.schema([*_bare(schemas.ITEMS), pa.field("mood", pa.string())])
    with pytest.raises(DictionaryError, match=r"items: column\(s\) mood have no entry"):
        describe("items", schema)
    # And so does stamping a schema, which is how schemas.py builds every dataset at import.
    with pytest.raises(DictionaryError, match="mood"):
        schemas.with_metadata("items", schema)


def test_describe_refuses_an_entry_whose_column_is_gone() -> None:
    schema = pa.schema([f for f in _bare(schemas.CUSTOMERS) if f.name != "address"])
    with pytest.raises(DictionaryError, match=r"customers: .*describes column\(s\) address"):
        describe("customers", schema)


def test_describe_refuses_an_unknown_dataset() -> None:
    with pytest.raises(DictionaryError, match="dataset 'moods' has no entry"):
        describe("moods", pa.schema([pa.field("a", pa.int8())]))


def test_describe_keeps_field_metadata_it_does_not_own() -> None:
    fields = _bare(schemas.INBOXES)
    fields[0] = fields[0].with_metadata({b"other": b"kept"})
    described = describe("inboxes", pa.schema(fields, metadata={b"x": b"y"}))
    assert _meta(described.field("inbox_id"))[b"other"] == b"kept"
    assert described.metadata == {b"x": b"y"}
    assert described.equals(schemas.INBOXES, check_metadata=False)


def test_entry_problems_name_bad_wording() -> None:
    entry = DatasetEntry(
        "x/",
        "One row per x.",
        "`x/`",
        "One row.",
        {
            "a": Column("", "pipeline", NONE),
            "b": Column("Fine.", "somewhere: else", NONE),
            "c": Column("Fine.", "pipeline", "maybe"),
            "d": Column("Has | a pipe.", "derived: a", PERSONAL),
        },
    )
    problems = entry_problems("x", entry)
    assert problems == [
        "x.a: the description is empty",
        "x.b: source part 'somewhere: else' does not start with one of 'export file', "
        "'Gladly API', 'derived', 'pipeline'",
        "x.c: personal is 'maybe'; use one of personal, pseudonymous, none",
        "x.d: the description holds a line break or '|' (a table cell)",
    ]


@pytest.mark.parametrize("name", sorted(DESCRIBED))
def test_descriptions_survive_a_parquet_round_trip(name: str, tmp_path: Path) -> None:
    schema = DESCRIBED[name]
    path = tmp_path / f"{name}.parquet"
    pq.write_table(schema.empty_table(), path)
    read = pq.read_schema(path)
    for field in schema:
        assert _meta(read.field(field.name)) == _meta(field), f"{name}.{field.name}"
    assert read.metadata[b"gladly_pipeline.dataset"] == name.encode()


@pytest.mark.parametrize(("name", "column"), MUST_BE_PERSONAL)
def test_columns_that_can_hold_personal_details_are_marked_personal(name: str, column: str) -> None:
    assert _meta(DESCRIBED[name].field(column))[b"personal"] == PERSONAL.encode()


@pytest.mark.parametrize(("name", "column"), MUST_BE_PSEUDONYMOUS)
def test_ids_of_people_and_keyed_hashes_are_pseudonymous(name: str, column: str) -> None:
    assert _meta(DESCRIBED[name].field(column))[b"personal"] == PSEUDONYMOUS.encode()


def test_pending_personal_columns_are_marked_too() -> None:
    # Agents' names arrive with the integrator's merge; they are a person's name.
    assert DICTIONARY["items"].columns["agent_name"].personal == PERSONAL
    assert DICTIONARY["transcripts"].columns["agent_name"].personal == PERSONAL
    assert DICTIONARY["transcripts"].columns["agent_names"].personal == PERSONAL


def test_arrow_types_are_printed_as_readers_name_them() -> None:
    assert arrow_type(pa.list_(pa.string())) == "list<string>"
    assert arrow_type(schemas.UTC_MICROS) == "timestamp[us, tz=UTC]"
    assert arrow_type(pa.list_(schemas.ATTACHMENT)) == (
        "list<struct<id: string, content_type: string, filename: string, file_size: int64>>"
    )


def test_the_page_lists_every_column_with_type_and_nullability() -> None:
    page = render_markdown()
    for schema in [*schemas.DATASETS.values(), schemas.TOMBSTONES, schemas.REFILL_WATCH]:
        for field in schema:
            kind = f"`{arrow_type(field.type)}`" + ("" if field.nullable else " not null")
            assert f"| `{field.name}` | {kind} | " in page, field.name
    assert "| `item_id` | `string` not null | Gladly's id of the item" in page
    assert REGENERATE in page.splitlines()[2]


def test_docs_datasets_md_is_current() -> None:
    expected = render_markdown()
    found = DATASETS_MD.read_text(encoding="utf-8") if DATASETS_MD.exists() else ""
    if found != expected:
        pytest.fail(f"docs/datasets.md is stale; regenerate it: {REGENERATE}", pytrace=False)
