"""Reading conversations for a person: order, header facts, notes left out, customers by email."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from gladly_archive.archive import Archive
from gladly_archive.conversation_read import (
    ConversationTranscript,
    conversation_transcripts,
    conversations_of_customers,
    customers_with_email,
    read_conversations,
)
from gladly_archive.schemas import CUSTOMERS
from tests.gladly_archive.test_archive import ARCHIVED_AT, T0, archive_job, item, items_table


def _at(minutes: int) -> Any:
    return T0 + timedelta(minutes=minutes)


def _customers(rows: list[tuple[str, list[str]]], job_id: str) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {"customer_id": cid, "emails": emails, "phones": [], "raw_json": json.dumps({}),
             "job_id": job_id, "archived_at": ARCHIVED_AT}
            for cid, emails in rows
        ],
        schema=CUSTOMERS,
    )  # fmt: skip


def _rows() -> list[dict[str, Any]]:
    """Conversation c1 (u1's, u9 speaking last), c2 of u2, c3 only a note, an activity."""
    note = item("n1", "c1", "u1", _at(2), content_type="CONVERSATION_NOTE",
                initiator_type="AGENT", agent_name="Nora Note", text="call back")  # fmt: skip
    late = item("i4", "c1", "u1", _at(9), initiator_type="AGENT", agent_name="Amy Agent")
    late.update(inbox_name="Billing", topic_names=["Refund"])
    early = item("i2", "c1", "u1", _at(3), content_type="EMAIL")
    early.update(inbox_name="Old inbox", topic_names=["Old topic"])
    return [
        item("i3", "c1", "u9", _at(10), text="the merged customer spoke last"),
        late,
        note,
        early,
        item("i1b", "c1", "u1", _at(1), text="second at one minute"),
        item("i1a", "c1", "u1", _at(1), text="first at one minute"),
        item("a1", None, "u1", _at(0), content_type="CUSTOMER_ACTIVITY"),
        item("j1", "c2", "u2", _at(-60), text="older conversation"),
        item("k1", "c3", "u1", _at(5), content_type="CONVERSATION_NOTE",
             initiator_type="AGENT", agent_name="Nora Note"),
    ]  # fmt: skip


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    """The rows of _rows() committed, and customers u1 to u4 (u1 and u3 share an email)."""
    result = Archive.open(tmp_path / "archive")
    archive_job(result, "J1", _rows())
    job = result.stage_job("J2")
    job.write_customers(
        _customers(
            [("u1", [" Pat@Example.com "]), ("u2", ["other@example.com"]),
             ("u3", ["PAT@example.COM", "x@example.com"]), ("u4", [])],
            "J2",
        ).to_batches()
    )  # fmt: skip
    job.commit()
    return result


def _transcripts(**kw: Any) -> dict[str, ConversationTranscript]:
    found = conversation_transcripts(items_table(_rows()), **kw)
    return {c.conversation_id: c for c in found}


def test_lines_are_in_time_then_item_id_order_without_customer_activities() -> None:
    c1 = _transcripts()["c1"]
    assert [line.body for line in c1.lines][:2] == ["first at one minute", "second at one minute"]
    assert [line.stamp for line in c1.lines] == sorted(line.stamp for line in c1.lines)
    assert len(c1.lines) == 6
    assert c1.first == "2025-03-01T10:01:00Z"
    assert c1.last == "2025-03-01T10:10:00Z"


def test_the_header_facts_come_from_the_lines_items() -> None:
    found = _transcripts()
    c1 = found["c1"]
    assert c1.customer_id == "u9"  # of the latest item, as the transcripts dataset says
    assert c1.channels == ("Chat", "Note", "Email")
    assert c1.agents == ("Nora Note", "Amy Agent")
    assert c1.inbox_name == "Billing"  # the latest item that has one
    assert c1.topic_names == ("Refund",)
    assert not c1.notes_left_out
    c2 = found["c2"]
    assert (c2.inbox_name, c2.topic_names, c2.agents) == (None, None, ())


def test_without_notes_every_note_and_what_only_it_showed_is_gone() -> None:
    found = _transcripts(notes=False)
    assert sorted(found) == ["c1", "c2"]  # c3 holds only a note: nothing to show
    c1 = found["c1"]
    assert not any(line.internal for line in c1.lines)
    assert all("call back" not in line.body for line in c1.lines)
    assert len(c1.lines) == 5
    assert c1.channels == ("Chat", "Email")
    assert c1.agents == ("Amy Agent",)
    assert c1.notes_left_out


def test_a_conversation_of_notes_only_is_found_but_not_shown_without_notes(
    archive: Archive,
) -> None:
    selection = read_conversations(archive, ["c1", "c3"], notes=False)
    assert selection.found == {"c1", "c3"}
    assert [c.conversation_id for c in selection.conversations] == ["c1"]


def test_conversations_are_oldest_first_and_unknown_ids_are_not_found(archive: Archive) -> None:
    selection = read_conversations(archive, ["c1", "c2", "nope"])
    assert [c.conversation_id for c in selection.conversations] == ["c2", "c1"]
    assert selection.found == {"c1", "c2"}
    assert read_conversations(archive, []).conversations == ()


def test_customers_by_email_are_matched_normalised_on_both_sides(archive: Archive) -> None:
    assert customers_with_email(archive, "pat@example.com") == ["u1", "u3"]
    assert customers_with_email(archive, "  PAT@EXAMPLE.COM") == ["u1", "u3"]
    assert customers_with_email(archive, "other@example.com") == ["u2"]
    assert customers_with_email(archive, "nobody@example.com") == []
    assert customers_with_email(archive, "   ") == []


def test_email_matching_casefolds_as_normalise_email_does(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    job = archive.stage_job("J1")
    job.write_customers(_customers([("u1", ["STRASSE@example.com"])], "J1").to_batches())
    job.commit()
    assert customers_with_email(archive, "straße@example.com") == ["u1"]


def test_a_customers_conversations_are_those_holding_their_items(archive: Archive) -> None:
    assert conversations_of_customers(archive, ["u1"]) == ["c1", "c3"]
    assert conversations_of_customers(archive, ["u1", "u2"]) == ["c1", "c2", "c3"]
    assert conversations_of_customers(archive, ["u4"]) == []
    assert conversations_of_customers(archive, []) == []
