"""The whole export as a user runs it, against what a data engineer would write, in one run.

    .venv/bin/python bench/export_end_to_end.py [--customers 30000] [--retention-days 1]
                                                [--only ours pandas floor] [--phases] [--keep]

Serves a gladly_sandbox organisation from its own process with the rate limit switched off,
seeded so that its export jobs hold about 300,000 conversation items: --customers 30000 at the
default 10 items each, three years of activity, and --retention-days 1, so that Gladly lists
Support's one-off backfill job (nearly every item) and the one or two daily jobs still kept.
It prints the real count of jobs, items and bytes. Then three contenders archive every
completed job, each in its own child process, so that its peak RSS is its own (os.wait4):

- ours: `gladly-pipeline export --root <fresh archive>`, the command a user runs: list the
  jobs, stream each file to disk, convert it to the typed archive schemas, stage and commit
  each job, refresh the inboxes/topics/agents, purge re-imported erased ids, fold the archive
  when due (a first export of three years is), rebuild the DuckDB catalog, then refresh the
  fact tables planning reads. Paced as ever by our share of the budget (8 requests a second,
  the machine's lock-file budget, in a private file here).
- pandas: the script a data engineer writes in 30 lines (`pandas_script` below): requests
  lists the completed jobs and downloads each file into memory, `pd.read_json(lines=True)`,
  nested objects turned into JSON text (`to_parquet` refuses the `content` column as it comes:
  its fields change type from one item type to another), `df.to_parquet`. Untyped, no
  retries, no pacing: it dies on the first 429, which is why the sandbox's limit is off.
- floor: the same downloads streamed to disk with requests, and a `pyarrow.json.read_json`
  parse of each file, nothing else (items with their top-level fields typed and the nested
  ones skipped: pyarrow cannot read `content` either).

Prints each contender's wall time and peak RSS, the ratios, and PASS/FAIL for the goals:
ours faster than the pandas script, ours below 500 MB peak RSS. The machine may run other
work (the sandbox serves from a second process on the same cores): compare within one run.

--phases runs ours once more (not timed with the others), its phases wrapped: seconds in the
downloads, the conversion and staged writes, the commit (and its parts), the fold, the fact
tables' refresh, and the peak RSS (VmHWM) once each phase is done, so the phase that raised it
shows. For a full profile: `python -m cProfile -o ours.prof -m gladly_pipeline.cli export
--root <dir>` with the sandbox's `GLADLY_*` variables (--keep keeps the logs and archives).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from typing import Any

from _peak import run_measured

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 6, 1, tzinfo=UTC)
GOAL_RSS_MB = 500.0
CONTENDERS = ("ours", "pandas", "floor")


# --------------------------------------------------------------------------------------------
# The contenders that are not ours, as a data engineer would write them
# --------------------------------------------------------------------------------------------


def pandas_script(base_url: str, user: str, token: str, out: Path) -> int:
    """List the completed jobs, download each file, read it with pandas, write Parquet."""
    import pandas as pd
    import requests

    def flatten(value: Any) -> Any:
        return json.dumps(value) if isinstance(value, dict | list) else value

    session = requests.Session()
    session.auth = (user, token)
    api = f"{base_url}/api/v1"
    answer = session.get(f"{api}/export/jobs", params={"status": "COMPLETED"}, timeout=60)
    answer.raise_for_status()
    rows = 0
    for job in answer.json():
        (out / job["id"]).mkdir(parents=True, exist_ok=True)
        for name in job["files"]:
            got = session.get(f"{api}/export/jobs/{job['id']}/files/{name}", timeout=600)
            got.raise_for_status()
            if not got.content.strip():
                continue
            df = pd.read_json(io.BytesIO(got.content), lines=True)
            for column in df.columns:  # nested objects: to_parquet cannot mix their shapes
                if df[column].map(lambda v: isinstance(v, dict | list)).any():
                    df[column] = df[column].map(flatten)
            df.to_parquet(out / job["id"] / name.replace(".jsonl", ".parquet"))
            rows += len(df)
    return rows


def floor_script(base_url: str, user: str, token: str, out: Path) -> int:
    """The same downloads streamed to disk, and a pyarrow.json parse of each file."""
    import pyarrow as pa
    import pyarrow.json as pj
    import requests

    # pyarrow cannot hold `content` (its fields change type between item types): type the
    # top-level fields and skip the nested ones, which the parser still reads through.
    items = pj.ParseOptions(
        explicit_schema=pa.schema(
            [(name, pa.string()) for name in ("id", "conversationId", "customerId", "timestamp")]
        ),
        unexpected_field_behavior="ignore",
    )
    session = requests.Session()
    session.auth = (user, token)
    api = f"{base_url}/api/v1"
    answer = session.get(f"{api}/export/jobs", params={"status": "COMPLETED"}, timeout=60)
    answer.raise_for_status()
    rows = 0
    for job in answer.json():
        for name in job["files"]:
            path = out / f"{job['id']}-{name}"
            url = f"{api}/export/jobs/{job['id']}/files/{name}"
            with session.get(url, stream=True, timeout=600) as got, open(path, "wb") as f:
                got.raise_for_status()
                for chunk in got.iter_content(1 << 20):
                    f.write(chunk)
            if path.stat().st_size:
                options = items if name == "conversation_items.jsonl" else None
                rows += pj.read_json(path, parse_options=options).num_rows
            path.unlink()
    return rows


# --------------------------------------------------------------------------------------------
# Running each contender in a child process
# --------------------------------------------------------------------------------------------


def run_child(name: str, sandbox: dict[str, str], workdir: Path) -> dict[str, Any]:
    """One contender in its own process: wall seconds, peak RSS (MB), exit status, its output."""
    out = workdir / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "GLADLY_BASE_URL": sandbox["base_url"],
        "GLADLY_USER": sandbox["user"],
        "GLADLY_API_TOKEN": sandbox["token"],
        "GLADLY_RATE_BUDGET": "machine",
        "GLADLY_RATE_BUDGET_FILE": str(workdir / f"budget-{name}.json"),
    }
    for unwanted in ("GLADLY_REQUESTS_PER_SECOND", "GLADLY_RATE_SHARE", "GLADLY_PIPELINE_ROOT"):
        env.pop(unwanted, None)
    if name == "ours":
        command = [sys.executable, "-m", "gladly_pipeline.cli", "export", "--root", str(out)]
    elif name == "phases":
        command = [sys.executable, __file__, "--child", name, "--out", str(out / "archive")]
    else:
        command = [sys.executable, __file__, "--child", name, "--out", str(out)]
    log = workdir / f"{name}.log"
    started = time.perf_counter()
    with open(log, "wb") as output:
        # Its own peak RSS, not this process's carried into it (_peak).
        finished = run_measured(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rss_mb": finished.rss_mb,
        "exit": finished.exit,
        "log": log,
        "out_mb": sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6,
    }


def phases_script(root: Path) -> None:
    """`gladly-pipeline export --root ROOT` with its phases timed; prints one JSON line each."""
    import dataclasses
    import functools
    from collections.abc import Callable

    started = time.perf_counter()
    import gladly_archive.merge as merge
    import gladly_archive.staged as staged
    import gladly_client.resources as resources
    import gladly_pipeline.export as command
    import ingest.exporting as exporting
    from gladly_archive import StagedJob
    from gladly_pipeline.cli import main as cli

    phases: dict[str, list[float]] = {"imports": [time.perf_counter() - started, 1, 0.0]}

    def peak_mb() -> float:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                phase = phases.setdefault(name, [0.0, 0, 0.0])
                phase[0] += time.perf_counter() - began
                phase[1] += 1
                phase[2] = max(phase[2], peak_mb())

        return wrapper

    phases["imports"][2] = peak_mb()
    resources.ExportsResource.download_file = timed(
        "downloads", resources.ExportsResource.download_file
    )
    for key, kind in list(exporting._FILES.items()):
        write = timed(f"convert + staged writes: {kind.dataset}", kind.write)
        exporting._FILES[key] = dataclasses.replace(kind, write=write)
    StagedJob.commit = timed("commit", StagedJob.commit)
    # Parts of the commit (gladly_archive.staged / merge); the fold updates the index too.
    for part, label in (
        ("dedupe_items", "dedupe_items"),
        ("rebuild_transcripts", "rebuild_transcripts"),
        ("update_index", "update_index (commits and fold)"),
    ):
        method = getattr(merge.CommitPlanner, part)
        setattr(merge.CommitPlanner, part, timed(f"  {label}", method))
    staged.execute_intent = timed("  execute_intent", staged.execute_intent)
    exporting.try_refresh_reference = timed(
        "inboxes, topics, agents", exporting.try_refresh_reference
    )
    exporting.check_reappeared = timed("reappeared check", exporting.check_reappeared)
    exporting.fold_archive = timed("fold", exporting.fold_archive)
    exporting.refresh_catalog = timed("catalog", exporting.refresh_catalog)
    command.refresh_facts = timed("facts refresh", command.refresh_facts)
    sys.argv = ["gladly-pipeline", "export", "--root", str(root)]
    exit_code: int | str | None = 0
    try:
        cli()
    except SystemExit as done:
        exit_code = done.code
    phases["total"] = [time.perf_counter() - started, 1, peak_mb()]
    for name, (seconds, calls, peak) in phases.items():
        print(json.dumps({"phase": name, "seconds": seconds, "calls": calls, "peak_mb": peak}))
    sys.exit(exit_code)


def child_main(name: str, out: Path) -> None:
    if name == "phases":
        phases_script(out)
        return
    script = {"pandas": pandas_script, "floor": floor_script}[name]
    env = os.environ
    rows = script(env["GLADLY_BASE_URL"], env["GLADLY_USER"], env["GLADLY_API_TOKEN"], out)
    print(json.dumps({"rows": rows}))


# --------------------------------------------------------------------------------------------
# The organisation
# --------------------------------------------------------------------------------------------


def count_jobs(files_dir: Path) -> list[dict[str, Any]]:
    """What the sandbox rendered: per job, its items and bytes (from the files themselves)."""
    jobs = []
    for job_dir in sorted(p for p in files_dir.iterdir() if p.is_dir()):
        items = job_dir / "conversation_items.jsonl"
        if not items.exists():
            continue
        with open(items, "rb") as f:
            count = sum(1 for _ in f)
        size = sum(p.stat().st_size for p in job_dir.iterdir())
        jobs.append({"job": job_dir.name, "items": count, "bytes": size})
    return jobs


def print_phases(result: dict[str, Any]) -> None:
    """The phase lines the `phases` child printed, as a table."""
    print(f"\nours, phase by phase ({result['seconds']:.1f} s, exit {result['exit']}):")
    print(f"  {'phase':36} {'seconds':>8} {'calls':>5} {'peak RSS after':>15}")
    lines = [json.loads(x) for x in result["log"].read_text().splitlines() if x.startswith('{"ph')]
    order = [
        "imports", "downloads", "convert", "commit", "  dedupe_items", "  rebuild_transcripts",
        "  update_index", "  execute_intent", "inboxes", "reappeared", "fold", "catalog", "facts",
        "total",
    ]  # fmt: skip

    def rank(phase: dict[str, Any]) -> tuple[int, str]:
        name = phase["phase"]
        return next((i for i, p in enumerate(order) if name.startswith(p)), len(order)), name

    for phase in sorted(lines, key=rank):
        print(
            f"  {phase['phase']:36} {phase['seconds']:8.1f} {phase['calls']:5d} "
            f"{phase['peak_mb']:12.0f} MB"
        )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=30_000)
    parser.add_argument("--retention-days", type=int, default=1)
    parser.add_argument("--only", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--keep", action="store_true", help="keep the archives and logs")
    parser.add_argument("--phases", action="store_true", help="then ours again, phase by phase")
    parser.add_argument("--child", choices=("pandas", "floor", "phases"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.out)
        return 0

    from gladly_sandbox import Sandbox

    workdir = Path(tempfile.mkdtemp(prefix="export_end_to_end_"))
    results: dict[str, dict[str, Any]] = {}
    try:
        started = time.perf_counter()
        with Sandbox(
            seed=42,
            customers=args.customers,
            now=NOW,
            process=True,
            files_dir=workdir / "sandbox-files",
            rate_limit_per_second=None,
            retention_days=args.retention_days,
        ) as sb:
            jobs = count_jobs(workdir / "sandbox-files")
            print(
                f"sandbox: {args.customers:,} customers, ready in "
                f"{time.perf_counter() - started:.0f} s, rate limit off; "
                f"{len(jobs)} completed export jobs, {sum(j['items'] for j in jobs):,} items, "
                f"{sum(j['bytes'] for j in jobs) / 1e6:.0f} MB of files "
                f"(largest job {max(j['items'] for j in jobs):,} items)",
                flush=True,
            )
            sandbox = {"base_url": sb.base_url, "user": sb.user, "token": sb.api_token}
            for name in args.only:
                sb.reset_stats()
                results[name] = run_child(name, sandbox, workdir)
                stats = sb.stats()
                result = results[name]
                result["requests"] = stats["total"]
                print(
                    f"  {name:7} {result['seconds']:7.1f} s  peak RSS {result['rss_mb']:6.0f} MB"
                    f"  exit {result['exit']}  {result['requests']} requests"
                    f"  {result['out_mb']:.0f} MB written",
                    flush=True,
                )
                if result["exit"] not in (0, 3):  # 3: archived, something to look at
                    print(result["log"].read_text()[-3000:])
            if args.phases:
                print_phases(run_child("phases", sandbox, workdir))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}")

    print("\nresults")
    for name, result in results.items():
        line = f"  {name:7} {result['seconds']:7.1f} s  {result['rss_mb']:6.0f} MB"
        if "ours" in results and name != "ours":
            ours = results["ours"]
            line += (
                f"   ours/{name}: time {ours['seconds'] / result['seconds']:.2f} x, "
                f"RSS {ours['rss_mb'] / result['rss_mb']:.2f} x"
            )
        print(line)
    if "ours" not in results:
        return 0
    ours = results["ours"]
    failed = ours["exit"] not in (0, 3)
    print("\ngoals")
    if "pandas" in results:
        faster = ours["seconds"] < results["pandas"]["seconds"]
        failed |= not faster
        print(
            f"  ours faster than the pandas script: {ours['seconds']:.1f} s < "
            f"{results['pandas']['seconds']:.1f} s {verdict(faster)}"
        )
    lean = ours["rss_mb"] < GOAL_RSS_MB
    failed |= not lean
    print(f"  ours peak RSS {ours['rss_mb']:.0f} MB < {GOAL_RSS_MB:.0f} MB {verdict(lean)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
