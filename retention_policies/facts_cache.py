"""The planner's fact tables, saved beside a local archive, reused while it is unchanged and
carried forward when it moves (retention_policies.facts_refresh)."""

from __future__ import annotations

import logging

import duckdb

from retention_policies.fact_sources import list_sources
from retention_policies.facts import FACTS_PHASE, Progress, Tables, load_tables
from retention_policies.facts_refresh import SAVE_PHASE, Refreshed, refresh
from retention_policies.facts_store import (
    facts_base,
    find_generation,
    generation_key,
    open_generation,
)

__all__ = ["SAVE_PHASE", "facts_tables", "refresh_facts", "refresh_report"]

logger = logging.getLogger(__name__)


def facts_tables(root: str, *, progress: Progress | None = None) -> tuple[Tables, bool]:
    """Fact tables for the archive at `root`, and whether they came from the saved copy.

    The copy saved under `<root>/_facts/<state>/` is used only while the archive's source files
    are exactly those it lists (same paths, sizes, times, inodes), so a plan never sees stale
    facts. Otherwise the saved copy is brought up to the archive (from the last one, reading
    only the files that changed, or built in full) and saved for the next plan. Remote
    archives are always built. `progress` hears the build's steps (FACTS_PHASE; one step when
    the saved copy serves) and the save (SAVE_PHASE).
    """
    if "://" in root:
        return load_tables(root, progress=progress), False
    sources = list_sources(root)
    saved = find_generation(facts_base(root), generation_key(sources))
    if saved is not None:
        try:
            tables = open_generation(root, saved)
        except (duckdb.Error, OSError) as exc:  # e.g. removed by a newer refresh meanwhile
            logger.warning("saved facts could not be read (%s): refreshing", type(exc).__name__)
        else:
            if progress is not None:
                progress(FACTS_PHASE, 1, 1)
            return tables, True
    done = refresh(root, progress=progress, keep_tables=True, sources=sources)
    if done.tables is not None:
        return done.tables, False
    if done.generation is not None:
        try:
            return open_generation(root, done.generation), False
        except (duckdb.Error, OSError) as exc:
            logger.warning("refreshed facts could not be read (%s)", type(exc).__name__)
    return load_tables(root), False


def refresh_facts(root: str, *, progress: Progress | None = None) -> bool:
    """Bring the saved fact tables up to the archive now if they do not describe it (the export
    flow calls this after a commit, so the next plan starts from saved facts). True if built.
    `progress` as for `facts_tables`."""
    if "://" in root:
        return False
    return refresh_report(root, progress=progress).mode != "current"


def refresh_report(root: str, *, progress: Progress | None = None) -> Refreshed:
    """`refresh_facts`, saying how: "current", "incremental" or "full" (and why full)."""
    return refresh(root, progress=progress)
