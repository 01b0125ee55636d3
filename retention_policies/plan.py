"""The plan: what evaluation selected, what holds excluded, what limits blocked; hashed, on disk."""

# SQL here is built only from our own constant identifiers; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gladly_archive.writer import write_parquet_file

__all__ = ["TARGET_SCHEMA", "Plan", "PlanIntegrityError", "table_digest"]

_TS = pa.timestamp("us", tz="UTC")

# One row per target. `operation` says what the API will be asked to do: delete_customer,
# redact, delete, or not_erasable_via_api (listed so nobody believes it was erased).
TARGET_SCHEMA = pa.schema(
    [
        ("target_type", pa.string()),  # customer | conversation | item
        ("target_id", pa.string()),
        ("customer_id", pa.string()),
        ("conversation_id", pa.string()),
        ("policy_name", pa.string()),
        ("policy_hash", pa.string()),
        ("action", pa.string()),
        ("operation", pa.string()),
        ("erasable", pa.bool_()),
        ("content_type", pa.string()),
        ("inbox_id", pa.string()),
        ("last_activity", _TS),
        ("closed_at", _TS),
        ("has_open_conversation", pa.bool_()),
        ("close_open_conversations", pa.bool_()),
        ("matched_facts_json", pa.string()),
        ("excluded_by_holds", pa.list_(pa.string())),
    ]
)
_ORDER = "policy_name, target_type, target_id, conversation_id, operation"


class PlanIntegrityError(ValueError):
    """A plan on disk whose content no longer matches its recorded hash."""


def table_digest(table: pa.Table) -> str:
    """sha256 over a target table's rows in canonical order (chunking and row order ignored)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone='UTC'")
        con.execute("SET threads=2")
        con.register("t", table.cast(TARGET_SCHEMA))
        rows = con.sql(
            f"SELECT sha256(CAST(to_json(t) AS VARCHAR)) AS h FROM t ORDER BY {_ORDER}, h"
        ).to_arrow_table()
    finally:
        con.close()
    digest = hashlib.sha256(str(table.num_rows).encode())
    # Per chunk: its hashes each followed by a newline (an empty chunk contributes one newline),
    # fed straight from the Arrow buffers (no per-row Python objects).
    for chunk in rows.column("h").chunks:
        if len(chunk) == 0:
            digest.update(b"\n")
            continue
        lines = pc.binary_join_element_wise(chunk, pa.scalar("", chunk.type), "\n")
        width = np.int64 if pa.types.is_large_string(lines.type) else np.int32
        offsets = np.frombuffer(lines.buffers()[1], dtype=width)
        start, end = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
        digest.update(memoryview(lines.buffers()[2])[start:end])
    return digest.hexdigest()


def _counts(table: pa.Table, column: str) -> dict[str, int]:
    if table.num_rows == 0:
        return {}
    grouped = table.group_by(column).aggregate([([], "count_all")])
    keys = grouped.column(column).to_pylist()
    counts = grouped.column("count_all").to_pylist()
    return {
        str(k) if k is not None else "(none)": int(c)
        for k, c in sorted(zip(keys, counts, strict=True), key=lambda kc: str(kc[0]))
    }


@dataclass(frozen=True)
class Plan:
    """The result of `evaluate`: executable `targets`, `held` (excluded by legal holds, never
    executable), per-policy outcomes (`policies`, each with status planned | blocked | disabled)
    and a `hash` over all of it plus `now` and the holds registry's hash.

    ```python
    plan = evaluate(policies, tables, holds, now)
    plan.write("plans/2025-06-01")
    assert Plan.read("plans/2025-06-01").hash == plan.hash
    ```
    """

    now: datetime
    targets: pa.Table
    held: pa.Table
    policies: list[dict[str, Any]]
    holds_hash: str
    hash: str = field(default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", self.targets.cast(TARGET_SCHEMA))
        object.__setattr__(self, "held", self.held.cast(TARGET_SCHEMA))
        if not self.hash:
            object.__setattr__(self, "hash", self.compute_hash())

    @property
    def blocked(self) -> list[dict[str, Any]]:
        """The policies whose limits were exceeded (no targets from them), with the reason."""
        return [p for p in self.policies if p["status"] == "blocked"]

    def compute_hash(self) -> str:
        """sha256 over the canonical content: targets, held, policies, holds hash, now."""
        content = {
            "now": self.now.isoformat(),
            "holds_hash": self.holds_hash,
            "policies": self.policies,
            "targets": table_digest(self.targets),
            "held": table_digest(self.held),
        }
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        """Counts by policy, action, operation, inbox and channel; holds; not erasable; blocked."""
        not_erasable = self.targets.filter(
            pc.equal(self.targets.column("operation"), "not_erasable_via_api")
        )
        return {
            "targets": self.targets.num_rows,
            "by_policy": _counts(self.targets, "policy_name"),
            "by_action": _counts(self.targets, "action"),
            "by_operation": _counts(self.targets, "operation"),
            "by_inbox": _counts(self.targets, "inbox_id"),
            "by_channel": _counts(self.targets, "content_type"),
            "excluded_by_holds": self.held.num_rows,
            "excluded_by_holds_by_policy": _counts(self.held, "policy_name"),
            "not_erasable_via_api": not_erasable.num_rows,
            "not_erasable_via_api_by_content_type": _counts(not_erasable, "content_type"),
            "blocked_policies": [{"name": p["name"], "reason": p["reason"]} for p in self.blocked],
        }

    def _manifest(self) -> dict[str, Any]:
        return {
            "hash": self.hash,
            "now": self.now.isoformat(),
            "holds_hash": self.holds_hash,
            "policies": self.policies,
            "counts": {"targets": self.targets.num_rows, "held": self.held.num_rows},
        }

    def write(self, directory: str | Path) -> Path:
        """Write targets.parquet, held.parquet, summary.json, plan.json atomically (a temp dir
        renamed into place); an existing `directory` is an error, never overwritten."""
        final = Path(directory)
        if final.exists():
            raise FileExistsError(f"{final} exists; a plan is never overwritten")
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            write_parquet_file(self.targets, tmp / "targets.parquet")
            write_parquet_file(self.held, tmp / "held.parquet")
            for name, content in (
                ("summary.json", self.summary()),
                ("plan.json", self._manifest()),
            ):
                (tmp / name).write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    @classmethod
    def read(cls, directory: str | Path) -> Plan:
        """Read a written plan back and verify it: any change on disk → PlanIntegrityError."""
        base = Path(directory)
        try:
            manifest = json.loads((base / "plan.json").read_text())
            stored = str(manifest["hash"])
            plan = cls(
                now=datetime.fromisoformat(manifest["now"]),
                targets=pq.read_table(base / "targets.parquet"),
                held=pq.read_table(base / "held.parquet"),
                policies=list(manifest["policies"]),
                holds_hash=str(manifest["holds_hash"]),
            )
            summary = json.loads((base / "summary.json").read_text())
        except (OSError, KeyError, ValueError, TypeError, pa.ArrowException) as exc:
            raise PlanIntegrityError(f"{base}: unreadable plan: {exc}") from exc
        if plan.hash != stored:
            raise PlanIntegrityError(
                f"{base}: plan content does not match its hash (recorded {stored[:12]}…, "
                f"computed {plan.hash[:12]}…); it was changed after it was written"
            )
        if json.loads(json.dumps(plan.summary())) != summary:
            raise PlanIntegrityError(f"{base}: summary.json does not match the plan's targets")
        return plan
