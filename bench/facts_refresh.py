"""The planner's fact tables refreshed after a day's export commit, at 0, 1 M and 5 M items.

    .venv/bin/python bench/facts_refresh.py [--sizes 0,1000000,5000000] [--job-items 5000]
        [--repeat 2] [--cache DIR] [--check]

Each size's archive is bench/commit_scale.py's (purge_scale's builder: three years of daily
exports, ~4 items a conversation, 10 items a customer, folded through a month ago; built once
and kept under --cache, shared with commit_scale). Then, in a child process per size, on a
hard-linked copy: the fact tables are built and saved (a full build, as after a purge or a
first run), one day's export job of --job-items items is committed through the archive's own
path (commit_scale's job: continued and reopened conversations, activities, new and known
customers), and the saved facts are refreshed as the export flow does after a commit
(`refresh_facts`): carried forward from the files the commit changed. For comparison the same
refresh is then made with no saved facts, which is what every refresh after a commit cost
before (a full build and its save). The planner's read of the saved facts (`facts_tables`)
is timed too. --check compares every fact table refreshed with a full build (slow).

Goal (PASS/FAIL): at the largest size the refresh after a commit costs <= 0.1 x the full one.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from commit_scale import build, job_for, link_copy, peak_rss_mb

GOAL = 0.1
SIZES = (0, 1_000_000, 5_000_000)
TABLES = ("customers", "conversations", "inboxes", "topics")


def measure(root: Path, job_dir: Path, check: bool) -> dict[str, Any]:
    """Child: build and save the facts, commit the day's job, refresh; one JSON line."""
    import pyarrow.parquet as pq

    from gladly_archive import Archive
    from gladly_archive.location import FACTS_DIR
    from retention_policies.facts import load_tables
    from retention_policies.facts_cache import facts_tables, refresh_report

    started = time.perf_counter()
    first = refresh_report(str(root))
    built_s = time.perf_counter() - started
    items = pq.read_table(job_dir / "items.parquet")
    customers = pq.read_table(job_dir / "customers.parquet")
    archive = Archive(root)
    job = archive.stage_job(items["job_id"][0].as_py(), kind="export_job")
    job.write_items(items.to_batches(max_chunksize=10_000))
    job.write_customers(customers.to_batches())
    job.commit()
    started, cpu = time.perf_counter(), cpu_s()
    after = refresh_report(str(root))
    refresh_s, refresh_cpu_s = time.perf_counter() - started, cpu_s() - cpu
    generation = after.generation
    layers = len(generation.layers) if generation is not None else 0
    started = time.perf_counter()
    tables, reused = facts_tables(str(root))
    open_s = time.perf_counter() - started
    counts = {name: tables.count(name) for name in TABLES}
    equal = None
    if check:
        fresh = load_tables(root)
        equal = all(_sorted(tables.arrow(name)) == _sorted(fresh.arrow(name)) for name in TABLES)
        fresh.con.close()
    tables.con.close()
    shutil.rmtree(root / FACTS_DIR)
    started, cpu = time.perf_counter(), cpu_s()
    full = refresh_report(str(root))
    full_s, full_cpu_s = time.perf_counter() - started, cpu_s() - cpu
    return {
        "built_s": built_s,
        "first_mode": first.mode,
        "refresh_s": refresh_s,
        "refresh_cpu_s": refresh_cpu_s,
        "mode": after.mode,
        "reason": after.reason,
        "layers": layers,
        "open_s": open_s,
        "reused": reused,
        "full_s": full_s,
        "full_cpu_s": full_cpu_s,
        "full_mode": full.mode,
        "counts": counts,
        "equal": equal,
        "rss_mb": peak_rss_mb(),
    }


def cpu_s() -> float:
    """CPU seconds this process used so far (user and system, all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _sorted(table: Any) -> list[str]:
    return sorted(json.dumps(r, default=str, sort_keys=True) for r in table.to_pylist())


def child(args: list[str]) -> dict[str, Any]:
    """Run this script in a child process; its last line of output, parsed."""
    out = subprocess.run([sys.executable, __file__, *args], check=True, stdout=subprocess.PIPE)
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--job-items", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=2, help="best of N refreshes per size")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "gladly-commit-scale"))
    parser.add_argument("--check", action="store_true", help="compare with a full build")
    parser.add_argument("--build", nargs=2, metavar=("ROOT", "ITEMS"))
    parser.add_argument("--measure", nargs=2, metavar=("ROOT", "JOB"))
    args = parser.parse_args()
    if args.build:
        print(json.dumps(build(Path(args.build[0]), int(args.build[1]), args.seed)))
        return
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), Path(args.measure[1]), args.check)))
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, dict[str, Any]] = {}
    work = Path(tempfile.mkdtemp(prefix="facts_refresh_"))
    try:
        for size in sizes:
            built = cache / f"archive-{size}-s{args.seed}"
            if not (built / ".built").exists():
                shutil.rmtree(built, ignore_errors=True)
                took = child(["--build", str(built), str(size), "--seed", str(args.seed)])
                (built / ".built").write_text(json.dumps(took))
                print(f"built {size:,} items in {took['seconds']:.0f} s", flush=True)
            job_dir = work / f"job-{size}"
            job_for(built, job_dir, args.job_items, 0, args.seed)
            best: dict[str, Any] | None = None
            for _ in range(args.repeat):
                copy = work / f"archive-{size}"
                link_copy(built, copy)
                shutil.rmtree(copy / "_facts", ignore_errors=True)
                extra = ["--check"] if args.check else []
                measured = child(["--measure", str(copy), str(job_dir), *extra])
                shutil.rmtree(copy, ignore_errors=True)
                if best is None or measured["refresh_s"] < best["refresh_s"]:
                    best = measured
            assert best is not None
            results[size] = best
            why = f" ({best['reason']})" if best["reason"] else ""
            checked = "" if best["equal"] is None else f", equal to a full build: {best['equal']}"
            print(
                f"{size:>10,} items: refresh after the commit {best['refresh_s']:.2f} s "
                f"({best['refresh_cpu_s']:.2f} s CPU) [{best['mode']}{why}, {best['layers']} "
                f"layer(s)] vs full {best['full_s']:.2f} s ({best['full_cpu_s']:.2f} s CPU); "
                f"first build {best['built_s']:.2f} s; planner's read "
                f"{best['open_s']:.2f} s; {best['counts']['customers']:,} customers, "
                f"{best['counts']['conversations']:,} conversations; peak RSS "
                f"{best['rss_mb']:.0f} MB{checked}",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    largest = max(results)
    ratio = results[largest]["refresh_s"] / max(results[largest]["full_s"], 1e-9)
    verdict = "PASS" if largest and ratio <= GOAL else "FAIL"
    print(f"refresh after a commit at {largest:,} items: {ratio:.3f} x full (goal <= {GOAL}): ")
    print(verdict)


if __name__ == "__main__":
    main()
