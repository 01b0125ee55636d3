"""A commit killed at any point converges, after Archive.open and a redo, on the clean result."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from gladly_archive.archive import Archive
from gladly_archive.convert import QuarantinedLine
from tests.gladly_archive.test_archive import (
    T0,
    customers_table,
    fixed_clock,
    item,
    items_table,
)

REPO = Path(__file__).resolve().parents[2]


class Crash(Exception):
    """Stands in for the process dying at a hook point."""


def scenario() -> list[tuple[str, pa.Table, pa.Table]]:
    """Two jobs: the second replaces some items of the first, repeats one of its own, and adds
    items to old and new conversations on new days."""
    first = [
        item(f"i{n}", f"c{n % 4}", f"u{n % 3}", T0 + timedelta(hours=2 * n), text=f"one {n}")
        for n in range(24)
    ]
    second = [
        item(f"i{n}", f"c{n % 4}", f"u{n % 3}", T0 + timedelta(hours=2 * n), text=f"two {n}")
        for n in range(0, 24, 4)
    ]
    second += [
        item(f"k{n}", f"c{n % 5}", f"u{n % 4}", T0 + timedelta(days=9, hours=n), job_id="J2")
        for n in range(10)
    ]
    second.append(item("k3", "c3", "u3", T0 + timedelta(days=9, hours=3), text="k3 again"))
    return [
        ("J1", items_table(first), customers_table(["u0", "u1", "u2"], "J1")),
        ("J2", items_table(second), customers_table(["u0", "u3"], "J2")),
    ]


def run_jobs(archive: Archive) -> None:
    """What a flow does: archive every job not yet archived."""
    for job_id, items, customers in scenario():
        if job_id in archive.archived_job_ids():
            continue
        job = archive.stage_job(job_id)
        half = items.num_rows // 2
        job.write_items(items.slice(0, half).to_batches())
        job.write_items(items.slice(half).to_batches())
        job.write_customers(customers.to_batches())
        job.write_quarantine("conversation_items.jsonl", [QuarantinedLine(5, "bad", b"{")])
        job.record_file(
            "conversation_items.jsonl",
            rows_written=items.num_rows,
            lines_read=1,
            bytes_read=10,
            sha256="0" * 64,
        )
        job.commit()


def open_archive(root: Path, hook: Callable[[str], None] | None = None) -> Archive:
    """The archive as every run here opens it."""
    return Archive.open(root, crash_hook=hook, clock=fixed_clock)


def snapshot(archive: Archive, root: Path) -> dict[str, Any]:
    """Everything that must be identical after a crash, recovery and redo."""
    items = archive.dataset("items").to_table()
    transcripts = archive.dataset("transcripts").to_table().drop_columns(["built_at"])
    index = archive.dataset("_index/customer_files").to_table()
    # Rows of files deleted since are allowed (readers skip them); the live ones must agree.
    live = [(root / path).exists() for path in index["path"].to_pylist()]
    index = index.filter(pa.array(live))
    hidden = [p for p in root.rglob("*") if p.name.startswith(".") and p.name != ".lock"]
    return {
        "items": sorted(zip(items["item_id"].to_pylist(), items["text"].to_pylist(), strict=True)),
        "item_rows": items.num_rows,
        "distinct_items": len(pc.unique(items["item_id"])),
        "transcripts": sorted(transcripts.to_pylist(), key=lambda r: r["conversation_id"]),
        "customers": archive.dataset("customers").count_rows(),
        "quarantine": archive.dataset("_quarantine").count_rows(),
        "index": sorted(
            zip(index["customer_id"].to_pylist(), index["dataset"].to_pylist(), strict=True)
        ),
        "manifest": sorted(archive.read_manifest()["job_id"].to_pylist()),
        "manifest_files": sorted(p.name for p in (root / "_manifest").iterdir()),
        "staging": sorted(p.name for p in (root / "_staging").iterdir()),
        "hidden": hidden,
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[str]]:
    """The uninterrupted run's snapshot and every hook point it passes, in order."""
    root = tmp_path_factory.mktemp("reference")
    points: list[str] = []
    run_jobs(open_archive(root, points.append))
    return snapshot(open_archive(root), root), points


@pytest.fixture(scope="module")
def after_first_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive holding only the first job, to copy as each crash run's starting point."""
    root = tmp_path_factory.mktemp("after_first_job")
    archive = open_archive(root)
    job_id, items, customers = scenario()[0]
    job = archive.stage_job(job_id)
    half = items.num_rows // 2
    job.write_items(items.slice(0, half).to_batches())
    job.write_items(items.slice(half).to_batches())
    job.write_customers(customers.to_batches())
    job.write_quarantine("conversation_items.jsonl", [QuarantinedLine(5, "bad", b"{")])
    job.record_file(
        "conversation_items.jsonl",
        rows_written=items.num_rows,
        lines_read=1,
        bytes_read=10,
        sha256="0" * 64,
    )
    job.commit()
    return root


def crash_at(point: str, occurrence: int) -> Callable[[str], None]:
    """A hook raising Crash the ``occurrence``-th time it reaches ``point``."""
    seen: Counter[str] = Counter()

    def hook(reached: str) -> None:
        seen[reached] += 1
        if reached == point and seen[reached] == occurrence:
            raise Crash(f"{point} #{occurrence}")

    return hook


def test_reference_run_passes_every_named_point(
    reference: tuple[dict[str, Any], list[str]],
) -> None:
    snap, points = reference
    names = {p.split(":")[0] for p in points}
    assert names == {
        "staged",
        "intent_written",
        "moved",
        "deleted",
        "before_manifest",
        "recent_keys",
        "committed",
    }
    assert {p for p in points if p.startswith("staged:")} == {
        "staged:items",
        "staged:customers",
        "staged:_quarantine",
        "staged:transcripts",
        "staged:_index/customer_files",
    }
    assert snap["item_rows"] == snap["distinct_items"] == 34
    assert snap["manifest"] == ["J1", "J2"]
    assert snap["staging"] == []
    assert snap["hidden"] == []


def _crash_recover_redo(root: Path, point: str, occurrence: int, expected: dict[str, Any]) -> None:
    with pytest.raises(Crash):
        run_jobs(open_archive(root, crash_at(point, occurrence)))
    archive = open_archive(root)
    run_jobs(archive)
    assert snapshot(archive, root) == expected, f"crash at {point} #{occurrence}"


def _kind(point: str) -> str:
    return point if point.startswith("staged:") else point.split(":")[0]


def sample(points: list[str], *, thorough: bool = True) -> list[tuple[str, int]]:
    """Every kind of point at its first (thorough: also second, middle and last) occurrence,
    as (point, how many times that exact point has been reached by then)."""
    seen: Counter[str] = Counter()
    numbered = []
    for point in points:
        seen[point] += 1
        numbered.append((point, seen[point]))
    chosen: set[int] = set()
    for kind in {_kind(p) for p in points}:
        where = [n for n, p in enumerate(points) if _kind(p) == kind]
        chosen.add(where[0])
        if thorough:
            chosen |= {where[min(1, len(where) - 1)], where[len(where) // 2], where[-1]}
    return [numbered[n] for n in sorted(chosen)]


def test_a_crash_at_every_kind_of_point_of_a_replacing_job_converges(
    tmp_path: Path, after_first_job: Path, reference: tuple[dict[str, Any], list[str]]
) -> None:
    # The second job exercises every step: replacements, transcript and index rewrites.
    expected, points = reference
    chosen = sample(points[points.index("committed") + 1 :])
    assert {_kind(p) for p, _ in chosen} >= {"intent_written", "moved", "deleted", "committed"}
    for number, (point, occurrence) in enumerate(chosen):
        root = tmp_path / f"run{number}"
        shutil.copytree(after_first_job, root)
        _crash_recover_redo(root, point, occurrence, expected)


def test_a_crash_at_every_kind_of_point_of_a_first_job_converges(
    tmp_path: Path, reference: tuple[dict[str, Any], list[str]]
) -> None:
    expected, points = reference
    first_job = points[: points.index("committed") + 1]
    chosen = sample(first_job, thorough=False)
    for number, (point, occurrence) in enumerate(chosen):
        _crash_recover_redo(tmp_path / f"run{number}", point, occurrence, expected)


def test_a_crash_during_recovery_is_recovered_again(
    tmp_path: Path, reference: tuple[dict[str, Any], list[str]]
) -> None:
    expected, points = reference
    moves_of_j2 = [p for p in points[points.index("committed") + 1 :] if p.startswith("moved:")]
    assert len(moves_of_j2) > 3
    with pytest.raises(Crash):
        run_jobs(open_archive(tmp_path, crash_at("moved:2", 2)))
    with pytest.raises(Crash):
        open_archive(tmp_path, crash_at("moved:3", 1))
    archive = open_archive(tmp_path)
    assert archive.archived_job_ids() == {"J1", "J2"}
    run_jobs(archive)
    assert snapshot(archive, tmp_path) == expected


_CHILD = """
import os, sys
from collections import Counter
sys.path.insert(0, {repo!r})
from tests.gladly_archive.test_crash import open_archive, run_jobs
point, occurrence = sys.argv[2], int(sys.argv[3])
seen = Counter()
def hook(reached):
    seen[reached] += 1
    if reached == point and seen[reached] == occurrence:
        os._exit(137)
run_jobs(open_archive(__import__("pathlib").Path(sys.argv[1]), hook))
"""


def _killed_run(root: Path, point: str, occurrence: int) -> None:
    child = subprocess.run(
        [sys.executable, "-c", _CHILD.format(repo=str(REPO)), str(root), point, str(occurrence)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert child.returncode == 137, child.stderr


@pytest.mark.parametrize(
    ("point", "in_second_job", "left_intent"),
    [
        ("staged:items", 2, False),  # between staged files of the second job
        ("moved:2", 1, True),  # during the second job's renames
    ],
)
def test_a_killed_process_converges_after_open_and_redo(
    tmp_path: Path,
    reference: tuple[dict[str, Any], list[str]],
    point: str,
    in_second_job: int,
    left_intent: bool,
) -> None:
    points = reference[1]
    occurrence = points[: points.index("committed")].count(point) + in_second_job
    _killed_run(tmp_path, point, occurrence)
    # The kill left what a real crash leaves: the lock of a dead process and the staging area.
    lock = tmp_path / "_staging" / ".lock"
    assert lock.exists()
    assert int(lock.read_text()) != os.getpid()
    assert (tmp_path / "_staging" / "J2" / "_COMMIT.json").exists() == left_intent
    assert (tmp_path / "_manifest" / "job_id=J2.parquet").exists() is False
    archive = Archive(tmp_path, clock=fixed_clock)
    assert archive.recover() == (["J2"] if left_intent else [])
    assert archive.archived_job_ids() == ({"J1", "J2"} if left_intent else {"J1"})
    run_jobs(archive)
    assert snapshot(archive, tmp_path) == reference[0]
    assert pq.read_table(tmp_path / "_manifest" / "job_id=J2.parquet").num_rows == 1
