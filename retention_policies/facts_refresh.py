"""Bring the saved fact tables up to the archive's files: from the last generation when it can
be done exactly, else by a full build.

The last generation (retention_policies.facts_store) lists the files it describes and keeps
every file's contributions (retention_policies.fact_sources). Against the archive's files now:

1. the files gone are known by their numbers and those added are read, nothing else of the
   archive; the contributions that changed are those of the files gone less those of the files
   added and the other way round (a file rewritten with the same rows changes none);
2. the conversations to derive again are those named by a changed contribution, those of a
   customer whose profile or merge changed; the customers those named by a changed contribution,
   their merge targets before and after, a changed merge's source, the customers of the
   conversations derived again before and after;
3. those rows are derived from the contributions of every live file (fact_derive), exactly as a
   full build derives them, and saved as a new layer over the old generation's.

A row outside those sets depends on nothing that changed, so it is what a full build would give
(fact_derive's module doc says what each row depends on). Anything unexpected falls back to a
full build: no verified generation of this version, most files changed, more content types than
a mask holds, a customer without an id among the changes, an error of any kind while reading or
deriving. A generation is saved only if the archive's files are still those listed when the
refresh began (commits replace files by rename, so a file read is the file listed).
"""

# SQL here is built only from our own constant identifiers; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import pyarrow as pa

from retention_policies.fact_derive import (
    conversation_core,
    customers,
    finish_conversations,
    profiles,
    resolve_merges,
)
from retention_policies.fact_sources import (
    CONTRIBUTIONS,
    MAX_MASKED_TYPES,
    Source,
    content_types,
    contribute,
    list_sources,
    sources_table,
)
from retention_policies.facts import (
    FACTS_PHASE,
    Progress,
    Tables,
    build_tables,
    built_contribution,
    connect,
    contribution_inputs,
    drop_contributions,
    lookup,
)
from retention_policies.facts_store import (
    KEYED,
    Generation,
    attach,
    facts_base,
    find_generation,
    generation_key,
    latest_generation,
    remove_others,
    write_generation,
)

__all__ = [
    "MAX_CHANGED_SHARE",
    "MAX_LAYERS",
    "MAX_LAYER_SHARE",
    "SAVE_PHASE",
    "Refreshed",
    "refresh",
]

# The phase of saving fact tables beside the archive (0 of 1, then 1 of 1).
SAVE_PHASE = "saving facts"
# A refresh from the last generation is tried while at most this share of the files changed.
MAX_CHANGED_SHARE = 0.5
# The layers are folded into a new base past this many, or past this share of the base's rows.
MAX_LAYERS = 16
MAX_LAYER_SHARE = 0.25
_STEPS = 4
logger = logging.getLogger(__name__)


class _Fallback(Exception):
    """The last generation cannot be carried forward exactly: build in full."""


@dataclass
class Refreshed:
    """What a refresh did: `mode` "current" (the saved generation already described the
    archive), "incremental" or "full"; `reason` why not incremental; the generation now saved
    (None if none could be); the full build's tables when the caller asked to keep them."""

    mode: str
    reason: str = ""
    generation: Generation | None = None
    tables: Tables | None = None
    seconds: float = 0.0


def refresh(
    root: str | Path,
    *,
    progress: Progress | None = None,
    keep_tables: bool = False,
    sources: list[Source] | None = None,
) -> Refreshed:
    """Save a generation describing the archive at `root` (a local path) now, unless one does.

    `sources` is the listing just taken, if the caller has one. `keep_tables`: a full build's
    tables are handed back (Refreshed.tables) instead of closed."""
    started = time.perf_counter()
    base = facts_base(root)
    if sources is None:
        sources = list_sources(root)
    key = generation_key(sources)
    current = find_generation(base, key)
    if current is not None:
        return Refreshed("current", generation=current, seconds=time.perf_counter() - started)
    previous = latest_generation(base)
    reason = "no saved facts of this version"
    if previous is not None:
        heard: dict[str, tuple[int, int]] = {}

        def tracked(phase: str, done: int, total: int) -> None:
            heard[phase] = (done, total)
            if progress is not None:
                progress(phase, done, total)

        try:
            generation = _incremental(Path(root), base, previous, sources, key, tracked)
        except Exception as exc:  # whatever went wrong, a full build is right
            if isinstance(exc, _Fallback):
                reason = str(exc)
            else:
                # Where it failed, not what it said: an error's message may quote a value
                # read from the archive (a name, an address), and logs hold none.
                where = traceback.extract_tb(exc.__traceback__)[-1]
                reason = f"{type(exc).__name__} while refreshing"
                logger.warning(
                    "saved facts could not be refreshed (%s at %s:%s): building them anew",
                    reason,
                    Path(where.filename).name,
                    where.lineno,
                )
            # A display's bars end before the full build's begin.
            for phase, (done, total) in heard.items():
                if done < total:
                    tracked(phase, total, total)
        else:
            if generation is not None:
                remove_others(base, generation.key)
            return Refreshed(
                "incremental", generation=generation, seconds=time.perf_counter() - started
            )
    logger.info("building the fact tables in full: %s", reason)
    tables, generation = _full(Path(root), base, sources, key, progress)
    if not keep_tables:
        tables.con.close()
    return Refreshed(
        "full",
        reason=reason,
        generation=generation,
        tables=tables if keep_tables else None,
        seconds=time.perf_counter() - started,
    )


def _still(root: Path, sources: list[Source]) -> Callable[[], bool]:
    return lambda: list_sources(root) == sources


def _full(
    root: Path, base: Path, sources: list[Source], key: str, progress: Progress | None
) -> tuple[Tables, Generation | None]:
    tables, built = build_tables(root, sources, progress=progress)
    con = tables.con
    generation = None
    if progress is not None:
        progress(SAVE_PHASE, 0, 1)
    try:
        con.register("_sources_arrow", sources_table(list(enumerate(sources))))
        relations = {name: built_contribution(name) for name in CONTRIBUTIONS}
        relations.update(
            customers="customers",
            conversations="conversations",
            sources="_sources_arrow",
            merges="merges",
            inboxes="inboxes",
            topics="topics",
        )
        generation = write_generation(
            base,
            key,
            con,
            relations=relations,
            previous=None,
            types=built.types,
            next_fid=len(sources),
            still_current=_still(root, sources),
        )
        con.unregister("_sources_arrow")
    except (OSError, duckdb.Error, pa.ArrowException) as exc:
        # A cache that cannot be written costs time, never correctness.
        logger.warning("could not save the planner's fact tables: %s", type(exc).__name__)
    finally:
        drop_contributions(con)
    if generation is not None:
        remove_others(base, generation.key)
    if progress is not None:
        progress(SAVE_PHASE, 1, 1)
    return tables, generation


def _incremental(
    root: Path,
    base: Path,
    previous: Generation,
    sources: list[Source],
    key: str,
    progress: Progress,
) -> Generation | None:
    def step(done: int) -> None:
        progress(FACTS_PHASE, done, _STEPS)

    step(0)
    con = connect()
    try:
        attach(con, previous, "o_")
        added, removed, numbered, next_fid = _diff(con, previous, sources)
        if len(added) + len(removed) > MAX_CHANGED_SHARE * max(1, len(sources)):
            raise _Fallback("most of the archive's files changed")
        types = _types(con, root, previous.types, added)
        contribute(con, root, added, "a_", types)
        _changes(con, removed)
        step(1)
        _affected(con)
        step(2)
        # The items' contributions of what is derived again, read once (the largest table).
        _subset(con)
        inputs = replace(contribution_inputs("n_", "n_merges", types), cc="s_cc")
        conversation_core(con, inputs, "_kc", "_core")
        known = _count(con, "_ku")
        con.execute(
            """CREATE OR REPLACE TEMP TABLE _ku AS SELECT DISTINCT customer_id FROM (
                SELECT customer_id FROM _ku UNION ALL SELECT customer_id FROM _core)"""
        )
        if _count(con, "_ku WHERE customer_id IS NULL"):
            raise _Fallback("a customer without an id changed")
        if _count(con, "_ku") != known:  # conversations moved to customers not read yet
            _subset(con)
        profiles(con, inputs, "_ku", "_prof")
        finish_conversations(con, "_core", "_prof", "_conv", temp=True)
        con.execute(
            """CREATE TEMP VIEW _cv AS SELECT customer_id, status FROM o_conversations
            WHERE customer_id IN (SELECT * FROM _ku) AND conversation_id NOT IN (SELECT * FROM _kc)
            UNION ALL SELECT customer_id, status FROM _conv"""
        )
        customers(con, inputs, "_ku", "_cv", "_prof", "_cust", temp=True)
        changed = {s.dataset for _, s in added} | set(removed.values())
        for name in ("inboxes", "topics"):
            if name in changed:
                files = [str(root / s.path) for s in sources if s.dataset == name]
                lookup(con, name, files, out=f"n_{name}")
            else:
                con.execute(f"CREATE TEMP TABLE n_{name} AS SELECT * FROM o_{name}")
        step(3)
        con.register("_sources_arrow", sources_table(numbered))
        step(4)
        progress(SAVE_PHASE, 0, 1)
        relations = {
            "sources": "_sources_arrow",
            "merges": "n_merges",
            "inboxes": "n_inboxes",
            "topics": "n_topics",
        }
        if _compact(con, previous):
            relations.update({name: f"n_{name}" for name in CONTRIBUTIONS})
            for name, column in KEYED.items():
                new, keys = ("_cust", "_ku") if name == "customers" else ("_conv", "_kc")
                relations[name] = (
                    f"(SELECT o.* FROM o_{name} o ANTI JOIN {keys} k ON k.{column} = o.{column}"
                    f" UNION ALL SELECT * FROM {new})"
                )
            after = None
        else:
            relations.update({name: f"a_{name}" for name in CONTRIBUTIONS})
            relations.update(
                {
                    "customers": "_cust",
                    "customers.keys": "_ku",
                    "conversations": "_conv",
                    "conversations.keys": "_kc",
                    "removed": "_removed",
                }
            )
            after = previous
        generation = write_generation(
            base,
            key,
            con,
            relations=relations,
            previous=after,
            types=types,
            next_fid=next_fid,
            still_current=_still(root, sources),
        )
        progress(SAVE_PHASE, 1, 1)
        return generation
    finally:
        con.close()


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    """Rows of `relation` (a name, or a name and a WHERE clause)."""
    return int(con.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0])


_IDENTITY = ("dataset", "path", "size", "mtime_ns", "ctime_ns", "inode")


def _diff(
    con: duckdb.DuckDBPyConnection, previous: Generation, sources: list[Source]
) -> tuple[list[tuple[int, Source]], dict[int, str], list[tuple[int, Source]], int]:
    """(files added with their new numbers, {number: dataset} of the files gone, every file
    now with its number, the next free number); table `_removed` (fid)."""
    cols = ", ".join(_IDENTITY)
    old = {
        Source(*row[1:]): int(row[0])
        for row in con.execute(f"SELECT fid, {cols} FROM o_sources").fetchall()
    }
    if len(old) != _count(con, "(SELECT DISTINCT fid FROM o_sources)"):
        raise _Fallback("the saved facts list a file twice")
    next_fid = previous.next_fid
    if old and max(old.values()) >= next_fid:
        raise _Fallback("the saved facts' file numbers are inconsistent")
    now = set(sources)
    gone = {(s.path, s.inode) for s in old if s not in now}
    if any((s.path, s.inode) in gone for s in sources if s not in old):
        # The archive never writes a file in place (a rewrite is a new file renamed over the
        # old one): someone else changed it, and may have changed more than we can see.
        raise _Fallback("a file of the archive was changed in place")
    removed = {fid: s.dataset for s, fid in old.items() if s not in now}
    numbered: list[tuple[int, Source]] = []
    added: list[tuple[int, Source]] = []
    for source in sources:
        fid = old.get(source)
        if fid is None:
            fid = next_fid
            next_fid += 1
            added.append((fid, source))
        numbered.append((fid, source))
    con.register("_removed_arrow", pa.table({"fid": pa.array(sorted(removed), pa.int64())}))
    con.execute("CREATE TEMP TABLE _removed AS SELECT * FROM _removed_arrow")
    con.unregister("_removed_arrow")
    return added, removed, numbered, next_fid


def _types(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    types: dict[str, int] | None,
    added: list[tuple[int, Source]],
) -> dict[str, int] | None:
    """The content types' bits, grown by the types the added items carry (bits never move)."""
    if types is None:
        return None
    found = content_types(con, root, [s.path for _, s in added if s.dataset == "items"])
    new = sorted(found - set(types))
    if len(types) + len(new) > MAX_MASKED_TYPES:
        raise _Fallback("more content types than a mask holds")
    return {**types, **{t: len(types) + n for n, t in enumerate(new)}}


def _changes(con: duckdb.DuckDBPyConnection, removed: dict[int, str]) -> None:
    """Per contribution table: `n_<t>` (every live file's rows now) and `d_<t>` (the rows that
    changed: the removed files' less the added files', and the other way round)."""
    for name in CONTRIBUTIONS:
        columns = ", ".join(
            c.split()[0] for c in CONTRIBUTIONS[name].split(", ") if not c.startswith("fid ")
        )
        con.execute(
            f"""CREATE TEMP VIEW n_{name} AS
            SELECT o.* FROM o_{name} o ANTI JOIN _removed r ON r.fid = o.fid
            UNION ALL SELECT * FROM a_{name}"""
        )
        if removed:
            con.execute(
                f"""CREATE TEMP TABLE r_{name} AS
                SELECT o.* FROM o_{name} o SEMI JOIN _removed r ON r.fid = o.fid"""
            )
        else:
            con.execute(f"CREATE TEMP TABLE r_{name} AS SELECT * FROM a_{name} LIMIT 0")
        con.execute(
            f"""CREATE TEMP TABLE d_{name} AS
            (SELECT {columns} FROM r_{name} EXCEPT ALL SELECT {columns} FROM a_{name})
            UNION ALL
            (SELECT {columns} FROM a_{name} EXCEPT ALL SELECT {columns} FROM r_{name})"""
        )
    resolve_merges(con, "n_mg", "n_merges")


def _affected(con: duckdb.DuckDBPyConnection) -> None:
    """Tables `_kc` (conversation_id) and `_ku` (customer_id): what to derive again (the
    customers of the conversations derived again are added once they are derived)."""
    con.execute(
        """CREATE TEMP TABLE _sm AS SELECT DISTINCT source_id AS customer_id FROM (
            (SELECT * FROM n_merges EXCEPT SELECT * FROM o_merges)
            UNION ALL (SELECT * FROM o_merges EXCEPT SELECT * FROM n_merges))"""
    )
    con.execute("CREATE TEMP TABLE _paff AS SELECT DISTINCT customer_id FROM d_pr")
    parts = [f"SELECT conversation_id FROM d_{name}" for name in ("cc", "st", "tp", "en")]
    if _count(con, "_sm"):
        parts.append("SELECT conversation_id FROM n_cc WHERE customer_id IN (SELECT * FROM _sm)")
    if _count(con, "_paff"):
        parts.append(
            "SELECT conversation_id FROM o_conversations WHERE customer_id IN (SELECT * FROM _paff)"
        )
    con.execute(
        "CREATE TEMP TABLE _kc AS SELECT DISTINCT conversation_id FROM ("
        + " UNION ALL ".join(parts)
        + ") WHERE conversation_id IS NOT NULL"
    )
    con.execute(
        """CREATE TEMP TABLE _raw AS SELECT DISTINCT customer_id FROM (
            SELECT customer_id FROM d_cc UNION ALL SELECT customer_id FROM d_cu
            UNION ALL SELECT customer_id FROM d_en
            UNION ALL SELECT customer_id FROM _paff UNION ALL SELECT customer_id FROM _sm)"""
    )
    con.execute(
        """CREATE TEMP TABLE _ku AS SELECT DISTINCT customer_id FROM (
            SELECT customer_id FROM _raw
            UNION ALL SELECT m.into_id FROM o_merges m
                SEMI JOIN _raw r ON r.customer_id = m.source_id
            UNION ALL SELECT m.into_id FROM n_merges m
                SEMI JOIN _raw r ON r.customer_id = m.source_id
            UNION ALL SELECT customer_id FROM o_conversations
                WHERE conversation_id IN (SELECT * FROM _kc))"""
    )


def _subset(con: duckdb.DuckDBPyConnection) -> None:
    """Table `s_cc`: every live item contribution of the conversations in `_kc` and of the
    customer ids that are, or are merged into, the customers in `_ku`."""
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _pre AS SELECT customer_id FROM _ku
        UNION SELECT source_id FROM n_merges WHERE into_id IN (SELECT * FROM _ku)"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE s_cc AS SELECT * FROM n_cc
        WHERE conversation_id IN (SELECT * FROM _kc) OR customer_id IN (SELECT * FROM _pre)"""
    )


def _compact(con: duckdb.DuckDBPyConnection, previous: Generation) -> bool:
    """Whether the layers, with the one this refresh adds, are due to fold into a new base."""
    if len(previous.layers) >= MAX_LAYERS:
        return True
    rows = previous.rows
    layered = sum(rows[name] for name in previous.layers[1:])
    for relation in (
        "_cust",
        "_ku",
        "_conv",
        "_kc",
        "_removed",
        *(f"a_{n}" for n in CONTRIBUTIONS),
    ):
        layered += _count(con, relation)
    return layered > MAX_LAYER_SHARE * max(1, rows[previous.layers[0]])
