"""The saved fact tables carried forward from the files that changed equal a full build, always;
anything unexpected is built in full (retention_policies.facts_refresh)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import retention_policies.facts_refresh as facts_refresh
import retention_policies.facts_store as facts_store
from gladly_archive.location import FACTS_DIR
from retention_policies.fact_sources import Source, list_sources
from retention_policies.facts import FACTS_PHASE, Tables, load_tables
from retention_policies.facts_cache import SAVE_PHASE, facts_tables, refresh_report
from retention_policies.facts_store import (
    MANIFEST,
    facts_base,
    find_generation,
    generation_key,
    latest_generation,
    open_generation,
)
from tests._progress import ProgressLog
from tests.retention_policies._random_archive import RandomArchive

TABLES = ("customers", "conversations", "items", "inboxes", "topics")


def _rows(tables: Tables) -> dict[str, list[str]]:
    """Every table's rows, order-insensitive (customers with their roll-ups)."""
    return {
        name: sorted(
            json.dumps(r, default=str, sort_keys=True) for r in tables.arrow(name).to_pylist()
        )
        for name in TABLES
    }


def _saved(root: Path) -> dict[str, list[str]]:
    """The rows of the generation that describes the archive now (there must be one)."""
    generation = find_generation(facts_base(root), generation_key(list_sources(root)))
    assert generation is not None, "no saved facts describe the archive"
    tables = open_generation(root, generation)
    try:
        return _rows(tables)
    finally:
        tables.con.close()


def _fresh(root: Path) -> dict[str, list[str]]:
    tables = load_tables(root)
    try:
        return _rows(tables)
    finally:
        tables.con.close()


def _assert_equal(root: Path, context: str) -> None:
    saved, fresh = _saved(root), _fresh(root)
    for name in TABLES:
        assert saved[name] == fresh[name], (
            f"{context}: {name} differs; saved only "
            f"{sorted(set(saved[name]) - set(fresh[name]))[:3]}, full build only "
            f"{sorted(set(fresh[name]) - set(saved[name]))[:3]}"
        )


@pytest.fixture
def eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """Carry the facts forward whenever it can be done at all (a small archive changes most of
    its few files in one step), and fold the layers into a new base every few steps."""
    monkeypatch.setattr(facts_refresh, "MAX_CHANGED_SHARE", 1e9)
    monkeypatch.setattr(facts_refresh, "MAX_LAYERS", 5)


# `make soak` (GLADLY_SOAK=1) walks more and longer random histories.
_SOAK = bool(os.environ.get("GLADLY_SOAK"))
_SEEDS = range(1, 13) if _SOAK else range(1, 3)
_STEPS = 80 if _SOAK else 24


@pytest.mark.slow
@pytest.mark.parametrize("seed", _SEEDS)
@pytest.mark.usefixtures("eager")
def test_facts_carried_forward_equal_a_full_build_after_every_random_change(
    tmp_path: Path, seed: int
) -> None:
    world = RandomArchive(tmp_path / "archive", seed)
    modes: dict[str, int] = {}
    layered = 0
    for number in range(_STEPS):
        step = world.step()
        report = refresh_report(str(world.root))
        modes[report.mode] = modes.get(report.mode, 0) + 1
        assert report.mode != "full" or number == 0 or report.reason, report
        _assert_equal(world.root, f"seed {seed}, step {number} ({step}, {report.mode})")
        saved = latest_generation(facts_base(world.root))
        assert saved is not None
        layered = max(layered, len(saved.layers))
    # The first refresh builds; the rest carry forward (an archive emptied by a purge aside).
    assert modes.get("incremental", 0) >= _STEPS * 3 // 4, (modes, world.log)
    assert layered > 1  # layers were written, and folded into a base (MAX_LAYERS)
    assert {"commit", "enrich_profiles", "enrich_conversations"} <= set(world.log)


@pytest.mark.slow
def test_with_the_shipped_thresholds_too(tmp_path: Path) -> None:
    world = RandomArchive(tmp_path / "archive", 11)
    modes: dict[str, int] = {}
    for number in range(24):
        step = world.step()
        report = refresh_report(str(world.root))
        modes[report.mode] = modes.get(report.mode, 0) + 1
        _assert_equal(world.root, f"step {number} ({step}, {report.mode})")
    assert modes.get("incremental", 0) >= 12, modes


def test_merges_moves_and_purges_carried_forward_step_by_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(facts_refresh, "MAX_CHANGED_SHARE", 1e9)
    world = RandomArchive(tmp_path / "archive", 21)
    a, b, c, d = "cA", "cB", "cC", "cD"
    item = world.item
    world.export(
        [
            item(None, a, "CUSTOMER_ACTIVITY"),  # A is known only by an activity
            item("v1", b, "EMAIL"),
            item("v1", b, "CONVERSATION_STATUS_CHANGE"),
            item("v2", c, "SMS"),
            item("v3", d, "CHAT_MESSAGE"),
        ]
    )
    assert refresh_report(str(world.root)).mode == "full"

    def item_count(customer: str) -> int | None:
        tables = load_tables(world.root)
        found = tables.con.execute(
            "SELECT item_count FROM customers WHERE customer_id = ?", [customer]
        ).fetchall()
        tables.con.close()
        return int(found[0][0]) if found else None

    steps = [
        ("A merged into B", lambda: world.profiles([(a, None, b)])),
        ("B merged into C: A's rows follow", lambda: world.profiles([(b, None, c)])),
        ("C's profile read", lambda: world.profiles([(c, "gold", None)])),
        ("v2 continued under D", lambda: world.export([item("v2", d, "SMS")])),
        ("A merged into D instead", lambda: world.profiles([(a, None, d)])),
        ("v1's status redacted", lambda: world.redact_some_items()),
        ("A purged", lambda: world.purge([a])),
        ("D purged", lambda: world.purge([d])),
    ]
    for what, change in steps:
        change()
        report = refresh_report(str(world.root))
        assert report.mode == "incremental", (what, report)
        _assert_equal(world.root, what)
        if what == "B merged into C: A's rows follow":
            assert item_count(c) == 4  # its own, B's two and A's activity
        if what == "A merged into D instead":
            assert item_count(d) == 3  # its own, v2's new item and A's activity


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dozen commits and an enrichment run, made once for this module's tests."""
    world = RandomArchive(tmp_path_factory.mktemp("template") / "archive", 5)
    for _ in range(12):
        world.commit()
    world.enrich_profiles()
    world.enrich_conversations()
    return world.root


@pytest.fixture
def grown(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RandomArchive:
    """A copy of the template with saved facts carried forward once, describing it."""
    monkeypatch.setattr(facts_refresh, "MAX_CHANGED_SHARE", 1e9)
    shutil.copytree(template, tmp_path / "archive")
    world = RandomArchive(tmp_path / "archive", 6, fresh=False)
    assert refresh_report(str(world.root)).mode == "full"
    world.commit()
    assert refresh_report(str(world.root)).mode == "incremental"
    return world


def test_a_commit_is_carried_forward_by_reading_only_the_files_it_wrote(
    grown: RandomArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[Source] = []
    real = facts_refresh.contribute

    def recording(con, root, numbered, prefix, types):  # type: ignore[no-untyped-def]
        read.extend(source for _, source in numbered)
        real(con, root, numbered, prefix, types)

    monkeypatch.setattr(facts_refresh, "contribute", recording)
    before = set(list_sources(grown.root))
    grown.commit()
    after = set(list_sources(grown.root))
    report = refresh_report(str(grown.root))
    assert report.mode == "incremental"
    assert set(read) == after - before  # the new files, and nothing else of the archive
    assert len(read) < len(after) / 2
    _assert_equal(grown.root, "after one commit")
    read.clear()
    assert refresh_report(str(grown.root)).mode == "current"
    assert read == []


def _full_again(world: RandomArchive) -> None:
    report = refresh_report(str(world.root))
    assert report.mode == "full", report
    _assert_equal(world.root, report.reason)


def test_a_file_changed_in_place_is_built_in_full(grown: RandomArchive) -> None:
    path = sorted((grown.root / "items").rglob("*.parquet"))[0]
    before = os.stat(path)
    table = pq.read_table(path)
    with open(path, "r+b") as f:  # in place: the same inode, its modification time put back
        pq.write_table(table.slice(1), f)
        f.truncate()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_ino == before.st_ino
    report = refresh_report(str(grown.root))
    assert report.mode == "full"
    assert "in place" in report.reason
    _assert_equal(grown.root, report.reason)


def test_an_edit_that_keeps_size_and_modification_time_is_still_seen(tmp_path: Path) -> None:
    path = tmp_path / "items" / "2025-01-01" / "part-0.parquet"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"A" * 64)
    before = list_sources(tmp_path)
    stat = os.stat(path)
    with open(path, "r+b") as f:
        f.write(b"B" * 64)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = list_sources(tmp_path)
    assert [(s.path, s.size, s.mtime_ns) for s in after] == [
        (s.path, s.size, s.mtime_ns) for s in before
    ]
    assert after != before  # the change time moved


def _generation(world: RandomArchive) -> Path:
    saved = latest_generation(facts_base(world.root))
    assert saved is not None
    return saved.path


@pytest.mark.parametrize(
    "tamper",
    [
        "layer file rewritten",
        "layer file removed",
        "small table rewritten",
        "manifest edited",
        "manifest unreadable",
        "manifest removed",
        "renamed",
    ],
)
def test_saved_facts_tampered_with_are_never_used(grown: RandomArchive, tamper: str) -> None:
    generation = _generation(grown)
    grown.commit()
    if tamper == "layer file rewritten":
        # Rows dropped from the base's customers: used, the facts would be wrong.
        path = generation / "L0000" / "customers.parquet"
        table = pq.read_table(path)
        pq.write_table(table.slice(1), path)
    elif tamper == "layer file removed":
        (generation / "L0000" / "cc.parquet").unlink()
    elif tamper == "small table rewritten":
        path = generation / "merges.parquet"
        pq.write_table(pa.table({"source_id": ["x"], "into_id": ["y"]}), path)
    elif tamper == "manifest edited":
        manifest = json.loads((generation / MANIFEST).read_text())
        manifest["next_fid"] = 0
        (generation / MANIFEST).write_text(json.dumps(manifest))
    elif tamper == "manifest unreadable":
        (generation / MANIFEST).write_text('{"format": 1, "version"')
    elif tamper == "manifest removed":
        (generation / MANIFEST).unlink()
    else:
        generation.rename(generation.with_name(generation.name[:-1] + "x"))
    _full_again(grown)


def test_a_half_written_generation_is_ignored(grown: RandomArchive) -> None:
    generation = _generation(grown)
    grown.commit()
    # Killed while writing: the temporary directory of a later refresh, and the last
    # generation's manifest missing as if the rename had happened before it was written.
    shutil.copytree(generation, generation.parent / ".tmp-half")
    (generation / MANIFEST).unlink()
    _full_again(grown)
    assert not generation.exists()


def test_another_facts_version_is_built_in_full(
    grown: RandomArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    grown.commit()
    monkeypatch.setattr(facts_store, "FACTS_VERSION", "999")
    _full_again(grown)
    saved = latest_generation(facts_base(grown.root))
    assert saved is not None
    assert saved.path.name.startswith("v999-")


def test_an_error_while_carrying_forward_builds_in_full_and_logs_no_value_it_quoted(
    grown: RandomArchive, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("could not convert 'ada.lovelace@example.com'")

    monkeypatch.setattr(facts_refresh, "conversation_core", broken)
    grown.commit()
    with caplog.at_level(logging.DEBUG):
        _full_again(grown)
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    assert "OSError while refreshing" in logged
    assert "ada.lovelace" not in logged


def test_facts_made_while_the_archive_moved_are_not_saved(
    grown: RandomArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = facts_refresh.contribute
    moved: list[bool] = []

    def meanwhile(con, root, numbered, prefix, types):  # type: ignore[no-untyped-def]
        real(con, root, numbered, prefix, types)
        if not moved:
            moved.append(True)
            grown.enrich_profiles()  # another writer, while the refresh reads

    monkeypatch.setattr(facts_refresh, "contribute", meanwhile)
    grown.commit()
    report = refresh_report(str(grown.root))
    assert report.mode == "incremental"
    assert report.generation is None  # not saved: it describes no state of the archive
    monkeypatch.setattr(facts_refresh, "contribute", real)
    assert refresh_report(str(grown.root)).mode == "incremental"
    _assert_equal(grown.root, "after the writer finished")


def test_progress_of_a_refresh_carried_forward_and_of_one_that_falls_back(
    grown: RandomArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    grown.commit()
    heard = ProgressLog()
    assert refresh_report(str(grown.root), progress=heard).mode == "incremental"
    assert heard.phases() == [FACTS_PHASE, SAVE_PHASE]
    assert len(heard.runs(FACTS_PHASE)) == 1
    assert heard.final(SAVE_PHASE) == 1

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(facts_refresh, "customers", broken)
    grown.commit()
    heard = ProgressLog()
    assert refresh_report(str(grown.root), progress=heard).mode == "full"
    # The attempt's bar ends, then the full build's runs from 0.
    assert [run[-1] for run in heard.runs(FACTS_PHASE)] == [(4, 4), (6, 6)]


def test_the_planner_uses_carried_forward_facts(grown: RandomArchive) -> None:
    grown.commit()
    tables, reused = facts_tables(str(grown.root))  # brings the saved facts up, then reads them
    assert not reused
    try:
        assert _rows(tables) == _fresh(grown.root)
    finally:
        tables.con.close()
    again, reused = facts_tables(str(grown.root))
    again.con.close()
    assert reused
    assert len(list((grown.root / FACTS_DIR).iterdir())) == 1  # the older generation is gone
