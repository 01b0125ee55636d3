"""JSONL in bounded blocks of whole lines, and a block's lines as one Arrow string array."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from queue import Queue
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

__all__ = ["BOM", "POOL", "Block", "BlockLines", "read_ahead", "read_blocks", "split_lines"]

T = TypeVar("T")
BOM = b"\xef\xbb\xbf"
_ITEM, _DONE, _ERROR = 0, 1, 2


def _converter_pool() -> pa.MemoryPool:
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc (e.g. on Windows)
        return pa.default_memory_pool()


POOL = _converter_pool()
"""The pool the converters allocate from. Measured on the 1 M-item benchmark, jemalloc hands
freed blocks back sooner than pyarrow's default (mimalloc), keeping peak RSS some 40 MB lower
at the same speed; the other pools are untouched."""
_NEWLINE, _CR, _SPACE, _TAB = 10, 13, 32, 9


@dataclass(frozen=True)
class Block:
    """Whole lines of a file: `data` ends with a newline unless it holds the file's last line.

    `data` is a fresh bytearray per block, so a converter may edit it in place.
    """

    data: bytearray
    size: int  # bytes of the file this block stands for (a leading BOM included)


def read_blocks(path: str | os.PathLike[str], block_bytes: int) -> Iterator[Block]:
    """Yield `path` as blocks of at most `block_bytes` (more only when one line is longer)."""
    with open(path, "rb", buffering=0) as stream:
        carry = b""  # the start of a line that the previous read cut off
        first = True
        while True:
            # The carried bytes count toward the block, so a block stays within bounds.
            room = block_bytes - len(carry) if len(carry) < block_bytes else block_bytes
            data = bytearray(len(carry) + room)
            data[: len(carry)] = carry
            got = _fill(stream, memoryview(data)[len(carry) :])
            end, size = len(carry) + got, len(carry) + got
            if first:
                first = False
                if data.startswith(BOM):  # some tools write one; it is not part of line 1
                    del data[: len(BOM)]
                    end -= len(BOM)
            if got < room:  # the end of the file
                del data[end:]
                if size:
                    yield Block(data, size)
                return
            cut = data.rfind(b"\n", 0, end) + 1
            if not cut:  # one line longer than a block: keep reading until it ends
                carry = bytes(data[:end])
                continue
            carry = bytes(data[cut:end])
            del data[cut:]
            yield Block(data, size - len(carry))
            del data


def _fill(stream: io.RawIOBase, view: memoryview) -> int:
    """Read into `view` until it is full or the file ends; returns the bytes read."""
    got = 0
    while got < len(view):
        count = stream.readinto(view[got:])
        if not count:
            break
        got += count
    return got


def read_ahead(source: Generator[T, None, None]) -> Iterator[T]:
    """Iterate `source` in a worker thread, one item ahead of the consumer.

    Converting the next block (pyarrow releases the GIL) then overlaps with whatever the
    consumer does with this one, typically writing Parquet. The worker starts an item only
    once the consumer has taken the previous one, so at most two are held at a time. Closing
    the returned generator stops the worker after the item it is working on.
    """
    queue: Queue[tuple[int, Any]] = Queue(maxsize=1)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in source:
                queue.put((_ITEM, item))
                del item
                queue.join()  # until the consumer has taken it
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put((_ERROR, exc))
        else:
            source.close()  # in this thread, which ran it: closes the file it reads
            queue.put((_DONE, None))

    worker = threading.Thread(target=work, name="gladly-archive-read-ahead", daemon=True)
    worker.start()
    finished = False
    try:
        while True:
            kind, value = queue.get()
            queue.task_done()
            if kind == _DONE:
                finished = True
                return
            if kind == _ERROR:
                finished = True
                raise value
            yield value
    finally:
        stop.set()
        while not finished:  # let a waiting worker run to its final message
            finished = queue.get()[0] != _ITEM
            queue.task_done()
        worker.join()


@dataclass(frozen=True)
class BlockLines:
    """The non-blank lines of a block: byte ranges (terminators excluded) and line numbers."""

    starts: np.ndarray
    ends: np.ndarray
    numbers: np.ndarray  # 1-based physical line numbers
    longest: int
    next_line: int  # physical number of the line after the block

    def __len__(self) -> int:
        return len(self.starts)

    def numbered(self, data: bytes | bytearray) -> list[tuple[int, bytes]]:
        """Every non-blank line with its physical number."""
        return [
            (int(n), bytes(data[int(s) : int(e)]))
            for n, s, e in zip(self.numbers, self.starts, self.ends, strict=True)
        ]

    def neat(self, data: bytes | bytearray) -> bool:
        """Whether every line starts with `{` and ends with `}`: then a parser that reads the
        block as a stream of values cannot join two lines into one value or split one line in
        two without also changing the number of values it finds."""
        if not len(self):
            return True
        buf = np.frombuffer(data, np.uint8)
        return bool(np.all(buf[self.starts] == 0x7B) and np.all(buf[self.ends - 1] == 0x7D))

    def array(self, data: bytes | bytearray) -> pa.LargeStringArray:
        """The lines as one large_string array, validated as UTF-8 (raises ArrowInvalid)."""
        count = len(self)
        offsets = np.empty(count + 1, np.int64)
        if count and data.endswith(b"\n") and np.all(self.starts[1:] == self.ends[:-1] + 1):
            # The usual block: each line ends in one bare newline, and a line holds none. The
            # block without its newlines holds the lines back to back (after whatever blank
            # lines came first), each line `k` moved `k` bytes (plus those lines' newlines)
            # to the left; one bytes.replace copies them at memcpy speed.
            skipped = data.count(b"\n", 0, int(self.starts[0]))
            offsets[:-1] = self.starts - np.arange(skipped, skipped + count)
            offsets[-1] = len(data) - count - skipped
            joined = data.replace(b"\n", b"")
            array = pa.LargeStringArray.from_buffers(
                count, pa.py_buffer(offsets), pa.py_buffer(joined)
            )
        else:  # \r\n endings, blank lines or no final newline: gather each line's range
            offsets[0] = 0
            np.cumsum(self.ends - self.starts, out=offsets[1:])
            marks = np.zeros(len(data) + 1, np.int8)
            marks[self.starts] = 1
            marks[self.ends] -= 1
            values = np.frombuffer(data, np.uint8)[np.cumsum(marks[:-1], dtype=np.int8) > 0]
            array = pa.LargeStringArray.from_buffers(
                count, pa.py_buffer(offsets), pa.py_buffer(values)
            )
        array.validate(full=True)
        return array


def split_lines(data: bytes | bytearray, first_line: int) -> BlockLines:
    """Find the non-blank lines of `data`; a trailing `\\r` belongs to the line terminator."""
    buf = np.frombuffer(data, np.uint8)
    step = 1 << 20  # in slices, so the comparison's temporary array stays small
    newlines = np.concatenate(
        [np.zeros(0, np.int64)]
        + [np.flatnonzero(buf[at : at + step] == _NEWLINE) + at for at in range(0, len(buf), step)]
    )
    next_line = first_line + len(newlines)
    if not data:
        empty = np.zeros(0, np.int64)
        return BlockLines(empty, empty, empty, 0, next_line)
    if data[-1] != _NEWLINE:
        newlines = np.append(newlines, len(data))
    starts = np.empty(len(newlines), np.int64)
    starts[0:1] = 0
    starts[1:] = newlines[:-1] + 1
    ends = newlines.astype(np.int64)
    if data.find(b"\r") >= 0:
        nonempty = ends > starts
        ends = ends - (nonempty & (buf[np.maximum(ends - 1, 0)] == _CR))
    numbers = np.arange(first_line, first_line + len(starts), dtype=np.int64)
    keep = ends > starts
    # Whitespace-only lines are blank too; only lines that start with whitespace can be.
    first_bytes = buf[np.minimum(starts, len(buf) - 1)]
    padded = np.flatnonzero(keep & np.isin(first_bytes, (_SPACE, _TAB, _CR)))
    for index in padded.tolist():
        if not data[starts[index] : ends[index]].strip(b" \t\r"):
            keep[index] = False
    starts, ends, numbers = starts[keep], ends[keep], numbers[keep]
    longest = int((ends - starts).max()) if len(starts) else 0
    return BlockLines(starts, ends, numbers, longest, next_line)
