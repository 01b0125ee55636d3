"""How fast gladly_sandbox serves, streams and generates, against baselines measured in this run.

Prints:
- requests/second for GET /customer-profiles/{id} with the rate limit off (sandbox in its own
  process), the same load against a bare stdlib HTTP server answering a fixed body (the ceiling
  for a Python server on this machine), their ratio, and the ratio to the 500 req/s goal;
- MB/s streaming an export file, and the ratio to the 10 MB/s floor of "tens of MB/s";
- seconds to generate an organisation of --customers (default 100,000, about 1,000,000 items)
  and the ratio to the 60 s goal.

    .venv/bin/python bench/sandbox_throughput.py [--customers 100000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing
import resource
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from gladly_sandbox import OrgSpec, Sandbox
from gladly_sandbox.clock import SandboxClock
from gladly_sandbox.store import Organisation

NOW = datetime(2026, 6, 1, tzinfo=UTC)
GOAL_REQUESTS_PER_SECOND = 500.0
GOAL_MB_PER_SECOND = 10.0
GOAL_GENERATION_SECONDS = 60.0


def hammer(base_url: str, path: str, auth: str, seconds: float, threads: int) -> float:
    """Requests per second from `threads` keep-alive connections for `seconds`."""
    parts = urlsplit(base_url)
    deadline = time.perf_counter() + seconds
    counts = [0] * threads
    headers = {"Authorization": f"Basic {auth}", "Accept": "application/json"}

    def worker(slot: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        while time.perf_counter() < deadline:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"unexpected status {response.status}")
            counts[slot] += 1
        conn.close()

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts) / (time.perf_counter() - started)


def _bare_server(port_queue: multiprocessing.Queue[int], body: bytes) -> None:
    class Fixed(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; without this, Nagle + delayed ACK cap the
        # baseline at ~25 requests per connection per second and the ratio would flatter us.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Fixed)
    server.daemon_threads = True
    port_queue.put(server.server_address[1])
    server.serve_forever()


def stream_mb_per_second(base_url: str, path: str, auth: str) -> tuple[float, int]:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    started = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Basic {auth}"})
    response = conn.getresponse()
    size = 0
    while chunk := response.read(1 << 20):
        size += len(chunk)
    elapsed = time.perf_counter() - started
    conn.close()
    return size / elapsed / 1e6, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    with Sandbox(seed=42, customers=5000, now=NOW, process=True, rate_limit_per_second=None) as sb:
        auth = base64.b64encode(f"{sb.user}:{sb.api_token}".encode()).decode()
        customer = _first_customer(sb.base_url, auth)
        path = f"/api/v1/customer-profiles/{customer}"
        hammer(sb.base_url, path, auth, 0.5, args.threads)  # warm up
        sandbox_rps = hammer(sb.base_url, path, auth, args.seconds, args.threads)
        job, name = _largest_file(sb.base_url, auth)
        mb_s, size = stream_mb_per_second(
            sb.base_url, f"/api/v1/export/jobs/{job}/files/{name}", auth
        )

    ctx = multiprocessing.get_context("spawn")
    ports: multiprocessing.Queue[int] = ctx.Queue()
    body = json.dumps({"id": customer, "name": "x" * 400}).encode()
    bare = ctx.Process(target=_bare_server, args=(ports, body), daemon=True)
    bare.start()
    try:
        bare_url = f"http://127.0.0.1:{ports.get(timeout=30)}"
        hammer(bare_url, path, auth, 0.5, args.threads)
        bare_rps = hammer(bare_url, path, auth, args.seconds, args.threads)
    finally:
        bare.terminate()
        bare.join()

    started = time.perf_counter()
    org = Organisation(
        OrgSpec(seed=42, customers=args.customers, now=NOW), SandboxClock(NOW, frozen=True)
    )
    generation = time.perf_counter() - started
    items = org.counts().get("items", 0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"requests/s, sandbox (rate limit off, own process): {sandbox_rps:8.0f}")
    print(f"requests/s, bare stdlib server, same load:         {bare_rps:8.0f}")
    print(f"  ratio sandbox / bare server:                     {sandbox_rps / bare_rps:8.2f}")
    print(
        f"  ratio sandbox / goal {GOAL_REQUESTS_PER_SECOND:.0f} req/s:"
        f"                   {sandbox_rps / GOAL_REQUESTS_PER_SECOND:8.2f}  (>= 1 meets the goal)"
    )
    print(f"export file streamed: {size / 1e6:.1f} MB at {mb_s:.0f} MB/s")
    print(
        f"  ratio to {GOAL_MB_PER_SECOND:.0f} MB/s floor:"
        f"                           {mb_s / GOAL_MB_PER_SECOND:8.2f}  (>= 1 meets the goal)"
    )
    print(f"generated {args.customers} customers, {items} items in {generation:.1f} s")
    print(
        f"  ratio to {GOAL_GENERATION_SECONDS:.0f} s goal:"
        f"                               {generation / GOAL_GENERATION_SECONDS:8.2f}"
        "  (<= 1 meets the goal)"
    )
    print(f"peak RSS of this process: {peak_mb:.0f} MB")


def _first_customer(base_url: str, auth: str) -> str:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request(
        "GET", "/api/v1/export/jobs?status=COMPLETED", headers={"Authorization": f"Basic {auth}"}
    )
    jobs = json.loads(conn.getresponse().read())
    job = max(jobs, key=lambda j: j["updatedAt"])
    conn.request(
        "GET",
        f"/api/v1/export/jobs/{job['id']}/files/customers.jsonl",
        headers={"Authorization": f"Basic {auth}"},
    )
    first = conn.getresponse().read().split(b"\n", 1)[0]
    conn.close()
    return str(json.loads(first)["id"])


def _largest_file(base_url: str, auth: str) -> tuple[str, str]:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request(
        "GET", "/api/v1/export/jobs?status=COMPLETED", headers={"Authorization": f"Basic {auth}"}
    )
    jobs = json.loads(conn.getresponse().read())
    conn.close()
    # The backfill job (the one without a schedule) covers most history: the largest file.
    backfill = [j for j in jobs if "scheduleId" not in j] or jobs
    return str(backfill[0]["id"]), "conversation_items.jsonl"


if __name__ == "__main__":
    main()
