"""Several processes of ours against one organisation: do they share Gladly's budget?

    .venv/bin/python bench/shared_budget.py [--seconds 20] [--processes 1 2 3 4]
                                            [--others 0 3] [--backends process machine prefect]

Serves a sandbox organisation from its own process at Gladly's rate limit (10 requests per
second per HTTP method, one-second windows). For each budget backend, each number of processes
and each load of the organisation's other integrations (the sandbox's
`other_integrations_per_second`), starts that many worker processes, each reading the
organisation's topics in a loop from two threads through a client at the default share
(GLADLY_RATE_SHARE 0.8, 8 requests per second), for `--seconds`. From the sandbox's own counts
(reset just before) it prints, per row: our answered requests per second, their ratio to our
share (0.8 x 10, or what the other integrations leave when that is less), the share of our
answers that were 429, and how many of the other integrations' requests we crowded out.

Backends: `process` (each process paces alone: the baseline, as before issue 20), `machine`
(one lock file shared by the processes) and `prefect` (Prefect global concurrency limits on a
real local Prefect server; bench/shared_budget_prefect.py starts it, and measures priorities).
Goals (issue 20), for the shared backends in every row: >= 0.9 of our share, < 1 % 429s.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gladly_client import GladlyClient, GladlyError, LockFilePaces, Throttle
from gladly_client.constants import DEFAULT_RATE_SHARE, GLADLY_RATE_LIMIT_PER_SECOND
from gladly_sandbox import Sandbox

GOAL_SHARE = 0.9
GOAL_RATE_LIMITED = 0.01
THREADS = 2
SHARED = ("machine", "prefect")


def worker(
    base_url: str,
    user: str,
    token: str,
    backend: str,
    budget_file: str,
    seconds: float,
    start_at: float,
) -> int:
    """One process of ours: read topics from THREADS threads until the time is up."""
    logging.getLogger("gladly_client").setLevel(logging.ERROR)  # each retry would say so
    rate = DEFAULT_RATE_SHARE * GLADLY_RATE_LIMIT_PER_SECOND
    budget: Any = None
    if backend == "machine":
        budget = Throttle(rate, store=LockFilePaces(budget_file))
    elif backend == "prefect":
        from flows.rate_budget import PrefectBudget  # PREFECT_API_URL is inherited

        # As client_budget builds it: the limits, and this machine's paces in the lock file.
        budget = PrefectBudget(base_url, rate, paces=LockFilePaces(budget_file))
    calls = [0]
    lock = threading.Lock()
    with GladlyClient(base_url, user, token, requests_per_second=rate, budget=budget) as client:
        time.sleep(max(0.0, start_at - time.time()))
        end = start_at + seconds

        def loop() -> None:
            while time.time() < end:
                try:
                    client.org.topics()
                except GladlyError:
                    continue
                with lock:
                    calls[0] += 1

        threads = [threading.Thread(target=loop) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return calls[0]


def measure(
    sb: Sandbox, backend: str, processes: int, others: float, seconds: float
) -> dict[str, float]:
    """One row: `processes` workers with `backend` while others send `others` GETs a second."""
    sb.configure(other_integrations_per_second=others)
    with tempfile.TemporaryDirectory(prefix="gladly-budget-") as folder:
        budget_file = str(Path(folder) / "budget.json")
        context = multiprocessing.get_context("spawn")
        with context.Pool(processes) as pool:
            # Start together, after every interpreter has imported what it needs.
            start_at = time.time() + 4.0 + processes
            args = (sb.base_url, sb.user, sb.api_token, backend, budget_file, seconds, start_at)
            pending = [pool.apply_async(worker, args) for _ in range(processes)]
            time.sleep(max(0.0, start_at - time.time()))
            sb.reset_stats()
            # Counted over the window alone: calls still waiting for a slot at its end are not.
            time.sleep(max(0.0, start_at + seconds - time.time()))
            stats = sb.stats()
            for result in pending:
                result.get(timeout=seconds + 120)
    get = stats["by_method"].get("GET", {})
    answered = get.get("200", 0)
    limited = get.get("429", 0)
    share = min(
        DEFAULT_RATE_SHARE * GLADLY_RATE_LIMIT_PER_SECOND, GLADLY_RATE_LIMIT_PER_SECOND - others
    )
    crowd = stats.get("other_integrations", {})
    return {
        "per_second": answered / seconds,
        "of_share": answered / seconds / share,
        "rate_limited": limited / max(1, answered + limited),
        "others_refused": float(crowd.get("refused", 0)),
        "share": share,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--others", type=float, nargs="+", default=[0.0, 3.0])
    parser.add_argument("--backends", nargs="+", default=["process", "machine", "prefect"])
    args = parser.parse_args()
    failures = []
    print(
        f"{'backend':8} {'procs':>5} {'others':>6} {'ok/s':>6} {'of share':>8} {'429':>6} crowded"
    )
    with Sandbox(seed=7, customers=20, process=True) as sb:
        for backend in args.backends:
            with _backend(backend, sb.base_url):
                for others in args.others:
                    for processes in args.processes:
                        row = measure(sb, backend, processes, others, args.seconds)
                        ok = (
                            row["of_share"] >= GOAL_SHARE
                            and row["rate_limited"] < GOAL_RATE_LIMITED
                        )
                        verdict = "" if backend not in SHARED else (" ok" if ok else " MISSED")
                        if backend in SHARED and not ok:
                            failures.append((backend, processes, others))
                        print(
                            f"{backend:8} {processes:>5} {others:>6.1f} {row['per_second']:>6.2f} "
                            f"{row['of_share']:>8.3f} {row['rate_limited']:>6.1%} "
                            f"{row['others_refused']:>5.0f}{verdict}",
                            flush=True,
                        )
    if failures:
        print(f"goal missed (>= {GOAL_SHARE} of share, < {GOAL_RATE_LIMITED:.0%} 429s): {failures}")
        return 1
    print(
        f"goal met: every shared row >= {GOAL_SHARE} of our share, < {GOAL_RATE_LIMITED:.0%} 429s"
    )
    return 0


@contextmanager
def _backend(backend: str, base_url: str) -> Iterator[None]:
    """Set up what a backend needs for the rows that use it (a Prefect server for prefect)."""
    if backend != "prefect":
        yield
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from shared_budget_prefect import prefect_server

    with (
        tempfile.TemporaryDirectory(prefix="bench-prefect-") as home,
        prefect_server(Path(home)) as api,
    ):
        os.environ["PREFECT_API_URL"] = api  # the workers inherit it
        try:
            from flows.rate_budget import ensure_limits

            ensure_limits(base_url, DEFAULT_RATE_SHARE * GLADLY_RATE_LIMIT_PER_SECOND)
            yield
        finally:
            os.environ.pop("PREFECT_API_URL", None)


if __name__ == "__main__":
    sys.exit(main())
