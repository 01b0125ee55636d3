"""Where the archive lives (the root given, else the environment's), whether it can be one, and
its derived copies."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from gladly_archive.settings import SettingError

__all__ = [
    "DEFAULT_ROOT",
    "ENV_ROOT",
    "FACTS_DIR",
    "ArchiveRootError",
    "check_archive_root",
    "drop_facts",
    "resolve_archive_root",
]

ENV_ROOT = "GLADLY_PIPELINE_ROOT"
DEFAULT_ROOT = "./gladly-data"
# The planner's saved fact tables, derived from the archive and kept beside it.
FACTS_DIR = "_facts"


def resolve_archive_root(root: str | os.PathLike[str] | None = None) -> str:
    """The archive root: the argument, else `GLADLY_PIPELINE_ROOT`, else ./gladly-data."""
    if root is not None and str(root).strip():
        return str(root)
    return os.environ.get(ENV_ROOT, "").strip() or DEFAULT_ROOT


class ArchiveRootError(SettingError):
    """The archive root is a file, or this user cannot reach or read it."""


def check_archive_root(root: str) -> None:
    """Refuse a local archive root that cannot be one, before anything reads or writes it.

    A root that does not exist yet is fine (the first export creates it), and so is one this
    user may only read (an auditor's copy); a file, or a directory this user cannot reach or
    read, raises ArchiveRootError naming it and the settings that choose it. URIs
    (`s3://…`) are left to their filesystem, which says what is wrong in its own words.
    """
    if "://" in root:
        return
    fix = f"set --root or {ENV_ROOT} to a directory this user can read and write"
    try:
        status = os.stat(root)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise ArchiveRootError(
            f"the archive root {root} lies under a file, not a directory: {fix}"
        ) from None
    except PermissionError:
        raise ArchiveRootError(
            f"the archive root {root} cannot be reached: a directory above it does not let this "
            f"user in; {fix}"
        ) from None
    if not stat.S_ISDIR(status.st_mode):
        raise ArchiveRootError(f"the archive root {root} is a file, not a directory: {fix}")
    if not os.access(root, os.R_OK | os.X_OK):
        raise ArchiveRootError(f"the archive root {root} cannot be read by this user: {fix}")


def drop_facts(root: str) -> None:
    """Remove every saved copy: after a purge they still hold the erased customers' contacts
    (the planner's customer facts carry emails and phones), so they must go at once."""
    if "://" not in root:
        shutil.rmtree(Path(root) / FACTS_DIR, ignore_errors=True)
