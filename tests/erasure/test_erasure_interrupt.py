"""Ctrl-C in the middle of a deletion: the person is told what was finished and what the next
run does, the command exits 130, and the same command again finishes the request — judged by
the sandbox's own records and the audit log, not by what the command says of itself."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gladly_pipeline.exit_codes import EXIT_INTERRUPTED, EXIT_OK
from tests._console import flat, says
from tests._interrupt import interrupt_when
from tests.erasure._erasure_world import REPO, ErasureWorld, erasure_world

pytestmark = pytest.mark.slow


def finished_in_log(world: ErasureWorld, *, first_run: bool) -> int:
    """Targets with a final outcome in the audit log (the only run so far, when `first_run`)."""
    finals = world.final_outcomes_per_target()
    assert first_run
    return len({target for (_request, target) in finals})


TARGETS = 10
DELETE_ROUTE = "DELETE /customer-profiles/{customerId}"


def _delete(env: dict[str, str], csv_path: Path, out: Path) -> subprocess.Popen[bytes]:
    with out.with_suffix(".out").open("wb") as stdout, out.with_suffix(".err").open("wb") as err:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gladly_pipeline.cli",
                "delete",
                "--csv",
                str(csv_path),
                "--request-id",
                "DSAR-A17",
                "--workers",
                "1",
                "--execute",
            ],
            cwd=REPO,
            env=env,
            stdout=stdout,
            stderr=err,
        )


def test_ctrl_c_during_a_deletion_says_what_was_done_and_a_rerun_finishes_it(
    tmp_path: Path,
) -> None:
    from tests.erasure._erasure_world import deletable

    with erasure_world(tmp_path, customers=3 * TARGETS, seed=43) as world:
        chosen = deletable(world)[:TARGETS]
        assert len(chosen) == TARGETS
        targets = tmp_path / "targets.csv"
        with targets.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["customer_id", "reason", "ticket"])
            writer.writerows([cid, "erasure request", f"T-{n}"] for n, cid in enumerate(chosen))
        env = {**world.env(), "COLUMNS": "40"}
        # Each answer takes a little while, so that the run is still going when it is stopped.
        world.sandbox.configure(latency_ms=40)

        # Interrupt once Gladly has answered the first DELETE: the sandbox's own request
        # counter says when (no polling of a clock).
        deleted_one = threading.Event()
        stats = world.sandbox.server.stats
        count = stats.record

        def record(route: str, method: str, status: int | str) -> None:
            count(route, method, status)
            if f"{method} {route}" == DELETE_ROUTE and str(status) == "204":
                deleted_one.set()

        stats.record = record  # type: ignore[method-assign]
        first = _delete(env, targets, tmp_path / "first")
        code = interrupt_when(deleted_one, first, "profile deleted", still_running=False)
        stderr = (tmp_path / "first.err").read_text()
        assert code == EXIT_INTERRUPTED, stderr
        assert "Traceback" not in stderr
        gone = [cid for cid in chosen if world.customer(cid)["deleted"] is True]
        assert 1 <= len(gone) < TARGETS, stderr  # really cut off in the middle
        said = re.search(r"Interrupted:(\d+)target\(s\)finishedbythisrun", flat(stderr))
        assert said is not None, stderr
        # What it says it finished is what the audit log holds (read after the calls in flight
        # landed), and the sandbox agrees.
        assert int(said.group(1)) == finished_in_log(world, first_run=True)
        assert int(said.group(1)) <= len(gone)
        assert says(stderr, "each recorded in the audit log")
        # A profile whose DELETE was sent but whose outcome is not recorded (none, when the
        # calls in flight all landed) is named as cut off, counted from the audit log as the
        # rerun's recovery reads it: together with the finished ones, what Gladly deleted.
        cut = re.search(r"(\d+)target\(s\)cutoffafterthecallwassent", flat(stderr))
        assert int(said.group(1)) + (int(cut.group(1)) if cut else 0) == len(gone), stderr
        assert says(stderr, "Nothing half-done is lost: run the same command again to resume")
        assert says(stderr, "skips what is done, does the rest")
        for cid in chosen:  # ids only are printed: no CSV value beyond them
            assert world.customer(cid)["emails"][0]["original"] not in stderr

        second = _delete(env, targets, tmp_path / "second")
        assert second.wait(timeout=300) == EXIT_OK, (tmp_path / "second.err").read_text()
        assert "resum" in flat((tmp_path / "second.err").read_text()).casefold()

    # The truth, from outside the code under test.
    assert [cid for cid in chosen if world.customer(cid)["deleted"] is not True] == []
    deletes = world.sandbox.stats()["by_route"].get(DELETE_ROUTE, {})
    assert int(deletes.get("204", 0)) == TARGETS  # one successful DELETE per profile, no more
    finals = world.final_outcomes_per_target()
    per_target = {target: n for (_request, target), n in finals.items()}
    assert per_target == dict.fromkeys(chosen, 1)  # one final outcome each, across both runs
    assert {cid: world.tombstones()[cid] for cid in chosen} == dict.fromkeys(chosen, 1)
    verify = world.cli("audit", "verify")
    assert verify.returncode == 0, verify.stderr
