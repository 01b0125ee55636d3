"""DatasetWriter: bounded row groups, size rotation, temp then rename, partitions, schema checks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from gladly_archive.schemas import ITEMS, SCHEMA_VERSION
from gladly_archive.writer import DatasetWriter, SchemaMismatchError, WrittenFile, date_partitions
from tests.gladly_archive.test_archive import T0, item, items_table


def _items(count: int, *, start: datetime = T0, step: timedelta = timedelta(minutes=1)) -> pa.Table:
    return items_table(
        [item(f"i{n:05d}", f"c{n % 7}", f"u{n % 3}", start + step * n) for n in range(count)]
    )


def _writer(tmp_path: Path, **kw: object) -> DatasetWriter:
    return DatasetWriter(
        pafs.LocalFileSystem(),
        str(tmp_path / "items"),
        "items",
        ITEMS,
        file_prefix="part-J1",
        **kw,  # type: ignore[arg-type]
    )


def _parquet_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.parquet"))


def test_each_batch_is_one_row_group_and_big_batches_are_split(tmp_path: Path) -> None:
    table = _items(250)
    with _writer(tmp_path, max_row_group_rows=100) as writer:
        writer.write_batches(table.slice(0, 30).to_batches())  # a small batch: one row group
        writer.write_batches(table.slice(30).to_batches())  # 220 rows: split 100 + 100 + 20
    (path,) = _parquet_files(tmp_path)
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(n).num_rows for n in range(meta.num_row_groups)] == [30, 100, 100, 20]
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert pq.read_table(path)["item_id"].to_pylist() == table["item_id"].to_pylist()


def test_files_rotate_past_the_size_threshold(tmp_path: Path) -> None:
    table = _items(400)
    with _writer(tmp_path, max_file_bytes=1) as writer:
        for batch in table.to_batches(max_chunksize=100):
            writer.write_batch(batch)
    files = _parquet_files(tmp_path)
    assert [p.name for p in files] == [f"part-J1-{n}.parquet" for n in range(4)]
    assert [w.rows for w in writer.written] == [100, 100, 100, 100]
    assert sum(pq.read_metadata(p).num_rows for p in files) == 400


def test_files_are_invisible_until_closed_then_renamed(tmp_path: Path) -> None:
    writer = _writer(tmp_path, partition_by_date="timestamp", min_row_group_rows=1)
    writer.write_batches(_items(10).to_batches())
    directory = tmp_path / "items"
    assert _parquet_files(tmp_path) == []
    hidden = [p.name for p in directory.rglob("*") if p.is_file()]
    assert len(hidden) == 1
    assert hidden[0].startswith(".")
    assert hidden[0].endswith(".tmp")
    written = writer.close()
    assert [p.name for p in _parquet_files(tmp_path)] == ["part-J1-0.parquet"]
    assert [p for p in directory.rglob(".*") if p.is_file()] == []
    assert written == [
        WrittenFile(
            str(directory / "2025-03-01" / "part-J1-0.parquet"),
            "2025-03-01",
            10,
            (directory / "2025-03-01" / "part-J1-0.parquet").stat().st_size,
        )
    ]


def test_an_error_discards_the_half_written_file(tmp_path: Path) -> None:
    def batches() -> object:
        yield from _items(5).to_batches()
        raise RuntimeError("download broke")

    with pytest.raises(RuntimeError), _writer(tmp_path) as writer:
        writer.write_batches(batches())  # type: ignore[arg-type]
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_items_are_partitioned_by_their_utc_date(tmp_path: Path) -> None:
    # 23:30 at UTC-05:00 is already the next day in UTC.
    late = datetime(2025, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    rows = [
        item("a", "c1", "u1", datetime(2025, 3, 2, 9, tzinfo=UTC)),
        item("b", "c1", "u1", late),
        item("c", "c1", "u1", datetime(2025, 3, 1, 0, 0, tzinfo=UTC)),
        item("d", "c1", "u1", datetime(2025, 3, 2, 23, 59, 59, 999999, tzinfo=UTC)),
    ]
    with _writer(tmp_path, partition_by_date="timestamp") as writer:
        writer.write_batches(items_table(rows).to_batches())
    got = {p.parent.name: pq.read_table(p)["item_id"].to_pylist() for p in _parquet_files(tmp_path)}
    # Rows keep their order within a partition.
    assert got == {"2025-03-01": ["c"], "2025-03-02": ["a", "b", "d"]}


def test_date_partitions_splits_without_reordering() -> None:
    table = _items(6, step=timedelta(hours=10))
    batch = table.to_batches()[0].take(pa.array([5, 0, 3, 1, 4, 2]))
    parts = [(p, b["item_id"].to_pylist()) for p, b in date_partitions(batch, "timestamp")]
    assert parts == [
        ("2025-03-01", ["i00000", "i00001"]),
        ("2025-03-02", ["i00003", "i00002"]),
        ("2025-03-03", ["i00005", "i00004"]),
    ]


def test_small_date_slices_are_gathered_and_open_files_are_bounded(tmp_path: Path) -> None:
    table = _items(300, step=timedelta(hours=5))  # about 63 dates, 4-5 rows each
    with _writer(
        tmp_path, partition_by_date="timestamp", max_open_files=3, min_row_group_rows=1000
    ) as writer:
        for batch in table.to_batches(max_chunksize=7):
            writer.write_batch(batch)
    files = _parquet_files(tmp_path)
    assert len({p.parent.name for p in files}) == 63
    assert len(files) == 63  # gathered until close, so one file and one row group per date
    assert all(pq.read_metadata(p).num_row_groups == 1 for p in files)
    rows = sorted(i for p in files for i in pq.read_table(p)["item_id"].to_pylist())
    assert rows == table["item_id"].to_pylist()


def test_files_carry_the_schema_and_its_version(tmp_path: Path) -> None:
    with _writer(tmp_path) as writer:
        writer.write_batches(_items(3).to_batches())
    (path,) = _parquet_files(tmp_path)
    schema = pq.read_schema(path)
    assert schema.equals(ITEMS)
    assert schema.metadata[b"gladly_pipeline.dataset"] == b"items"
    assert schema.metadata[b"gladly_pipeline.schema_version"] == str(SCHEMA_VERSION).encode()


def test_free_text_columns_have_no_dictionary_or_statistics_and_ids_keep_theirs(
    tmp_path: Path,
) -> None:
    with _writer(tmp_path) as writer:
        writer.write_batches(_items(40).to_batches())
    (path,) = _parquet_files(tmp_path)
    group = pq.ParquetFile(path).metadata.row_group(0)
    columns = {group.column(n).path_in_schema: group.column(n) for n in range(group.num_columns)}
    for name in ("raw_json", "text"):
        assert not columns[name].is_stats_set, name
        assert "PLAIN_DICTIONARY" not in columns[name].encodings, name
        assert "RLE_DICTIONARY" not in columns[name].encodings, name
    for name in ("item_id", "conversation_id", "timestamp"):
        assert columns[name].is_stats_set, name
    assert columns["customer_id"].statistics.min == "u0"
    assert set(columns["conversation_id"].encodings) & {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop_columns(["subject"]), r"items: .*missing columns \['subject'\]"),
        (
            lambda t: t.append_column("extra", pa.array([1] * t.num_rows)),
            r"unexpected columns \['extra'\]",
        ),
        (
            lambda t: t.set_column(
                t.schema.get_field_index("recording_duration_seconds"),
                pa.field("recording_duration_seconds", pa.int32()),
                pa.array([None] * t.num_rows, pa.int32()),
            ),
            r"changed columns \['recording_duration_seconds \(expected int64, got int32\)'\]",
        ),
        (
            lambda t: t.cast(
                pa.schema([f.with_nullable(True) if f.name == "item_id" else f for f in ITEMS])
            ),
            r"item_id \(expected string not null, got string\)",
        ),
        (
            lambda t: t.select([ITEMS.names[1], ITEMS.names[0], *ITEMS.names[2:]]),
            "column order differs",
        ),
    ],
)
def test_a_batch_with_another_schema_is_refused_naming_the_columns(
    tmp_path: Path, change: object, message: str
) -> None:
    table = change(_items(2))  # type: ignore[operator]
    writer = _writer(tmp_path)
    with pytest.raises(SchemaMismatchError, match=message):
        writer.write_batches(table.to_batches())


def test_nulls_in_a_required_column_are_refused(tmp_path: Path) -> None:
    table = _items(3)
    raw = pa.array(["{}", None, "{}"], pa.large_string())
    broken = pa.RecordBatch.from_arrays(
        [raw if name == "raw_json" else table[name].combine_chunks() for name in ITEMS.names],
        schema=ITEMS,
    )
    with pytest.raises(SchemaMismatchError, match=r"items: required column raw_json has 1 null"):
        _writer(tmp_path).write_batch(broken)


def test_kept_columns_are_each_files_own_values_in_row_order(tmp_path: Path) -> None:
    rows = [
        item(f"i{n}", None if n % 5 == 0 else f"c{n % 7}", f"u{n % 3}", T0 + timedelta(hours=n))
        for n in range(60)
    ]
    writer = _writer(
        tmp_path,
        partition_by_date="timestamp",
        min_row_group_rows=1,
        max_file_bytes=1,  # a file a row group: the kept values follow each rotation
        keep_columns=("item_id", "conversation_id", "no_such_column"),
        keep_distinct=("conversation_id", "customer_id", "no_such_column"),
    )
    writer.write_batches(items_table(rows).to_batches(max_chunksize=9))
    written = writer.close()
    assert len(written) > 3
    for file in written:
        on_disk = pq.read_table(file.path)
        assert set(file.columns) == {"item_id", "conversation_id"}
        for name, kept in file.columns.items():
            assert kept.type == ITEMS.field(name).type
            assert kept.to_pylist() == on_disk[name].to_pylist(), (file.path, name)
        assert set(file.distinct) == {"conversation_id", "customer_id"}
        for name, values in file.distinct.items():
            assert values.type == ITEMS.field(name).type
            expected = {v for v in on_disk[name].to_pylist() if v is not None}
            assert sorted(values.to_pylist()) == sorted(expected), (file.path, name)
    assert sum(len(f.columns["item_id"]) for f in written) == 60


def test_no_columns_are_kept_unless_asked(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.write_batches(_items(10).to_batches())
    (written,) = writer.close()
    assert written.columns == {}
    assert written.distinct == {}


def test_rows_waiting_for_their_day_do_not_hold_the_batches_they_came_from(
    tmp_path: Path,
) -> None:
    # Each batch: 200 rows of a day of its own (written at once) and one row of a shared day
    # (waiting for more). A waiting slice must not keep its whole batch alive: over a backfill
    # of a thousand days that was the whole job in memory.
    shared = T0 + timedelta(days=400)
    before = pa.total_allocated_bytes()
    with _writer(tmp_path, partition_by_date="timestamp", min_row_group_rows=100) as writer:
        for day in range(10):
            rows = [
                item(f"i{day}-{n}", f"c{day}", "u1", T0 + timedelta(days=day, seconds=n),
                     text="x" * 1000)
                for n in range(200)
            ]  # fmt: skip
            rows.append(item(f"s{day}", "cs", "u1", shared + timedelta(seconds=day), text="y"))
            writer.write_batch(items_table(rows).to_batches()[0])
            del rows
        # The batches were 2 MB of text; ten open day files hold some 30 kB each.
        held = pa.total_allocated_bytes() - before
        assert held < 1_000_000, f"{held:,} bytes held for 10 waiting rows"
    files = _parquet_files(tmp_path)
    assert sum(pq.read_metadata(p).num_rows for p in files) == 2010
    shared_rows = pq.read_table(tmp_path / "items" / shared.date().isoformat())
    assert sorted(shared_rows["item_id"].to_pylist()) == [f"s{d}" for d in range(10)]


class _FirstDirWaits:
    """The local filesystem, except that the first directory made waits for a second one to
    be made (on another thread): what a slow disk does to the first of two files at once."""

    def __init__(self) -> None:
        self._fs = pafs.LocalFileSystem()
        self._second = threading.Event()
        self._made = 0
        self._lock = threading.Lock()

    def create_dir(self, path: str, recursive: bool = True) -> None:
        with self._lock:
            self._made += 1
            first = self._made == 1
        if first:
            assert self._second.wait(timeout=60), "no second file was begun meanwhile"
        else:
            self._second.set()
        self._fs.create_dir(path, recursive=recursive)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fs, name)


def _written_by(
    tmp_path: Path, fs: Any = None, **kw: Any
) -> tuple[dict[str, list[str]], list[WrittenFile]]:
    """A backfill-like write (63 dates, bounded open files and buffer): each file's item ids
    by its path, and the writer's own list of what it wrote."""
    table = _items(300, step=timedelta(hours=5))
    root = tmp_path / "items"
    with DatasetWriter(
        fs or pafs.LocalFileSystem(),
        str(root),
        "items",
        ITEMS,
        file_prefix="part-J1",
        partition_by_date="timestamp",
        max_open_files=3,
        min_row_group_rows=4,
        max_buffered_bytes=4096,
        keep_columns=("item_id",),
        **kw,
    ) as writer:
        for batch in table.to_batches(max_chunksize=7):
            writer.write_batch(batch)
    ids = {
        str(p.relative_to(root)): pq.read_table(p)["item_id"].to_pylist()
        for p in _parquet_files(root)
    }
    assert not [p for p in root.rglob(".*") if p.is_file()]  # no temporary file left
    return ids, writer.written


@pytest.mark.parametrize("file_bytes", [128 << 20, 1], ids=["one file a day", "rotated"])
def test_day_files_finished_on_background_threads_are_the_files_written_in_turn(
    tmp_path: Path, file_bytes: int
) -> None:
    serial, serial_written = _written_by(tmp_path / "serial", max_file_bytes=file_bytes)
    # The first file's thread is held up until another file is begun on the other one.
    threaded, threaded_written = _written_by(
        tmp_path / "threaded", _FirstDirWaits(), write_threads=2, max_file_bytes=file_bytes
    )
    assert len(serial) > 63  # bounded open files and buffer: days come back in new files
    # The same files, by the same names (drawn in the caller's order), with the same rows in
    # the same order.
    assert threaded == serial

    def described(files: list[WrittenFile], root: Path) -> set[tuple[str, int, tuple[str, ...]]]:
        return {
            (str(Path(f.path).relative_to(root)), f.rows, tuple(f.columns["item_id"].to_pylist()))
            for f in files
        }

    assert described(threaded_written, tmp_path / "threaded" / "items") == described(
        serial_written, tmp_path / "serial" / "items"
    )


def test_an_error_on_a_background_thread_is_raised_and_no_half_written_file_stays(
    tmp_path: Path,
) -> None:
    finished: list[str] = []

    def on_file(written: WrittenFile) -> None:
        finished.append(written.path)
        if len(finished) == 3:
            raise OSError("disk full")

    before = threading.active_count()
    with pytest.raises(OSError, match="disk full"):
        _written_by(tmp_path, write_threads=2, on_file=on_file)
    assert len(finished) >= 3
    root = tmp_path / "items"
    assert not [p for p in root.rglob(".*") if p.is_file()]  # open files were discarded
    assert threading.active_count() == before  # and the threads are gone
