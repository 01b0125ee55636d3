"""The archive's filesystem: root resolution, atomic writes, idempotent moves, the writer lock."""

from __future__ import annotations

import contextlib
import os
import posixpath
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

__all__ = [
    "ArchiveError",
    "ArchiveLockedError",
    "MissingStagedFileError",
    "WriterLock",
    "atomic_write_bytes",
    "delete_if_exists",
    "exists",
    "fsync_dirs",
    "fsync_file",
    "join",
    "list_dirs",
    "list_files",
    "local_path",
    "move_idempotent",
    "read_bytes",
    "remove_dir",
    "replace_file",
    "resolve_root",
    "temp_name",
]


class ArchiveError(Exception):
    """Base of the archive's own errors."""


class ArchiveLockedError(ArchiveError):
    """Another live process holds the archive's writer lock."""


class MissingStagedFileError(ArchiveError):
    """A commit's move has neither its source nor its destination: the staging area is damaged."""


def resolve_root(
    root: str | os.PathLike[str], filesystem: pafs.FileSystem | None = None
) -> tuple[pafs.FileSystem, str]:
    """Turn a local path or a filesystem URI (file://, s3://, gs://, …) into (filesystem, path).

    With an explicit ``filesystem`` the root is a path inside it (used for in-memory filesystems).
    Building an S3 filesystem from a URI without ``?region=`` makes Arrow ask AWS for the bucket's
    region, so production URIs should name it.
    """
    text = os.fspath(root)
    if filesystem is not None:
        return filesystem, text.rstrip("/")
    if "://" in text:
        fs, path = pafs.FileSystem.from_uri(text)
        return fs, path.rstrip("/")
    return pafs.LocalFileSystem(), str(Path(text).expanduser().resolve())


def join(*parts: str) -> str:
    """Join path segments with '/', the separator every pyarrow filesystem uses."""
    return posixpath.join(*[p for p in parts if p])


def local_path(fs: pafs.FileSystem, path: str) -> str | None:
    """The OS path behind ``path`` when ``fs`` is the local filesystem, else None."""
    if isinstance(fs, pafs.LocalFileSystem):
        return path
    if isinstance(fs, pafs.SubTreeFileSystem) and isinstance(fs.base_fs, pafs.LocalFileSystem):
        return join(fs.base_path, path)
    return None


def temp_name(path: str) -> str:
    """A hidden sibling name for writing ``path`` before renaming it into place.

    It starts with '.' and does not end in '.parquet', so neither pyarrow datasets nor
    ``**/*.parquet`` globs of DuckDB and polars ever pick up a half-written file.
    """
    head, tail = posixpath.split(path)
    return join(head, f".{tail}.{uuid.uuid4().hex[:12]}.tmp")


def exists(fs: pafs.FileSystem, path: str) -> bool:
    """True if a file or directory exists at ``path``."""
    return bool(fs.get_file_info(path).type != pafs.FileType.NotFound)


def read_bytes(fs: pafs.FileSystem, path: str) -> bytes:
    """The whole content of a (small) file."""
    with fs.open_input_stream(path) as stream:
        return bytes(stream.read())


def fsync_file(fs: pafs.FileSystem, path: str) -> None:
    """Flush a closed file to disk on local filesystems (object stores are durable on close)."""
    os_path = local_path(fs, path)
    if os_path is None:
        return
    fd = os.open(os_path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dirs(fs: pafs.FileSystem, dirs: set[str]) -> None:
    """Make renames inside these directories durable on local filesystems."""
    for directory in sorted(dirs):
        os_path = local_path(fs, directory)
        if os_path is None or not os.path.isdir(os_path):
            continue
        fd = os.open(os_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see either nothing or the whole file."""
    parent = posixpath.dirname(path)
    fs.create_dir(parent, recursive=True)
    tmp = temp_name(path)
    with fs.open_output_stream(tmp) as out:
        out.write(data)
    fsync_file(fs, tmp)
    fs.move(tmp, path)
    fsync_dirs(fs, {parent})


def replace_file(
    fs: pafs.FileSystem,
    path: str,
    data: bytes,
    hook: Callable[[str], None] | None = None,
    point: str = "",
) -> None:
    """Write ``data`` to ``path`` whole, as ``atomic_write_bytes`` does, first removing the
    temporary files of that name a writer killed mid-write left. ``hook`` hears ``point``
    between the written temporary file and its rename (crash tests)."""
    parent, name = path.rsplit("/", 1)
    fs.create_dir(parent, recursive=True)
    for info in fs.get_file_info(pafs.FileSelector(parent, allow_not_found=True)):
        if info.base_name.startswith(f".{name}.") and info.base_name.endswith(".tmp"):
            delete_if_exists(fs, info.path)
    tmp = temp_name(path)
    with fs.open_output_stream(tmp) as out:
        out.write(data)
    fsync_file(fs, tmp)
    if hook is not None:
        hook(point)
    fs.move(tmp, path)
    fsync_dirs(fs, {parent})


def atomic_write_parquet(fs: pafs.FileSystem, path: str, table: pa.Table) -> None:
    """Write ``table`` (zstd) to ``path`` so readers see either the old file, nothing, or the
    whole new one: under a hidden temporary name, fsynced, renamed, its directory fsynced. A
    failure removes the temporary file and is raised."""
    directory = posixpath.dirname(path)
    fs.create_dir(directory, recursive=True)
    tmp = temp_name(path)
    try:
        with fs.open_output_stream(tmp) as sink:
            pq.write_table(table, sink, compression="zstd")
        fsync_file(fs, tmp)
        fs.move(tmp, path)
    except BaseException:
        if exists(fs, tmp):
            fs.delete_file(tmp)
        raise
    fsync_dirs(fs, {directory})


def move_idempotent(fs: pafs.FileSystem, src: str, dst: str) -> bool:
    """Move ``src`` to ``dst``; a move already done (source gone, destination there) is a no-op.

    Returns True if this call moved the file. Raises MissingStagedFileError if neither exists.
    """
    if exists(fs, src):
        fs.create_dir(posixpath.dirname(dst), recursive=True)
        # On object stores a move is copy + delete; redoing it after a crash between the two
        # simply copies again, which is why the source is checked first.
        fs.move(src, dst)
        return True
    if exists(fs, dst):
        return False
    raise MissingStagedFileError(f"neither the staged file nor its destination exists: {dst}")


def delete_if_exists(fs: pafs.FileSystem, path: str) -> bool:
    """Delete a file if present; returns True if this call deleted it."""
    try:
        fs.delete_file(path)
    except FileNotFoundError:
        return False
    return True


def remove_dir(fs: pafs.FileSystem, path: str) -> None:
    """Remove a directory tree if present."""
    if exists(fs, path):
        fs.delete_dir(path)


def list_files(fs: pafs.FileSystem, directory: str, *, recursive: bool = False) -> list[str]:
    """Sorted paths of the visible ``.parquet`` files in ``directory`` ([] if it is missing).

    Names starting with '.' or '_' are skipped, as pyarrow datasets skip them.
    """
    selector = pafs.FileSelector(directory, allow_not_found=True, recursive=recursive)
    found = []
    for info in fs.get_file_info(selector):
        if info.type != pafs.FileType.File or not info.base_name.endswith(".parquet"):
            continue
        relative = info.path[len(directory) :].lstrip("/")
        if any(part.startswith((".", "_")) for part in relative.split("/")):
            continue
        found.append(info.path)
    return sorted(found)


def rows_by_file(
    fs: pafs.FileSystem,
    paths: list[str],
    schema: pa.Schema,
    where: pc.Expression,
    columns: list[str],
) -> dict[str, pa.Table]:
    """The rows of ``paths`` matching ``where``, by file, for the files that hold any. Reads only
    ``columns`` (and the filter's), several files at a time."""
    if not paths:
        return {}
    dataset = ds.dataset(paths, schema=schema, format="parquet", filesystem=fs)
    found: dict[str, list[pa.RecordBatch]] = {}
    for tagged in dataset.scanner(columns=columns, filter=where).scan_batches():
        if tagged.record_batch.num_rows:
            found.setdefault(tagged.fragment.path, []).append(tagged.record_batch)
    return {path: pa.Table.from_batches(batches) for path, batches in found.items()}


def list_dirs(fs: pafs.FileSystem, directory: str) -> list[str]:
    """Sorted base names of the sub-directories of ``directory`` ([] if it is missing)."""
    selector = pafs.FileSelector(directory, allow_not_found=True)
    return sorted(
        info.base_name
        for info in fs.get_file_info(selector)
        if info.type == pafs.FileType.Directory
    )


def _pid_alive(pid: int) -> bool:
    """True if a process with this id exists (on this host)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WriterLock:
    """One writer at a time per archive: an O_EXCL lock file holding the owner's pid.

    Works on local filesystems only (the pid and O_EXCL mean nothing on an object store). For an
    archive on S3/GCS the lock is a no-op and the caller must ensure a single writer, e.g. with a
    Prefect concurrency limit. A lock left by a dead process is broken; a live owner's is an error.
    """

    def __init__(self, fs: pafs.FileSystem, path: str) -> None:
        """Prepare (not take) the lock at ``path`` on ``fs``."""
        self._os_path = local_path(fs, path)
        self._held = False

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._held

    def acquire(self) -> None:
        """Take the lock, breaking a stale one; ArchiveLockedError if a live process holds it."""
        if self._os_path is None or self._held:
            self._held = True
            return
        os.makedirs(os.path.dirname(self._os_path), exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self._os_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is None:
                    # Empty: another process is between creating the file and writing its pid.
                    raise ArchiveLockedError(
                        f"archive lock {self._os_path} names no process; if no writer is "
                        "running, delete it"
                    ) from None
                if _pid_alive(owner):
                    raise ArchiveLockedError(
                        f"archive is locked by live process {owner} ({self._os_path}); "
                        "only one writer at a time"
                    ) from None
                # A dead owner: the lock is stale. Two processes breaking the
                # same stale lock at the same instant is the one race this scheme leaves open.
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._os_path)
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(str(os.getpid()))
            self._held = True
            return
        raise ArchiveLockedError(f"could not take the archive lock {self._os_path}")

    def release(self) -> None:
        """Give the lock back (only if this object holds it)."""
        if not self._held:
            return
        self._held = False
        if self._os_path is not None and self._owner() == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._os_path)

    def _owner(self) -> int | None:
        assert self._os_path is not None
        try:
            with open(self._os_path) as handle:
                return int(handle.read().strip())
        except FileNotFoundError:
            return 0  # gone meanwhile: nothing to break, just retry
        except ValueError:
            return None
