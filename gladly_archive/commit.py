"""The commit intent and its roll-forward: how a staged job becomes visible, crash or no crash."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from gladly_archive.fs import (
    atomic_write_bytes,
    delete_if_exists,
    exists,
    fsync_dirs,
    join,
    list_dirs,
    move_idempotent,
    read_bytes,
    remove_dir,
)
from gladly_archive.layout import (
    INTENT_NAME,
    MANIFEST_DIR,
    STAGING_DIR,
    check_layout,
    manifest_name,
)
from gladly_archive.schemas import MANIFEST

# Where the key files live (folded_keys, recent_keys): written whole under a hidden temp name.
_KEY_FILES_DIR = "_index"

__all__ = [
    "CommitIntent",
    "CrashHook",
    "execute_intent",
    "manifest_table",
    "read_intent",
    "recover_staging",
    "write_intent",
]

log = logging.getLogger(__name__)

CrashHook = Callable[[str], None]

_MANIFEST_TIMES = ("window_start", "window_end", "job_updated_at", "archived_at")


@dataclass(frozen=True)
class CommitIntent:
    """Everything step 5 must do, written durably before the first visible change.

    Paths are relative to the archive root, so the intent stays valid if the root is mounted
    elsewhere. ``manifest`` is the manifest row with timestamps as ISO-8601 strings.
    """

    job_id: str
    moves: list[tuple[str, str]]  # (staged path, final path)
    deletes: list[str]  # files replaced by this job's rewrites
    manifest: dict[str, Any]  # empty for a layout change (a fold), which archives no job
    summary: dict[str, Any] = field(default_factory=dict)  # the CommitResult figures

    def to_json(self) -> bytes:
        """Serialise for ``_COMMIT.json``."""
        body = {
            "version": 1,
            "job_id": self.job_id,
            "moves": [list(move) for move in self.moves],
            "deletes": self.deletes,
            "manifest": self.manifest,
            "summary": self.summary,
        }
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> CommitIntent:
        """Parse a ``_COMMIT.json``."""
        body = json.loads(data)
        return cls(
            job_id=body["job_id"],
            moves=[(src, dst) for src, dst in body["moves"]],
            deletes=list(body["deletes"]),
            manifest=dict(body["manifest"]),
            summary=dict(body.get("summary", {})),
        )


def manifest_record(
    *,
    job_id: str,
    kind: str,
    window_start: datetime | None,
    window_end: datetime | None,
    job_updated_at: datetime | None,
    files: list[dict[str, Any]],
    quarantined_lines: int,
    archived_at: datetime,
    schema_version: int,
) -> dict[str, Any]:
    """A JSON-able manifest row (timestamps as ISO strings)."""

    def iso(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "job_id": job_id,
        "kind": kind,
        "window_start": iso(window_start),
        "window_end": iso(window_end),
        "job_updated_at": iso(job_updated_at),
        "files": files,
        "quarantined_lines": quarantined_lines,
        "archived_at": iso(archived_at),
        "schema_version": schema_version,
    }


def manifest_table(record: dict[str, Any]) -> pa.Table:
    """The one-row MANIFEST table for a JSON-able manifest record."""
    row = dict(record)
    for name in _MANIFEST_TIMES:
        if row.get(name) is not None:
            row[name] = datetime.fromisoformat(row[name])
    return pa.Table.from_pylist([row], schema=MANIFEST)


def _staging(root: str, job_id: str) -> str:
    return join(root, STAGING_DIR, job_id)


def write_intent(fs: pafs.FileSystem, root: str, intent: CommitIntent) -> None:
    """Write ``_staging/<job>/_COMMIT.json`` atomically (temporary name, then rename)."""
    atomic_write_bytes(fs, join(_staging(root, intent.job_id), INTENT_NAME), intent.to_json())


def read_intent(fs: pafs.FileSystem, root: str, job_id: str) -> CommitIntent | None:
    """The job's commit intent, or None if it was never written."""
    path = join(_staging(root, job_id), INTENT_NAME)
    if not exists(fs, path):
        return None
    return CommitIntent.from_json(read_bytes(fs, path))


def _write_manifest(fs: pafs.FileSystem, root: str, record: dict[str, Any]) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(manifest_table(record), sink, compression="zstd")
    atomic_write_bytes(
        fs, join(root, manifest_name(record["job_id"])), sink.getvalue().to_pybytes()
    )


def _noop(point: str) -> None:
    return None


def execute_intent(
    fs: pafs.FileSystem, root: str, intent: CommitIntent, hook: CrashHook | None = None
) -> None:
    """Step 5, idempotent: moves, deletions, the manifest (last), then remove the staging area.

    Safe to run again after a crash at any point: a finished move or deletion is a no-op.
    """
    hook = hook or _noop
    moved_dirs: set[str] = set()
    for number, (src, dst) in enumerate(intent.moves, start=1):
        move_idempotent(fs, join(root, src), join(root, dst))
        moved_dirs.add(join(root, dst).rsplit("/", 1)[0])
        hook(f"moved:{number}")
    for number, path in enumerate(intent.deletes, start=1):
        delete_if_exists(fs, join(root, path))
        hook(f"deleted:{number}")
    # The renames must be durable before the watermark says the job is archived.
    fsync_dirs(fs, moved_dirs)
    hook("before_manifest")
    if intent.manifest:
        _write_manifest(fs, root, intent.manifest)
    remove_dir(fs, _staging(root, intent.job_id))


def _clean_temp_files(fs: pafs.FileSystem, root: str) -> None:
    """Drop half-written temp files (hidden names) left by a crash: of manifests, and of the
    key files in ``_index`` (folded_keys, recent_keys)."""
    for directory, suffix in ((MANIFEST_DIR, ""), (_KEY_FILES_DIR, ".tmp")):
        selector = pafs.FileSelector(join(root, directory), allow_not_found=True)
        for info in fs.get_file_info(selector):
            name = info.base_name
            if info.type == pafs.FileType.File and name.startswith(".") and name.endswith(suffix):
                delete_if_exists(fs, info.path)


def recover_staging(
    fs: pafs.FileSystem, root: str, hook: CrashHook | None = None, *, check: bool = True
) -> list[str]:
    """Finish or discard every staged job; returns the ids of jobs rolled forward.

    Manifest present: the job is archived, only its staging is left to remove. Intent present:
    roll forward. Neither: discard; nothing of it ever became visible, and the job is redone.
    Must run under the writer lock. Refuses (OldLayoutError) an archive this release does not
    write, unless ``check`` is False (``migrate``, finishing an earlier release's commit).
    """
    if check:
        check_layout(fs, root)
    rolled: list[str] = []
    for job_id in list_dirs(fs, join(root, STAGING_DIR)):
        if job_id.startswith("."):
            continue
        staging = _staging(root, job_id)
        if exists(fs, join(root, manifest_name(job_id))):
            log.info("recover: job %s already archived, removing its staging", job_id)
            remove_dir(fs, staging)
            continue
        intent = read_intent(fs, root, job_id)
        if intent is None:
            log.info("recover: discarding uncommitted staging of job %s", job_id)
            remove_dir(fs, staging)
            continue
        log.info("recover: rolling job %s forward", job_id)
        execute_intent(fs, root, intent, hook)
        rolled.append(job_id)
    _clean_temp_files(fs, root)
    return rolled
