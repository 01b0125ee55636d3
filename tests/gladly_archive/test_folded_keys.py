"""The folded tier's conversation keys: a commit reads only the buckets of the conversations it
touches, finds them whoever their customer is now, and never trusts a key file it cannot read
or one a fold left unfinished."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gladly_archive.merge as merge
from gladly_archive.archive import Archive
from gladly_archive.fold import fold_archive
from gladly_archive.folded_keys import (
    KEYS_NAME,
    build_folded_keys,
    conversation_keys,
    folded_keys,
)
from gladly_archive.layout import customer_bucket
from tests.gladly_archive.test_archive import T0, fixed_clock, item, items_table
from tests.gladly_archive.test_fold import (  # the fold tests' built archive
    BUCKETS,
    PARTIAL,
    Crash,
    data_rows,
)
from tests.gladly_archive.test_purge import B, C, build

REPO = Path(__file__).resolve().parents[2]
LATER = T0 + timedelta(days=9)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("built")
    build(root)
    return root


@pytest.fixture
def folded(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "archive"
    shutil.copytree(built, copy)
    fold_archive(Archive(copy, clock=fixed_clock), PARTIAL, buckets=BUCKETS)
    return copy


def folded_conversations(root: Path) -> dict[str, set[int]]:
    """Every conversation id in the folded tier, with the buckets holding it (read directly)."""
    found: dict[str, set[int]] = {}
    for dataset in ("items", "transcripts", "conversations"):
        for path in (root / dataset / "folded").rglob("*.parquet"):
            ids = pq.read_table(path, columns=["conversation_id"])[0].drop_null().to_pylist()
            for conversation in ids:
                found.setdefault(conversation, set()).add(int(path.parent.name))
    return found


def add_item(root: Path, job: str, conversation: str, customer: str) -> Archive:
    archive = Archive(root, clock=fixed_clock)
    staged = archive.stage_job(job)
    row = item(f"i-{job}", conversation, customer, LATER, text="back again", job_id=job)
    staged.write_items(items_table([row]).to_batches())
    staged.commit()
    return archive


def one_transcript_each(archive: Archive) -> list[str]:
    ids = archive.dataset("transcripts").to_table()["conversation_id"].to_pylist()
    assert len(ids) == len(set(ids)), "a conversation has two transcript rows"
    return ids


def test_keys_are_stable_distinct_and_vectorised_alike() -> None:
    ids = ["v1", "v2", "", "é-unicode", "a", "a\x00", "x" * 300]
    keys = conversation_keys(ids)
    assert keys.dtype == np.uint64
    assert len(set(keys.tolist())) == len(ids)
    sliced = pa.array(["pad", *ids]).slice(1)
    assert conversation_keys(sliced).tolist() == keys.tolist()
    # A key does not depend on the other ids hashed with it.
    for number, conversation in enumerate(ids):
        assert conversation_keys([conversation]).tolist() == [keys[number]], conversation


def test_a_fold_lists_exactly_the_folded_conversations_and_their_buckets(folded: Path) -> None:
    archive = Archive(folded)
    keys = folded_keys(archive.fs, archive.root)
    expected = folded_conversations(folded)
    assert expected, "the fold moved conversations"
    assert len(keys) == sum(len(b) for b in expected.values())
    for conversation, buckets in expected.items():
        assert set(keys.buckets_of([conversation]).tolist()) == buckets
    assert keys.buckets_of(["never-archived"]).tolist() == []


def test_a_commit_reads_only_the_buckets_of_its_conversations(
    folded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, list[int]]] = []
    real = merge.folded_paths

    def spy(fs: object, root: str, dataset: str, buckets: np.ndarray) -> list[str]:
        asked.append((dataset, buckets.tolist()))
        return real(fs, root, dataset, buckets)  # type: ignore[arg-type]

    monkeypatch.setattr(merge, "folded_paths", spy)
    archive = add_item(folded, "J4", "v2", B)
    bucket = int(customer_bucket(pa.array([B]), BUCKETS)[0])
    assert asked
    assert all(buckets == [bucket] for _, buckets in asked)
    v2 = [
        r
        for r in archive.dataset("transcripts").to_table().to_pylist()
        if r["conversation_id"] == "v2"
    ]
    assert [r["item_count"] for r in v2] == [2]
    one_transcript_each(archive)


def test_a_conversation_whose_customer_was_merged_is_found_in_its_old_bucket(folded: Path) -> None:
    # Gladly merged B into C: a new item of v2 names C, whose bucket does not hold v2.
    assert customer_bucket(pa.array([B]), BUCKETS)[0] != customer_bucket(pa.array([C]), BUCKETS)[0]
    archive = add_item(folded, "J5", "v2", C)
    one_transcript_each(archive)
    v2 = [
        r
        for r in archive.dataset("transcripts").to_table().to_pylist()
        if r["conversation_id"] == "v2"
    ]
    assert [(r["customer_id"], r["item_count"]) for r in v2] == [(C, 2)]


@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated"])
def test_a_missing_or_damaged_key_file_is_rebuilt_before_use(folded: Path, damage: str) -> None:
    path = folded / KEYS_NAME
    good = path.read_bytes()
    if damage == "missing":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(b"not numpy at all")
    else:
        path.write_bytes(good[: len(good) // 2])
    archive = add_item(folded, "J6", "v2", B)
    one_transcript_each(archive)
    assert path.read_bytes() == good


def test_keys_of_a_later_fold_cover_what_it_added(folded: Path) -> None:
    archive = Archive(folded, clock=fixed_clock)
    fold_archive(archive, PARTIAL + timedelta(days=20))
    keys = folded_keys(archive.fs, archive.root)
    expected = folded_conversations(folded)
    for conversation, buckets in expected.items():
        assert buckets <= set(keys.buckets_of([conversation]).tolist()), conversation


def test_a_fold_killed_around_its_keys_leaves_none_and_the_next_commit_rebuilds(
    built: Path, tmp_path: Path
) -> None:
    reference_root = tmp_path / "reference"
    shutil.copytree(built, reference_root)
    fold_archive(Archive(reference_root, clock=fixed_clock), PARTIAL, buckets=BUCKETS)
    reference = data_rows(Archive(reference_root))
    for point in ("fold:keys_dropped", "fold:intent_written", "keys:temp_written"):
        root = tmp_path / point.replace(":", "-")
        shutil.copytree(reference_root if point == "keys:temp_written" else built, root)

        def crash(at: str, point: str = point) -> None:
            if at == point:
                raise Crash(point)

        with pytest.raises(Crash):
            fold_archive(
                Archive(root, clock=fixed_clock, crash_hook=crash), PARTIAL, buckets=BUCKETS
            )
        assert not (root / KEYS_NAME).exists(), point
        recovered = Archive.open(root, clock=fixed_clock)
        assert data_rows(recovered) == reference, point
        archive = add_item(root, "J7", "v2", C)
        one_transcript_each(archive)
        assert (root / KEYS_NAME).exists()
        assert not [p for p in (root / "_index").iterdir() if p.name.endswith(".tmp")], point


_CHILD = """
import os, sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from gladly_archive.archive import Archive
from tests.gladly_archive.test_folded_keys import add_item, fixed_clock
def hook(reached):
    if reached == "keys:temp_written":
        os._exit(137)
archive = Archive(Path(sys.argv[1]), clock=fixed_clock, crash_hook=hook)
job = archive.stage_job("J8")
from tests.gladly_archive.test_archive import item, items_table
from tests.gladly_archive.test_folded_keys import LATER
job.write_items(items_table([item("i-J8", "v2", "{customer}", LATER, job_id="J8")]).to_batches())
job.commit()
"""


def test_a_commit_killed_while_rebuilding_the_keys_converges(folded: Path) -> None:
    """SIGKILL-like exit inside the key file's write (a commit rebuilding a missing file): the
    next writer discards the half-done job, rebuilds the keys and commits once."""
    (folded / KEYS_NAME).unlink()
    code = _CHILD.format(repo=str(REPO), customer=B)
    child = subprocess.run(
        [sys.executable, "-c", code, str(folded)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.returncode == 137, child.stderr
    assert not (folded / KEYS_NAME).exists()
    assert [p for p in (folded / "_index").iterdir() if p.name.endswith(".tmp")]
    archive = Archive.open(folded, clock=fixed_clock)
    assert "J8" not in archive.archived_job_ids()
    archive = add_item(folded, "J8", "v2", B)
    one_transcript_each(archive)
    assert not [p for p in (folded / "_index").iterdir() if p.name.endswith(".tmp")]
    keys = folded_keys(archive.fs, archive.root)
    assert len(keys) == len(build_folded_keys(archive.fs, archive.root))
