"""`gladly-pipeline transcript` over an archive exported from the sandbox.

The output for one seeded conversation is compared byte for byte with the golden files in
tests/gladly_pipeline/golden/ (transcript.txt, .md, .html). After an intended change to the
format or to the sandbox's data, rewrite them and review the diff:

    GLADLY_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/gladly_pipeline/test_cli_transcript.py
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pytest
from click.testing import Result
from typer.testing import CliRunner

from gladly_archive import Archive
from gladly_archive.conversation_read import read_conversations
from gladly_archive.schemas import CUSTOMERS
from gladly_archive.transcript_render import render_text
from gladly_client import GladlyClient
from gladly_pipeline import transcript as transcript_command
from gladly_pipeline.cli import app
from gladly_sandbox import Sandbox
from ingest.enrich import enrich_archive
from ingest.exporting import run_export
from tests.gladly_archive.test_archive import archive_job, item

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("GLADLY_UPDATE_GOLDEN") == "1"
FORMATS = {"text": "transcript.txt", "markdown": "transcript.md", "html": "transcript.html"}
CALLS = ("PHONE_CALL", "VOICEMAIL")


@dataclass(frozen=True)
class World:
    root: Path
    conversation: str  # the golden one
    customer: str  # the customer with the most conversations
    email: str  # that customer's email, as the sandbox holds it
    other_customer: str  # another customer with conversations, for a shared email


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("transcript") / "archive"
    with (
        Sandbox(
            seed=23, customers=80, now=NOW, frozen_clock=True, rate_limit_per_second=None
        ) as sb,
        GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as client,
    ):
        assert run_export(client, Archive.open(root), now=NOW).failed == []
        # Enrichment names every conversation's inbox and topics, so headers show them.
        enrich_archive(client, Archive(root), max_calls=100_000, now=NOW)
        per_customer = Counter(
            Archive(root).dataset("transcripts").to_table(columns=["customer_id"])["customer_id"]
            .to_pylist()
        )  # fmt: skip
        customer, other = sorted(per_customer, key=lambda c: (-per_customer[c], c))[:2]
        record = sb.org.raw_customer(customer)
        assert record is not None
        email = record["emails"][0]["original"]
    return World(root, _golden_conversation(root), customer, email, other)


def _golden_conversation(root: Path) -> str:
    """The conversation with the most of a note, a call and an attachment, then the most
    channels, then the most items; the smallest id of those."""
    items = (
        Archive(root)
        .dataset("items")
        .to_table(
            columns=["conversation_id", "content_type", "channel", "internal", "attachments"],
            filter=pc.field("conversation_id").is_valid(),
        )
    )
    kinds: dict[str, set[str]] = defaultdict(set)
    channels: dict[str, set[str]] = defaultdict(set)
    count: Counter[str] = Counter()
    for row in items.to_pylist():
        cid = row["conversation_id"]
        channels[cid].add(row["channel"])
        count[cid] += 1
        kinds[cid].update(
            kind
            for kind, present in (
                ("note", row["internal"]),
                ("call", row["content_type"] in CALLS),
                ("attachment", bool(row["attachments"])),
            )
            if present
        )
    best = min(count, key=lambda c: (-len(kinds[c]), -len(channels[c]), -count[c], c))
    assert len(kinds[best]) >= 2, "the golden conversation should show a note and more"
    return best


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, ["transcript", *args], env=env)


def _transcript_of(root: Path, conversation_id: str) -> str:
    table = (
        Archive(root)
        .dataset("transcripts")
        .to_table(columns=["transcript"], filter=pc.field("conversation_id") == conversation_id)
    )
    (text,) = table["transcript"].to_pylist()
    return str(text)


def _lines_after_header(block: str) -> list[str]:
    header, _, lines = block.partition("\n\n")
    assert header.startswith("Conversation ")
    return lines.rstrip("\n").split("\n")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_each_format_matches_its_golden_file(world: World, fmt: str) -> None:
    result = _run(world.conversation, "--root", str(world.root), "--format", fmt)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    data = result.stdout_bytes
    assert str(world.root).encode() not in data
    assert b"built_at" not in data
    golden = GOLDEN / FORMATS[fmt]
    if UPDATE:
        golden.write_bytes(data)
    assert data == golden.read_bytes(), (
        f"{golden.name} differs from the output; if the change is intended, rerun with "
        "GLADLY_UPDATE_GOLDEN=1 and review the diff"
    )


def test_text_lines_are_the_transcripts_datasets_lines(world: World) -> None:
    result = _run(world.conversation, "--root", str(world.root))
    assert result.exit_code == 0, result.output
    expected = _transcript_of(world.root, world.conversation).split("\n")
    assert _lines_after_header(result.stdout) == expected
    assert any(" · Note · Internal note (" in line for line in expected)
    (stored,) = (
        Archive(world.root)
        .dataset("transcripts")
        .to_table(
            columns=["inbox_name", "topic_names"],
            filter=pc.field("conversation_id") == world.conversation,
        )
        .to_pylist()
    )
    header = result.stdout.partition("\n\n")[0].split("\n")
    assert stored["inbox_name"]  # enriched: the header names what the dataset names
    assert f"Inbox: {stored['inbox_name']}" in header
    assert f"Topics: {', '.join(stored['topic_names'])}" in header


def test_every_conversation_reads_as_the_transcripts_dataset(world: World) -> None:
    stored = (
        Archive(world.root)
        .dataset("transcripts")
        .to_table(columns=["conversation_id", "transcript"])
    )
    expected = dict(zip(*(stored[c].to_pylist() for c in stored.column_names), strict=True))
    selection = read_conversations(Archive(world.root), expected)
    assert len(selection.conversations) == len(expected) > 100
    shown = {
        c.conversation_id: _lines_after_header(render_text([c])) for c in selection.conversations
    }
    assert shown == {cid: text.split("\n") for cid, text in expected.items()}
    # Calls are among them, described as the dataset describes them.
    assert any(" · Phone call · " in text for text in expected.values())


def test_a_customer_by_email_gets_every_conversation_oldest_first(world: World) -> None:
    truth = duckdb.execute(
        "select distinct conversation_id from read_parquet(?) "
        "where customer_id = ? and conversation_id is not null",
        [str(world.root / "items" / "**" / "*.parquet"), world.customer],
    ).fetchall()
    stored = (
        Archive(world.root)
        .dataset("transcripts")
        .to_table(
            columns=["conversation_id", "first_timestamp"],
            filter=pc.field("conversation_id").isin([c for (c,) in truth]),
        )
    )
    expected = [
        row["conversation_id"]
        for row in sorted(
            stored.to_pylist(), key=lambda r: (r["first_timestamp"], r["conversation_id"])
        )
    ]
    assert len(expected) == len(truth) >= 2
    typed = f"  {world.email.upper()} "  # as a person may paste it
    result = _run("--customer", typed, "--root", str(world.root))
    assert result.exit_code == 0, result.output
    headings = [
        line.removeprefix("Conversation ")
        for line in result.stdout.split("\n")
        if line.startswith("Conversation ")
    ]
    assert headings == expected
    by_id = _run("--customer-id", world.customer, "--root", str(world.root))
    assert by_id.stdout_bytes == result.stdout_bytes
    assert world.email.lower() not in result.output.lower()
    assert world.email.lower() not in result.stderr.lower()


def test_every_profile_with_the_email_is_included(world: World, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    shutil.copytree(world.root, root)
    archive = Archive.open(root)
    job = archive.stage_job("shared-email")
    job.write_customers(
        CUSTOMERS.empty_table().from_pylist(
            [
                {"customer_id": world.other_customer, "emails": [world.email.upper()],
                 "phones": [], "raw_json": "{}", "job_id": "shared-email",
                 "archived_at": NOW},
            ],
            schema=CUSTOMERS,
        ).to_batches()
    )  # fmt: skip
    job.commit()
    result = _run("--customer", world.email, "--root", str(root))
    assert result.exit_code == 0, result.output
    customers = {
        line.removeprefix("Customer: ")
        for line in result.stdout.split("\n")
        if line.startswith("Customer: ")
    }
    assert customers == {world.customer, world.other_customer}
    html = _run("--customer", world.email, "--root", str(root), "--format", "html")
    (title,) = [line for line in html.stdout.split("\n") if line.startswith("<title>")]
    assert title.startswith("<title>Transcripts of customers ")
    assert world.customer in title
    assert world.other_customer in title


def test_no_notes_removes_every_note_and_says_so(world: World) -> None:
    full = _run(world.conversation, "--root", str(world.root)).stdout
    result = _run(world.conversation, "--root", str(world.root), "--no-notes")
    assert result.exit_code == 0, result.output
    notes = [line for line in _lines_after_header(full) if " · Internal note (" in line]
    assert notes
    kept = _lines_after_header(result.stdout)
    assert kept == [line for line in _lines_after_header(full) if line not in notes]
    assert "Internal notes: left out of this copy" in result.stdout
    assert "Note" not in result.stdout.split("\n\n")[0]  # nor among the header's channels
    for fmt in ("markdown", "html"):
        other = _run(world.conversation, "--root", str(world.root), "--no-notes", "--format", fmt)
        assert "Internal note (" not in other.stdout
        assert "[internal]" not in other.stdout
        assert "left out of this copy" in other.stdout


def _one_error_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_an_unknown_conversation_is_one_line_and_exit_2(world: World) -> None:
    line = _one_error_line(_run("NoSuchConversation", "--root", str(world.root)))
    assert "no conversation NoSuchConversation in the archive" in line
    hostile = _one_error_line(_run("\x1b[2Jx", "--root", str(world.root)))
    assert "\x1b" not in hostile
    assert "(the id given)" in hostile


def test_an_unknown_email_names_nothing_personal(world: World) -> None:
    email = "nobody.at.all@example.org"
    line = _one_error_line(_run("--customer", email, "--root", str(world.root)))
    assert line == f"Error: no customer in the archive at {world.root} has that email"
    assert "nobody" not in line
    unknown = _one_error_line(_run("--customer-id", "NoSuchCustomer", "--root", str(world.root)))
    assert "customer NoSuchCustomer has no conversation" in unknown


@pytest.mark.parametrize(
    "args",
    [[], ["abc", "--customer", "a@example.com"], ["--customer-id", "u1", "--customer", "a@b.c"]],
)
def test_exactly_one_of_id_email_or_customer_id(world: World, args: list[str]) -> None:
    line = _one_error_line(_run(*args, "--root", str(world.root)))
    assert "exactly one of CONVERSATION_ID, --customer EMAIL or --customer-id ID" in line
    assert "a@" not in line


def test_a_root_that_is_not_an_archive_is_refused(tmp_path: Path) -> None:
    line = _one_error_line(_run("abc", "--root", str(tmp_path / "nothing-here")))
    assert "no archive at" in line


def test_out_writes_a_private_file_atomically_and_never_overwrites(
    world: World, tmp_path: Path
) -> None:
    out = tmp_path / "t.html"
    result = _run(world.conversation, "--root", str(world.root), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    html = _run(world.conversation, "--root", str(world.root), "--format", "html")
    assert out.read_bytes() == html.stdout_bytes  # the suffix chose the format
    assert os.listdir(tmp_path) == ["t.html"]  # no temporary file left

    out.write_bytes(b"kept")
    out.chmod(0o644)
    line = _one_error_line(_run(world.conversation, "--root", str(world.root), "--out", str(out)))
    assert "exists; give --force" in line
    assert out.read_bytes() == b"kept"
    forced = _run(
        world.conversation, "--root", str(world.root), "--out", str(out), "--force",
        "--format", "markdown",
    )  # fmt: skip
    assert forced.exit_code == 0, forced.output
    assert out.read_bytes().startswith(b"# Transcript of conversation ")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["t.html"]


def test_out_refuses_a_directory_or_a_missing_directory(world: World, tmp_path: Path) -> None:
    line = _one_error_line(
        _run(world.conversation, "--root", str(world.root), "--out", str(tmp_path))
    )
    assert "is a directory" in line
    missing = tmp_path / "no" / "t.txt"
    line = _one_error_line(
        _run(world.conversation, "--root", str(world.root), "--out", str(missing))
    )
    assert "its directory does not exist" in line


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary_file(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "t.txt"
    out.write_bytes(b"old")

    def refuse(*_: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", refuse)
    result = _run(world.conversation, "--root", str(world.root), "--out", str(out), "--force")
    assert result.exit_code == 1, result.output
    assert out.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["t.txt"]


def test_a_file_that_appears_while_reading_is_not_overwritten(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "t.txt"

    def appears(path: Path, force: bool) -> None:
        path.write_bytes(b"someone else's")

    monkeypatch.setattr(transcript_command, "_check_out", appears)
    line = _one_error_line(_run(world.conversation, "--root", str(world.root), "--out", str(out)))
    assert "exists; give --force" in line
    assert out.read_bytes() == b"someone else's"
    assert os.listdir(tmp_path) == ["t.txt"]


def test_without_hard_links_a_new_file_is_still_written_and_an_old_one_kept(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*_: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    out = tmp_path / "t.txt"
    assert _run(world.conversation, "--root", str(world.root), "--out", str(out)).exit_code == 0
    text = _run(world.conversation, "--root", str(world.root)).stdout_bytes
    assert out.read_bytes() == text
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["t.txt"]


def test_customer_text_cannot_inject_html_or_markdown(world: World, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    shutil.copytree(world.root, root)
    hostile = "<script>alert(1)</script> [x](https://evil.example) # not a heading"
    archive_job(
        Archive.open(root), "hostile", [item("hostile-item", "hostile-c1", "hostile-u1", NOW,
                                             text=hostile)]
    )  # fmt: skip
    html = _run("hostile-c1", "--root", str(root), "--format", "html")
    assert html.exit_code == 0, html.output
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html.stdout
    assert "<script" not in html.stdout
    markdown = _run("hostile-c1", "--root", str(root), "--format", "markdown")
    assert "\\<script\\>alert(1)\\</script\\> \\[x\\](https://evil.example) \\# not" in (
        markdown.stdout
    )
    text = _run("hostile-c1", "--root", str(root))
    assert _lines_after_header(text.stdout) == [
        f"2026-05-20T09:00:00Z · Chat · Customer · {hostile}"
    ]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_output_does_not_depend_on_the_terminal_width(world: World, fmt: str) -> None:
    narrow = _run(world.conversation, "--root", str(world.root), "--format", fmt,
                  env={"COLUMNS": "40"})  # fmt: skip
    wide = _run(world.conversation, "--root", str(world.root), "--format", fmt,
                env={"COLUMNS": "200"})  # fmt: skip
    assert narrow.exit_code == wide.exit_code == 0
    assert narrow.stdout_bytes == wide.stdout_bytes
    assert max(len(line) for line in narrow.stdout.splitlines()) > 40
