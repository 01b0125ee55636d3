"""A byte scan of everything under a folder, for values that must be gone (never the code's
report of itself): raw bytes of every file, and the decoded rows of every Parquet file."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq


def traces(root: Path, needles: Iterable[str]) -> list[str]:
    """Where any needle (case-insensitive) still stands: "<file>: raw|parquet needle #i".
    The needles themselves are never repeated, only their positions in the list."""
    wanted = [(i, n.casefold()) for i, n in enumerate(needles) if n.strip()]
    found: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        raw = path.read_bytes().decode("utf-8", "replace").casefold()
        found += [f"{path}: raw needle #{i}" for i, n in wanted if n in raw]
        if path.suffix == ".parquet":
            try:
                rows = pq.ParquetFile(path).read().to_pylist()
            except Exception as exc:  # a damaged file is a finding too
                found.append(f"{path}: unreadable Parquet ({type(exc).__name__})")
                continue
            text = json.dumps(rows, default=str, ensure_ascii=False).casefold()
            found += [f"{path}: parquet needle #{i}" for i, n in wanted if n in text]
    return found
