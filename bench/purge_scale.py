"""Purging 100 customers vs rewriting the whole archive, at 10 M items: the ≤ 0.1 goal.

    .venv/bin/python bench/purge_scale.py [--items 10000000] [--customers 1000000]
        [--layout folded|recent|both|clustered] [--buckets N] [--cluster-files 8]
        [--purge 100] [--keep]

Builds (vectorised, in a child process) an archive as exports leave it, all in the recent
tier: 3 years of daily export jobs; ~4 items a conversation (5 % CUSTOMER_ACTIVITY items
without one) within a day or two of its start; ~2.5 conversations a customer at random times;
one items file per day directory written by that day's job; customers/job-<day>/ with the
customers of the day's items; transcripts built by gladly_archive.build_transcripts into
16 files of the recent tier; weekly enrichment runs (conversations/, customer_profiles/); a few
quarantined raw lines; and the customer file index with exactly the rows merge.update_index
writes (each job's rows sorted by customer, files of 2 M rows). Ids are random 22-character
URL-safe strings like Gladly's; texts are words drawn from a skewed vocabulary, and raw_json
repeats the item as JSON, so sizes and compression are those of real items. Agents, topics and
the manifest are left out (the purge never opens them).

Then, in another child: for ``folded`` (the default, the layout the export flow keeps) (f) the
archive's own fold_archive moves everything but the last month into customer buckets, as the
export run does once a month; (a) rewrites every file of the datasets a purge may touch (read
each row group, write it with the same codec, temporary name, fsync, rename: the purge's own
I/O); (b0) purges 100 unknown ids (the fixed cost: index read, enrichment and quarantine
scans); (b) purges 100 random customers, and prints b/a, the files and bytes touched per
dataset, and three DuckDB scans of items an analyst would run. ``recent`` measures the archive
never folded; ``both`` measures both in one run and prints the folded figures also as ratios to
the recent-only ones (the folded baseline has more files, so b/a alone flatters it).
``--buckets`` folds into that many buckets instead of the archive's choice (2,048 here).
``clustered`` is an earlier experiment: every recent file split into ``--cluster-files`` files
by customer.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from gladly_archive.fs import fsync_dirs, fsync_file, temp_name
from gladly_archive.layout import QUARANTINE_DIR, id_partition
from gladly_archive.schemas import (
    CONVERSATIONS,
    CUSTOMER_FILES,
    CUSTOMER_PROFILES,
    CUSTOMERS,
    ITEMS,
    QUARANTINE,
    UTC_MICROS,
)
from gladly_archive.transcripts import SOURCE_COLUMNS, build_transcripts

GOAL = 0.1
DAYS = 3 * 365
START = datetime(2022, 6, 1, tzinfo=UTC)
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
TRANSCRIPT_FILES = 16  # the transcripts a synthetic archive is built with, by conversation
ROW_GROUP = 256 * 1024
INDEX_FILE_ROWS = 2_000_000
DATASETS = (
    "items",
    "transcripts",
    "customers",
    "conversations",
    "customer_profiles",
    "_quarantine",
    "_index/customer_files",
)
TYPES = ["CHAT_MESSAGE", "EMAIL", "SMS", "PHONE_CALL", "VOICEMAIL", "CONVERSATION_NOTE"]
TYPES += ["TOPIC_CHANGE", "CONVERSATION_STATUS_CHANGE", "WHATSAPP"]
WEIGHTS = np.array([0.27, 0.21, 0.13, 0.08, 0.03, 0.07, 0.05, 0.13, 0.03])
ALPHABET = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", np.uint8
)
Ints = npt.NDArray[np.int64]


# -- building -----------------------------------------------------------------------------


def random_ids(rng: np.random.Generator, count: int) -> pa.Array:
    """Random 22-character URL-safe ids (132 random bits: unique in practice)."""
    chars = ALPHABET[rng.integers(0, 64, (count, 22), dtype=np.uint8)]
    return pa.array(np.ascontiguousarray(chars).view("S22").ravel()).cast(pa.string())


def vocabulary(rng: np.random.Generator, size: int = 20_000) -> pa.Array:
    """Pseudo-words of 2-8 letters."""
    letters = rng.integers(ord("a"), ord("z") + 1, (size, 8), dtype=np.uint8)
    lengths = rng.integers(2, 9, size)
    return pa.array([bytes(row[:n]).decode() for row, n in zip(letters, lengths, strict=True)])


def words(rng: np.random.Generator, vocab: pa.Array, count: int, low: int, high: int) -> pa.Array:
    """`count` texts of low..high-1 words, skewed to frequent words (compresses like prose)."""
    lengths = rng.integers(low, high, count)
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int32)
    picks = (rng.random(int(offsets[-1])) ** 3 * len(vocab)).astype(np.int64)
    lists = pa.ListArray.from_arrays(pa.array(offsets), pc.take(vocab, pa.array(picks)))
    return pc.binary_join(lists, " ")


def day_label(day: int) -> str:
    """The date of a day number (0 = START)."""
    return datetime.fromtimestamp(START.timestamp() + day * 86_400, UTC).date().isoformat()


def micros(offset: Ints | int) -> Any:
    """Microseconds since the epoch of an offset from START."""
    return offset + int(START.timestamp()) * 1_000_000


def full(schema: pa.Schema, columns: dict[str, Any], rows: int) -> pa.Table:
    """A table of `schema` from the given columns, nulls elsewhere."""
    return pa.table(
        {f.name: columns.get(f.name, pa.nulls(rows, f.type)) for f in schema}, schema=schema
    )


def write_cells(
    root: Path, table: pa.Table, key: Ints, name_of: Callable[[int], str]
) -> tuple[list[str], Ints]:
    """Write each key's rows (in their order) to the file `name_of(key)`, as the archive's
    writer leaves them (zstd, row groups of at most 256 k rows). Returns the paths and each
    input row's file number."""
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    ends = np.concatenate((starts[1:], [len(key)]))
    table = table.take(pa.array(order))
    file_of = np.empty(len(key), np.int64)
    paths: list[str] = []
    for start, end in zip(starts, ends, strict=True):
        path = name_of(int(ordered[start]))
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            table.slice(start, end - start),
            root / path,
            compression="zstd",
            row_group_size=ROW_GROUP,
        )
        file_of[order[start:end]] = len(paths)
        paths.append(path)
    return paths, file_of


class Builder:
    """Synthesises one archive; `cluster` > 0 splits every file by customer (the proposal).

    Its traffic spans the last `days` of the DAYS (three years, the default), so archives of
    every age end on the same day and the same next day's job fits them all."""

    def __init__(
        self, root: Path, items: int, customers: int, cluster: int, seed: int, days: int = DAYS
    ) -> None:
        if not 2 < days <= DAYS:
            raise ValueError(f"days must be 3..{DAYS}, not {days}")
        self.root, self.items, self.customers, self.cluster = root, items, customers, cluster
        self.days, self.first = days, DAYS - days
        self.cells = max(1, cluster)
        self.rng = np.random.default_rng(seed)
        self.customer_ids = random_ids(self.rng, customers)
        self.vocab = vocabulary(self.rng)
        self.index: list[pa.Table] = []

    def cell(self, customer: Ints) -> Ints:
        """A row's file within its directory: the only one, or its customer's hash cell."""
        return customer % self.cells

    def add_index(
        self, dataset: str, customer: Ints, paths: list[str], file_of: Ints, job: str | list[str]
    ) -> None:
        """The distinct (customer, file) pairs, as merge.update_index lists them."""
        pairs = np.unique(file_of * self.customers + customer)
        files = pa.array(pairs // self.customers)
        jobs = pa.array(job if isinstance(job, list) else [job] * len(paths))
        self.index.append(
            pa.table(
                {
                    "customer": pa.array(pairs % self.customers),
                    "dataset": pa.array(np.full(len(pairs), dataset)),
                    "path": pc.take(pa.array(paths), files),
                    "job": pc.take(jobs, files),
                }
            )
        )

    def build(self) -> dict[str, int]:
        rng, items = self.rng, self.items
        conversations = max(1, items // 4)
        activity = items // 20
        in_conv = items - activity
        conv_customer = rng.integers(0, self.customers, conversations)
        first = self.first * DAY_US
        conv_start = first + rng.integers(0, (self.days - 2) * DAY_US, conversations)
        item_conv = rng.integers(0, conversations, in_conv)
        # Items follow their conversation's start by hours: the same day or the next.
        offset = np.minimum(rng.exponential(3 * HOUR_US, in_conv), 40 * HOUR_US).astype(np.int64)
        conv_of = np.concatenate((item_conv, np.full(activity, -1)))
        cust_of = np.concatenate(
            (conv_customer[item_conv], rng.integers(0, self.customers, activity))
        )
        ts = np.concatenate(
            (conv_start[item_conv] + offset, first + rng.integers(0, self.days * DAY_US, activity))
        )
        kind = np.concatenate((rng.choice(len(TYPES), in_conv, p=WEIGHTS), np.full(activity, -1)))
        order = np.argsort(ts, kind="stable")
        conv_of, cust_of, ts, kind = conv_of[order], cust_of[order], ts[order], kind[order]
        self.conv_ids = random_ids(rng, conversations)
        day_of = ts // DAY_US
        sources = self.write_items(conv_of, cust_of, ts, kind, day_of)
        self.write_customers(cust_of, day_of)
        self.write_transcripts(sources, conv_of)
        del sources
        self.write_enrichment(conv_customer, conv_start, cust_of, day_of)
        self.write_quarantine()
        self.write_index()
        return {"conversations": conversations}

    def write_items(
        self, conv_of: Ints, cust_of: Ints, ts: Ints, kind: Ints, day_of: Ints
    ) -> pa.Table:
        """items/<day>/ by 32-day chunks; returns the columns transcripts are built from."""
        rng = self.rng
        bounds = np.searchsorted(day_of, np.arange(0, DAYS + 32, 32))
        types = pa.array([*TYPES, "CUSTOMER_ACTIVITY"])
        paths: list[str] = []
        file_of = np.empty(len(ts), np.int64)
        sources = []
        for lo, hi in itertools.pairwise(bounds):
            n = int(hi - lo)
            if n == 0:
                continue
            conv, cust, day = conv_of[lo:hi], cust_of[lo:hi], day_of[lo:hi]
            item_ids = random_ids(rng, n)
            conv_ids = pc.if_else(
                pa.array(conv < 0),
                pa.scalar(None, pa.string()),
                pc.take(self.conv_ids, pa.array(np.maximum(conv, 0))),
            )
            cust_ids = pc.take(self.customer_ids, pa.array(cust))
            stamp = pa.array(micros(ts[lo:hi]), UTC_MICROS)
            content = pc.take(types, pa.array(np.where(kind[lo:hi] < 0, len(TYPES), kind[lo:hi])))
            who = pa.array(np.where(rng.random(n) < 0.5, "CUSTOMER", "AGENT"))
            text = words(rng, self.vocab, n, 4, 26)
            when = pc.strftime(stamp, format="%Y-%m-%dT%H:%M:%S.000Z")
            raw = pc.binary_join_element_wise(
                '{"id":"', item_ids, '","conversationId":"', pc.fill_null(conv_ids, ""),
                '","customerId":"', cust_ids, '","timestamp":"', when, '","initiator":{"type":"',
                who, '"},"content":{"type":"', content, '","content":"', text, '"}}', "",
            )  # fmt: skip
            jobs = pa.array([f"exp-{day_label(int(d))}" for d in day])  # each day's export
            columns = {
                "item_id": item_ids,
                "conversation_id": conv_ids,
                "customer_id": cust_ids,
                "timestamp": stamp,
                "date": pc.cast(stamp, pa.date32()),
                "initiator_type": who,
                "content_type": content,
                "channel": content,  # the derived columns, roughly (never null)
                "internal": pc.equal(content, "CONVERSATION_NOTE"),
                "text": text.cast(pa.large_string()),
                "raw_json": raw.cast(pa.large_string()),
                "job_id": jobs,
                "archived_at": pa.array(micros((day + 1) * DAY_US), UTC_MICROS),
            }
            table = full(ITEMS, columns, n)
            sources.append(table.select(SOURCE_COLUMNS))

            def name(key: int) -> str:
                label = day_label(key // self.cells)
                return f"items/{label}/part-exp-{label}-{key % self.cells}.parquet"

            written, files = write_cells(self.root, table, day * self.cells + self.cell(cust), name)
            file_of[lo:hi] = files + len(paths)
            paths += written
        jobs = ["exp-" + p.split("/")[1] for p in paths]
        self.add_index("items", cust_of, paths, file_of, jobs)
        return pa.concat_tables(sources)

    def write_customers(self, cust_of: Ints, day_of: Ints) -> None:
        """customers/job-<day>/: each day's export lists the customers of its items."""
        pairs = np.unique(day_of * self.customers + cust_of)
        day, cust = pairs // self.customers, pairs % self.customers
        n = len(pairs)
        ids = pc.take(self.customer_ids, pa.array(cust))
        name = words(self.rng, self.vocab, n, 2, 3)
        number = pc.cast(pa.array(cust), pa.string())
        email = pc.binary_join_element_wise("user", number, "@example.com", "")
        phone = pc.binary_join_element_wise("+1555", number, "")
        one_each = pa.array(np.arange(n + 1, dtype=np.int32))
        raw = pc.binary_join_element_wise(
            '{"id":"', ids, '","name":"', name, '","emails":[{"original":"', email,
            '"}],"phones":[{"original":"', phone, '"}]}', "",
        )  # fmt: skip
        labels = [day_label(d) for d in range(DAYS)]
        table = full(
            CUSTOMERS,
            {
                "customer_id": ids,
                "name": name,
                "emails": pa.ListArray.from_arrays(one_each, email),
                "phones": pa.ListArray.from_arrays(one_each, phone),
                "raw_json": raw.cast(pa.large_string()),
                "job_id": pc.take(pa.array([f"exp-{x}" for x in labels]), pa.array(day)),
                "archived_at": pa.array(micros((day + 1) * DAY_US), UTC_MICROS),
            },
            n,
        )

        def name_of(key: int) -> str:
            label = labels[key // self.cells]
            directory = id_partition("customers", f"exp-{label}")
            return f"customers/{directory}/part-exp-{label}-{key % self.cells}.parquet"

        paths, file_of = write_cells(self.root, table, day * self.cells + self.cell(cust), name_of)
        jobs = [p.split("/")[1].removeprefix("job-") for p in paths]
        self.add_index("customers", cust, paths, file_of, jobs)

    def write_transcripts(self, sources: pa.Table, conv_of: Ints) -> None:
        """Today: the recent tier's directory, in 16 files by a CRC-32 of the conversation.
        Proposed: date of the conversation's first item by customer cell."""
        conv_bucket = np.array(
            [zlib.crc32(c.encode()) % TRANSCRIPT_FILES for c in self.conv_ids.to_pylist()]
        )
        item_bucket = np.where(conv_of < 0, -1, conv_bucket[np.maximum(conv_of, 0)])
        last = f"exp-{day_label(DAYS - 1)}"  # the latest commit rebuilt (and indexed) them
        built_at = datetime.fromtimestamp(micros(DAYS * DAY_US) / 1e6, UTC)
        parts = []
        for bucket in range(TRANSCRIPT_FILES):
            built = build_transcripts(sources.filter(pa.array(item_bucket == bucket)), built_at)
            cust = np.asarray(pc.index_in(built["customer_id"], value_set=self.customer_ids))
            if self.cluster:
                parts.append(built)
                continue
            path = f"transcripts/recent/part-{last}-{bucket}.parquet"
            written, file_of = write_cells(
                self.root, built, np.zeros(len(cust), np.int64), lambda _, p=path: p
            )
            self.add_index("transcripts", cust, written, file_of, last)
        if not self.cluster:
            return
        built = pa.concat_tables(parts)
        cust = np.asarray(pc.index_in(built["customer_id"], value_set=self.customer_ids))
        start = np.asarray(built["first_timestamp"].cast(pa.int64()))
        day = (start - micros(0)) // DAY_US

        def name_of(key: int) -> str:
            label = day_label(key // self.cells)
            return f"transcripts/{label}/part-{last}-{key % self.cells}.parquet"

        paths, file_of = write_cells(self.root, built, day * self.cells + self.cell(cust), name_of)
        self.add_index("transcripts", cust, paths, file_of, last)

    def write_enrichment(
        self, conv_customer: Ints, conv_start: Ints, cust_of: Ints, day_of: Ints
    ) -> None:
        """Weekly runs fetching the new conversations and the customers first seen."""
        seen, first = np.unique(cust_of, return_index=True)  # items are in time order
        for name, schema, week, cust in (
            ("conversations", CONVERSATIONS, conv_start // DAY_US // 7, conv_customer),
            ("customer_profiles", CUSTOMER_PROFILES, day_of[first] // 7, seen),
        ):
            n = len(cust)
            columns: dict[str, Any] = {
                "customer_id": pc.take(self.customer_ids, pa.array(cust)),
                "fetched_at": pa.array(micros((week * 7 + 8) * DAY_US), UTC_MICROS),
            }
            if name == "conversations":
                columns["conversation_id"] = self.conv_ids
                columns["status"] = pa.array(np.full(n, "CLOSED"))
                columns["inbox_id"] = pa.array(np.full(n, "inbox-1"))
            else:
                tier = words(self.rng, self.vocab, n, 1, 2)
                columns["custom_attributes_json"] = pc.binary_join_element_wise(
                    '{"tier":"', tier, '"}', ""
                )

            def name_of(key: int, name: str = name) -> str:
                run = f"enr-{key // self.cells:03d}"
                return f"{name}/{id_partition(name, run)}/part-{run}-{key % self.cells}.parquet"

            table = full(schema, columns, n)
            write_cells(self.root, table, week * self.cells + self.cell(cust), name_of)

    def write_quarantine(self) -> None:
        """Three unreadable lines naming random customers in each of 30 jobs."""
        for job in range(30):
            label = day_label(self.first + job * self.days // 30)
            custs = pc.take(self.customer_ids, pa.array(self.rng.integers(0, self.customers, 3)))
            lines = [
                f'{{"customerId":"{c}","content":{{"body":"cut'.encode() for c in custs.to_pylist()
            ]
            table = pa.table(
                {
                    "job_id": [f"exp-{label}"] * 3,
                    "file_name": ["conversation_items.jsonl"] * 3,
                    "line_number": [1, 2, 3],
                    "error": ["truncated line"] * 3,
                    "raw_line": pa.array(lines, pa.large_binary()),
                    "quarantined_at": pa.array([START] * 3, UTC_MICROS),
                },
                schema=QUARANTINE,
            )
            directory = id_partition(QUARANTINE_DIR, f"exp-{label}")
            path = f"_quarantine/{directory}/part-exp-{label}-0.parquet"
            write_cells(self.root, table, np.zeros(3, np.int64), lambda _, p=path: p)

    def write_index(self) -> None:
        """Rows in commit order, each commit's rows sorted by customer id (as update_index
        writes them and folding concatenates them), in files of 2 M rows."""
        rows = pa.concat_tables(self.index)
        self.index = []
        table = pa.table(
            {
                "customer_id": pc.take(self.customer_ids, rows["customer"]),
                "dataset": rows["dataset"],
                "path": rows["path"],
                "job_id": rows["job"],
            },
            schema=CUSTOMER_FILES,
        ).sort_by([("job_id", "ascending"), ("customer_id", "ascending")])
        chunk = np.arange(table.num_rows) // INDEX_FILE_ROWS
        write_cells(
            self.root, table, chunk, lambda n: f"_index/customer_files/part-exp-index-{n}.parquet"
        )


# -- measuring ----------------------------------------------------------------------------


def data_files(root: Path) -> dict[str, list[Path]]:
    """The visible Parquet files of every dataset a purge may touch."""
    return {
        name: sorted(
            p
            for p in (root / name).rglob("*.parquet")
            if not any(part.startswith((".", "_")) for part in p.relative_to(root / name).parts)
        )
        for name in DATASETS
    }


def rewrite_whole(fs: pafs.FileSystem, path: str) -> None:
    """Read and write one file as the purge does, keeping every row (the caller makes the
    renames durable, once per directory, as the purge does)."""
    tmp = temp_name(path)
    with fs.open_input_file(path) as handle, fs.open_output_stream(tmp) as sink:
        source = pq.ParquetFile(handle)
        codec = str(source.metadata.row_group(0).column(0).compression).lower()
        writer = pq.ParquetWriter(sink, source.schema_arrow, compression=codec)
        for number in range(source.num_row_groups):
            group = source.read_row_group(number)
            writer.write_table(group, row_group_size=group.num_rows)
        writer.close()
    fsync_file(fs, tmp)
    fs.move(tmp, path)


def stats(files: dict[str, list[Path]]) -> dict[str, tuple[int, int, int]]:
    """(inode, mtime, size) by path."""
    found = {}
    for paths in files.values():
        for path in paths:
            info = path.stat()
            found[str(path)] = (info.st_ino, info.st_mtime_ns, info.st_size)
    return found


def scans(root: Path, customer: str) -> dict[str, float]:
    """Three DuckDB queries an analyst runs over items, best of two runs each."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    glob = f"{root}/items/**/*.parquet"
    con.read_parquet(glob, hive_partitioning=True).create_view("items")
    middle, week = day_label(DAYS // 2), day_label(DAYS // 2 + 6)
    queries: dict[str, tuple[str, list[Any]]] = {
        "all items by type": (
            "SELECT content_type, count(*), sum(length(text)) FROM items GROUP BY 1",
            [],
        ),
        "one week": (
            "SELECT count(*), sum(length(text)) FROM items "
            "WHERE date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)",
            [middle, week],
        ),
        "one customer": (
            "SELECT count(*), max(timestamp) FROM items WHERE customer_id = ?",
            [customer],
        ),
    }
    timings = {}
    for label, (query, params) in queries.items():
        best = float("inf")
        for _ in range(2):
            started = time.perf_counter()
            con.execute(query, params).fetchall()
            best = min(best, time.perf_counter() - started)
        timings[label] = best
    return timings


def measure(root: Path, purge: int, seed: int, fold: bool, buckets: int | None) -> dict[str, Any]:
    """Child process: (fold,) baseline rewrite, scans, no-op purge, purge; one JSON line."""
    from gladly_archive import Archive, purge_customers
    from gladly_archive.fold import KEEP_DAYS, fold_archive

    archive = Archive(root)
    folded: dict[str, Any] = {}
    if fold:
        # What the export flow does once the recent tier outgrows two months; the first fold
        # of an archive that never was (as here) moves all but the last month.
        through = date.fromisoformat(day_label(DAYS - 1)) - timedelta(days=KEEP_DAYS)
        fold_report = fold_archive(archive, through, buckets=buckets)
        folded = {
            "fold_s": fold_report.seconds,
            "buckets": fold_report.buckets,
            "rows": sum(fold_report.rows_folded.values()),
            "through": through.isoformat(),
        }
    files = data_files(root)
    before = stats(files)
    index = archive.dataset("_index/customer_files").to_table(columns=["customer_id", "dataset"])
    per_customer = index.group_by(["customer_id", "dataset"]).aggregate([("dataset", "count")])
    spread = {
        name: float(
            pc.mean(per_customer.filter(pc.field("dataset") == name)["dataset_count"]).as_py()
        )
        for name in ("items", "customers", "transcripts")
    }
    customers = np.sort(pc.unique(index["customer_id"]).to_numpy(zero_copy_only=False))
    del index, per_customer
    rng = np.random.default_rng(seed + 1)
    chosen = sorted(rng.choice(customers, purge, replace=False).tolist())
    started = time.perf_counter()
    for paths in files.values():
        for path in paths:
            rewrite_whole(archive.fs, str(path))
    fsync_dirs(archive.fs, {str(p.parent) for paths in files.values() for p in paths})
    rewrite_s = time.perf_counter() - started
    timings = scans(root, chosen[0])
    before = stats(files)  # the baseline rewrote every file
    unknown = random_ids(rng, purge).to_pylist()
    noop = purge_customers(archive, unknown)
    report = purge_customers(archive, chosen)
    after = stats(data_files(root))
    touched: dict[str, list[int]] = {}
    for name, paths in files.items():
        changed = [p for p in paths if after.get(str(p), (0, 0, 0))[:2] != before[str(p)][:2]]
        touched[name] = [len(changed), sum(before[str(p)][2] for p in changed)]
    left = sum(
        pq.read_table(p, columns=["customer_id"])
        .filter(pc.is_in(pc.field("customer_id"), pa.array(chosen)))
        .num_rows
        for name in DATASETS
        if name != "_quarantine"
        for p in data_files(root)[name]
    )
    return {
        "files": {name: len(paths) for name, paths in files.items()},
        "bytes": {name: sum(before[str(p)][2] for p in paths) for name, paths in files.items()},
        "spread": spread,
        "rewrite_s": rewrite_s,
        "noop_s": noop.seconds,
        "purge_s": report.seconds,
        "touched": touched,
        "rows_removed": report.rows_removed,
        "files_scanned": report.files_scanned,
        "not_purged": report.not_purged,
        "left": left,
        "scans": timings,
        "fold": folded,
    }


def child(args: list[str]) -> str:
    """Run this script in a child process; its last line of output."""
    out = subprocess.run([sys.executable, __file__, *args], check=True, stdout=subprocess.PIPE)
    return out.stdout.decode().strip().splitlines()[-1]


def megabytes(count: int) -> str:
    return f"{count / 2**20:,.0f} MB"


def show(
    label: str, built: dict[str, Any], result: dict[str, Any], current: dict[str, Any] | None
) -> None:
    """Print one layout's figures, as ratios to the baseline measured in the same run (and,
    for the proposed layout, to the current layout's figures of this run)."""
    rewrite, purge, noop = result["rewrite_s"], result["purge_s"], result["noop_s"]
    total_files = sum(result["files"].values())
    total_bytes = sum(result["bytes"].values())
    listing = ", ".join(
        f"{name} {result['files'][name]:,} ({megabytes(result['bytes'][name])})"
        for name in DATASETS
    )
    print(
        f"\n== {label}: {built['items']:,} items, {built['customers']:,} customers, "
        f"{built['conversations']:,} conversations, built in {built['seconds']:.0f} s"
    )
    print(f"   files: {listing}")
    spread = ", ".join(f"{k} {v:.2f}" for k, v in result["spread"].items())
    print(f"   files holding one customer's rows, on average: {spread}")
    if result["fold"]:
        fold = result["fold"]
        print(
            f"   (f) fold through {fold['through']} into {fold['buckets']:,} customer buckets: "
            f"{fold['fold_s']:.1f} s for {fold['rows']:,} rows (paid once a month)"
        )
    print(
        f"   (a) rewrite whole archive: {rewrite:.1f} s "
        f"({total_files:,} files, {megabytes(total_bytes)})"
    )
    verdict = "met" if purge / rewrite <= GOAL else "NOT met"
    print(
        f"   (b) purge {built['purge']} customers: {purge:.1f} s "
        f"= {purge / rewrite:.3f} x (a)   goal <= {GOAL}: {verdict}"
    )
    print(
        f"       of which fixed (purge of {built['purge']} unknown ids): {noop:.1f} s "
        f"= {noop / rewrite:.3f} x (a)"
    )
    if current is not None:
        print(
            f"       against the recent-only layout of this run: (a) x "
            f"{rewrite / current['rewrite_s']:.2f}, (b) x {purge / current['purge_s']:.2f}; "
            f"(b) = {purge / current['rewrite_s']:.3f} x the recent-only layout's (a)"
        )
    touched_bytes = sum(t[1] for t in result["touched"].values())
    parts = [
        f"{name} {result['touched'][name][0]:,}/{result['files'][name]:,} files "
        f"({100 * result['touched'][name][1] / max(1, result['bytes'][name]):.1f} % of bytes)"
        for name in DATASETS
    ]
    print("       touched: " + "; ".join(parts))
    print(
        f"       bytes rewritten: {100 * touched_bytes / total_bytes:.1f} % of the archive; "
        f"files scanned {result['files_scanned']:,}; rows of the customers left: {result['left']}"
    )
    removed = ", ".join(f"{k} {v:,}" for k, v in result["rows_removed"].items())
    print(f"       rows removed: {removed}")
    timings = ", ".join(
        f"{k} {v:.2f} s" + (f" ({v / current['scans'][k]:.2f} x recent-only)" if current else "")
        for k, v in result["scans"].items()
    )
    print(f"   analyst scans of items (DuckDB, 2 threads): {timings}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--layout", choices=["folded", "recent", "clustered", "both"], default="folded"
    )
    parser.add_argument("--cluster-files", type=int, default=8)
    parser.add_argument("--purge", type=int, default=100)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--build")
    parser.add_argument("--measure")
    parser.add_argument("--cluster", type=int, default=0)
    parser.add_argument("--fold", action="store_true")
    parser.add_argument(
        "--buckets", type=int, help="fold into this many buckets (default: the archive's choice)"
    )
    args = parser.parse_args()
    if args.build:
        builder = Builder(Path(args.build), args.items, args.customers, args.cluster, args.seed)
        print(json.dumps(builder.build()))
        return
    if args.measure:
        measured = measure(Path(args.measure), args.purge, args.seed, args.fold, args.buckets)
        print(json.dumps(measured))
        return
    layouts = ["recent", "folded"] if args.layout == "both" else [args.layout]
    current: dict[str, Any] | None = None
    for layout in layouts:
        cluster = args.cluster_files if layout == "clustered" else 0
        root = Path(tempfile.mkdtemp(prefix=f"purge_scale_{layout}_"))
        try:
            started = time.perf_counter()
            sizes = ["--items", str(args.items), "--customers", str(args.customers)]
            extra = ["--cluster", str(cluster), "--seed", str(args.seed)]
            built = json.loads(child(["--build", str(root), *sizes, *extra]))
            built.update(
                items=args.items,
                customers=args.customers,
                purge=args.purge,
                seconds=time.perf_counter() - started,
            )
            measuring = ["--measure", str(root), "--purge", str(args.purge)]
            measuring += ["--seed", str(args.seed)] + (["--fold"] if layout == "folded" else [])
            measuring += ["--buckets", str(args.buckets)] if args.buckets else []
            result = json.loads(child(measuring))
            label = {
                "recent": "recent-only layout (never folded)",
                "folded": "folded layout (the last month recent, older rows in customer buckets)",
                "clustered": f"clustered experiment ({cluster} files a directory)",
            }[layout]
            show(label, built, result, current)
            if layout == "recent":
                current = result
        finally:
            if args.keep:
                print(f"   kept {root}")
            else:
                shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
