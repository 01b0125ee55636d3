"""Enrichment at an organisation's scale: reports and candidates against one GET per fact.

    .venv/bin/python bench/enrich_scale.py [--customers 20500] [--items-per-customer 30]
                                           [--sample 400] [--keep]

Serves a sandbox organisation from its own process at Gladly's limits (10 requests per second
per method; reports 10 a minute and 2 at once), exports it into a temporary archive (setup, not
measured), then measures, through clients at their default budget (8/s per method):

- **ours** (`enrich_archive` with the planner's candidates for one policy over a custom
  attribute): conversation facts from the conversation report, one POST per window of days,
  then GET customer only for the customers the policy's other filters select whose attributes
  are unknown; the plan made afterwards must decide the policy (not blocked);
- **one GET each** (what `enrich` did before): GET conversation for every archived
  conversation and GET customer for every customer. At Gladly's rate it would take hours on this
  organisation, so it is measured on `--sample` conversations and `--sample` customers in the
  same run, and its calls and time for the whole organisation are computed from that measured
  pace (calls are exactly one per conversation and one per customer).

Prints API calls per 1,000 conversations for the conversation facts (goal <= 1), profile GETs
as a share of customers against the share the policy's other filters select (goal: no more,
re-checks aside), wall times, and the ratios between the two paths.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gladly_archive import Archive
from gladly_client import GladlyClient, NotFoundError
from gladly_sandbox import Sandbox
from ingest.enrich import enrich_archive
from ingest.exporting import run_export
from retention_policies.candidates import profile_candidates
from retention_policies.facts import load_tables
from retention_policies.planning import make_plan

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
GOAL_CALLS_PER_1000 = 1.0
# The policy: customers quiet for a year whose loyalty tier is "bronze". Its other filter
# (the age) is what decides who needs a profile read.
QUIET = timedelta(days=365)
POLICY = """\
name: lapsed-bronze
description: Bronze-tier customers a year after their last contact.
resource: customer
filters:
  - type: age
    field: last_activity
    older_than: P1Y
  - type: custom_attribute
    key: loyaltyTier
    op: eq
    value: bronze
actions:
  - type: delete_customer
limits: {max_percent: 100, max_targets: 1000000}
"""


def setup(sb: Sandbox, tmp: Path) -> tuple[Path, int, int]:
    root = tmp / "archive"
    started = time.perf_counter()
    with GladlyClient(sb.base_url, sb.user, sb.api_token) as client:
        export = run_export(client, Archive.open(root), now=NOW)
    if export.failed:
        raise SystemExit(f"setup failed: {len(export.failed)} export job(s) not archived")
    tables = load_tables(root)
    row = tables.con.execute(
        "SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM customers)"
    ).fetchone()
    tables.con.close()
    assert row is not None
    print(
        f"setup: exported {row[0]:,} conversations of {row[1]:,} customers in "
        f"{time.perf_counter() - started:.0f} s (not measured)"
    )
    return root, int(row[0]), int(row[1])


def selected_by_other_filters(root: Path) -> int:
    tables = load_tables(root)
    row = tables.con.execute(
        "SELECT count(*) FROM customers WHERE last_activity < ?", [NOW - QUIET]
    ).fetchone()
    tables.con.close()
    return int(row[0]) if row else 0


def ours(sb: Sandbox, root: Path, policy: Path) -> dict[str, float]:
    archive = Archive(root)

    def candidates() -> set[str]:
        return profile_candidates(str(root), policy, now=NOW).customer_ids

    sb.reset_stats()
    started = time.perf_counter()
    with GladlyClient(sb.base_url, sb.user, sb.api_token) as client:
        report = enrich_archive(
            client, archive, max_calls=10_000_000, now=NOW, candidates=candidates
        )
    wall = time.perf_counter() - started
    stats = sb.stats()
    assert report.facts is not None, report.facts_reason
    plan, _ = make_plan(policy, root=str(root), now=NOW, out=root.parent / "plan")
    status = str(plan.policies[0]["status"])
    return {
        "wall": wall,
        "fact_calls": report.facts.calls,
        "reports": report.facts.report_calls,
        "profiles": report.customers_fetched + report.gone,
        "total": int(stats["total"]),
        "limited": int(stats["rate_limited"]),
        "planned": 1.0 if status == "planned" else 0.0,
        "targets": float(plan.targets.num_rows),
    }


def one_get_each(sb: Sandbox, root: Path, sample: int) -> dict[str, float]:
    """GET conversation and GET customer for `sample` of each, at the client's budget."""
    items = Archive(root).dataset("items").to_table(columns=["conversation_id", "customer_id"])
    conversations = sorted({c for c in items.column(0).to_pylist() if c})[:sample]
    customers = sorted(set(items.column(1).to_pylist()))[:sample]
    sb.reset_stats()
    with GladlyClient(sb.base_url, sb.user, sb.api_token) as client:

        def get(call: tuple[str, str]) -> None:
            kind, identifier = call
            try:
                if kind == "c":
                    client.conversations.get(identifier)
                else:
                    client.customers.get(identifier)
            except NotFoundError:
                pass

        calls = [("c", c) for c in conversations] + [("p", p) for p in customers]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(get, calls))
        wall = time.perf_counter() - started
    return {"calls": float(len(calls)), "wall": wall, "total": float(sb.stats()["total"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_500)
    parser.add_argument("--items-per-customer", type=float, default=30.0)
    parser.add_argument("--sample", type=int, default=400)
    parser.add_argument("--keep", action="store_true", help="keep the temporary archive")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="enrich-scale-"))
    try:
        with Sandbox(
            seed=42,
            customers=args.customers,
            items_per_customer=args.items_per_customer,
            now=NOW,
            frozen_clock=True,
            process=True,
        ) as sb:
            root, conversations, customers = setup(sb, tmp)
            if conversations < 100_000 or customers < 20_000:
                print(
                    f"note: {conversations:,} conversations and {customers:,} customers is "
                    "below the issue's floor (100,000 and 20,000)"
                )
            policy = tmp / "policy.yaml"
            policy.write_text(POLICY)
            selected = selected_by_other_filters(root)
            mine = ours(sb, root, policy)
            base = one_get_each(sb, root, args.sample)
        report(mine, base, conversations, customers, selected)
    finally:
        if args.keep:
            print(f"archive kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def report(
    mine: dict[str, float],
    base: dict[str, float],
    conversations: int,
    customers: int,
    selected: int,
) -> None:
    per_1000 = mine["fact_calls"] / conversations * 1000
    share = mine["profiles"] / customers
    other_share = selected / customers
    pace = base["calls"] / base["wall"]  # GETs per second the old path achieved
    base_calls = conversations + customers
    base_hours = base_calls / pace / 3600
    print(
        f"ours: {mine['wall']:.0f} s wall; {mine['total']:,.0f} requests "
        f"({mine['limited']:.0f} answered 429); conversation facts {mine['fact_calls']:.0f} "
        f"call(s) ({mine['reports']:.0f} report(s)); {mine['profiles']:,.0f} profile GET(s); "
        f"plan afterwards: policy {'planned' if mine['planned'] else 'BLOCKED'}, "
        f"{mine['targets']:,.0f} target(s)"
    )
    print(
        f"one GET each: measured {base['calls']:.0f} GETs in {base['wall']:.1f} s = {pace:.2f}/s; "
        f"the organisation needs {base_calls:,} GETs = {base_hours:.2f} h at that pace"
    )
    verdict = "met" if per_1000 <= GOAL_CALLS_PER_1000 else "MISSED"
    print(
        f"calls per 1,000 conversations for conversation facts: ours {per_1000:.3f}, one GET "
        f"each 1000 — goal <= {GOAL_CALLS_PER_1000:g}: {verdict}"
    )
    verdict = "met" if share <= other_share else "MISSED"
    print(
        f"profile GETs: {share:.1%} of customers; the policy's other filters select "
        f"{other_share:.1%} ({selected:,}); one GET each reads 100% — goal <= {other_share:.1%}: "
        f"{verdict}"
    )
    print(
        f"wall time: ours {mine['wall'] / 60:.1f} min vs one GET each {base_hours * 60:.0f} min "
        f"(x{base_hours * 3600 / mine['wall']:.0f}); API calls: ours {mine['total']:,.0f} vs "
        f"{base_calls:,} (x{base_calls / mine['total']:.0f})"
    )


if __name__ == "__main__":
    main()
