"""The planner's fact tables, saved beside a local archive and reused while it is unchanged."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import duckdb

from gladly_archive import Archive
from gladly_archive.location import FACTS_DIR
from retention_policies.facts import (
    FACTS_VERSION,
    SOURCE_DATASETS,
    Tables,
    load_tables,
    open_tables,
    save_tables,
)

__all__ = ["facts_tables", "refresh_facts"]

_DONE = "COMPLETE"
logger = logging.getLogger(__name__)


def _key(archive: Archive) -> str:
    return f"v{FACTS_VERSION}-{archive.state(SOURCE_DATASETS)[:32]}"


def facts_tables(root: str) -> tuple[Tables, bool]:
    """Fact tables for the archive at `root`, and whether they came from the saved copy.

    Building them reads every item (seconds per million); the copy saved under
    `<root>/_facts/<state>/` is used only while the archive's datasets are exactly as they were
    (same files, sizes, times), so a plan never sees stale facts. A fresh build is saved for
    the next plan. Remote archives are always built.
    """
    archive = Archive(root)
    local = "://" not in root
    if not local:
        return load_tables(root), False
    key = _key(archive)
    saved = Path(root) / FACTS_DIR / key
    if (saved / _DONE).is_file():
        return open_tables(root, saved), True
    tables = load_tables(root)
    # Save only if nothing changed while reading: the copy must describe exactly `key`.
    if _key(archive) == key:
        _save(tables, Path(root) / FACTS_DIR, key)
    return tables, False


def refresh_facts(root: str) -> bool:
    """Build and save the fact tables now if the saved copy is missing or stale (the export
    flow calls this after a commit, so the next plan starts from saved facts). True if built."""
    if "://" in root:
        return False
    tables, cached = facts_tables(root)
    tables.con.close()
    return not cached


def _save(tables: Tables, base: Path, key: str) -> None:
    try:
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=base))
    except OSError as exc:
        # A cache that cannot be written costs time, never correctness.
        logger.warning("could not save the planner's fact tables: %s", exc.strerror)
        return
    try:
        save_tables(tables, tmp)
        (tmp / _DONE).write_text(key + "\n")
        try:
            os.rename(tmp, base / key)
        except OSError:  # another process saved the same state first
            return
        for other in base.iterdir():
            if other.name != key and not other.name.startswith("."):
                shutil.rmtree(other, ignore_errors=True)
    except (OSError, duckdb.Error) as exc:
        logger.warning("could not save the planner's fact tables: %s", type(exc).__name__)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
