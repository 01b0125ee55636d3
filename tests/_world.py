"""A sandbox organisation exported into a fresh archive: the world the erasure tests act on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gladly_client import GladlyClient
from gladly_sandbox import Sandbox
from retention_policies import HoldRegistry, load_policies
from retention_policies.evaluate import evaluate
from retention_policies.facts_cache import facts_tables
from tests._exported import exported_archive
from tests._policies import NOW

KEY = "engine-test-audit-key"


@dataclass
class World:
    sandbox: Sandbox
    client: GladlyClient
    root: Path
    tmp: Path

    def plan(self, text: str, name: str = "plan") -> tuple[Path, str, list[dict[str, Any]]]:
        policies = self.tmp / f"{name}.yaml"
        policies.write_text(text)
        tables, _ = facts_tables(str(self.root))
        plan = evaluate(load_policies(policies), tables, HoldRegistry.empty(key=b"x"), NOW)
        tables.con.close()
        out = self.root / "_plans" / name
        plan.write(out)
        return out, plan.hash, plan.targets.to_pylist()

    def customer(self, customer_id: str) -> dict[str, Any]:
        record = self.sandbox.org.raw_customer(customer_id)
        assert record is not None
        return record


@contextmanager
def sandbox_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """80 customers of a frozen-clock sandbox, exported into `tmp_path/archive`."""
    monkeypatch.setenv("GLADLY_AUDIT_KEY", KEY)
    monkeypatch.setenv("GLADLY_PIPELINE_ACTOR", "test-admin")
    with Sandbox(
        seed=23, customers=80, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        root = tmp_path / "archive"
        exported_archive(sb, root, ("sandbox_world", 23, 80, KEY))
        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as c:
            yield World(sb, c, root, tmp_path)
