"""Fill the archive with what export files lack (inbox, status, topics, custom attributes).

One run, within a budget of API calls:

1. the organisation's inboxes, topics and agents (three GETs), so policies may name them;
2. conversation facts in bulk (`ingest.conversation_facts`): reports over windows of creation
   days, or, within 24 hours of the last pass, the events since and only what changed;
3. custom attributes (GET customer) only for the customers a caller says need them — the
   retention planner's candidates: customers the other filters of a policy select whose
   attributes are unknown (never fetched, or changed since). Without a caller's list no
   profile is fetched, unless every archived customer is asked for (`all_profiles`).

`estimate` says before any call what a run will cost: calls, time at the configured rate and
the share of the organisation's budget.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from gladly_archive import Archive
from gladly_archive.catalog import refresh_catalog
from gladly_archive.enrichment import append_snapshot
from gladly_archive.refill_watch import read_watches
from gladly_archive.schemas import CUSTOMER_PROFILES
from gladly_client import CustomerMovedError, GladlyClient, NotFoundError
from gladly_client.constants import GLADLY_RATE_LIMIT_PER_SECOND, REPORTS_PER_MINUTE
from gladly_client.models import Customer
from ingest.conversation_facts import (
    REPORT_ROW_CAP,
    ConversationFacts,
    FactsPlan,
    Progress,
    ReportColumns,
    plan_conversation_facts,
    refresh_conversation_facts,
)
from ingest.reference import REFERENCE_CALLS, refresh_reference
from ingest.refills import Refill, match_profiles

__all__ = [
    "EnrichReport",
    "Estimate",
    "all_profiles",
    "enrich_archive",
    "estimate",
    "fetch_profiles",
]

logger = logging.getLogger("ingest.enrich")
T = TypeVar("T")

# Enough threads to keep the client's throttle busy while answers are in flight; the throttle,
# not this number, sets the pace.
WORKERS = 4

Candidates = Callable[[], Iterable[str]]


@dataclass
class EnrichReport:
    """What one enrichment run fetched, and what is still waiting for the next run."""

    run_id: str
    facts: ConversationFacts | None = None  # None: the conversation-facts pass did not run
    facts_reason: str = ""  # why this pass (reports or events), or why it did not run
    customers_fetched: int = 0
    candidates: int | None = None  # customers whose profile a policy needs (None: not asked)
    gone: int = 0  # profiles deleted (404) or merged (301) since they were archived
    backlog_customers: int = 0
    # Rows of the inboxes/topics/agents snapshot taken first (0 where unchanged); None when
    # the budget was smaller than its calls and it was not taken.
    reference_rows: dict[str, int] | None = None
    calls: dict[str, int] = field(default_factory=dict)
    # Unlinked details (the refill watch) back on a profile fetched: ids and kinds only.
    refilled: list[Refill] = field(default_factory=list)

    @property
    def backlog(self) -> bool:
        """True when calls are still owed: run again."""
        return self.facts is None or self.facts.incomplete or self.backlog_customers > 0

    @property
    def conversations_fetched(self) -> int:
        return self.facts.rows_written if self.facts is not None else 0


@dataclass(frozen=True)
class Estimate:
    """What a run will cost, known before its first call."""

    mode: str
    reason: str
    reference_calls: int
    report_calls: int  # POST /reports (their own budget: 10 a minute)
    event_calls: int
    profile_gets: int  # at most (the candidates from the facts known now)
    requests_per_second: float

    @property
    def get_calls(self) -> int:
        return self.reference_calls + self.event_calls + self.profile_gets

    @property
    def calls(self) -> int:
        return self.get_calls + self.report_calls

    @property
    def seconds(self) -> float:
        """Least wall time: GETs at the configured rate, reports at 10 a minute (after a burst
        of 10)."""
        gets = self.get_calls / self.requests_per_second
        reports = max(0, self.report_calls - REPORTS_PER_MINUTE) * 60 / REPORTS_PER_MINUTE
        return gets + reports

    @property
    def budget_share(self) -> float:
        """The GETs' share of the organisation's GET budget (10/s) while they run."""
        return self.requests_per_second / GLADLY_RATE_LIMIT_PER_SECOND

    def lines(self) -> list[str]:
        conversation = (
            f"{self.report_calls} report request(s) (Reports API, 10 a minute)"
            if self.mode == "reports"
            else "1 events request, then reports or GETs for what changed"
        )
        return [
            f"conversation facts: {conversation} — {self.reason}",
            f"profiles: at most {self.profile_gets} GET(s) (customers a policy needs)",
            f"directory: {self.reference_calls} GET(s) (inboxes, topics, agents)",
            f"at least {self.calls} call(s), about {_duration(self.seconds)} at "
            f"{self.requests_per_second:g} requests/s — {self.budget_share:.0%} of the "
            "organisation's 10/s GET budget while it runs",
        ]


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def estimate(
    client: GladlyClient,
    archive: Archive,
    *,
    candidates: Candidates | None = None,
    now: datetime | None = None,
) -> tuple[Estimate, FactsPlan]:
    """The cost of `enrich_archive` with the same arguments, and the facts plan it will run."""
    now = now or datetime.now(UTC)
    plan = plan_conversation_facts(archive, now)
    wanted = len(set(candidates())) if candidates is not None else 0
    return (
        Estimate(
            mode=plan.mode,
            reason=plan.reason,
            reference_calls=REFERENCE_CALLS,
            report_calls=plan.report_calls,
            event_calls=1 if plan.mode == "events" else 0,
            profile_gets=wanted,
            requests_per_second=client.requests_per_second,
        ),
        plan,
    )


def enrich_archive(
    client: GladlyClient,
    archive: Archive,
    *,
    max_calls: int = 2000,
    now: datetime | None = None,
    candidates: Candidates | None = None,
    columns: ReportColumns | None = None,
    progress: Progress | None = None,
    plan: FactsPlan | None = None,
    row_cap: int = REPORT_ROW_CAP,
    audit_key: bytes | None = None,
) -> EnrichReport:
    """Enrich the archive within `max_calls` API calls (every call counts, reports too).

    The directory comes first (skipped when the budget is smaller than its three calls), then
    the conversation facts (skipped, and said so, when their calls do not fit), then the
    profiles `candidates()` names (called after the conversation facts are stored, since a
    policy's other filters read them), as many as the budget leaves; the rest is backlog.
    With `audit_key`, the profiles fetched are compared with the refill watch (`refilled`).
    """
    if max_calls < 0:
        raise ValueError(f"max_calls must be >= 0, got {max_calls}")
    now = now or datetime.now(UTC)
    report = EnrichReport(run_id=f"enrich-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}")
    budget = max_calls
    if budget >= REFERENCE_CALLS:
        report.reference_rows = refresh_reference(client, archive, run_id=report.run_id, now=now)
        budget -= REFERENCE_CALLS
        report.calls["directory"] = REFERENCE_CALLS
    plan = plan or plan_conversation_facts(archive, now)
    needed = plan.report_calls if plan.mode == "reports" else 1
    if needed > budget:
        report.facts_reason = (
            f"not run: the conversation facts need at least {needed} call(s), "
            f"{budget} left of --max-calls {max_calls}"
        )
    else:
        report.facts_reason = plan.reason
        facts = refresh_conversation_facts(
            client,
            archive,
            now=now,
            run_id=report.run_id,
            columns=columns,
            progress=progress,
            plan=plan,
            max_calls=budget,
            row_cap=row_cap,
        )
        report.facts = facts
        budget -= facts.calls
        report.calls.update(
            reports=facts.report_calls, events=facts.event_calls, conversations=facts.get_calls
        )
    if candidates is not None:
        wanted = sorted(set(candidates()))
        report.candidates = len(wanted)
        take = wanted[: max(budget, 0)]
        fetched: list[Customer] = []
        report.customers_fetched, report.gone = fetch_profiles(
            client, archive, take, run_id=report.run_id, now=now, progress=progress, keep=fetched
        )
        if audit_key is not None:
            report.refilled = match_profiles(read_watches(archive), fetched, audit_key)
        report.calls["profiles"] = len(take)
        report.backlog_customers = len(wanted) - len(take)
    refresh_catalog(archive.fs, archive.root, create=True)  # the analyst's views
    return report


def all_profiles(archive: Archive) -> list[str]:
    """Every archived customer whose profile was never fetched (the one-GET-each path)."""
    items = archive.dataset("items").to_table(columns=["customer_id"])
    customers = set(pc.unique(items.column("customer_id")).to_pylist())
    fetched = archive.dataset("customer_profiles").to_table(
        columns=["customer_id"], filter=pc.field("event").is_null()
    )
    return sorted(customers - set(fetched.column(0).to_pylist()))


def fetch_profiles(
    client: GladlyClient,
    archive: Archive,
    customer_ids: list[str],
    *,
    run_id: str,
    now: datetime,
    progress: Progress | None = None,
    keep: list[Customer] | None = None,
) -> tuple[int, int]:
    """GET each customer's profile and store its custom attributes; (stored, gone). The
    profiles read are added to `keep` when given (kept in memory only)."""
    done = [0]

    def one(identifier: str) -> Customer | None:
        try:
            return client.customers.get(identifier)
        except (NotFoundError, CustomerMovedError):
            return None
        finally:
            done[0] += 1
            if progress is not None:
                progress("profiles", done[0], len(customer_ids))

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(one, customer_ids))
    profiles = [r for r in results if r is not None]
    if keep is not None:
        keep.extend(profiles)
    stored = append_snapshot(
        archive,
        "customer_profiles",
        pa.Table.from_pylist([_profile_row(p, now) for p in profiles], schema=CUSTOMER_PROFILES),
        run_id=f"{run_id}-profiles",
    )
    return stored, len(results) - len(profiles)


def _profile_row(customer: Customer, now: datetime) -> dict[str, object]:
    return {
        "customer_id": customer.id,
        "custom_attributes_json": json.dumps(customer.custom_attributes, sort_keys=True),
        "updated_at": customer.updated_at,
        "fetched_at": now,
        "event": None,
        "merged_into": None,
    }
