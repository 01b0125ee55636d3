"""The planner's fact tables saved beside a local archive: generations of a base and layers.

A generation is one directory, `<root>/_facts/<key>/`, describing exactly one state of the
archive's source files (`key` is FACTS_VERSION and a digest of their listing,
fact_sources.sources_digest). It is written under a hidden temporary name, its manifest
`COMPLETE` last, then renamed into place whole; a directory without a manifest, or whose files
are not exactly the ones the manifest lists (size, modification time, inode), or that was
written by another version, is never read.

    COMPLETE                the manifest (JSON): version, key, layers, every file's stat
    sources.parquet         the archive files the facts describe, numbered (fid)
    merges.parquet, inboxes.parquet, topics.parquet     small tables, whole
    L0000/                  the base: customers, conversations, each contribution table
    L0001/, …               a layer per refresh: the customers and conversations it derived
                            again (`<table>.keys.parquet`: every key it replaces, rows or
                            not), the contributions of the files added, and `removed.parquet`
                            (the fids of the files gone)

A table's rows are the base's and each layer's, less those whose key a later layer replaces;
a contribution is live unless a later layer removed its file (file numbers are never reused).
A new generation hard-links the layers of the one it grew from (copies where links fail) and
adds its own; when the layers grow past a share of the base they are folded into a new base.
"""

# SQL here is built only from our own constant identifiers; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from gladly_archive.location import FACTS_DIR
from gladly_archive.writer import write_parquet_file
from retention_policies.fact_sources import CONTRIBUTIONS, Source, quote, sources_digest
from retention_policies.facts import (
    FACTS_VERSION,
    MEMORY_LIMIT,
    SAVE_BATCH_ROWS,
    Tables,
    connect,
    items_over,
)

__all__ = [
    "KEYED",
    "MANIFEST",
    "SMALL",
    "Generation",
    "attach",
    "facts_base",
    "find_generation",
    "generation_key",
    "latest_generation",
    "open_generation",
    "remove_others",
    "write_generation",
]

MANIFEST = "COMPLETE"
_FORMAT = 1
# Tables kept whole in each generation.
SMALL = ("sources", "merges", "inboxes", "topics")
# Tables whose rows later layers replace by key.
KEYED = {"customers": "customer_id", "conversations": "conversation_id"}
logger = logging.getLogger(__name__)


def facts_base(root: str | Path) -> Path:
    """Where a local archive's saved facts live."""
    return Path(root) / FACTS_DIR


def generation_key(sources: list[Source]) -> str:
    """The directory name of the generation describing exactly these files."""
    return f"v{FACTS_VERSION}-{sources_digest(sources)[:32]}"


def _layer(number: int) -> str:
    return f"L{number:04d}"


@dataclass(frozen=True)
class Generation:
    """A complete, verified generation directory and its manifest."""

    path: Path
    manifest: Mapping[str, Any]

    @property
    def key(self) -> str:
        return str(self.manifest["key"])

    @property
    def layers(self) -> list[str]:
        return [str(name) for name in self.manifest["layers"]]

    @property
    def types(self) -> dict[str, int] | None:
        types = self.manifest["types"]
        return None if types is None else {str(k): int(v) for k, v in types.items()}

    @property
    def next_fid(self) -> int:
        return int(self.manifest["next_fid"])

    @property
    def rows(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.manifest["rows"].items()}

    def file(self, relative: str) -> Path:
        return self.path / relative


def _stat(path: Path) -> list[int]:
    info = os.stat(path)
    return [info.st_size, info.st_mtime_ns, info.st_ino]


def _read(path: Path) -> Generation | None:
    """The generation at `path` if its manifest is whole, of this version, names this
    directory, and every file it lists is there exactly as listed; else None."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    try:
        if manifest.get("format") != _FORMAT or manifest.get("version") != FACTS_VERSION:
            return None
        if manifest.get("key") != path.name:
            return None
        files = manifest["files"]
        layers = manifest["layers"]
        if not layers or layers[0] != _layer(0) or not isinstance(files, dict):
            return None
        expected = set(_expected_files(layers))
        if set(files) != expected:
            return None
        for relative, stat in files.items():
            if _stat(path / relative) != list(stat):
                return None
        int(manifest["next_fid"])
        dict(manifest["rows"])
        types = manifest["types"]
        if types is not None and not isinstance(types, dict):
            return None
    except (OSError, KeyError, TypeError, ValueError, AttributeError):
        return None
    return Generation(path, manifest)


def _layer_files(layer: str, number: int) -> list[str]:
    """The files of layer `layer`, the `number`-th (the base is 0)."""
    names = [f"{layer}/{table}.parquet" for table in (*KEYED, *CONTRIBUTIONS)]
    if number:
        names += [f"{layer}/{table}.keys.parquet" for table in KEYED]
        names.append(f"{layer}/removed.parquet")
    return names


def _expected_files(layers: list[str]) -> list[str]:
    names = [f"{name}.parquet" for name in SMALL]
    for number, layer in enumerate(layers):
        names += _layer_files(layer, number)
    return names


def find_generation(base: Path, key: str) -> Generation | None:
    """The verified generation named `key`, if there is one."""
    return _read(base / key)


def latest_generation(base: Path) -> Generation | None:
    """The most recently written verified generation of this version, if any."""
    try:
        candidates = [p for p in base.iterdir() if not p.name.startswith(".") and p.is_dir()]
    except OSError:
        return None
    found = []
    for path in candidates:
        generation = _read(path)
        if generation is not None:
            found.append((os.stat(path / MANIFEST).st_mtime_ns, path.name, generation))
    return max(found, key=lambda f: (f[0], f[1]))[2] if found else None


def _files(paths: list[Path]) -> str:
    return "[" + ", ".join(quote(str(p)) for p in paths) + "]"


def attach(con: duckdb.DuckDBPyConnection, generation: Generation, prefix: str) -> None:
    """Views `<prefix><table>` over the generation's live rows: every contribution table,
    `customers`, `conversations`, and the small tables (SMALL)."""
    layers = [generation.path / name for name in generation.layers]
    for name in SMALL:
        path = quote(str(generation.path / f"{name}.parquet"))
        con.execute(f"CREATE OR REPLACE VIEW {prefix}{name} AS SELECT * FROM read_parquet({path})")
    removed = [layer / "removed.parquet" for layer in layers[1:]]
    for name in CONTRIBUTIONS:
        rows = f"read_parquet({_files([layer / f'{name}.parquet' for layer in layers])}) c"
        if removed:
            rows = f"{rows} ANTI JOIN read_parquet({_files(removed)}) r ON r.fid = c.fid"
        con.execute(f"CREATE OR REPLACE VIEW {prefix}{name} AS SELECT c.* FROM {rows}")
    for name, key in KEYED.items():
        parts = []
        for number, layer in enumerate(layers):
            rows = f"read_parquet({quote(str(layer / f'{name}.parquet'))}) t"
            later = [other / f"{name}.keys.parquet" for other in layers[number + 1 :]]
            if later:
                rows += f" ANTI JOIN read_parquet({_files(later)}) k ON k.{key} = t.{key}"
            parts.append(f"SELECT t.* FROM {rows}")
        con.execute(f"CREATE OR REPLACE VIEW {prefix}{name} AS " + " UNION ALL ".join(parts))


def open_generation(
    root: str | Path, generation: Generation, *, memory_limit: str = MEMORY_LIMIT, threads: int = 2
) -> Tables:
    """The fact tables of a generation, in memory; `items` a view over the archive."""
    con = connect(memory_limit, threads)
    try:
        attach(con, generation, "_g_")
        for name in ("customers", "conversations", "merges", "inboxes", "topics"):
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM _g_{name}")
        for name in (*SMALL, *CONTRIBUTIONS, *KEYED):
            con.execute(f"DROP VIEW _g_{name}")
        return items_over(con, root)
    except BaseException:
        con.close()
        raise


def _write(con: duckdb.DuckDBPyConnection, relation: str, path: Path) -> int:
    rows = con.sql(f"SELECT * FROM {relation}").to_arrow_reader(SAVE_BATCH_ROWS)
    return write_parquet_file(rows, path, compression="zstd")


def write_generation(
    base: Path,
    key: str,
    con: duckdb.DuckDBPyConnection,
    *,
    relations: Mapping[str, str],
    previous: Generation | None,
    types: dict[str, int] | None,
    next_fid: int,
    still_current: Callable[[], bool],
) -> Generation | None:
    """Write the generation `key` under `base` and return it (or the one another process saved
    first); None if `still_current()` says no once it is written (the archive moved while the
    facts were made: they describe no state for sure).

    `relations` names, for each file of the new layer (SMALL tables; `customers`,
    `conversations` and every contribution table; with a `previous` generation also
    `customers.keys`, `conversations.keys` and `removed`), the relation in `con` holding its
    rows. Without `previous` the layer is a new base. Raises OSError or duckdb.Error."""
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=base))
    try:
        layers: list[str] = []
        rows: dict[str, int] = {}
        if previous is not None:
            for number, layer in enumerate(previous.layers):
                (tmp / layer).mkdir()
                for relative in _layer_files(layer, number):
                    _link(previous, relative, tmp / relative)
                layers.append(layer)
                rows[layer] = previous.rows[layer]
        layer = _layer(len(layers))
        (tmp / layer).mkdir()
        names = [*KEYED, *CONTRIBUTIONS]
        if layers:
            names += [f"{table}.keys" for table in KEYED] + ["removed"]
        rows[layer] = sum(
            _write(con, relations[name], tmp / layer / f"{name}.parquet") for name in names
        )
        layers.append(layer)
        for name in SMALL:
            _write(con, relations[name], tmp / f"{name}.parquet")
        manifest = {
            "format": _FORMAT,
            "version": FACTS_VERSION,
            "key": key,
            "layers": layers,
            "rows": rows,
            "types": types,
            "next_fid": next_fid,
            "files": {relative: _stat(tmp / relative) for relative in _expected_files(layers)},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, sort_keys=True) + "\n")
        if not still_current():
            logger.info("the archive changed while its facts were made: not saved")
            return None
        try:
            os.rename(tmp, base / key)
        except OSError:  # another process saved the same state first: theirs, if it is whole
            return _read(base / key)
        return Generation(base / key, manifest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _link(previous: Generation, relative: str, target: Path) -> None:
    """Hard-link (else copy) one file of the previous generation, as its manifest lists it."""
    source = previous.file(relative)
    if _stat(source) != list(previous.manifest["files"][relative]):
        raise OSError(f"saved facts changed while being read: {relative}")
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def remove_others(base: Path, keep: str) -> None:
    """Remove every generation but `keep` (temporary directories of other writers stay)."""
    try:
        others = [p for p in base.iterdir() if p.name != keep and not p.name.startswith(".")]
    except OSError:
        return
    for other in others:
        if other.is_dir():
            shutil.rmtree(other, ignore_errors=True)
        else:
            try:
                other.unlink()
            except OSError as exc:
                logger.warning("could not remove %s: %s", other.name, exc.strerror)
