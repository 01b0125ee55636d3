"""Transcripts exported from the sandbox read as a person reads them: plain text, notes marked
internal, every agent line naming its agent (the sandbox's own agents are the truth)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gladly_archive import Archive
from gladly_archive.name_refresh import refresh_conversation_names
from gladly_client import GladlyClient
from gladly_sandbox import Sandbox
from ingest.enrich import enrich_archive
from ingest.exporting import run_export

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
HTML_LEFTOVERS = re.compile(r"<p>|<br>|<br/>|&amp;|</p>|<div|<blockquote", re.IGNORECASE)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Archive]]:
    root = tmp_path_factory.mktemp("readable") / "archive"
    with Sandbox(
        seed=11,
        customers=50,
        now=NOW,
        frozen_clock=True,
        rate_limit_per_second=None,
        items_per_customer=8,
    ) as sb:
        archive = Archive.open(root)
        client = GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0)
        with client:
            assert run_export(client, archive, now=NOW).failed == []
        yield sb, archive


def _sandbox_agents(sb: Sandbox) -> dict[str, str]:
    """Agent id → name as the sandbox's own export files list them."""
    agents: dict[str, str] = {}
    for job in sb.exports.list_jobs(status="COMPLETED"):
        for line in sb.exports.file_path(job["id"], "agents.jsonl").read_bytes().splitlines():
            if line.strip():
                agent = json.loads(line)
                agents[agent["id"]] = agent["name"]
    return agents


def _lines_by_item(archive: Archive) -> list[tuple[dict[str, object], str]]:
    """Each conversation item as Gladly sent it (raw_json), with its transcript line."""
    items = archive.dataset("items").to_table(
        columns=["item_id", "conversation_id", "timestamp", "raw_json"]
    )
    by_conversation: dict[str, list[tuple[object, str, str]]] = defaultdict(list)
    for row in items.to_pylist():
        if row["conversation_id"] is not None:
            key = (row["timestamp"], row["item_id"])
            by_conversation[row["conversation_id"]].append((key, row["item_id"], row["raw_json"]))
    transcripts = archive.dataset("transcripts").to_table(columns=["conversation_id", "transcript"])
    paired = []
    for conversation, transcript in zip(
        transcripts.column("conversation_id").to_pylist(),
        transcripts.column("transcript").to_pylist(),
        strict=True,
    ):
        ordered = sorted(by_conversation[conversation], key=lambda entry: entry[0])  # type: ignore[arg-type,return-value]
        lines = transcript.split("\n")
        assert len(lines) == len(ordered), conversation
        paired += [
            (json.loads(raw), line) for (_, _, raw), line in zip(ordered, lines, strict=True)
        ]
    return paired


def test_no_html_is_left_in_any_transcript_or_item_text(exported: tuple[Sandbox, Archive]) -> None:
    _, archive = exported
    raw = archive.dataset("items").to_table(columns=["raw_json", "text"])
    # The sandbox does send HTML (agents' emails, some notes and activities): the test can fail.
    assert sum(bool(HTML_LEFTOVERS.search(r)) for r in raw.column("raw_json").to_pylist()) >= 10
    texts = [t for t in raw.column("text").to_pylist() if t]
    assert not [t for t in texts if HTML_LEFTOVERS.search(t)]
    transcripts = archive.dataset("transcripts").to_table(columns=["transcript"])
    for transcript in transcripts.column("transcript").to_pylist():
        assert not HTML_LEFTOVERS.search(transcript)


def test_every_note_line_is_marked_internal_and_only_notes_are(
    exported: tuple[Sandbox, Archive],
) -> None:
    sb, archive = exported
    agents = _sandbox_agents(sb)
    notes = 0
    for item, line in _lines_by_item(archive):
        who = line.split(" · ")[2]
        if item["content"]["type"] == "CONVERSATION_NOTE":
            notes += 1
            assert who == f"Internal note ({agents[item['initiator']['id']]})"
            assert " · Note · " in line
        else:
            assert "Internal note" not in who
    assert notes >= 5
    counted = archive.dataset("transcripts").to_table(columns=["internal_notes"])
    assert sum(counted.column("internal_notes").to_pylist()) == notes


def test_every_agent_line_names_its_agent(exported: tuple[Sandbox, Archive]) -> None:
    sb, archive = exported
    agents = _sandbox_agents(sb)
    agent_lines = 0
    for item, line in _lines_by_item(archive):
        initiator = item.get("initiator") or {}
        if initiator.get("type") != "AGENT" or item["content"]["type"] == "CONVERSATION_NOTE":
            continue
        agent_lines += 1
        assert line.split(" · ")[2] == agents[initiator["id"]]
    assert agent_lines >= 50


def test_enrichment_names_the_inbox_and_topics_of_archived_rows_and_a_crash_is_finished(
    tmp_path: Path,
) -> None:
    """Items are written before enrichment fetched their conversations: the refresh after it
    names inbox and topics as the sandbox has them, survives a crash mid-way, and a second
    pass changes nothing."""
    with Sandbox(
        seed=5, customers=25, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        archive = Archive.open(tmp_path / "archive")
        client = GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0)
        with client:
            assert run_export(client, archive, now=NOW).failed == []
            items = archive.dataset("items").to_table(columns=["inbox_name"])
            assert items.column("inbox_name").null_count == items.num_rows  # not yet known

            hits: list[str] = []

            def crash(point: str) -> None:
                if point.startswith("names:") and point.endswith(":written"):
                    hits.append(point)
                    if len(hits) == 2:
                        raise RuntimeError("killed")

            crashing = Archive.open(tmp_path / "archive", crash_hook=crash)
            with pytest.raises(RuntimeError, match="killed"):
                enrich_archive(client, crashing, max_calls=100_000, now=NOW)
            enrich_archive(client, archive, max_calls=100_000, now=NOW)
            rows = archive.dataset("items").to_table(
                columns=["conversation_id", "inbox_name", "topic_names"]
            )
            truth: dict[str, tuple[str, list[str]]] = {}
            inboxes = {i.id: i.name for i in client.org.inboxes()}
            topics = {t.id: t.name for t in client.org.topics()}
            for conversation in {c for c in rows.column("conversation_id").to_pylist() if c}:
                facts = client.conversations.get(conversation)
                truth[conversation] = (
                    inboxes[facts.inbox_id],
                    sorted(topics[t] for t in facts.topic_ids),
                )
        for row in rows.to_pylist():
            if row["conversation_id"] is not None:
                assert (row["inbox_name"], row["topic_names"]) == truth[row["conversation_id"]]
        transcripts = archive.dataset("transcripts").to_table(
            columns=["conversation_id", "inbox_name", "topic_names"]
        )
        for row in transcripts.to_pylist():
            assert (row["inbox_name"], row["topic_names"]) == truth[row["conversation_id"]]
        customers = dict(
            zip(
                transcripts.column("conversation_id").to_pylist(),
                archive.dataset("transcripts")
                .to_table(columns=["customer_id"])
                .column("customer_id")
                .to_pylist(),
                strict=True,
            )
        )
        again = refresh_conversation_names(archive, customers)
        assert again.conversations == len(truth)
        assert sum(again.files_rewritten.values()) == 0
