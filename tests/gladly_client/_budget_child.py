"""A separate interpreter for the budget tests: `python -m tests.gladly_client._budget_child`.

reserve PATH SLOTS shared|alone   reserve SLOTS slots at a frozen clock; print the waits
read CALLS GO_LOCK                say "ready", wait for GO_LOCK to be free, then read the
                                  organisation's topics CALLS times through `from_env`; print
                                  the lowest Ratelimit-Remaining-Second an answer said
"""

from __future__ import annotations

import json
import os
import sys

from filelock import FileLock

from gladly_client import GladlyClient, LockFilePaces, Throttle
from gladly_client.throttle import MemoryPaces


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "reserve":
        path, slots, shared = argv[1], int(argv[2]), argv[3] == "shared"
        store = LockFilePaces(path) if shared else MemoryPaces()
        throttle = Throttle(1000.0, clock=lambda: 0.0, sleep=lambda _: None, store=store)
        print(json.dumps([throttle.acquire("GET") for _ in range(slots)]))
        return
    calls, go = int(argv[1]), argv[2]
    with GladlyClient.from_env(dict(os.environ)) as client:
        seen: list[int] = []
        budget = client.throttle
        answered = budget.on_response

        def on_response(
            method: str, status: int, remaining: int | None, limit: int | None = None
        ) -> None:
            if remaining is not None:
                seen.append(remaining)
            answered(method, status, remaining, limit)

        budget.on_response = on_response  # type: ignore[method-assign]
        print("ready", flush=True)
        with FileLock(go):  # the test holds it until every process is ready
            pass
        for _ in range(calls):
            client.org.topics()
        print(json.dumps({"lowest_remaining": min(seen, default=None)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
