"""A sandbox organisation exported into an archive, and `gladly-pipeline` run against it in a
child process (optionally killed at its k-th audit event): the world of the CLI erasure tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit_log import AuditLog
from gladly_archive import Archive
from gladly_archive.tombstones import read_tombstones
from gladly_sandbox import Sandbox
from tests._exported import exported_archive
from tests._policies import NOW

REPO = Path(__file__).resolve().parents[2]
KEY = b"cli-erasure-test-key"


@dataclass
class ErasureWorld:
    """The sandbox (the truth), the archive root, and how to run the CLI against them."""

    sandbox: Sandbox
    root: Path
    base_url: str

    def env(self) -> dict[str, str]:
        """What a person would set: Gladly's settings, the key, the archive, who they are."""
        return {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "GLADLY_BASE_URL": self.base_url,
            "GLADLY_USER": self.sandbox.user,
            "GLADLY_API_TOKEN": self.sandbox.api_token,
            "GLADLY_REQUESTS_PER_SECOND": "200",
            "GLADLY_AUDIT_KEY": KEY.decode(),
            "GLADLY_PIPELINE_ROOT": str(self.root),
            "GLADLY_PIPELINE_ACTOR": "test-admin",
            "COLUMNS": "200",
        }

    def cli(self, *args: str, kill_at: int = 0) -> subprocess.CompletedProcess[str]:
        """`gladly-pipeline ARGS` in a child process; killed after `kill_at` audit events."""
        proc = subprocess.run(
            [sys.executable, "-m", "tests.erasure._cli_child", str(kill_at), *args],
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=REPO,
            timeout=300,
            check=False,
        )
        if proc.returncode not in (0, 1, 2, 3, -signal.SIGKILL):
            raise AssertionError(f"child died ({proc.returncode}): {proc.stderr[-3000:]}")
        return proc

    def customer(self, customer_id: str) -> dict[str, Any]:
        """The sandbox's own record of a customer (the truth, not our report)."""
        record = self.sandbox.org.raw_customer(customer_id)
        assert record is not None
        return record

    def personal(self, customer_id: str) -> list[str]:
        """Everything that identifies the customer: emails, phones (as typed and E.164), name."""
        record = self.customer(customer_id)
        values = [str(record.get("name") or "")]
        for email in record.get("emails") or []:
            values += [email["original"], email["normalized"]]
        for phone in record.get("phones") or []:
            values += [phone["original"], phone["normalized"]]
        return [v for v in values if v]

    def outcomes(self) -> list[dict[str, Any]]:
        """Every target outcome of every run that acted (rehearsals left out)."""
        events = AuditLog(self.root, key=KEY).events().to_pylist()
        dry = {
            e["run_id"] for e in events if e["step"] == "run_started" and e["outcome"] == "dry_run"
        }
        return [e for e in events if e["step"] == "outcome" and e["run_id"] not in dry]

    def final_outcomes_per_target(self) -> Counter[tuple[str, str]]:
        """(request, target) → how many final outcomes the log holds for it."""
        final = {"deleted", "already_absent", "not_found", "held", "blocked_open_conversation"}
        return Counter(
            (str(e["policy_hash"]), str(e["target_id"]))
            for e in self.outcomes()
            if e["outcome"] in final
        )

    def tombstones(self) -> Counter[str]:
        """Tombstones per customer id."""
        stones = read_tombstones(Archive(self.root))
        return Counter(stones.column("customer_id").to_pylist()) if stones.num_rows else Counter()


@contextmanager
def erasure_world(tmp_path: Path, customers: int = 40, seed: int = 31) -> Iterator[ErasureWorld]:
    """A frozen-clock sandbox with `customers` customers, exported into tmp_path/archive."""
    with Sandbox(
        seed=seed, customers=customers, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        root = tmp_path / "archive"
        exported_archive(sb, root, ("erasure_world", seed, customers))
        yield ErasureWorld(sb, root, sb.base_url)


def deletable(world: ErasureWorld, *, with_phone: bool = False) -> list[str]:
    """Live customers with an email (and a phone) and no open conversation."""
    out = []
    for cid in world.sandbox.org.customer_ids():
        record = world.customer(cid)
        if record["deleted"] or record.get("merged_into") or not record.get("emails"):
            continue
        if with_phone and not record.get("phones"):
            continue
        statuses = {
            world.sandbox.org.get_conversation(v)["status"]
            for v in world.sandbox.org.conversation_ids(cid)
        }
        if statuses <= {"CLOSED"}:
            out.append(cid)
    return out
