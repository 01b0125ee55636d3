"""A migration killed at any step is finished by the next run, which ends exactly where an
uninterrupted migration of a copy ends: the same files, byte for byte."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from gladly_archive import Archive
from gladly_archive.layout import OldLayoutError, check_layout, hive_directories
from gladly_archive.migrate import migrate_archive
from tests.gladly_archive.test_migrate import copy_fixture, fixed_clock, snapshot

REPO = Path(__file__).resolve().parents[2]

_CHILD = """
import os, sys
from collections import Counter
from pathlib import Path
sys.path.insert(0, {repo!r})
from gladly_archive import Archive
from gladly_archive.migrate import migrate_archive
from tests.gladly_archive.test_migrate import fixed_clock
point, occurrence = sys.argv[2], int(sys.argv[3])
seen = Counter()
def hook(reached):
    seen[reached] += 1
    if reached == point and seen[reached] == occurrence:
        os._exit(137)
migrate_archive(Archive(Path(sys.argv[1]), crash_hook=hook, clock=fixed_clock))
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], list[str]]:
    """The uninterrupted migration's files and every hook point it passes, in order."""
    root = copy_fixture(tmp_path_factory.mktemp("reference"))
    points: list[str] = []
    migrate_archive(Archive(root, crash_hook=points.append, clock=fixed_clock))
    return snapshot(root), points


_OWN_KINDS = ("items", "transcripts", "_index/customer_files")


def _kind(point: str) -> str:
    """``migrate:items:3:written`` → ``migrate:items:written``, ``migrate:rename:7`` →
    ``migrate:rename``; the datasets written again as they are count as one, ``other``."""
    parts = [part for part in point.split(":") if not part.isdigit()]
    if len(parts) > 1 and parts[1] not in ("rename", "renamed", "stamped", *_OWN_KINDS):
        parts[1] = "other"
    return ":".join(parts)


def _chosen(points: list[str]) -> list[tuple[str, int]]:
    """The first occurrence of every kind of point, and the middle one of the renames, the
    items written and the transcripts renamed into place: (point, how many times that exact
    point was reached by then)."""
    seen: Counter[str] = Counter()
    numbered = []
    for point in points:
        seen[point] += 1
        numbered.append((point, seen[point]))
    picked: set[int] = set()
    for kind in {_kind(p) for p in points}:
        where = [n for n, p in enumerate(points) if _kind(p) == kind]
        picked.add(where[0])
        if kind in ("migrate:rename", "migrate:items:written", "migrate:transcripts"):
            picked.add(where[len(where) // 2])
    return [numbered[n] for n in sorted(picked)]


def _killed(root: Path, point: str, occurrence: int) -> None:
    child = subprocess.run(
        [sys.executable, "-c", _CHILD.format(repo=str(REPO)), str(root), point, str(occurrence)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert child.returncode == 137, child.stderr


def test_the_reference_passes_every_kind_of_step(
    reference: tuple[dict[str, str], list[str]],
) -> None:
    kinds = {_kind(p) for p in reference[1]}
    assert kinds == {
        "migrate:rename",
        "migrate:renamed",
        *(f"migrate:{d}{end}" for d in (*_OWN_KINDS, "other") for end in ("", ":written")),
        "migrate:stamped",
    }
    written = {p.split(":")[1] for p in reference[1] if p.endswith(":written")}
    assert {"customers", "_manifest", "tombstones", "refill_watch"} <= written


def test_a_migration_killed_at_any_step_is_finished_by_the_next_run(
    tmp_path: Path, reference: tuple[dict[str, str], list[str]]
) -> None:
    expected, points = reference
    chosen = _chosen(points)
    assert len(chosen) == 14
    if not os.environ.get("GLADLY_SOAK"):
        # `make test` kills at one point of each step (rename, items, transcripts, the index,
        # the other datasets, the stamp); `make soak` (GLADLY_SOAK=1) at all fourteen.
        firsts: dict[str, tuple[str, int]] = {}
        for point, occurrence in chosen:
            firsts.setdefault(_kind(point).removesuffix(":written"), (point, occurrence))
        chosen = list(firsts.values())
    for number, (point, occurrence) in enumerate(chosen):
        root = copy_fixture(tmp_path / f"run{number}")
        _killed(root, point, occurrence)
        archive = Archive(root, clock=fixed_clock)
        if point != "migrate:stamped":
            # Half migrated is still the earlier version: no writer may touch it yet.
            with pytest.raises(OldLayoutError):
                check_layout(archive.fs, archive.root)
        migrate_archive(archive)
        assert snapshot(root) == expected, f"killed at {point} #{occurrence}"


def test_a_rerun_killed_again_still_converges(
    tmp_path: Path, reference: tuple[dict[str, str], list[str]]
) -> None:
    expected, points = reference
    root = copy_fixture(tmp_path)
    _killed(root, "migrate:rename:1", 3)  # in the third directory
    assert hive_directories(Archive(root).fs, str(root))
    items = [p for p in points if p.startswith("migrate:items:") and p.endswith(":written")]
    _killed(root, items[-1], 1)
    migrate_archive(Archive(root, clock=fixed_clock))
    assert snapshot(root) == expected
