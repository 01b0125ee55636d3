"""Evidence packs from an audit log shaped like the engine's: counts, scope, no personal data."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from audit_log import AUDIT_EVENTS, AuditLog, AuditRun, verify_chain
from audit_log.verify import event_hash
from evidence.pack import EvidenceError, UnknownRunError, build_evidence
from evidence.page import age_bins, timeline
from gladly_archive.keyed import keyed_hash
from gladly_pipeline.cli import app
from retention_policies.plan import TARGET_SCHEMA, Plan
from tests._console import says

KEY = b"evidence-test-audit-key"
EMAIL = "Jane.Doe@Example.com"  # mixed case: the hash normalises it; no case may leak
OTHER_EMAIL = "someone.else@example.org"
PHONE = "+44 20 7946 0958"
PLAN_NOW = datetime(2026, 5, 31, tzinfo=UTC)
REPORT_NOW = datetime(2026, 6, 3, 12, tzinfo=UTC)
RUN_A, RUN_B = "run-a-retention", "run-b-oneoff"
HOLD = "customer_id=c-held [LEGAL-1 <urgent>]"  # markup in a label must come out escaped
runner = CliRunner()


@pytest.fixture(autouse=True)
def audit_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keyed chain is verified with the key the test log was written with."""
    monkeypatch.setenv("GLADLY_AUDIT_KEY", KEY.decode())


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Spec:
    """One target of a plan and what the engine's run made of it."""

    target_id: str
    outcome: str
    policy: str = "delete-inactive"
    target_type: str = "customer"
    customer_id: str | None = None
    content_type: str | None = None
    age_days: int = 500
    subject: str | None = None  # the keyed hash of who asked (one-off deletions)
    verify_status: int = 200


POLICIES = {
    "delete-inactive": (_hash("delete-inactive v3"), "customer", "delete_customer"),
    "redact-old-calls": (_hash("redact-old-calls v1"), "item", "redact_items"),
    "one-off-erasure": (_hash("one-off: two customers"), "customer", "delete_customer"),
}


def _row(spec: Spec) -> dict[str, Any]:
    policy_hash, _, action = POLICIES[spec.policy]
    operation = {"customer": "delete_customer", "item": "redact"}[spec.target_type]
    if spec.outcome == "not_erasable_via_api":
        operation = "not_erasable_via_api"
    facts = {"subject_hash": spec.subject} if spec.subject else {}
    return {
        "target_type": spec.target_type,
        "target_id": spec.target_id,
        "customer_id": spec.customer_id or spec.target_id,
        "policy_name": spec.policy,
        "policy_hash": policy_hash,
        "action": action,
        "operation": operation,
        "erasable": operation != "not_erasable_via_api",
        "content_type": spec.content_type,
        "last_activity": PLAN_NOW - timedelta(days=spec.age_days),
        "close_open_conversations": False,
        "has_open_conversation": False,
        "matched_facts_json": json.dumps(facts),
        "excluded_by_holds": [],
    }


def _plan(specs: list[Spec], held: list[dict[str, Any]] | None = None) -> Plan:
    names = sorted({s.policy for s in specs})
    policies = [
        {
            "name": name,
            "version_hash": POLICIES[name][0],
            "resource": POLICIES[name][1],
            "action": POLICIES[name][2],
            "status": "planned",
            "population": 40,
            "matched": sum(s.policy == name for s in specs),
            "held": 0,
            "eligible": sum(s.policy == name for s in specs),
        }
        for name in names
    ]
    return Plan(
        now=PLAN_NOW,
        targets=pa.Table.from_pylist([_row(s) for s in specs], schema=TARGET_SCHEMA),
        held=pa.Table.from_pylist(held or [], schema=TARGET_SCHEMA),
        policies=policies,
        holds_hash="0" * 64,
    )


class Clock:
    """Seven seconds per audit event, from wherever it was last set."""

    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 9, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=7)
        return self.now


def _call(run: AuditRun, fields: dict[str, Any], step: str, method: str, status: int) -> None:
    """An API call as the engine's Recorder writes it: an intent, then a result."""
    run.append(**fields, step=step, phase="intent", detail=method)
    ok = status < 400
    run.append(
        **fields,
        step=step,
        phase="result",
        http_status=status,
        error_code=None if ok else "ServiceUnavailable",
        duration_ms=12.5,
        outcome="ok" if ok else "error",
    )


def _target(run: AuditRun, spec: Spec) -> None:
    """One target's events, in the engine's order (flows/engine_steps.py)."""
    row = _row(spec)
    fields = {k: row[k] for k in ("target_type", "target_id", "customer_id", "policy_name")}
    fields.update(policy_hash=row["policy_hash"], action=row["action"], subject_hash=spec.subject)
    held = spec.outcome == "held"
    run.append(
        **fields,
        step="hold_check",
        phase="result",
        outcome="held" if held else "clear",
        detail=HOLD if held else None,
    )
    status, code, detail = None, None, spec.content_type
    if held:
        detail = HOLD
    elif spec.outcome == "not_erasable_via_api":
        pass
    elif spec.target_type == "customer":
        _call(run, fields, "preflight", "GET", 200)
        run.append(**fields, step="hold_check", phase="result", outcome="clear")
        _call(run, fields, "act", "DELETE", 204)
        _call(run, fields, "verify", "GET", spec.verify_status)
        if spec.verify_status >= 400:
            status, code, detail = spec.verify_status, "ServiceUnavailable", "verification search"
        elif spec.outcome == "verify_failed":
            detail = "search still finds the profile"
    else:
        _call(run, fields, "act", "POST", 201)
        _call(run, fields, "verify", "GET", 200)
    run.append(
        **fields,
        step="outcome",
        phase="result",
        outcome=spec.outcome,
        http_status=status,
        error_code=code,
        detail=detail,
    )


def _run(
    log: AuditLog,
    run_id: str,
    plan: Plan,
    specs: list[Spec],
    identity: dict[str, Any],
    purge: dict[str, Any] | None,
    *,
    extra: bool = False,
) -> None:
    with log.start_run(run_id, plan_hash=plan.hash, **identity) as run:
        start = {"targets": len(specs), "resumed": 0, "reasons": ["TICKET-7"]}
        run.append(
            target_type="run",
            step="run_started",
            phase="intent",
            outcome="execute",
            detail=json.dumps(start),
        )
        if extra:  # the approval step another issue adds, and a step nobody knows yet
            run.append(
                target_type="run",
                step="approval",
                phase="result",
                outcome="approved",
                approver="bob",
            )
            run.append(target_type="run", step="future_step", phase="result", outcome="ok")
        for spec in specs:
            _target(run, spec)
        if purge is not None:
            stones = json.dumps({"customers": purge["customers"]})
            run.append(target_type="archive", step="tombstone", phase="intent", detail=stones)
            run.append(target_type="archive", step="purge", phase="intent", detail="2 customers")
            run.append(
                target_type="archive",
                step="purge",
                phase="result",
                outcome="ok",
                detail=json.dumps(purge, sort_keys=True),
            )
        counts = dict(sorted(Counter(s.outcome for s in specs).items()))
        run.append(
            target_type="run",
            step="run_finished",
            phase="result",
            outcome="attention",
            detail=json.dumps({"outcomes": counts, "api_calls": {"GET": 1}}),
        )


SPECS_A = [
    Spec("c-del-1", "deleted", age_days=400),
    Spec("c-del-2", "deleted", age_days=800),
    Spec("c-held", "held"),
    Spec("c-vf", "verify_failed"),
    Spec("c-fail", "failed", verify_status=503),
    Spec("it-call-1", "redacted", "redact-old-calls", "item", "c-x", "PHONE_CALL", 450),
    Spec("it-note-1", "not_erasable_via_api", "redact-old-calls", "item", "c-x", "NOTE"),
]
PURGE_A = {
    "customers": 2,
    "rows_removed": {"customers": 2, "transcripts": 17},
    "files_rewritten": {"transcripts": 3},
    "files_deleted": {"customers": 1},
    "not_purged": [],
}
JANE = keyed_hash(EMAIL, kind="email", key=KEY)
SPECS_B = [
    Spec("c-jane", "deleted", "one-off-erasure", age_days=30, subject=JANE),
    # The same customer's item without the subject's hash: selected through the customer.
    Spec("it-jane-1", "redacted", "one-off-erasure", "item", "c-jane", "CHAT", 45),
    Spec(
        "c-other",
        "deleted",
        "one-off-erasure",
        age_days=90,
        subject=keyed_hash(OTHER_EMAIL, kind="email", key=KEY),
    ),
]
PURGE_B = {**PURGE_A, "rows_removed": {"customers": 2}, "files_rewritten": {}}


@dataclass
class World:
    root: Path
    elsewhere: Path  # where the one-off plan lives (not under <root>/_plans)
    plan_a: Plan
    plan_b: Plan


def _world(base: Path) -> World:
    root, elsewhere = base / "data", base / "oneoff-plans"
    held = _row(Spec("c-planheld", "held")) | {"excluded_by_holds": ["customer_id=c-planheld [L2]"]}
    plan_a, plan_b = _plan(SPECS_A, [held]), _plan(SPECS_B)
    plan_a.write(root / "_plans" / "20260531T000000Z")
    plan_b.write(elsewhere / "oneoff-20260602")
    clock = Clock()
    log = AuditLog(root, clock=clock, key=KEY)
    identity_a = {"actor": "alice", "approver": "bob", "flow": "cli:apply"}
    _run(log, RUN_A, plan_a, SPECS_A, identity_a, PURGE_A, extra=True)
    clock.now += timedelta(hours=28)
    _run(log, RUN_B, plan_b, SPECS_B, {"actor": "dpo-desk", "flow": "cli:delete"}, PURGE_B)
    return World(root, elsewhere, plan_a, plan_b)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return _world(tmp_path_factory.mktemp("evidence"))


def _pack_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_run_pack_has_counts_policies_approver_holds_and_purge(world: World) -> None:
    pack = build_evidence(world.root, run_id=RUN_A, now=REPORT_NOW)
    s = pack.summary
    assert pack.out_dir == world.root / "_evidence" / f"{RUN_A}-20260603T120000Z"
    assert s["outcomes"]["total"] == {
        "deleted": 2,
        "failed": 1,
        "held": 1,
        "not_erasable_via_api": 1,
        "redacted": 1,
        "verify_failed": 1,
    }
    (run,) = s["runs"]
    assert (run["requested_by"], run["approved_by"], run["flow"]) == ("alice", "bob", "cli:apply")
    assert run["approvals"][0]["outcome"] == "approved"
    assert run["mode"] == "executed"
    assert run["reasons"] == ["TICKET-7"]
    assert run["plan_hash"] == world.plan_a.hash
    assert run["plan"]["found"]
    assert run["plan"]["excluded_by_holds"] == 1
    assert run["outcomes"] == s["outcomes"]["total"] == run["recorded_outcomes"]
    assert run["api_calls"] == {"DELETE": 4, "GET": 9, "POST": 1}
    assert run["steps"]["future_step"] == 1  # unknown steps are counted, not fatal
    assert {p["name"]: p["version_hash"] for p in s["policies"]} == {
        "delete-inactive": POLICIES["delete-inactive"][0],
        "redact-old-calls": POLICIES["redact-old-calls"][0],
    }
    assert all(p["matches_plan"] for p in s["policies"])
    assert s["holds"] == {
        "held_at_execution": 1,
        "labels": {HOLD: 1},
        "excluded_at_planning": 1,
        "planning_labels": {"customer_id=c-planheld [L2]": 1},
    }
    check = s["verification"]
    assert (check["verified_total"], check["verify_failed"]) == (3, 1)
    assert (check["calls_ok"], check["calls_error"]) == (4, 1)
    assert check["errors"] == [{"http_status": 503, "error_code": "ServiceUnavailable", "count": 1}]
    assert s["not_erasable_via_api"] == {"total": 1, "by_content_type": {"NOTE": 1}}
    assert run["purge"] == {"tombstoned": 2, "finished": True, **PURGE_A}
    ages = s["deleted_ages"]
    assert (ages["count"], ages["min_days"], ages["max_days"]) == (3, 400, 800)
    assert sum(ages["series"]["deleted"]) == 2
    assert sum(ages["series"]["redacted"]) == 1
    chain = verify_chain(world.root, key=KEY)
    assert s["chain"]["ok"]
    assert s["chain"]["last_hash"] == chain.last_hash
    assert pack.status == "attention"
    assert {r["target_id"] for r in s["attention"]["listed"]} == {"c-held", "c-vf", "c-fail"}
    assert json.loads(pack.summary_path.read_text())["outcomes"] == s["outcomes"]


def test_events_extract_is_the_runs_events_unchanged_and_verifiable(world: World) -> None:
    pack = build_evidence(world.root, run_id=RUN_A, out_dir=world.root.parent / "x", now=REPORT_NOW)
    extract = pq.read_table(pack.events_path)
    assert extract.schema.equals(AUDIT_EVENTS, check_metadata=True)
    everything = AuditLog(world.root, key=KEY).events()
    assert extract.equals(everything.filter(pc.equal(everything.column("run_id"), RUN_A)))
    assert all(event_hash(row, KEY) == row["hash"] for row in extract.to_pylist())
    digest = hashlib.sha256(pack.events_path.read_bytes()).hexdigest()
    assert pack.summary["events"]["parquet_sha256"] == digest


def test_subject_pack_selects_only_that_subject_and_never_writes_the_email(world: World) -> None:
    pack = build_evidence(
        world.root, subject_email=EMAIL, key=KEY, plans_dir=world.elsewhere, now=REPORT_NOW
    )
    assert pack.out_dir.name == f"subject-{JANE[:12]}-20260603T120000Z"
    s = pack.summary
    assert s["scope"]["subject_hash"] == JANE
    assert s["scope"]["runs"] == [RUN_B]
    extract = pq.read_table(pack.events_path)
    assert set(extract.column("target_id").to_pylist()) == {"c-jane", "it-jane-1", None}
    assert {"run_started", "purge", "run_finished"} <= set(extract.column("step").to_pylist())
    assert s["outcomes"]["total"] == {"deleted": 1, "redacted": 1}
    assert s["runs"][0]["plan"]["found"]
    assert s["deleted_ages"]["count"] == 2
    assert (s["deleted_ages"]["min_days"], s["deleted_ages"]["max_days"]) == (30, 45)
    assert pack.status == "ok"
    files = _pack_files(pack.out_dir)
    assert set(files) == {"events.parquet", "summary.json", "report.html"}
    for name, data in files.items():
        lowered = data.lower()
        for secret in (EMAIL.lower(), "jane.doe", OTHER_EMAIL, "someone.else", str(world.root)):
            assert secret.encode() not in lowered, f"{secret} leaked into {name}"


def test_subject_with_no_events_is_a_pack_that_says_so(world: World) -> None:
    pack = build_evidence(world.root, subject_phone=PHONE, key=KEY, now=REPORT_NOW)
    assert pack.summary["runs"] == []
    assert pack.summary["events"]["selected"] == 0
    assert pack.status == "attention"
    assert "no event for this subject" in pack.html_path.read_text()
    digits = "".join(c for c in PHONE if c.isdigit())
    for data in _pack_files(pack.out_dir).values():
        assert digits.encode() not in data
        assert PHONE.encode() not in data


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.attrs.extend(attrs)


def test_html_is_self_contained_escaped_and_has_two_charts(world: World) -> None:
    pack = build_evidence(world.root, run_id=RUN_A, out_dir=world.root.parent / "h", now=REPORT_NOW)
    text = pack.html_path.read_text()
    for outside in ("http://", "https://", "<script", "<link", "@import", "url(", "<img"):
        assert outside not in text.lower()
    parsed = _Tags()
    parsed.feed(text)
    assert parsed.tags["svg"] == 2
    assert parsed.tags["script"] == 0
    assert not [
        name for name, _ in parsed.attrs if name in ("src", "href") or name.startswith("on")
    ]
    assert "The audit chain holds" in text
    assert "&lt;urgent&gt;" in text
    assert "<urgent>" not in text
    for heading in ("Runs", "Policies", "Outcomes", "Verification", "Legal holds", "purge"):
        assert heading in text
    assert POLICIES["delete-inactive"][0] in text
    assert world.plan_a.hash in text


def test_missing_plan_is_reported_and_the_age_chart_skipped(world: World) -> None:
    pack = build_evidence(world.root, run_id=RUN_B, out_dir=world.root.parent / "p", now=REPORT_NOW)
    (run,) = pack.summary["runs"]
    assert not run["plan"]["found"]
    assert "no plan" in run["plan"]["problem"]
    assert pack.summary["deleted_ages"]["count"] == 0
    text = pack.html_path.read_text()
    assert text.count("<svg") == 1
    assert "plan of these runs was not found" in text


def test_interrupted_run_needs_attention(tmp_path: Path) -> None:
    plan = _plan(SPECS_B)
    log = AuditLog(tmp_path, clock=Clock(), key=KEY)
    run = log.start_run("run-open", plan_hash=plan.hash, actor="alice", flow="cli:apply")
    try:
        _target(run, SPECS_B[0])
        pack = build_evidence(tmp_path, run_id="run-open", now=REPORT_NOW)
    finally:
        run.seal()
    assert pack.summary["chain"]["unsealed"] == ["run-open"]
    assert not pack.summary["runs"][0]["sealed"]
    assert pack.status == "attention"
    assert any("interrupted" in n for n in pack.summary["attention"]["notes"])


def test_tampered_chain_is_broken_and_the_cli_exits_1(world: World, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(world.root, root)
    sealed = next((root / "_audit" / "runs").glob(f"*-{RUN_A}.parquet"))
    table = pq.read_table(sealed)
    outcomes = table.column("outcome").to_pylist()
    outcomes[outcomes.index("verify_failed")] = "deleted"  # someone tidies up the record
    index = table.schema.get_field_index("outcome")
    tampered = table.set_column(index, "outcome", pa.array(outcomes, pa.string()))
    pq.write_table(tampered.replace_schema_metadata(table.schema.metadata), sealed)
    pack = build_evidence(root, run_id=RUN_A, out_dir=tmp_path / "out", now=REPORT_NOW)
    assert pack.status == "broken"
    assert "was altered" in pack.summary["chain"]["problem"]
    assert "AUDIT CHAIN BROKEN" in pack.html_path.read_text()
    result = runner.invoke(app, ["audit", "report", "--run", RUN_B, "--root", str(root)])
    assert result.exit_code == 1, result.output
    assert says(result.output, "AUDIT CHAIN BROKEN")


@pytest.mark.parametrize(
    ("args", "message", "key", "code"),
    [
        ([], "exactly one of", KEY.decode(), 2),
        (["--run", RUN_A, "--subject-email", EMAIL], "exactly one of", KEY.decode(), 2),
        (
            ["--run", "nope"],
            f"no events for run nope; known runs (latest 5): {RUN_B}, {RUN_A}",
            KEY.decode(),
            2,
        ),
        # A missing setting is configuration (78), not usage.
        (["--subject-email", EMAIL], "GLADLY_AUDIT_KEY", "", 78),
        (["--run", RUN_A], "GLADLY_AUDIT_KEY", "", 78),  # the chain cannot be checked without it
    ],
)
def test_cli_usage_and_configuration_errors(
    world: World, args: list[str], message: str, key: str, code: int
) -> None:
    result = runner.invoke(
        app, ["audit", "report", *args, "--root", str(world.root)], env={"GLADLY_AUDIT_KEY": key}
    )
    assert result.exit_code == code, result.output
    assert says(result.output, message)


def test_cli_exit_codes_follow_the_findings(world: World, tmp_path: Path) -> None:
    base = ["audit", "report", "--root", str(world.root)]
    attention = runner.invoke(app, [*base, "--run", RUN_A, "--out", str(tmp_path / "a")])
    assert attention.exit_code == 3, attention.output
    assert (tmp_path / "a" / "report.html").is_file()
    env = {"GLADLY_AUDIT_KEY": KEY.decode()}
    args = [*base, "--subject-email", EMAIL, "--plans", str(world.elsewhere)]
    ok = runner.invoke(app, [*args, "--out", str(tmp_path / "b")], env=env)
    assert ok.exit_code == 0, ok.output
    assert says(ok.output, "audit chain holds")
    assert says(ok.output, "report.html")
    assert not says(ok.output.lower(), EMAIL.lower())
    again = runner.invoke(app, [*args, "--out", str(tmp_path / "b")], env=env)
    assert again.exit_code == 2
    assert says(again.output, "not an empty directory")


def test_unknown_run_and_bad_selectors_raise(world: World) -> None:
    with pytest.raises(UnknownRunError) as caught:
        build_evidence(world.root, run_id="nope")
    assert caught.value.known == [RUN_B, RUN_A]
    with pytest.raises(EvidenceError, match="exactly one"):
        build_evidence(world.root, run_id=RUN_A, subject_email=EMAIL, key=KEY)


@pytest.mark.parametrize(
    ("span", "unit", "buckets"),
    [
        (timedelta(hours=30), "hour", 31),
        (timedelta(days=10), "day", 11),
        (timedelta(days=400), "week", 58),
    ],
)
def test_timeline_buckets_follow_the_span(span: timedelta, unit: str, buckets: int) -> None:
    start = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)  # a Monday
    line = timeline([(start, "deleted"), (start + span, "failed"), (start, "deleted")])
    assert line["bucket"] == unit
    assert len(line["labels"]) == buckets
    assert list(line["series"]) == ["deleted", "failed"]  # the outcome vocabulary's order
    assert line["series"]["deleted"][0] == 2
    assert line["series"]["failed"][-1] == 1


def test_age_bins_choose_a_width_that_keeps_the_chart_readable() -> None:
    ages = age_bins([(3.0, "deleted"), (400.0, "deleted"), (2000.0, "redacted")])
    assert ages["width_days"] == 180
    assert len(ages["labels"]) == 12
    assert ages["labels"][0] == "0-180 d"
    assert ages["series"]["redacted"][-1] == 1
    assert age_bins([])["count"] == 0


def test_a_plan_changed_on_disk_is_not_used_and_says_why(world: World, tmp_path: Path) -> None:
    plans = tmp_path / "plans"
    shutil.copytree(world.elsewhere, plans)
    summary = next(plans.glob("*/summary.json"))
    summary.write_text(summary.read_text().replace('"targets": 3', '"targets": 4'))
    pack = build_evidence(
        world.root, run_id=RUN_B, plans_dir=plans, out_dir=tmp_path / "out", now=REPORT_NOW
    )
    plan = pack.summary["runs"][0]["plan"]
    assert not plan["found"]
    assert plan["path"] == summary.parent.name
    assert "summary.json does not match" in plan["problem"]
    assert str(tmp_path) not in pack.summary_path.read_text()


def test_a_target_skipped_because_its_facts_changed_is_not_done(tmp_path: Path) -> None:
    specs = [Spec("c-del-1", "deleted"), Spec("c-changed", "skipped_changed")]
    plan = _plan(specs)
    plan.write(tmp_path / "_plans" / "p")
    log = AuditLog(tmp_path, clock=Clock(), key=KEY)
    why = "filters[1] custom_attribute loyaltyTier ne … no longer holds live"
    with log.start_run("run-changed", plan_hash=plan.hash, actor="alice", flow="cli:apply") as run:
        run.append(target_type="run", step="run_started", phase="intent", outcome="execute")
        _target(run, specs[0])
        row = _row(specs[1])
        fields = {k: row[k] for k in ("target_type", "target_id", "customer_id", "policy_name")}
        fields.update(policy_hash=row["policy_hash"], action=row["action"])
        run.append(**fields, step="hold_check", phase="result", outcome="clear")
        _call(run, fields, "preflight", "GET", 200)
        _call(run, fields, "recheck", "GET", 200)
        run.append(**fields, step="filter_check", phase="result", outcome="changed", detail=why)
        run.append(**fields, step="outcome", phase="result", outcome="skipped_changed", detail=why)
    pack = build_evidence(tmp_path, run_id="run-changed", now=REPORT_NOW)
    s = pack.summary
    assert s["outcomes"]["total"] == {"deleted": 1, "skipped_changed": 1}
    assert s["outcomes"]["meanings"]["skipped_changed"] == (
        "not done: skipped because the facts changed"
    )
    assert s["verification"]["verified_total"] == 1  # only the deletion counts as done
    assert pack.status == "attention"
    (listed,) = s["attention"]["listed"]
    assert (listed["target_id"], listed["outcome"], listed["detail"]) == (
        "c-changed",
        "skipped_changed",
        why,
    )
    assert listed["meaning"] == "not done: skipped because the facts changed"
    text = pack.html_path.read_text()
    assert "not done: skipped because the facts changed" in text
    assert s["runs"][0]["api_calls"] == {"DELETE": 1, "GET": 4}
