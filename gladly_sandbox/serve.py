"""Serve a sandbox in the foreground until Ctrl-C (`python -m gladly_sandbox` and the CLI)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import TextIO

from gladly_sandbox.options import is_loopback_host
from gladly_sandbox.sandbox import Sandbox


def connection_lines(sandbox: Sandbox) -> list[str]:
    """What a person needs to point the pipeline at a running sandbox."""
    return [
        f"Gladly sandbox listening on {sandbox.base_url} (API under {sandbox.base_url}/api/v1)",
        f"  user:  {sandbox.user}",
        f"  token: {sandbox.api_token}",
        "Paste into your shell:",
        f"export GLADLY_BASE_URL={sandbox.base_url}",
        f"export GLADLY_USER={sandbox.user}",
        f"export GLADLY_API_TOKEN={sandbox.api_token}",
        "Press Ctrl-C to stop.",
    ]


def serve(
    sandbox: Sandbox, *, stop: threading.Event | None = None, out: TextIO | None = None
) -> None:
    """Start `sandbox`, print how to reach it, serve until `stop`, Ctrl-C or SIGTERM, then stop."""
    stop = stop or threading.Event()
    out = out or sys.stdout
    previous = None
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:

        def _on_term(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = signal.signal(signal.SIGTERM, _on_term)
    try:
        sandbox.start()
        for line in connection_lines(sandbox):
            print(line, file=out, flush=True)
        try:
            while not stop.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        sandbox.stop()
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    print("Gladly sandbox stopped.", file=out, flush=True)


def build_sandbox(
    *,
    host: str,
    port: int,
    seed: int,
    customers: int,
    rate_limit: float,
    latency_ms: float,
    frequency: str,
    other_integrations: float = 0.0,
) -> Sandbox:
    """A Sandbox from command-line values (`rate_limit` 0 switches the limit off).

    `other_integrations`: requests per second of each method that the organisation's other
    integrations send, sharing the limit.
    """
    if not is_loopback_host(host):
        raise ValueError(
            f"refusing to listen on {host!r}, which is not a loopback address: the sandbox is a "
            "test double with a well-known token; use 127.0.0.1, ::1 or localhost"
        )
    if other_integrations and not rate_limit:
        raise ValueError(
            f"--other-integrations {other_integrations:g} shares a rate limit, but --rate-limit "
            "0 switches it off: set a rate limit above it, or drop --other-integrations"
        )
    return Sandbox(
        seed,
        customers,
        host=host,
        port=port,
        rate_limit_per_second=rate_limit or None,
        other_integrations_per_second=other_integrations,
        latency_ms=latency_ms,
        frequency=frequency,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m gladly_sandbox`: the same options as `gladly-pipeline sandbox`."""
    parser = argparse.ArgumentParser(
        prog="python -m gladly_sandbox", description="Serve a local Gladly sandbox on loopback."
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=8080, help="port (0 picks a free one)")
    parser.add_argument("--seed", type=int, default=42, help="data seed")
    parser.add_argument("--customers", type=int, default=2000, help="number of customers")
    parser.add_argument(
        "--rate-limit", type=float, default=10.0, help="requests/second per method; 0 = off"
    )
    parser.add_argument(
        "--other-integrations",
        type=float,
        default=0.0,
        metavar="REQ_PER_S",
        help="requests/second of each method that the organisation's other integrations send, "
        "sharing the rate limit (below --rate-limit); 0 = none",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every answer")
    parser.add_argument("--frequency", choices=("DAILY", "HOURLY"), default="DAILY")
    args = parser.parse_args(argv)
    try:
        sandbox = build_sandbox(
            host=args.host,
            port=args.port,
            seed=args.seed,
            customers=args.customers,
            rate_limit=args.rate_limit,
            other_integrations=args.other_integrations,
            latency_ms=args.latency_ms,
            frequency=args.frequency,
        )
        serve(sandbox)
    except (ValueError, OSError) as exc:  # a bad option, or the port is taken
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
