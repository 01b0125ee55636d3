"""What the audit log's tests share: the key, a stepping clock, events, paths, a file rewriter."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from audit_log.writer import AUDIT_EVENTS, AuditLog

KEY = b"test-audit-key"
T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


class StepClock:
    """A clock that moves 1.5 ms per reading: deterministic times, no sleeping."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1500)
        return self.now


def audit_log(root: Path) -> AuditLog:
    return AuditLog(root, key=KEY, clock=StepClock())


def intent(n: int) -> dict[str, Any]:
    """An intent event's fields for target n."""
    return {
        "action": "delete_customer",
        "phase": "intent",
        "target_type": "customer",
        "target_id": f"cust-{n}",
        "customer_id": f"cust-{n}",
    }


def runs_dir(root: Path) -> Path:
    return root / "_audit" / "runs"


def journal_dir(root: Path) -> Path:
    return root / "_audit" / "journal"


def sealed_files(root: Path) -> list[str]:
    return sorted(p.name for p in runs_dir(root).glob("*.parquet"))


def rewrite(
    path: Path,
    edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] = lambda rows: rows,
    **meta: str,
) -> None:
    """Rewrite a sealed file as a person with write access could: rows and footer."""
    table = pq.ParquetFile(path).read()
    metadata = dict(table.schema.metadata)
    metadata.update({f"gladly_pipeline.audit.{k}".encode(): v.encode() for k, v in meta.items()})
    rows = edit(table.to_pylist())
    new = pa.Table.from_pylist(rows, schema=AUDIT_EVENTS).replace_schema_metadata(metadata)
    pq.write_table(new, path)
