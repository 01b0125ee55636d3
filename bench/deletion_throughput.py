"""How well the deletion engine uses Gladly's rate limit: calls/s per method, 429s, calls a profile.

    .venv/bin/python bench/deletion_throughput.py [--customers 400] [--latency-ms 100] [--workers 8]

Serves a sandbox organisation from its own process at Gladly's rate limit (10 requests per second
per HTTP method, fixed windows), exports it into a temporary archive, enriches it (conversations
and customer profiles, with the rate limit lifted) and plans a customer policy that deletes every
profile quiet for an hour (nearly all) unless its `legalReview` attribute is true, closing open
conversations first (setup, not measured). The attribute filter makes the engine's live re-check
read each profile just before its DELETE. Then, with the sandbox answering every call
`--latency-ms` late, times `run_apply(dry_run=False)` through a client at its default budget
(8/s per method) and prints, from the sandbox's own request counts (reset just before the run):
- per method: requests, 429s, achieved requests/s over the calling window and its ratio to the
  client's budget; the binding method (the one most calls per profile go to) carries the goal;
- the share of requests answered 429;
- requests per profile handled and per deleted profile (pre-flight, the re-check's profile read,
  DELETE, verification, retries; the PATCH closes of open conversations the policy orders are
  counted beside them);
- profiles/s against the ceiling the binding method's budget allows, and the outcomes.
Goals (issue): ≥ 0.95 of the budget on the binding method, < 1 % 429s, ≤ 4 calls a profile.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from audit_log.outcomes import DELETED, RunReport
from erasure.engine import DEFAULT_WORKERS
from erasure.execution import run_apply
from gladly_archive import Archive
from gladly_archive.keyed import ENV_AUDIT_KEY
from gladly_client import GladlyClient
from gladly_client.constants import DEFAULT_REQUESTS_PER_SECOND, GLADLY_RATE_LIMIT_PER_SECOND
from gladly_sandbox import Sandbox
from ingest.enrich import all_profiles, enrich_archive
from ingest.exporting import run_export
from retention_policies import HoldRegistry, load_policies
from retention_policies.evaluate import evaluate
from retention_policies.facts_cache import facts_tables

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
GOAL_BUDGET_SHARE = 0.95  # of the client's budget, on the method that limits throughput
GOAL_RATE_LIMITED_SHARE = 0.01
GOAL_CALLS_PER_PROFILE = 4.0  # list, profile (the live re-check), DELETE, verification
MIN_PROFILES = 300  # the floor for a meaningful run
BENCH_AUDIT_KEY = "bench-deletion-throughput-key"
POLICY = """\
name: bench-delete-quiet-customers
description: >-
  Every profile quiet for an hour is deleted unless it is under legal review; open
  conversations are closed first.
resource: customer
filters:
  - type: age
    field: last_activity
    older_than: PT1H
  - type: not
    filter: {type: custom_attribute, key: legalReview, op: eq, value: true}
actions:
  - type: delete_customer
    close_open_conversations: true
limits: {max_percent: 100, max_targets: 1000000}
"""


@dataclass
class CallLog:
    """Every HTTP answer the engine's client receives: method, status, sent and answered times.

    A `requests` response hook on the client's own session, so it sees each attempt (retries
    included) without touching the client; times are `time.monotonic()` seconds.
    """

    calls: list[tuple[str, int, float, float]] = field(default_factory=list)
    limits: set[str] = field(default_factory=set)  # Ratelimit-Limit-Second values announced
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        answered = time.monotonic()
        sent = answered - response.elapsed.total_seconds()
        limit = response.headers.get("Ratelimit-Limit-Second")
        with self._lock:
            if limit is not None:
                self.limits.add(limit)
            self.calls.append(
                (response.request.method or "?", response.status_code, sent, answered)
            )

    def window(self) -> float:
        """Seconds from the first request sent to the last answer received."""
        return max(c[3] for c in self.calls) - min(c[2] for c in self.calls)

    def send_gaps(self, method: str) -> list[float]:
        """Seconds between consecutive sends of `method`, in send order."""
        sends = sorted(c[2] for c in self.calls if c[0] == method)
        return [b - a for a, b in itertools.pairwise(sends)]


@dataclass(frozen=True)
class Setup:
    """What the untimed part leaves for the measurement: the plan and how big it is."""

    root: Path
    plan_dir: Path
    plan_hash: str
    profiles: int
    policy_status: str


def prepare(sb: Sandbox, tmp: Path) -> Setup:
    """Export the sandbox into an archive under `tmp`, enrich it (the profiles' attributes the
    policy reads) and plan the bench policy (not timed)."""
    root = tmp / "archive"
    with GladlyClient(sb.base_url, sb.user, sb.api_token) as client:
        export = run_export(client, Archive.open(root), now=NOW)
    if export.failed:
        raise SystemExit(f"setup failed: {len(export.failed)} export job(s) not archived")
    # Conversation reports and one GET per profile: the rate limit is lifted for it (not timed).
    sb.configure(rate_limit_per_second=None)
    try:
        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=200.0) as c:
            archive = Archive(root)
            enriched = enrich_archive(
                c,
                archive,
                max_calls=10_000_000,
                now=NOW,
                candidates=lambda: all_profiles(archive),
            )
    finally:
        sb.configure(rate_limit_per_second=GLADLY_RATE_LIMIT_PER_SECOND)
    if enriched.backlog:
        raise SystemExit("setup failed: the archive was not fully enriched")
    policy_file = tmp / "policy.yaml"
    policy_file.write_text(POLICY)
    tables, _ = facts_tables(str(root))
    try:
        plan = evaluate(
            load_policies(policy_file),
            tables,
            HoldRegistry.empty(key=BENCH_AUDIT_KEY.encode()),
            NOW,
        )
    finally:
        tables.con.close()
    plan_dir = tmp / "plan"
    plan.write(plan_dir)
    operations = Counter(plan.targets.column("operation").to_pylist())
    return Setup(
        root=root,
        plan_dir=plan_dir,
        plan_hash=plan.hash,
        profiles=operations.get("delete_customer", 0),
        policy_status=str(plan.policies[0]["status"]),
    )


@dataclass(frozen=True)
class Measurement:
    """The timed run: the engine's report, the sandbox's counts, the client-side call log."""

    report: RunReport
    stats: dict[str, Any]
    log: CallLog
    wall_seconds: float


def measure(sb: Sandbox, setup: Setup, latency_ms: int, workers: int) -> Measurement:
    """Time run_apply(dry_run=False) at the client's default budget; count at the sandbox."""
    sb.configure(latency_ms=latency_ms)
    log = CallLog()
    session = requests.Session()
    session.hooks["response"].append(log.hook)
    with GladlyClient(sb.base_url, sb.user, sb.api_token, session=session) as client:
        sb.reset_stats()
        started = time.perf_counter()
        report = run_apply(
            setup.plan_dir,
            setup.plan_hash,
            root=str(setup.root),
            dry_run=False,
            client=client,
            workers=workers,
            flow="bench:deletion_throughput",
        )
        wall = time.perf_counter() - started
    return Measurement(report, sb.stats(), log, wall)


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def print_results(m: Measurement, setup: Setup, args: argparse.Namespace) -> None:
    """Every figure against its goal; a missed goal is printed as missed."""
    budget = DEFAULT_REQUESTS_PER_SECOND
    by_method: dict[str, dict[str, int]] = m.stats["by_method"]
    total = int(m.stats["total"])
    limited = int(m.stats["rate_limited"])
    window = m.log.window() if m.log.calls else float("nan")
    deleted = sum(1 for x in m.report.outcomes if x.outcome == DELETED)
    requests_of = {method: sum(codes.values()) for method, codes in by_method.items()}
    binding = max(requests_of, key=lambda k: requests_of[k]) if requests_of else "GET"

    print(
        f"engine: {args.workers} workers; client budget {budget:g}/s per method; the sandbox "
        f"announced Ratelimit-Limit-Second {', '.join(sorted(m.log.limits)) or 'none'} "
        f"(Gladly's is {GLADLY_RATE_LIMIT_PER_SECOND:g})"
    )
    print(
        f"run_apply: {m.wall_seconds:.1f} s wall; calls from first sent to last answered "
        f"{window:.1f} s; the rest is reading the plan, facts, tombstones and purge"
    )
    print(f"{'method':<8}{'requests':>9}{'429s':>6}{'req/s':>8}{'of budget':>11}")
    for method in sorted(requests_of, key=lambda k: -requests_of[k]):
        count = requests_of[method]
        rate = count / window
        mark = "  <- binding" if method == binding else ""
        print(
            f"{method:<8}{count:>9}{by_method[method].get('429', 0):>6}{rate:>8.2f}"
            f"{rate / budget:>11.2f}{mark}"
        )
    print(
        f"  server check: sandbox counted {total} requests, the client saw {len(m.log.calls)} "
        f"answers; the engine recorded {sum(m.report.api_calls.values())} calls "
        f"{dict(sorted(m.report.api_calls.items()))}"
    )
    gaps = m.log.send_gaps(binding)
    if gaps:
        print(
            f"  {binding} sends: median gap {statistics.median(gaps) * 1000:.0f} ms "
            f"(budget spacing {1000 / budget:.0f} ms), longest {max(gaps) * 1000:.0f} ms, "
            f"{sum(g > 1.5 / budget for g in gaps)} gaps over 1.5x the spacing"
        )
    share = requests_of.get(binding, 0) / window / budget
    print(
        f"goal >= {GOAL_BUDGET_SHARE:.2f} of the budget on the binding method ({binding}): "
        f"{share:.2f} — {_verdict(share >= GOAL_BUDGET_SHARE)}"
    )
    limited_share = limited / total if total else 0.0
    met = limited_share < GOAL_RATE_LIMITED_SHARE
    print(
        f"429s: {limited} of {total} requests = {limited_share:.2%} "
        f"(goal < {GOAL_RATE_LIMITED_SHARE:.0%}) — {_verdict(met)}"
    )
    closes = requests_of.get("PATCH", 0)
    per_profile = total / deleted if deleted else float("inf")
    without = (total - closes) / deleted if deleted else float("inf")
    # The goal counts what deleting a profile costs: pre-flight, the re-check's profile read,
    # DELETE, verification and any retries. Closing an open conversation is a separate act the
    # policy orders (Gladly refuses to delete a profile with one open), shown beside it rather
    # than hidden in it.
    handled = len(m.report.outcomes)
    per_handled = (total - closes) / handled if handled else float("inf")
    print(
        f"requests per profile: {total - closes} / {handled} handled = {per_handled:.3f} "
        f"(goal <= {GOAL_CALLS_PER_PROFILE:g}: pre-flight, profile re-check, DELETE, "
        "verification, retries) — "
        f"{_verdict(per_handled <= GOAL_CALLS_PER_PROFILE)}; per deleted profile "
        f"{total - closes} / {deleted} = {without:.3f} (a profile spared after its pre-flight, "
        "e.g. became_active, costs one or two calls and deletes nothing)"
    )
    print(
        f"  plus {closes} PATCH closes of open conversations the policy ordered "
        f"({closes / deleted if deleted else 0:.2f} a profile): {per_profile:.2f} all told"
    )
    ceiling = budget / (requests_of.get(binding, 0) / deleted) if deleted else float("nan")
    print(
        f"profiles/s: {deleted / window:.2f} over the calling window, "
        f"{deleted / m.wall_seconds:.2f} end to end; the {binding} budget allows {ceiling:.2f} "
        f"at this run's {binding} requests a profile ({deleted / window / ceiling:.2f} of it)"
    )
    print(
        f"outcomes: {m.report.counts()}; planned {setup.profiles} profiles; tombstoned "
        f"{m.report.tombstoned}; audit chain ok: {m.report.chain_ok}"
    )
    faults = {k: v for k, v in m.stats.get("faults", {}).items() if v}
    if faults:
        print(f"  sandbox faults (none were asked for): {faults}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--workers", type=int, default=None, help="default: the engine's own")
    parser.add_argument(
        "--min-profiles",
        type=int,
        default=MIN_PROFILES,
        help="refuse to measure a smaller plan (the issue asks for at least 300)",
    )
    args = parser.parse_args()
    args.workers = args.workers or DEFAULT_WORKERS
    os.environ.setdefault(ENV_AUDIT_KEY, BENCH_AUDIT_KEY)
    os.environ.setdefault("GLADLY_PIPELINE_ACTOR", "bench")

    with tempfile.TemporaryDirectory(prefix="deletion_throughput_") as tmp:
        # Gladly's default limit, no latency while setting up; latency is set for the timed run.
        sb = Sandbox(seed=42, customers=args.customers, now=NOW, process=True)
        try:
            sb.start()
            t0 = time.perf_counter()
            setup = prepare(sb, Path(tmp))
            print(
                f"sandbox: {args.customers} customers in its own process, its default rate "
                f"limit (per method, fixed windows), latency {args.latency_ms} ms during the run"
            )
            print(
                f"setup (not timed): export, enrichment, plan: {time.perf_counter() - t0:.1f} s; "
                f"{setup.profiles} profiles to delete (policy {setup.policy_status}, "
                "close_open_conversations: true)"
            )
            if setup.profiles < args.min_profiles:
                raise SystemExit(
                    f"only {setup.profiles} profiles planned, fewer than {args.min_profiles}: "
                    "raise --customers"
                )
            result = measure(sb, setup, args.latency_ms, args.workers)
        finally:
            sb.stop()
    print_results(result, setup, args)


if __name__ == "__main__":
    main()
