"""The plan: what evaluation selected, what holds excluded, what limits blocked; hashed, on disk."""

# SQL here is built only from our own constant identifiers; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Sequence
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


# How many samples of each policy's subjects the summary lists for the approver.
SAMPLES = 5


# A contact policy's rows name their contact in their facts (evaluate's `"contact"` key).
_CONTACT_IN_FACTS = r'"contact":\s*"(?P<contact>[^"\\]*)"'


def _subjects(
    table: pa.Table, conversation_policies: list[str], contact_policies: Sequence[str] = ()
) -> pa.Array:
    """Each row's subject: the conversation for a conversation policy (its record and each of its
    items), the contact for a contact policy (each of its items), else the target itself (a
    customer or an item)."""
    target_id = table.column("target_id")
    if table.num_rows == 0:
        return target_id
    subjects = target_id
    names = table.column("policy_name")
    if conversation_policies:
        of_conversation = pc.is_in(names, value_set=pa.array(conversation_policies, pa.string()))
        subjects = pc.if_else(of_conversation, table.column("conversation_id"), subjects)
    if contact_policies:
        of_contact = pc.is_in(names, value_set=pa.array(list(contact_policies), pa.string()))
        found = pc.extract_regex(table.column("matched_facts_json"), _CONTACT_IN_FACTS)
        contact = pc.struct_field(found, "contact")
        subjects = pc.if_else(of_contact, contact, subjects)
    return subjects


def _targets_by_policy(table: pa.Table, subjects: pa.Array) -> dict[str, dict[str, Any]]:
    """Per policy: its rows, its distinct subjects and the first SAMPLES of them, sorted."""
    if table.num_rows == 0:
        return {}
    grouped = (
        pa.table({"policy": table.column("policy_name"), "subject": subjects})
        .group_by("policy")
        .aggregate([([], "count_all"), ("subject", "distinct")])
    )
    out: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(grouped.column("policy").to_pylist()):
        distinct = grouped.column("subject_distinct")[i].values
        if distinct is None:
            distinct = pa.array([], pa.string())
        smallest = pc.take(distinct, pc.bottom_k_unstable(distinct, k=SAMPLES))
        out[str(name)] = {
            "targets": int(grouped.column("count_all")[i].as_py()),
            "subjects": len(distinct),
            "samples": sorted(str(s) for s in smallest.to_pylist()),
        }
    return out


def _held_by_policy(table: pa.Table, subjects: pa.Array) -> dict[str, dict[str, Any]]:
    """Per policy: its held rows and, per hold label, the distinct subjects that hold kept back
    (a subject under two holds counts under both)."""
    if table.num_rows == 0:
        return {}
    rows = table.group_by("policy_name").aggregate([([], "count_all")])
    out: dict[str, dict[str, Any]] = {
        str(name): {"held": int(count), "held_by": {}}
        for name, count in zip(
            rows.column("policy_name").to_pylist(),
            rows.column("count_all").to_pylist(),
            strict=True,
        )
    }
    labels = table.column("excluded_by_holds").combine_chunks()
    parents = pc.list_parent_indices(labels)
    pairs = (
        pa.table(
            {
                "policy": pc.take(table.column("policy_name"), parents),
                "label": pc.list_flatten(labels),
                "subject": pc.take(subjects, parents),
            }
        )
        .group_by(["policy", "label"])
        .aggregate([("subject", "count_distinct")])
        .sort_by([("policy", "ascending"), ("label", "ascending")])
    )
    for name, label, count in zip(
        pairs.column("policy").to_pylist(),
        pairs.column("label").to_pylist(),
        pairs.column("subject_count_distinct").to_pylist(),
        strict=True,
    ):
        out[str(name)]["held_by"][str(label)] = int(count)
    return out


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
        """Counts by policy, action, operation, inbox and channel; holds; not erasable; blocked;
        and `policies`: per policy its status, reason, counts, holds and a few subject ids (what
        `retention_policies.plan_summary` renders for the approver)."""
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
            "policies": self._policy_summaries(),
        }

    def _policy_summaries(self) -> list[dict[str, Any]]:
        """One entry per policy, in name order: what it is, what it selected, what holds kept
        back, and a few of its subjects' ids (Gladly ids only, never personal data)."""
        by_resource: dict[str, list[str]] = {"conversation": [], "contact": []}
        for p in self.policies:
            by_resource.get(str(p.get("resource")), []).append(str(p["name"]))
        of = (sorted(by_resource["conversation"]), sorted(by_resource["contact"]))
        selected = _targets_by_policy(self.targets, _subjects(self.targets, *of))
        held = _held_by_policy(self.held, _subjects(self.held, *of))
        entries = []
        for policy in sorted(self.policies, key=lambda p: str(p["name"])):
            name = str(policy["name"])
            mine = selected.get(name, {"targets": 0, "subjects": 0, "samples": []})
            kept = held.get(name, {"held": 0, "held_by": {}})
            entries.append(
                {
                    "name": name,
                    "resource": policy.get("resource"),
                    "action": policy.get("action"),
                    "status": policy.get("status"),
                    "reason": policy.get("reason"),
                    "population": policy.get("population"),
                    "matched": policy.get("matched"),
                    "targets": mine["targets"],
                    "subjects": mine["subjects"],
                    "held": kept["held"],
                    "held_by": kept["held_by"],
                    "samples": mine["samples"],
                }
            )
        return entries

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
        # Every key, the approver's per-policy block included: what they read is what is hashed.
        if json.loads(json.dumps(plan.summary())) != summary:
            raise PlanIntegrityError(f"{base}: summary.json does not match the plan's targets")
        return plan
