"""The hourly export sweeps what it archived: numbers people typed are found, planned, announced
(artifact, event) by counts only, and the plan is applied by the `apply-retention` flow; judged
by the sandbox's own state and a byte scan of everything written."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gladly_sandbox import Sandbox
from retention_policies.plan import Plan
from tests._policies import NOW
from tests._scan import traces
from tests.gladly_pipeline.test_cli_sweep import (
    CHAT_CARD,
    LOOK_ALIKE,
    NOTE_CARD,
    NUMBERS,
    say_numbers,
)

pytestmark = pytest.mark.integration

# Where the transcript archive keeps what people wrote (until a plan erases it): nowhere else
# may a number stand.
_DATA = {"items", "transcripts"}


@dataclass
class Said:
    """The sandbox, the items a test made say something (role → id), and the archive root."""

    sandbox: Sandbox
    ids: dict[str, str]
    root: Path


@pytest.fixture
def said(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Said]:
    """A sandbox whose first conversation got a card in a chat and a note, an SSN in an email
    and a look-alike after the export jobs so far; the next daily job carries them."""
    with Sandbox(
        seed=31, customers=12, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        ids = say_numbers(sb)
        monkeypatch.setenv("GLADLY_BASE_URL", sb.base_url)
        monkeypatch.setenv("GLADLY_USER", sb.user)
        monkeypatch.setenv("GLADLY_API_TOKEN", sb.api_token)
        monkeypatch.setenv("GLADLY_REQUESTS_PER_SECOND", "300")
        monkeypatch.setenv("GLADLY_AUDIT_KEY", "sweep-flow-test-key")
        monkeypatch.setenv("GLADLY_PIPELINE_ACTOR", "test-admin")
        yield Said(sb, ids, tmp_path / "a-rather-long-archive-directory-name" / "arc")


def _sweep_artifacts() -> list[Any]:
    """Every `sensitive-data-sweep` artifact, oldest first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["sensitive-data-sweep"]))
        )
    return sorted(found, key=lambda a: a.created or datetime.min.replace(tzinfo=UTC))


def _text(item: dict[str, Any]) -> str:
    content = item["content"]
    return str(content.get("content") or content.get("body") or "")


@contextmanager
def _hearing_prefect(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """caplog also hears Prefect's run loggers (they do not propagate to the root logger).
    Entered in the test's body: caplog's handler during the call is not the one of setup."""
    caplog.set_level(logging.DEBUG)
    loggers = [logging.getLogger(f"prefect.{name}") for name in ("flow_runs", "task_runs")]
    for logger in loggers:
        logger.addHandler(caplog.handler)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(caplog.handler)


def _outside_data(root: Path) -> list[str]:
    """Traces of the numbers anywhere but the transcript archive's own data."""
    return [t for t in traces(root, NUMBERS) if not _DATA & set(Path(t).relative_to(root).parts)]


def test_the_hourly_export_sweeps_new_items_and_announces_the_plan_by_counts_only(
    prefect_api: None,
    said: Said,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from flows import alerts, sweep_artifact
    from flows.export_transcripts import export_transcripts

    sent: list[tuple[str, str, dict[str, Any]]] = []
    monkeypatch.setattr(sweep_artifact, "emit_alert", lambda e, r, p=None: sent.append((e, r, p)))
    before = len(_sweep_artifacts())

    with _hearing_prefect(caplog):
        result = export_transcripts(root=str(said.root))

    assert result["ok"], result
    sweep = result["sweep"]
    assert sweep["items_by_kind"] == {"card": 2, "ssn": 1, "iban": 0}
    plan_dir = Path(sweep["plan_dir"])
    plan = Plan.read(plan_dir)  # verifies the plan's integrity against its hash
    assert plan.hash == sweep["plan_hash"]
    ids = said.ids
    assert sorted(plan.targets.column("target_id").to_pylist()) == sorted(
        [ids["chat"], ids["note"], ids["email"]]
    )
    artifacts = _sweep_artifacts()
    assert len(artifacts) == before + 1
    markdown = artifacts[-1].data
    assert "- items found: card 2, ssn 1, iban 0\n" in markdown
    assert f"- plan hash: `{plan.hash}`\n" in markdown
    assert f"- plan directory: `{plan_dir}`\n" in markdown
    assert f"gladly-pipeline apply {plan_dir} --approve {plan.hash} --execute" in markdown
    assert [(e, r) for e, r, _ in sent] == [(alerts.SWEEP_FOUND, plan.hash)]
    assert sent[0][2]["items_by_kind"] == {"card": 2, "ssn": 1, "iban": 0}
    assert alerts.SWEEP_FOUND in alerts._SUBJECTS  # `alerts install` notifies on it
    found = [r.getMessage() for r in caplog.records if "SENSITIVE DATA FOUND" in r.getMessage()]
    assert set(found) == {
        f"SENSITIVE DATA FOUND in new items: card 2, ssn 1, iban 0; plan {plan.hash} "
        "awaits approval"
    }

    # The numbers are in the archive's data (what the plan erases), nowhere else.
    assert traces(said.root / "items", NUMBERS[::2])
    assert _outside_data(said.root) == []
    said_anywhere = "\n".join(
        [
            json.dumps(result),
            markdown,
            artifacts[-1].description or "",
            json.dumps(sent),
            *(r.getMessage() for r in caplog.records),
        ]
    )
    flat = "".join(said_anywhere.split())
    assert [n for n in NUMBERS if "".join(n.split()) in flat] == []

    # The next hour: nothing new archived, nothing new swept, nothing announced.
    again = export_transcripts(root=str(said.root))
    assert again["jobs_archived"] == []
    assert again["sweep"]["items_scanned"] == 0
    assert again["sweep"]["plan_hash"] is None
    assert len(_sweep_artifacts()) == before + 1
    assert len(sent) == 1


def test_a_sweep_plan_is_executed_by_the_apply_retention_flow(
    prefect_api: None, said: Said
) -> None:
    from flows.apply_retention import apply_retention
    from flows.export_transcripts import export_transcripts

    sweep = export_transcripts(root=str(said.root))["sweep"]
    plan_dir, plan_hash = sweep["plan_dir"], sweep["plan_hash"]
    org, ids = said.sandbox.org, said.ids

    rehearsed = apply_retention(plan_dir, plan_hash, dry_run=True, root=str(said.root))
    assert rehearsed["dry_run"]
    assert _text(org.get_item(ids["chat"])) == CHAT_CARD  # a rehearsal changes nothing
    assert traces(said.root / "items", NUMBERS[::2])

    done = apply_retention(plan_dir, plan_hash, dry_run=False, root=str(said.root))
    assert done["ok"], done
    assert done["outcomes"] == {"redacted": 2, "not_erasable_via_api": 1}
    # The sandbox's truth: chat and email redacted; the note is Gladly's to erase by hand.
    assert _text(org.get_item(ids["chat"])) == ""
    assert _text(org.get_item(ids["email"])) == ""
    assert _text(org.get_item(ids["note"])) == NOTE_CARD
    assert _text(org.get_item(ids["look_alike"])) == LOOK_ALIKE
    # Our copy of every found item is erased: no number left anywhere under the root.
    assert traces(said.root, NUMBERS) == []
    assert traces(said.root, ["ORD-4012888888881881"])


def test_a_sweep_that_fails_is_one_line_and_the_export_completes(
    prefect_api: None,
    said: Said,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from flows import export_transcripts as flow_module

    def choked(*_: object, **__: object) -> None:
        raise ValueError(f"cannot parse {CHAT_CARD!r}")  # as a library may quote what it read

    monkeypatch.setattr(flow_module, "make_sweep", choked)
    with _hearing_prefect(caplog):
        result = flow_module.export_transcripts(root=str(said.root))
    assert result["ok"]
    assert result["jobs_archived"]
    assert result["sweep"] == {"error": "ValueError"}
    failed = [r for r in caplog.records if "SWEEP NOT RUN" in r.getMessage()]
    # One line (a record may reach caplog twice: through the root and Prefect's own logger).
    assert {(r.levelno, r.getMessage()) for r in failed} == {
        (
            logging.ERROR,
            "SENSITIVE-DATA SWEEP NOT RUN: ValueError (run `gladly-pipeline sweep --new` for "
            "why); the next run sweeps these items",
        )
    }
    assert all(r.exc_info is None for r in failed)
    assert all(CHAT_CARD not in r.getMessage() for r in caplog.records)
    assert not (said.root / "_sweep").exists()  # the watermark stays: the next run sweeps them


def test_no_sweep_when_told_not_to(prefect_api: None, said: Said) -> None:
    from flows.export_transcripts import export_transcripts

    result = export_transcripts(root=str(said.root), sweep=False)
    assert result["jobs_archived"]
    assert "sweep" not in result
    assert not (said.root / "_sweep").exists()
    assert not (said.root / "_plans").exists()
