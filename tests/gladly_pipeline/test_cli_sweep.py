"""`gladly-pipeline sweep` end to end: numbers people typed into a chat and a note are found,
planned, applied; judged by the sandbox's own state and a byte scan of the archive."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from gladly_archive import Archive
from gladly_client import GladlyClient
from gladly_pipeline.progress import PROGRESS_ENV
from gladly_sandbox import Sandbox
from ingest.exporting import run_export
from retention_policies.plan import Plan
from tests._policies import NOW
from tests._scan import traces
from tests.erasure._erasure_world import REPO, ErasureWorld

pytestmark = pytest.mark.integration

CHAT_CARD = "Sure, it is 4111 1111 1111 1111, expires 04/29"
NOTE_CARD = "Customer read out 5555-5555-5555-4444 on the phone"
EMAIL_SSN = "Identity check: my SSN is 536-90-4399"
# Not numbers anyone must erase: an order id embedding a valid card, a tracking id, a phone.
LOOK_ALIKE = "Order ORD-4012888888881881, tracking 1Z999AA10123456784, call +1 415 555 2671"
NUMBERS = [
    "4111 1111 1111 1111",
    "4111111111111111",
    "5555-5555-5555-4444",
    "5555555555554444",
    "536-90-4399",
    "536904399",
]


@dataclass
class SweepWorld(ErasureWorld):
    """The erasure world, plus the items a test made say something."""

    said: dict[str, str]  # role → item id

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`gladly-pipeline ARGS` in a child, on a 40-column terminal."""
        proc = subprocess.run(
            [sys.executable, "-m", "tests.erasure._cli_child", "0", *args],
            capture_output=True,
            text=True,
            env={**self.env(), "COLUMNS": "40"},
            cwd=REPO,
            timeout=300,
            check=False,
        )
        assert proc.returncode in (0, 1, 2, 3), proc.stderr[-3000:]
        return proc


def say_numbers(sb: Sandbox) -> dict[str, str]:
    """Into the first conversation, after the export jobs so far: a card in a chat and in a
    note, an SSN in an email and a look-alike; the clock moved on so that the next daily job
    carries them. Their item ids, by role."""
    customer = sb.org.customer_ids()[0]
    conversation = sb.org.conversation_ids(customer)[0]
    said = {
        role: sb.org.say(conversation, kind, text)
        for role, kind, text in (
            ("chat", "CHAT_MESSAGE", CHAT_CARD),
            ("note", "CONVERSATION_NOTE", NOTE_CARD),
            ("email", "EMAIL", EMAIL_SSN),
            ("look_alike", "CHAT_MESSAGE", LOOK_ALIKE),
        )
    }
    sb.advance(days=2)
    return said


@contextmanager
def sweep_world(tmp: Path) -> Iterator[SweepWorld]:
    """A sandbox whose first conversation got a card in a chat and a note, an SSN in an email
    and a look-alike, after the export jobs so far; exported (the next daily job) into tmp."""
    with Sandbox(
        seed=31, customers=12, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        # People type numbers into a conversation after the export jobs so far were made;
        # the next daily job carries them.
        said = say_numbers(sb)
        root = tmp / "a-rather-long-archive-directory-name" / "arc"
        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as c:
            assert run_export(c, Archive.open(root), now=sb.clock.now()).failed == []
        yield SweepWorld(sb, root, sb.base_url, said)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SweepWorld]:
    with sweep_world(tmp_path_factory.mktemp("sweep")) as w:
        yield w


def _plan_from(stderr: str) -> tuple[Path, str]:
    path = re.search(r"^plan written to (.+)$", stderr, re.M)
    digest = re.search(r"^plan hash: ([0-9a-f]{64})$", stderr, re.M)
    assert path, stderr
    assert digest, stderr
    return Path(path.group(1)), digest.group(1)


def _text(item: dict[str, Any]) -> str:
    content = item["content"]
    return str(content.get("content") or content.get("body") or "")


def test_sweep_then_apply_erases_what_the_api_can_and_our_copy_of_all(world: SweepWorld) -> None:
    said, org = world.said, world.sandbox.org
    assert traces(world.root, NUMBERS[::2]), "the export should have archived the numbers"

    swept = world.run("sweep")
    assert swept.returncode == 3, swept.stderr
    out = swept.stdout + swept.stderr
    assert "items found: card 2, ssn 1, iban 0" in out
    assert "by outcome: not_erasable_via_api 1, redact 2" in out
    assert f"item {said['note']} (CONVERSATION_NOTE)" in out
    assert not [n for n in NUMBERS if n in out]
    plan_dir, plan_hash = _plan_from(swept.stderr)
    assert sorted(p.name for p in plan_dir.iterdir()) == [
        "held.parquet",
        "plan.json",
        "summary.json",
        "targets.parquet",
    ]
    assert traces(plan_dir, NUMBERS) == []

    applied = world.run("apply", str(plan_dir), "--approve", plan_hash, "--execute")
    assert applied.returncode == 0, applied.stderr
    assert not [n for n in NUMBERS if n in applied.stdout + applied.stderr]

    # The sandbox's truth: the chat and the email are redacted, the note untouched.
    assert _text(org.get_item(said["chat"])) == ""
    assert _text(org.get_item(said["email"])) == ""
    assert org.get_item(said["email"])["content"]["subject"] == ""
    assert _text(org.get_item(said["note"])) == NOTE_CARD
    assert _text(org.get_item(said["look_alike"])) == LOOK_ALIKE
    outcomes = {e["target_id"]: e["outcome"] for e in world.outcomes()}
    assert outcomes == {
        said["chat"]: "redacted",
        said["email"]: "redacted",
        said["note"]: "not_erasable_via_api",
    }
    # Our copy of every found item is erased, the note's too; what was not a number stays.
    assert traces(world.root, NUMBERS) == []
    assert traces(world.root, ["ORD-4012888888881881"])

    again = world.run("sweep")
    assert again.returncode == 0, again.stderr
    assert "nothing found" in again.stderr


def test_new_sweeps_only_what_was_archived_since_and_keeps_times_only(world: SweepWorld) -> None:
    first = world.run("sweep", "--new", "--kinds", "iban")
    assert first.returncode == 0, first.stderr
    assert "items scanned: 0" not in first.stderr
    state = json.loads((world.root / "_sweep" / "state.json").read_text())
    assert sorted(state) == ["swept_through", "written_at"]
    assert all(datetime.fromisoformat(v) for v in state.values())
    second = world.run("sweep", "--new", "--kinds", "iban")
    assert second.returncode == 0, second.stderr
    assert "items scanned: 0 " in second.stderr


def test_since_a_day_after_everything_scans_nothing(world: SweepWorld) -> None:
    result = world.run("sweep", "--since", "2099-01-01")
    assert result.returncode == 0, result.stderr
    assert "items scanned: 0 " in result.stderr
    assert "nothing found" in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--kinds", "card,cvv"], "unknown kind(s) cvv; valid kinds: card, ssn, iban"),
        (["--since", "2026-13-01"], "is not a date; write it as YYYY-MM-DD"),
        (["--since", "2026-05-01", "--new"], "give one of them"),
    ],
)
def test_bad_input_is_one_line_naming_the_fix_and_changes_nothing(
    world: SweepWorld, args: list[str], says: str
) -> None:
    before = sorted(str(p) for p in world.root.rglob("*"))
    result = world.run("sweep", *args)
    assert result.returncode == 2, result.stderr
    assert says in " ".join(result.stderr.split())
    assert sorted(str(p) for p in world.root.rglob("*")) == before


def test_a_legal_hold_keeps_the_items_in_gladly_and_in_the_archive(tmp_path: Path) -> None:
    with sweep_world(tmp_path) as held:
        customer = held.sandbox.org.get_item(held.said["chat"])["customerId"]
        holds = tmp_path / "holds.yaml"
        holds.write_text(
            "holds:\n"
            f"  - kind: customer_id\n    value: {customer}\n"
            "    reason: Card-scheme dispute\n    reference: LEGAL-18\n"
        )
        plan_dir, plan_hash = _plan_from(held.run("sweep").stderr)
        applied = held.run(
            "apply", str(plan_dir), "--approve", plan_hash, "--holds", str(holds), "--execute"
        )
        assert applied.returncode == 3, applied.stderr
        outcomes = {e["target_id"]: e["outcome"] for e in held.outcomes()}
        assert outcomes == dict.fromkeys(
            (held.said["chat"], held.said["note"], held.said["email"]), "held"
        )
        assert _text(held.sandbox.org.get_item(held.said["chat"])) == CHAT_CARD
        kept = traces(held.root / "items", ["4111 1111 1111 1111", "5555-5555-5555-4444"])
        assert {t.rsplit("#", 1)[1] for t in kept} == {"0", "1"}  # both, in our archive too


def test_export_sweep_exits_3_when_it_finds_and_0_when_nothing_is_new(tmp_path: Path) -> None:
    with Sandbox(
        seed=31, customers=12, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        customer = sb.org.customer_ids()[0]
        conversation = sb.org.conversation_ids(customer)[0]
        sb.org.say(conversation, "CHAT_MESSAGE", CHAT_CARD)
        sb.advance(days=2)
        world = SweepWorld(sb, tmp_path / "arc", sb.base_url, {})
        found = world.run("export", "--sweep")
        assert found.returncode == 3, found.stderr
        assert "items found: card 1, ssn 0, iban 0" in found.stderr
        plan_dir, plan_hash = _plan_from(found.stderr)
        assert f"next: gladly-pipeline apply {plan_dir} --approve {plan_hash[:12]}" in found.stderr
        assert not [n for n in NUMBERS if n in found.stdout + found.stderr]
        assert traces(plan_dir, NUMBERS) == []
        again = world.run("export", "--sweep")
        assert again.returncode == 0, again.stderr
        assert "items scanned: 0 " in again.stderr
        assert "nothing found" in again.stderr
        refused = world.run("export", "--holds", str(tmp_path / "holds.yaml"))
        assert refused.returncode == 2
        assert "add --sweep" in " ".join(refused.stderr.split())


def test_holds_keep_held_items_out_of_the_plan_and_the_sweep_says_how_many(
    tmp_path: Path,
) -> None:
    with sweep_world(tmp_path) as world:
        customer = world.sandbox.org.get_item(world.said["chat"])["customerId"]
        holds = tmp_path / "holds.yaml"
        holds.write_text(
            "holds:\n"
            f"  - kind: customer_id\n    value: {customer}\n"
            "    reason: Card-scheme dispute\n    reference: LEGAL-18\n"
        )
        out = tmp_path / "held-plan"
        result = world.run("sweep", "--holds", str(holds), "--out", str(out))
    assert result.returncode == 3, result.stderr
    assert "held (a legal hold protects them; not in the plan's targets): 3" in result.stderr
    assert "by outcome: none (every item found is held)" in result.stderr
    plan = Plan.read(out)
    assert plan.targets.num_rows == 0
    held = plan.held.to_pylist()
    assert sorted(r["target_id"] for r in held) == sorted(
        world.said[role] for role in ("chat", "note", "email")
    )
    assert {tuple(r["excluded_by_holds"]) for r in held} == {
        (f"customer_id={customer} [LEGAL-18]",)
    }
    assert plan.summary()["excluded_by_holds"] == 3
    assert traces(out, NUMBERS) == []


def test_the_sweep_draws_a_bar_on_a_terminal(world: SweepWorld) -> None:
    drawn = subprocess.run(
        [sys.executable, "-m", "tests.erasure._cli_child", "0", "sweep", "--kinds", "iban"],
        capture_output=True,
        text=True,
        env={**world.env(), "COLUMNS": "40", PROGRESS_ENV: "always"},
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert drawn.returncode == 0, drawn.stderr
    assert "\x1b[?25l" in drawn.stderr  # a live display hid the cursor to draw
    assert "items scanned" in drawn.stderr
    piped = world.run("sweep", "--kinds", "iban")
    assert "\x1b" not in piped.stderr
