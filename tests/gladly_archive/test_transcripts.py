"""Transcripts: line format, ordering, channels, items without text, rebuilds across jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gladly_archive.archive import Archive
from gladly_archive.schemas import TRANSCRIPTS
from gladly_archive.transcripts import (
    RECENT_TRANSCRIPT_FILE_BYTES,
    build_transcripts,
    extend_transcripts,
    is_recent_partition,
    recent_partitions,
    writer_limits,
)
from tests.gladly_archive.test_archive import T0, archive_job, item, items_table

BUILT = datetime(2025, 3, 9, tzinfo=UTC)


def _one(rows: list[dict[str, Any]]) -> dict[str, Any]:
    (row,) = build_transcripts(items_table(rows), BUILT).to_pylist()
    return dict(row)


def test_line_format_is_second_precision_utc_channel_who_and_text() -> None:
    at = datetime(2025, 3, 1, 10, 2, 11, 987654, tzinfo=UTC)
    row = _one([item("i1", "c1", "u1", at, text="Where is my order?")])
    assert row["transcript"] == "2025-03-01T10:02:11Z · Chat · Customer · Where is my order?"


def test_items_are_ordered_by_time_then_item_id() -> None:
    rows = [
        item(
            "i3",
            "c1",
            "u1",
            T0 + timedelta(minutes=5),
            text="third",
            initiator_type="AGENT",
            agent_name="Amy Agent",
        ),
        item("i2", "c1", "u1", T0, text="second"),
        item("i1", "c1", "u1", T0, text="first"),
    ]
    assert _one(rows)["transcript"] == (
        "2025-03-01T10:00:00Z · Chat · Customer · first\n"
        "2025-03-01T10:00:00Z · Chat · Customer · second\n"
        "2025-03-01T10:05:00Z · Chat · Amy Agent · third"
    )


def test_channels_are_distinct_content_types_in_order_of_appearance() -> None:
    rows = [
        item("i1", "c1", "u1", T0 + timedelta(minutes=3), content_type="CHAT_MESSAGE"),
        item("i2", "c1", "u1", T0 + timedelta(minutes=1), content_type="EMAIL"),
        item("i3", "c1", "u1", T0 + timedelta(minutes=2), content_type="PHONE_CALL"),
        item("i4", "c1", "u1", T0 + timedelta(minutes=4), content_type="EMAIL"),
    ]
    assert _one(rows)["channels"] == ["EMAIL", "PHONE_CALL", "CHAT_MESSAGE"]


def test_items_without_text_show_their_channel() -> None:
    rows = [
        item("i1", "c1", "u1", T0, text=None, content_type="PHONE_CALL", initiator_type="AGENT"),
        item("i2", "c1", "u1", T0 + timedelta(seconds=1), text="", content_type="VOICEMAIL"),
        item("i3", "c1", "u1", T0 + timedelta(seconds=2), initiator_type=None, text="hi"),
    ]
    assert _one(rows)["transcript"] == (
        "2025-03-01T10:00:00Z · Phone call · Agent a1 · Phone call, not answered\n"
        "2025-03-01T10:00:01Z · Voicemail · Customer · Voicemail\n"
        "2025-03-01T10:00:02Z · Chat · Unknown · hi"
    )


def test_line_breaks_inside_a_text_keep_one_line_per_item() -> None:
    row = _one([item("i1", "c1", "u1", T0, text="Hello,\r\nthanks\nbye")])
    assert row["transcript"] == "2025-03-01T10:00:00Z · Chat · Customer · Hello, thanks bye"


def test_figures_per_conversation_and_activities_left_out() -> None:
    rows = [
        item("i1", "c2", "u2", T0 + timedelta(hours=1)),
        item("i2", "c1", "u1", T0 + timedelta(days=2)),
        item("i3", None, "u1", T0, content_type="CUSTOMER_ACTIVITY"),
        item("i4", "c1", "u9", T0 + timedelta(days=3)),
        item("i5", "c1", "u1", T0),
    ]
    table = build_transcripts(items_table(rows), BUILT)
    assert table.schema.equals(TRANSCRIPTS, check_metadata=True)
    got = {r["conversation_id"]: r for r in table.to_pylist()}
    assert set(got) == {"c1", "c2"}
    assert got["c1"]["item_count"] == 3
    assert got["c1"]["first_timestamp"] == T0
    assert got["c1"]["last_timestamp"] == T0 + timedelta(days=3)
    assert got["c1"]["customer_id"] == "u9"  # that of the latest item
    assert got["c2"]["item_count"] == 1
    assert got["c2"]["built_at"] == BUILT


def test_no_items_build_an_empty_table() -> None:
    table = build_transcripts(items_table([item("i1", None, "u1", T0)]), BUILT)
    assert table.num_rows == 0
    assert table.schema.equals(TRANSCRIPTS)


def test_the_recent_tier_is_its_directory_and_an_earlier_releases_shards() -> None:
    assert recent_partitions(["folded", "recent", "shard-05", "shard-x"]) == [
        "recent",
        "shard-05",
        "shard-x",
    ]
    assert not is_recent_partition("folded")
    assert writer_limits("transcripts", "recent", 1 << 30)[0] == RECENT_TRANSCRIPT_FILE_BYTES
    assert writer_limits("transcripts", "folded/0007", 1 << 30)[0] == 1 << 30


def test_a_second_job_rebuilds_the_conversation_from_all_its_items(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    # The first job's items sit on days 1 and 3; the second job only touches day 6, so the
    # rebuild must find the older partitions from the existing transcript's time span.
    archive_job(
        archive,
        "J1",
        [
            item("i1", "c1", "u1", T0, text="one"),
            item("i2", "c1", "u1", T0 + timedelta(days=2), text="two", initiator_type="AGENT"),
            item("i9", "c9", "u9", T0, text="other"),
        ],
    )
    result = archive_job(
        archive,
        "J2",
        [item("i3", "c1", "u1", T0 + timedelta(days=5), text="three", content_type="EMAIL")],
    )
    assert result.conversations_rebuilt == 1
    table = archive.dataset("transcripts").to_table()
    assert table.num_rows == 2
    (c1,) = table.filter(pc.field("conversation_id") == "c1").to_pylist()
    assert c1["transcript"] == (
        "2025-03-01T10:00:00Z · Chat · Customer · one\n"
        "2025-03-03T10:00:00Z · Chat · Agent a1 · two\n"
        "2025-03-06T10:00:00Z · Email · Customer · three"
    )
    assert c1["item_count"] == 3
    assert c1["channels"] == ["CHAT_MESSAGE", "EMAIL"]
    assert c1["last_timestamp"] == T0 + timedelta(days=5)
    (c9,) = table.filter(pc.field("conversation_id") == "c9").to_pylist()
    assert c9["transcript"] == "2025-03-01T10:00:00Z · Chat · Customer · other"


_KINDS = ["CHAT_MESSAGE", "CONVERSATION_NOTE", "EMAIL", "SMS", "CUSTOMER_ACTIVITY"]


@st.composite
def _conversations(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Items of a few conversations, each split in an older run and a later one."""
    older: list[dict[str, Any]] = []
    later: list[dict[str, Any]] = []
    for c in range(draw(st.integers(1, 4))):
        count = draw(st.integers(2, 7))
        split = draw(st.integers(1, count - 1))
        # Strictly later items after the split; ties and any order inside a run.
        minutes = sorted(draw(st.lists(st.integers(0, 5), min_size=count, max_size=count)))
        minutes = [m + (100 if n >= split else 0) for n, m in enumerate(minutes)]
        for n, minute in enumerate(minutes):
            row = item(
                f"i{c}-{n}",
                f"conv-{c}",
                draw(st.sampled_from(["u1", "u2"])),
                T0 + timedelta(minutes=minute),
                text=draw(st.sampled_from(["hi", None, "a\nb"])),
                initiator_type=draw(st.sampled_from(["CUSTOMER", "AGENT", None])),
                content_type=draw(st.sampled_from(_KINDS[:4])),
                agent_name=draw(st.sampled_from(["Amy", "Bo", None])),
            )
            row["inbox_name"] = draw(st.sampled_from(["Support", "Sales", None]))
            row["topic_names"] = draw(st.sampled_from([["Billing"], [], None]))
            (older if n < split else later).append(row)
    return older, later


@settings(max_examples=150, deadline=None)
@given(_conversations())
def test_continuing_rows_equals_building_them_from_every_item(
    runs: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    older, later = runs
    old = build_transcripts(items_table(older), T0)
    continued = extend_transcripts(old, items_table(later), BUILT)
    whole = build_transcripts(items_table(older + later), BUILT)
    assert continued.equals(whole), (continued.to_pylist(), whole.to_pylist())


def test_continuing_a_conversation_without_a_row_is_refused() -> None:
    old = build_transcripts(items_table([item("i1", "c1", "u1", T0)]), T0)
    later = items_table([item("i2", "c2", "u1", T0 + timedelta(hours=1))])
    with pytest.raises(ValueError, match="no transcript row"):
        extend_transcripts(old, later, BUILT)
