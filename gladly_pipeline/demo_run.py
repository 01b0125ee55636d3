"""`gladly-pipeline demo`: the whole job against a local sandbox Gladly, start to finish."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import retention_policies
from audit_log import ChainReport, verify_chain
from audit_log.outcomes import RunReport
from erasure.execution import run_apply
from gladly_archive import Archive
from gladly_client import GladlyClient
from gladly_pipeline.enrich import summary_lines as enrich_summary
from ingest.enrich import enrich_archive, estimate
from ingest.exporting import run_export
from retention_policies.candidates import profile_candidates
from retention_policies.plan import Plan
from retention_policies.plan_summary import summary_lines
from retention_policies.planning import make_plan

__all__ = ["DemoResult", "run_demo"]

SHIPPED_POLICIES = Path(retention_policies.__file__).parent / "policies"
DEMO_KEY = "demo-audit-key-not-a-secret"
REQUESTER = "demo-requester"
APPROVER = "demo-approver"


@dataclass
class DemoResult:
    """What the demo did and where it left the files."""

    out: Path
    root: Path
    plan: Plan | None = None
    plan_dir: Path | None = None
    report: RunReport | None = None
    chain: ChainReport | None = None
    exported_rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    evidence: Path | None = None


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_demo(
    out: Path,
    *,
    customers: int = 400,
    seed: int = 42,
    rate_limit: float = 50.0,
    policies: Path = SHIPPED_POLICIES,
    say: Any = print,
) -> DemoResult:
    """Start a sandbox organisation, export it, plan the policies, approve and apply the plan,
    purge our archive, verify the audit chain. Everything is written under `out` (replaced)."""
    from gladly_sandbox import Sandbox

    if out.exists():
        shutil.rmtree(out)
    root = out / "archive"
    result = DemoResult(out=out, root=root)
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result.seconds[name] = now - clock
        clock = now

    say(
        f"1. Starting a sandbox Gladly organisation: {customers} synthetic customers, "
        f"{rate_limit:g} requests/s per method (Gladly allows 10; the demo's sandbox is "
        "more generous so the demo is quick)."
    )
    # Four years of history, so the shipped three-year policy has customers to delete.
    with Sandbox(seed, customers, rate_limit_per_second=rate_limit or None, years=4.0) as sb:
        settings = {
            "GLADLY_BASE_URL": sb.base_url,
            "GLADLY_USER": sb.user,
            "GLADLY_API_TOKEN": sb.api_token,
            "GLADLY_AUDIT_KEY": DEMO_KEY,
            "GLADLY_PIPELINE_ACTOR": REQUESTER,
        }
        budget = max(1.0, rate_limit * 0.8) if rate_limit else 200.0
        with (
            _env(settings),
            GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=budget) as client,
        ):
            lap("sandbox")
            say("2. Exporting its transcripts (Gladly export jobs) into a Parquet archive …")
            export = run_export(client, Archive.open(root))
            result.exported_rows = export.rows_by_dataset()
            lap("export")
            say(
                f"   {len(export.archived)} export job(s), "
                + ", ".join(f"{n:,} {d}" for d, n in sorted(result.exported_rows.items()) if n)
            )
            say(
                "3. Enriching it: inboxes and topics, every conversation's inbox, status and "
                "topics from Gladly's conversation report (one request per window of days, not "
                "one per conversation), and custom attributes only for the customers the "
                "policies need (a policy over a fact never fetched is blocked, never guessed) …"
            )
            archive = Archive.open(root)

            def candidates() -> set[str]:
                return profile_candidates(str(root), policies).customer_ids

            cost, facts_plan = estimate(client, archive, candidates=candidates)
            say("\n".join(f"   {line}" for line in cost.lines()))
            enriched = enrich_archive(
                client, archive, max_calls=1_000_000, candidates=candidates, plan=facts_plan
            )
            lap("enrich")
            say("\n".join(f"   {line}" for line in enrich_summary(enriched, profiles_asked=True)))
            say(f"4. Planning the shipped retention policies ({policies}) — nothing deleted …")
            plan, plan_dir = make_plan(policies, root=str(root))
            result.plan, result.plan_dir = plan, plan_dir
            lap("plan")
            summary = plan.summary()
            say(f"   plan {plan.hash[:12]}…")
            say("\n".join(f"   {line}" for line in summary_lines(summary)))
            say(
                f"5. The demo now APPROVES plan {plan.hash} explicitly, as '{APPROVER}' "
                f"(requested by '{REQUESTER}'). In production a second person approves it in "
                "Prefect or with `gladly-pipeline apply --approve`."
            )
            say("6. Applying it: holds re-checked, pre-flight, delete/redact, verify, audit …")
            report = run_apply(
                plan_dir,
                plan.hash,
                root=str(root),
                dry_run=False,
                approver=APPROVER,
                flow="demo",
                client=client,
            )
            result.report = report
            lap("apply")
    say("7. Verifying the audit log's hash chain and writing the auditor's evidence pack …")
    result.chain = verify_chain(root, key=DEMO_KEY.encode())
    result.evidence = _evidence(root, report.run_id)
    lap("verify")
    return result


def _evidence(root: Path, run_id: str) -> Path:
    """The auditor's evidence pack for the run (HTML page, Parquet extract, summary)."""
    from evidence.pack import build_evidence

    return build_evidence(str(root), run_id=run_id, key=DEMO_KEY.encode()).html_path
