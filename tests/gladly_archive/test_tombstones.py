"""Tombstones: per-run files, idempotent union, digest validation, vectorised matching."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gladly_archive.archive import Archive
from gladly_archive.schemas import TOMBSTONES
from gladly_archive.tombstones import match_tombstones, read_tombstones, write_tombstones

KEY = b"test-key"
AT = datetime(2025, 4, 1, 9, 30, tzinfo=UTC)
LATER = datetime(2025, 4, 2, tzinfo=UTC)
PLAN = "p" * 64


def digest(value: str) -> str:
    """What the caller records: HMAC-SHA256 hex of a normalised email or phone."""
    return hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest()


def row(customer_id: str, emails: list[str], phones: list[str], **kw: Any) -> dict[str, Any]:
    """One tombstone row from clear values (hashed here, as the deletion engine does)."""
    values: dict[str, Any] = {
        "customer_id": customer_id,
        "email_hashes": [digest(e) for e in emails],
        "phone_hashes": [digest(p) for p in phones],
        "deleted_at": AT,
        "plan_hash": PLAN,
    }
    values.update(kw)
    return values


def test_a_run_is_written_to_its_own_file_with_the_schema(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    written = write_tombstones(
        archive, [row("c1", ["a@example.com"], ["+15550001"]), row("c2", [], [])], run_id="R1"
    )
    assert written == 2
    path = tmp_path / "tombstones" / "run-R1" / "part-0.parquet"
    stored = pq.read_schema(path)
    assert stored.names == TOMBSTONES.names
    assert stored.metadata == TOMBSTONES.metadata
    assert [p.name for p in path.parent.iterdir()] == ["part-0.parquet"]  # no temporary left
    table = read_tombstones(archive)
    assert table.schema.equals(TOMBSTONES)
    assert table.to_pylist() == [
        {
            "customer_id": "c1",
            "email_hashes": [digest("a@example.com")],
            "phone_hashes": [digest("+15550001")],
            "deleted_at": AT,
            "run_id": "R1",
            "plan_hash": PLAN,
        },
        {
            "customer_id": "c2",
            "email_hashes": [],
            "phone_hashes": [],
            "deleted_at": AT,
            "run_id": "R1",
            "plan_hash": PLAN,
        },
    ]


def test_writing_a_run_again_replaces_its_file_with_the_union(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    first = [row("c1", ["a@example.com"], []), row("c2", [], ["+15550002"])]
    write_tombstones(archive, first, run_id="R1")
    once = read_tombstones(archive)
    # The same rows again (a retried run) change nothing.
    assert write_tombstones(archive, first, run_id="R1") == 2
    assert read_tombstones(archive).equals(once)
    # A retry that finds another email keeps the first deletion time and unites the hashes.
    write_tombstones(
        archive,
        [row("c1", ["b@example.com", "a@example.com"], [], deleted_at=LATER), row("c3", [], [])],
        run_id="R1",
    )
    table = read_tombstones(archive)
    assert table["customer_id"].to_pylist() == ["c1", "c2", "c3"]
    by_id = {r["customer_id"]: r for r in table.to_pylist()}
    assert by_id["c1"]["email_hashes"] == sorted([digest("a@example.com"), digest("b@example.com")])
    assert by_id["c1"]["deleted_at"] == AT
    assert by_id["c2"]["phone_hashes"] == [digest("+15550002")]
    assert [p.name for p in (tmp_path / "tombstones" / "run-R1").iterdir()] == ["part-0.parquet"]
    # Nothing new: the run's file stays as it is.
    assert write_tombstones(archive, [], run_id="R1") == 3


def test_every_run_is_read_and_a_table_is_accepted(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    write_tombstones(archive, [row("c1", [], [])], run_id="R1")
    table = pa.Table.from_pylist([row("c2", ["x@example.com"], [])]).drop_columns(["phone_hashes"])
    assert write_tombstones(archive, table, run_id="R2") == 1
    read = read_tombstones(archive)
    assert list(zip(read["run_id"].to_pylist(), read["customer_id"].to_pylist(), strict=True)) == [
        ("R1", "c1"),
        ("R2", "c2"),
    ]
    assert read["phone_hashes"].to_pylist() == [[], []]


def test_no_tombstones_read_as_an_empty_table(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    assert write_tombstones(archive, [], run_id="R1") == 0
    assert not (tmp_path / "tombstones").exists()
    table = read_tombstones(archive)
    assert table.num_rows == 0
    assert table.schema.equals(TOMBSTONES)
    assert match_tombstones(archive, email_hashes=[digest("a")], phone_hashes=[]).num_rows == 0


@pytest.mark.parametrize(
    "bad",
    [
        "someone@example.com",  # a clear email
        "+15550001234",  # a clear phone
        digest("a").upper(),  # not lowercase
        digest("a")[:63],  # too short
        digest("a") + "0",  # too long
        "g" * 64,  # not hex
    ],
)
@pytest.mark.parametrize("column", ["email_hashes", "phone_hashes"])
def test_anything_but_a_digest_is_refused_without_being_echoed(
    tmp_path: Path, bad: str, column: str
) -> None:
    archive = Archive(tmp_path)
    tombstone = row("c1", [], [])
    tombstone[column] = [digest("ok"), bad]
    with pytest.raises(ValueError, match="not HMAC-SHA256 hex digests") as caught:
        write_tombstones(archive, [tombstone], run_id="R1")
    assert bad not in str(caught.value)
    assert not (tmp_path / "tombstones").exists()
    with pytest.raises(ValueError, match="not HMAC-SHA256") as caught:
        match_tombstones(archive, email_hashes=[bad], phone_hashes=[])
    assert bad not in str(caught.value)


def test_a_null_digest_is_refused(tmp_path: Path) -> None:
    tombstone = row("c1", [], [])
    tombstone["email_hashes"] = [None]
    with pytest.raises(ValueError, match="1 value"):
        write_tombstones(Archive(tmp_path), [tombstone], run_id="R1")


def test_a_clear_email_column_is_refused_by_name_only(tmp_path: Path) -> None:
    tombstone = row("c1", [], [])
    tombstone["email"] = "someone@example.com"
    with pytest.raises(ValueError, match=r"unexpected columns \['email'\]") as caught:
        write_tombstones(Archive(tmp_path), [tombstone], run_id="R1")
    assert "someone" not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"plan_hash": None}, "plan_hash is required"),
        ({"deleted_at": None}, "deleted_at is required"),
        ({"customer_id": ""}, "customer_id must not be empty"),
        ({"run_id": "R9"}, "rows name a run other than 'R1'"),
    ],
)
def test_incomplete_rows_are_refused(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    tombstone = row("c1", [], [])
    tombstone.update(change)
    with pytest.raises(ValueError, match=message):
        write_tombstones(Archive(tmp_path), [tombstone], run_id="R1")


def test_a_run_id_that_is_no_safe_path_segment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="job id must be"):
        write_tombstones(Archive(tmp_path), [row("c1", [], [])], run_id="../x")


def test_match_finds_tombstones_by_email_or_phone_digest(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    write_tombstones(
        archive,
        [
            row("c1", ["a@example.com", "a2@example.com"], ["+1"]),
            row("c2", ["b@example.com"], ["+2"]),
        ],
        run_id="R1",
    )
    write_tombstones(archive, [row("c3", [], ["+3", "+1"])], run_id="R2")

    def matched(emails: list[str], phones: list[str]) -> list[str]:
        table = match_tombstones(
            archive,
            email_hashes=[digest(e) for e in emails],
            phone_hashes=pa.array([digest(p) for p in phones], pa.string()),
        )
        assert table.schema.equals(TOMBSTONES)
        return list(table["customer_id"].to_pylist())

    assert matched(["a2@example.com"], []) == ["c1"]
    assert matched([], ["+1"]) == ["c1", "c3"]
    assert matched(["b@example.com"], ["+3"]) == ["c2", "c3"]
    assert matched(["nobody@example.com"], ["+9"]) == []
    # An email digest never matches a phone list, nor the other way round.
    assert matched(["+2"], ["b@example.com"]) == []


def test_match_scales_without_a_row_loop(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    rows = [row(f"c{n}", [f"{n}@example.com"], [f"+{n}"]) for n in range(5000)]
    write_tombstones(archive, rows, run_id="R1")
    wanted = [digest(f"{n}@example.com") for n in range(0, 5000, 7)]
    table = match_tombstones(archive, email_hashes=wanted, phone_hashes=[digest("+3")])
    expected = {f"c{n}" for n in range(0, 5000, 7)} | {"c3"}
    assert set(table["customer_id"].to_pylist()) == expected


def test_a_value_of_the_wrong_type_is_refused_without_being_echoed(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    table = pa.table(
        {
            "customer_id": ["c1"],
            "deleted_at": ["jane.doe@example.com"],  # a value in the wrong column
            "plan_hash": ["p" * 64],
        }
    )
    with pytest.raises(ValueError, match="column 'deleted_at' is not timestamp") as caught:
        write_tombstones(archive, table, run_id="R1")
    assert "jane" not in str(caught.value)
    assert not (tmp_path / "tombstones").exists()
