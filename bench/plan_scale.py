"""How fast and lean policy planning is at archive scale: load_tables + evaluate vs the goals.

    .venv/bin/python bench/plan_scale.py [--customers 1000000] [--items 10000000] [--keep]

Builds (vectorised, about a minute) an archive in the ITEMS / CUSTOMERS layout under a temp root:
items/<day>/part.parquet sorted by time, ~4 items a conversation, 5 % CUSTOMER_ACTIVITY items
without a conversation, status and topic changes carrying their JSON in raw_json, customers/ with
one email and phone each. Then, in a child process (so peak RSS is its own, from os.wait4), times
the fact tables (retention_policies.facts_cache: built from the items, or the saved copy while the
archive is unchanged) and evaluate with the shipped example policies: cold (built, then saved),
warm (the saved copy the export flow refreshes after each commit), and warm with limits removed
(every match expanded into targets — the worst case).
Goals: ≤ 10 s and ≤ 1 GB peak RSS for facts + evaluate; printed as ratios (≤ 1.0 meets the goal).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _peak import run_measured

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gladly_archive.layout import id_partition
from gladly_archive.schemas import CUSTOMERS, ITEMS

NOW = datetime(2025, 6, 1, tzinfo=UTC)
GOAL_SECONDS = 10.0
GOAL_RSS = 1 << 30
TYPES = [
    "CHAT_MESSAGE",
    "EMAIL",
    "SMS",
    "PHONE_CALL",
    "VOICEMAIL",
    "CONVERSATION_NOTE",
    "TOPIC_CHANGE",
    "CONVERSATION_STATUS_CHANGE",
    "WHATSAPP",
    "CUSTOMER_ACTIVITY",
]
WEIGHTS = [0.25, 0.2, 0.12, 0.08, 0.03, 0.07, 0.05, 0.12, 0.03, 0.05]


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")


def build(root: Path, customers: int, items: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    conversations = max(1, items // 4)
    conv = rng.integers(0, conversations, items)
    ctype_idx = rng.choice(len(TYPES), items, p=WEIGHTS)
    ctypes = pa.array(np.array(TYPES)[ctype_idx])
    is_activity = ctype_idx == TYPES.index("CUSTOMER_ACTIVITY")
    cust = np.where(is_activity, rng.integers(0, customers, items), conv % customers)
    span = int(timedelta(days=4 * 365).total_seconds() * 1e6)
    start = int(NOW.timestamp() * 1e6) - span
    ts = np.sort(start + rng.integers(0, span, items))
    status_json = np.where(
        rng.random(items) < 0.8,
        '{"content":{"type":"CONVERSATION_STATUS_CHANGE","status":"CLOSED"}}',
        '{"content":{"type":"CONVERSATION_STATUS_CHANGE","status":"OPEN"}}',
    )
    topic_json = np.array(
        [f'{{"content":{{"type":"TOPIC_CHANGE","addedTopicIds":["t{i}"]}}}}' for i in range(20)]
    )[rng.integers(0, 20, items)]
    raw = np.where(
        ctype_idx == TYPES.index("CONVERSATION_STATUS_CHANGE"),
        status_json,
        np.where(ctype_idx == TYPES.index("TOPIC_CHANGE"), topic_json, "{}"),
    )
    conv_ids = pc.if_else(pa.array(is_activity), pa.scalar(None, pa.string()), _ids("v", conv))
    cols = {
        "item_id": _ids("i", np.arange(items)),
        "conversation_id": conv_ids,
        "customer_id": _ids("c", cust),
        "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "date": pc.cast(pa.array(ts, pa.timestamp("us", tz="UTC")), pa.date32()),
        "initiator_type": pa.array(np.where(rng.random(items) < 0.5, "CUSTOMER", "AGENT")),
        "content_type": ctypes,
        "recording_status": pc.if_else(
            pc.equal(ctypes, "PHONE_CALL"), "AVAILABLE", pa.scalar(None, pa.string())
        ),
        "raw_json": pa.array(raw, pa.large_string()),
        "job_id": pa.array(np.full(items, "job-1")),
        "archived_at": pa.array(
            np.full(items, int(NOW.timestamp() * 1e6)), pa.timestamp("us", tz="UTC")
        ),
    }
    table = pa.table(
        {f.name: cols.get(f.name, pa.nulls(items, f.type)).cast(f.type) for f in ITEMS},
        schema=ITEMS,
    )
    chunk = 1_000_000
    for n, offset in enumerate(range(0, items, chunk)):
        part = table.slice(offset, chunk)
        day = datetime.fromtimestamp(int(ts[offset]) / 1e6, UTC).date().isoformat()
        out = root / "items" / day
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(part, out / f"part-{n:03d}.parquet", compression="zstd")
    numbers = np.arange(customers)
    emails = pc.binary_join_element_wise(
        "c", pc.cast(pa.array(numbers), pa.string()), "@example.com", ""
    )
    cust_cols = {
        "customer_id": _ids("c", numbers),
        "emails": pa.ListArray.from_arrays(
            pa.array(np.arange(customers + 1, dtype=np.int32)), emails
        ),
        "phones": pa.ListArray.from_arrays(
            pa.array(np.arange(customers + 1, dtype=np.int32)), _ids("+1555", numbers)
        ),
        "raw_json": pa.array(np.full(customers, "{}"), pa.large_string()),
        "job_id": pa.array(np.full(customers, "job-1")),
        "archived_at": pa.array(
            np.full(customers, int(NOW.timestamp() * 1e6)), pa.timestamp("us", tz="UTC")
        ),
    }
    ctable = pa.table(
        {
            f.name: cust_cols.get(f.name, pa.nulls(customers, f.type)).cast(f.type)
            for f in CUSTOMERS
        },
        schema=CUSTOMERS,
    )
    directory = root / "customers" / id_partition("customers", "job-1")
    directory.mkdir(parents=True)
    pq.write_table(ctable, directory / "part-0.parquet", compression="zstd")


def measure(root: Path, unlimited: bool) -> None:
    """Child process: load + evaluate once, print a JSON line of timings."""
    from retention_policies.evaluate import evaluate
    from retention_policies.facts_cache import facts_tables
    from retention_policies.holds import Hold, HoldRegistry
    from retention_policies.loader import load_policies
    from retention_policies.model import Limits

    policies = load_policies(
        Path(__file__).resolve().parent.parent / "retention_policies" / "policies"
    )
    if unlimited:
        # Limits always apply; "removed" is the widest a policy may declare.
        widest = Limits(max_percent=100, max_targets=10**12)
        policies = [p.model_copy(update={"limits": widest}) for p in policies]
    key = b"bench-key"
    registry = HoldRegistry(
        key=key,
        holds=(
            Hold(kind="customer_id", value="c1", reason="bench", reference="B-1"),
            Hold(kind="email_hash", value="0" * 64, reason="bench", reference="B-2"),
            Hold(kind="topic", value="t3", reason="bench", reference="B-3"),
        ),
    )
    t0 = time.perf_counter()
    tables, cached = facts_tables(str(root))
    t1 = time.perf_counter()
    plan = evaluate(policies, tables, registry, NOW)
    t2 = time.perf_counter()
    print(
        json.dumps(
            {
                "load_s": t1 - t0,
                "cached": cached,
                "evaluate_s": t2 - t1,
                "targets": plan.targets.num_rows,
                "held": plan.held.num_rows,
                "statuses": {p["name"]: p["status"] for p in plan.policies},
            }
        )
    )


def _child(root: Path, unlimited: bool) -> tuple[dict[str, object], int]:
    args = [sys.executable, __file__, "--measure", str(root)] + (
        ["--unlimited"] if unlimited else []
    )
    with tempfile.TemporaryFile() as stdout:
        # The child's own peak RSS, not this process's carried into it (_peak).
        finished = run_measured(args, stdout=stdout)
        stdout.seek(0)
        out = stdout.read()
    if finished.exit != 0:
        raise SystemExit(f"measurement failed ({finished.exit})")
    return json.loads(out.decode().strip().splitlines()[-1]), int(finished.rss_mb * 1024 * 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=10_000_000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--measure")
    parser.add_argument("--unlimited", action="store_true")
    parser.add_argument("--build")
    args = parser.parse_args()
    if args.build:
        build(Path(args.build), args.customers, args.items)
        return
    if args.measure:
        measure(Path(args.measure), args.unlimited)
        return
    root = Path(tempfile.mkdtemp(prefix="plan_scale_"))
    try:
        t0 = time.perf_counter()
        # Built in a child too: a forked child starts with its parent's RSS on the books.
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--build",
                str(root),
                "--customers",
                str(args.customers),
                "--items",
                str(args.items),
            ],
            check=True,
        )
        print(
            f"built {args.items:,} items / {args.customers:,} customers in "
            f"{time.perf_counter() - t0:.1f} s under {root}"
        )
        # Cold: no saved facts (the first plan after an archive change when the export did not
        # refresh them; it saves them). Warm: the saved facts match the archive (what the export
        # flow leaves behind after each commit, so what a scheduled plan meets).
        runs = [("cold, policies as shipped", False), ("warm, policies as shipped", False)]
        runs.append(("warm, limits removed", True))
        for label, unlimited in runs:
            if label.startswith("cold"):
                shutil.rmtree(root / "_facts", ignore_errors=True)
            result, rss = _child(root, unlimited)
            total = float(result["load_s"]) + float(result["evaluate_s"])  # type: ignore[arg-type]
            print(
                f"{label}: facts {result['load_s']:.2f} s"
                f"{' (saved copy)' if result['cached'] else ' (built and saved)'}"
                f" + evaluate {result['evaluate_s']:.2f} s"
                f" = {total:.2f} s ({total / GOAL_SECONDS:.2f} of 10 s goal); peak RSS "
                f"{rss / 2**20:.0f} MB ({rss / GOAL_RSS:.2f} of 1 GB goal); "
                f"{result['targets']:,} targets, {result['held']:,} held; {result['statuses']}"
            )
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
