"""SIGKILL the engine at many points of a run: every rerun converges, no audit event is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pytest

from audit_log import AuditLog, verify_chain
from audit_log import outcomes as o
from gladly_archive import Archive
from gladly_archive.tombstones import read_tombstones
from gladly_client import GladlyClient
from gladly_sandbox import Sandbox
from ingest.exporting import run_export
from retention_policies import HoldRegistry, load_policies
from retention_policies.evaluate import evaluate
from retention_policies.facts_cache import facts_tables
from tests._policies import INACTIVE_AND_CALLS, NOW

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# Each run is killed right after this many of its own audit events (the first run after 1,
# the next after 3, …); the last run is left to finish. Together they hit the run's start,
# hold checks, announced calls, results, outcomes, tombstones and the purge.
KILL_POINTS = (1, 2, 4, 7, 11, 16, 22, 30, 45, 70, 110)

CRASH_KEY = b"crash-test-key"


def _run(args: list[str]) -> tuple[int, list[dict[str, object]]]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "GLADLY_AUDIT_KEY": CRASH_KEY.decode()}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.erasure._crash_child", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=240,
        check=False,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"child failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return proc.returncode, lines


def test_killed_at_many_points_every_rerun_converges(tmp_path: Path) -> None:
    with Sandbox(
        seed=29, customers=60, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        root = tmp_path / "archive"
        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as c:
            assert run_export(c, Archive.open(root), now=NOW).failed == []
        policies = tmp_path / "policies.yaml"
        policies.write_text(INACTIVE_AND_CALLS)
        tables, _ = facts_tables(str(root))
        plan = evaluate(load_policies(policies), tables, HoldRegistry.empty(key=b"k"), NOW)
        tables.con.close()
        plan_dir = tmp_path / "plan"
        plan.write(plan_dir)
        targets = {
            (t["policy_name"], t["target_type"], t["target_id"]) for t in plan.targets.to_pylist()
        }
        customers = {t[2] for t in targets if t[1] == "customer"}
        assert len(customers) >= 5
        assert len(targets) > len(customers)
        base = [str(plan_dir), plan.hash, str(root), sb.base_url, sb.user, sb.api_token]

        acknowledged: list[dict[str, object]] = []
        kills = 0
        for kill_at in (*KILL_POINTS, 0):
            code, lines = _run([*base, str(kill_at)])
            acknowledged += [line for line in lines if "seq" in line]
            if code == 0:
                assert lines[-1]["chain_ok"] is True
                break
            kills += 1
            # What a killed run left: the next run seals its journal; nothing acknowledged lost.
            AuditLog(root, key=CRASH_KEY).recover()
            report = verify_chain(root, key=CRASH_KEY)
            assert report.ok, report.problem
            kept = {
                (e["run_id"], e["seq"], e["hash"])
                for e in AuditLog(root, key=CRASH_KEY).events().to_pylist()
            }
            for line in acknowledged:
                assert (line["run"], line["seq"], line["hash"]) in kept
        # The run really was interrupted many times before it finished.
        assert kills >= 6, f"only {kills} kills, {len(acknowledged)} events"

        events = AuditLog(root, key=CRASH_KEY).events().to_pylist()
        finals: dict[tuple[str, str, str], list[str]] = {}
        for e in events:
            if e["step"] == "outcome" and e["outcome"] in o.FINAL_OUTCOMES:
                finals.setdefault((e["policy_name"], e["target_type"], e["target_id"]), []).append(
                    e["outcome"]
                )
        assert set(finals) == targets
        assert all(len(v) == 1 for v in finals.values()), "a target was finished twice"
        # A target reached by a killed run is tried again, and the log counts the attempts.
        assert max(e["attempt"] or 0 for e in events if e["step"] == "outcome") >= 2
        assert verify_chain(root, key=CRASH_KEY).ok
        for cid in customers:
            assert (sb.org.raw_customer(cid) or {}).get("deleted") is True
        stones = set(read_tombstones(Archive(root)).column("customer_id").to_pylist())
        assert customers <= stones
        left = Archive(root).dataset("items").to_table(columns=["customer_id"])
        hit = pc.is_in(left.column("customer_id"), value_set=pc.cast(sorted(customers), "string"))
        assert not pc.any(hit).as_py()
