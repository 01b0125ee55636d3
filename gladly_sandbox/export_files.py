"""Renders one export job's four JSONL files from an organisation, atomically and fast."""

from __future__ import annotations

import json
import json.encoder
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

# The names a COMPLETED job lists in `files`, in the order Gladly's examples show them.
FILE_NAMES = ("agents.jsonl", "conversation_items.jsonl", "customers.jsonl", "topics.jsonl")

_BATCH_LINES = 4096


def _line_encoder() -> Callable[[Any], str]:
    """Compact JSON with raw UTF-8, as fast as the stdlib goes.

    `json.dumps(..., separators=..., ensure_ascii=False)` builds a new encoder per call, and
    even a shared `JSONEncoder.encode` builds a C encoder per call; for small objects that costs
    a fifth of the time. So build CPython's C encoder once, where there is one. The data are
    plain JSON trees from the organisation, so the circular-reference check is off.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    basestring = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or basestring is None:
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def refuse(value: Any) -> Any:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    chunks = make(None, refuse, basestring, None, ":", ",", False, False, False)
    return lambda value: "".join(chunks(value, 0))


_encode = _line_encoder()


class ExportSource(Protocol):
    """What rendering reads from an organisation (the export side of `store.Organisation`)."""

    def export_items(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """Items of live customers with start <= timestamp < end, in export line shape."""
        ...

    def export_customers(self, customer_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Flattened customers.jsonl records for the live ones among `customer_ids`."""
        ...

    def export_agents(self) -> list[dict[str, Any]]:
        """agents.jsonl records."""
        ...

    def export_topics(self) -> list[dict[str, Any]]:
        """topics.jsonl records."""
        ...


def render_job_files(source: ExportSource, start: datetime, end: datetime, dest: Path) -> int:
    """Write the four files of the window [start, end) into directory `dest`; return total bytes.

    Everything is written into a hidden sibling directory first and renamed into place at the
    end, so `dest` either holds a complete set of files or does not exist.
    """
    partial = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        total = 0
        customer_ids = _write_items(source.export_items(start, end), partial / FILE_NAMES[1])
        total += (partial / FILE_NAMES[1]).stat().st_size
        total += _write_records(source.export_customers(customer_ids), partial / FILE_NAMES[2])
        total += _write_records(source.export_agents(), partial / FILE_NAMES[0])
        total += _write_records(source.export_topics(), partial / FILE_NAMES[3])
        # Same seed, same files_dir: a directory left by an earlier run may hold this job's id.
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(partial, dest)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return total


def _write_items(items: Iterator[dict[str, Any]], path: Path) -> list[str]:
    """Write items one per line; return the ids of their customers in order of first appearance."""
    encode = _encode
    # A dict keeps first-insertion order and re-assigning a key is cheaper than a membership test.
    customers: dict[str, None] = {}
    batch: list[str] = []
    with path.open("wb") as handle:
        for item in items:
            batch.append(encode(item))
            customers[item["customerId"]] = None
            if len(batch) >= _BATCH_LINES:
                batch.append("")
                handle.write("\n".join(batch).encode())
                batch.clear()
        if batch:
            batch.append("")
            handle.write("\n".join(batch).encode())
    return list(customers)


def _write_records(records: list[dict[str, Any]], path: Path) -> int:
    """Write small record lists (customers, agents, topics) one per line; return bytes written."""
    encode = _encode
    data = "".join(encode(record) + "\n" for record in records).encode()
    path.write_bytes(data)
    return len(data)
