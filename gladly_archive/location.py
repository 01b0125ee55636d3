"""Where the archive lives (the root given, else the environment's) and its derived copies."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["DEFAULT_ROOT", "ENV_ROOT", "FACTS_DIR", "drop_facts", "resolve_archive_root"]

ENV_ROOT = "GLADLY_PIPELINE_ROOT"
DEFAULT_ROOT = "./gladly-data"
# The planner's saved fact tables, derived from the archive and kept beside it.
FACTS_DIR = "_facts"


def resolve_archive_root(root: str | os.PathLike[str] | None = None) -> str:
    """The archive root: the argument, else `GLADLY_PIPELINE_ROOT`, else ./gladly-data."""
    if root is not None and str(root).strip():
        return str(root)
    return os.environ.get(ENV_ROOT, "").strip() or DEFAULT_ROOT


def drop_facts(root: str) -> None:
    """Remove every saved copy: after a purge they still hold the erased customers' contacts
    (the planner's customer facts carry emails and phones), so they must go at once."""
    if "://" not in root:
        shutil.rmtree(Path(root) / FACTS_DIR, ignore_errors=True)
