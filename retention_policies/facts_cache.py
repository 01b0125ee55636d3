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
    FACTS_PHASE,
    FACTS_VERSION,
    SOURCE_DATASETS,
    Progress,
    Tables,
    load_tables,
    open_tables,
    save_tables,
)

__all__ = ["SAVE_PHASE", "facts_tables", "refresh_facts"]

# The phase of saving freshly built fact tables beside the archive (0 of 1, then 1 of 1).
SAVE_PHASE = "saving facts"

_DONE = "COMPLETE"
logger = logging.getLogger(__name__)


def _key(archive: Archive) -> str:
    return f"v{FACTS_VERSION}-{archive.state(SOURCE_DATASETS)[:32]}"


def facts_tables(root: str, *, progress: Progress | None = None) -> tuple[Tables, bool]:
    """Fact tables for the archive at `root`, and whether they came from the saved copy.

    Building them reads every item (seconds per million); the copy saved under
    `<root>/_facts/<state>/` is used only while the archive's datasets are exactly as they were
    (same files, sizes, times), so a plan never sees stale facts. A fresh build is saved for
    the next plan. Remote archives are always built. `progress` hears the build's steps
    (FACTS_PHASE; one step when the saved copy serves) and the save (SAVE_PHASE).
    """
    archive = Archive(root)
    local = "://" not in root
    if not local:
        return load_tables(root, progress=progress), False
    key = _key(archive)
    saved = Path(root) / FACTS_DIR / key
    if (saved / _DONE).is_file():
        tables = open_tables(root, saved)
        if progress is not None:
            progress(FACTS_PHASE, 1, 1)
        return tables, True
    tables = load_tables(root, progress=progress)
    # Save only if nothing changed while reading: the copy must describe exactly `key`.
    if _key(archive) == key:
        if progress is not None:
            progress(SAVE_PHASE, 0, 1)
        _save(tables, Path(root) / FACTS_DIR, key)
        if progress is not None:
            progress(SAVE_PHASE, 1, 1)
    return tables, False


def refresh_facts(root: str, *, progress: Progress | None = None) -> bool:
    """Build and save the fact tables now if the saved copy is missing or stale (the export
    flow calls this after a commit, so the next plan starts from saved facts). True if built.
    `progress` as for `facts_tables`."""
    if "://" in root:
        return False
    tables, cached = facts_tables(root, progress=progress)
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
