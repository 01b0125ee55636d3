"""The Prefect rate budget under load: N processes share one organisation's limit.

Each process runs a GET loop against one sandbox (Gladly's 10 requests/s per method) through a
`PrefectBudget` on one real local Prefect server. Prints, per number of processes, the combined
successful requests per second and its ratio to 0.9 of our share (0.9 x 8 = 7.2), and the
share of answers that were 429 (goal: under 1 %). `--priority mixed` makes the first process
PROMPT and the others BULK: its requests per second against theirs show the priority.

    .venv/bin/python bench/shared_budget_prefect.py [--processes 1 2 3 4] [--seconds 20]
        [--batch 1] [--priority bulk|prompt|mixed]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

GLADLY_LIMIT = 10.0
SHARE = 0.8
GOAL_SHARE = 0.9
GOAL_429 = 0.01


def _worker(
    api_url: str,
    sandbox: tuple[str, str, str],
    rate: float,
    batch: int,
    priority: str,
    start_at: float,
    seconds: float,
    results: multiprocessing.Queue[dict[str, Any]],
) -> None:
    os.environ["PREFECT_API_URL"] = api_url  # before Prefect is imported
    from flows.rate_budget import PrefectBudget
    from gladly_client import GladlyClient, Priority

    base_url, user, token = sandbox
    budget = PrefectBudget(base_url, rate, batch=batch)
    done = waited = 0.0
    with GladlyClient(base_url, user, token, budget=budget, priority=Priority(priority)) as client:
        time.sleep(max(0.0, start_at - time.time()))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.monotonic()
            client.org.inboxes()
            waited += time.monotonic() - started
            done += 1
    results.put(
        {"priority": priority, "requests": done, "seconds_per_request": waited / max(done, 1.0)}
    )


def _stats(base_url: str, reset: bool = False) -> dict[str, Any]:
    path = "/_sandbox/stats/reset" if reset else "/_sandbox/stats"
    request = urllib.request.Request(base_url + path, method="POST" if reset else "GET")  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our loopback
        raw = response.read()
    return json.loads(raw) if raw else {}


def run_prefect(
    processes: int,
    seconds: float,
    sandbox_url: str,
    user: str,
    token: str,
    *,
    api_url: str,
    batch: int = 1,
    priority: str = "bulk",
) -> dict[str, Any]:
    """`processes` GET loops for `seconds` through one Prefect budget; what the sandbox saw.

    `priority`: bulk, prompt, or mixed (the first process PROMPT, the others BULK)."""
    os.environ["PREFECT_API_URL"] = api_url
    from flows.rate_budget import ensure_limits

    rate = SHARE * GLADLY_LIMIT
    ensure_limits(sandbox_url, rate)
    time.sleep(1.0)  # the limit's slots and the sandbox's window from an earlier run decay
    _stats(sandbox_url, reset=True)
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[dict[str, Any]] = context.Queue()
    start_at = time.time() + 8.0  # every process imported Prefect and is ready by then
    workers = [
        context.Process(
            target=_worker,
            args=(
                api_url,
                (sandbox_url, user, token),
                rate,
                batch,
                _priority_of(priority, index),
                start_at,
                seconds,
                results,
            ),
        )
        for index in range(processes)
    ]
    for w in workers:
        w.start()
    got = [results.get(timeout=seconds + 120) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    stats = _stats(sandbox_url)
    gets = stats.get("by_method", {}).get("GET", {})
    answers = sum(gets.values())
    refused = gets.get("429", 0)
    done = sum(r["requests"] for r in got)
    per_second = done / seconds
    return {
        "processes": processes,
        "seconds": seconds,
        "batch": batch,
        "priority": priority,
        "requests_per_second": round(per_second, 2),
        "ratio_to_goal": round(per_second / (GOAL_SHARE * rate), 3),
        "answers": answers,
        "rate_limited": refused,
        "share_429": round(refused / answers, 4) if answers else 0.0,
        "per_process": [
            f"{r['priority']} {r['requests'] / seconds:.2f}/s"
            for r in sorted(got, key=lambda r: r["priority"], reverse=True)
        ],
    }


def _priority_of(priority: str, index: int) -> str:
    if priority == "mixed":
        return "prompt" if index == 0 else "bulk"
    return priority


@contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    """A real `prefect server start` on a free loopback port; yields its API URL."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "DO_NOT_TRACK": "1",
    }
    prefect = str(Path(sys.executable).with_name("prefect"))
    server = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=5):  # noqa: S310
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the Prefect server did not start") from None
                time.sleep(0.5)
        yield api
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    """Start a sandbox and a Prefect server, then measure each number of processes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--priority", choices=["bulk", "prompt", "mixed"], default="bulk")
    args = parser.parse_args()
    from gladly_sandbox import Sandbox

    with (
        tempfile.TemporaryDirectory(prefix="bench-prefect-") as home,
        prefect_server(Path(home)) as api,
        Sandbox(customers=50, process=True, rate_limit_per_second=GLADLY_LIMIT) as sb,
    ):
        for n in args.processes:
            result = run_prefect(
                n,
                args.seconds,
                sb.base_url,
                sb.user,
                sb.api_token,
                api_url=api,
                batch=args.batch,
                priority=args.priority,
            )
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
