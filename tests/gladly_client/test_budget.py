"""The rate budget shared by a machine's processes, and how the client is told which to use."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from filelock import FileLock

import gladly_client.budget as budget_module
from gladly_client import GladlyClient, GladlySettingsError, LockFilePaces, Priority, Throttle
from gladly_client.budget import budget_kind, default_budget_file, rate_from_env
from gladly_client.throttle import MemoryPaces
from gladly_sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
RATE = 8.0
INTERVAL = 1 / RATE
ENV = {
    "GLADLY_BASE_URL": "https://acme.gladly.com",
    "GLADLY_USER": "api@acme.example",
    "GLADLY_API_TOKEN": "token",
}


def _frozen(store: LockFilePaces | MemoryPaces, rate: float = RATE) -> Throttle:
    # A frozen clock and a sleep that returns at once: each wait *is* the reserved slot.
    return Throttle(rate, clock=lambda: 0.0, sleep=lambda _: None, store=store)


def test_two_clients_on_one_file_draw_from_one_pace(tmp_path: Path) -> None:
    path = tmp_path / "budget.json"
    first, second = _frozen(LockFilePaces(path)), _frozen(LockFilePaces(path))
    assert first.acquire("GET") == 0.0
    assert second.acquire("GET") == pytest.approx(INTERVAL)
    assert first.acquire("GET") == pytest.approx(2 * INTERVAL)
    # Another method has its own pace, in the same file.
    assert second.acquire("DELETE") == 0.0


def test_a_cut_seen_by_one_process_slows_the_others(tmp_path: Path) -> None:
    path = tmp_path / "budget.json"
    first, second = _frozen(LockFilePaces(path)), _frozen(LockFilePaces(path))
    first.on_response("GET", 429, None)
    assert second.current_rate("GET") == pytest.approx(RATE / 2)


def _children(*argv: list[str], env: dict[str, str] | None = None) -> list[subprocess.Popen[str]]:
    """Interpreters of their own running tests/gladly_client/_budget_child.py."""
    return [
        subprocess.Popen(
            [sys.executable, "-m", "tests.gladly_client._budget_child", *args],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        )
        for args in argv
    ]


@pytest.mark.parametrize("shared", [True, False])
def test_real_processes_share_one_grid_of_slots(tmp_path: Path, shared: bool) -> None:
    # Three interpreters reserve 60 slots each. Shared through the file, together they hold
    # exactly the grid 0, 1 ms, 2 ms, ...; each pacing alone (the check's own control), they
    # hand out the same slots three times over.
    args = ["reserve", str(tmp_path / "budget.json"), "60", "shared" if shared else "alone"]
    parts = [json.loads(child.communicate(timeout=120)[0]) for child in _children(*[args] * 3)]
    slots = sorted(round(s * 1000) for part in parts for s in part)
    if shared:
        assert slots == list(range(180))
    else:
        assert len(set(slots)) == 60


def test_an_unreadable_file_is_started_anew(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "budget.json"
    path.write_bytes(b'{"format": 1, "paces": {"GET": {"rate": "cut sh')
    caplog.set_level(logging.WARNING, "gladly_client")
    assert _frozen(LockFilePaces(path)).acquire("GET") == 0.0
    assert "starting it anew" in caplog.text
    assert "cut sh" not in caplog.text
    assert json.loads(path.read_bytes())["paces"]["GET"]["next_free"] == pytest.approx(INTERVAL)


def test_a_rate_edited_to_nonsense_is_refused_not_used(tmp_path: Path) -> None:
    path = tmp_path / "budget.json"
    throttle = _frozen(LockFilePaces(path))
    throttle.acquire("GET")
    data = json.loads(path.read_bytes())
    data["paces"]["GET"]["rate"] = -5
    path.write_text(json.dumps(data))
    assert throttle.current_rate("GET") == RATE


def test_a_file_from_before_a_reboot_is_started_anew(tmp_path: Path) -> None:
    path = tmp_path / "budget.json"
    throttle = _frozen(LockFilePaces(path))
    for _ in range(50):
        throttle.acquire("GET")
    data = json.loads(path.read_bytes())
    # Written when the monotonic clock read far more than it does now: another boot.
    data["written"]["monotonic"] = time.monotonic() + 10_000
    path.write_text(json.dumps(data))
    assert throttle.acquire("GET") == 0.0


def test_a_removed_file_is_recreated_not_written_through_a_stale_handle(tmp_path: Path) -> None:
    path = tmp_path / "budget.json"
    throttle = _frozen(LockFilePaces(path))
    throttle.acquire("GET")
    path.unlink()
    assert throttle.acquire("GET") == 0.0
    assert path.exists()


def test_a_lock_held_elsewhere_fails_with_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(budget_module, "LOCK_TIMEOUT_SECONDS", 0)
    path = tmp_path / "budget.json"
    store = LockFilePaces(path)
    with FileLock(f"{path}.lock", thread_local=False), pytest.raises(RuntimeError) as caught:
        _frozen(store).acquire("GET")
    assert f"{path}.lock" in str(caught.value)
    assert "delete it" in str(caught.value)


def test_bulk_waits_behind_prompt_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "budget.json"
    bulk, prompt = _frozen(LockFilePaces(path)), _frozen(LockFilePaces(path))
    bulk.acquire("GET", Priority.BULK)
    bulk.acquire("GET", Priority.BULK)
    assert prompt.acquire("GET", Priority.PROMPT) == pytest.approx(2 * INTERVAL)


# -- configuration ---------------------------------------------------------------------------


def test_default_file_is_per_organisation_and_private(tmp_path: Path) -> None:
    one = default_budget_file("https://acme.gladly.com")
    assert one == default_budget_file("https://ACME.gladly.com/")
    assert one != default_budget_file("http://127.0.0.1:8080")
    assert "acme" not in one.name
    assert oct(one.parent.stat().st_mode & 0o777) == oct(0o700)


def test_default_folder_owned_by_someone_else_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    folder = tmp_path / f"gladly-pipeline-rate-{os.getuid()}"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)  # what another user's planted folder would allow
    with pytest.raises(GladlySettingsError, match="GLADLY_RATE_BUDGET_FILE"):
        default_budget_file("https://acme.gladly.com")


def test_from_env_shares_the_machine_budget_by_default(tmp_path: Path) -> None:
    env = {**ENV, "GLADLY_RATE_BUDGET_FILE": str(tmp_path / "b.json")}
    with GladlyClient.from_env(env) as one, GladlyClient.from_env(env) as two:
        assert one.requests_per_second == 8.0
        assert "shared by this machine" in one.throttle.description
        one.throttle.acquire("GET")
        assert two.throttle.acquire("GET", Priority.PROMPT) > 0


def test_from_env_process_budget_is_private() -> None:
    with GladlyClient.from_env({**ENV, "GLADLY_RATE_BUDGET": "process"}) as client:
        assert client.throttle.description == "this process only"


def test_from_env_refuses_prefect_without_a_budget() -> None:
    with pytest.raises(GladlySettingsError, match=r"flows\.rate_budget"):
        GladlyClient.from_env({**ENV, "GLADLY_RATE_BUDGET": "prefect"})


def test_an_unknown_budget_names_the_choices() -> None:
    with pytest.raises(GladlySettingsError, match="machine, process, prefect"):
        budget_kind({"GLADLY_RATE_BUDGET": "cloud"})


@pytest.mark.parametrize(
    ("env", "rate"),
    [
        ({}, 8.0),
        ({"GLADLY_RATE_SHARE": "0.5"}, 5.0),
        ({"GLADLY_RATE_SHARE": "1"}, 10.0),
        ({"GLADLY_RATE_SHARE": "0.5", "GLADLY_REQUESTS_PER_SECOND": "200"}, 200.0),
    ],
)
def test_rate_from_share_or_explicit(env: dict[str, str], rate: float) -> None:
    assert rate_from_env(env) == pytest.approx(rate)


@pytest.mark.parametrize("share", ["0", "-0.2", "1.5", "abc", "nan", "inf"])
def test_a_bad_share_says_what_it_must_be(share: str) -> None:
    with pytest.raises(GladlySettingsError, match="GLADLY_RATE_SHARE") as caught:
        rate_from_env({"GLADLY_RATE_SHARE": share})
    assert "<= 1" in str(caught.value)


@pytest.mark.parametrize(("budget", "shared"), [("machine", True), ("process", False)])
def test_three_processes_against_gladlys_limit(tmp_path: Path, budget: str, shared: bool) -> None:
    # Three interpreters at 8 requests a second each against one organisation's 10. Sharing
    # the machine budget, Gladly never refuses one; each pacing alone (the check's control),
    # together they take more than our share: Gladly's count runs down to its last request
    # (the answers' Ratelimit-Remaining-Second, which then pauses each of them) or refuses.
    # The truth is the sandbox's own count of 429s.
    with Sandbox(seed=3, customers=5) as sb:
        env = {
            "GLADLY_BASE_URL": sb.base_url,
            "GLADLY_USER": sb.user,
            "GLADLY_API_TOKEN": sb.api_token,
            "GLADLY_RATE_BUDGET": budget,
            "GLADLY_RATE_BUDGET_FILE": str(tmp_path / "budget.json"),
        }
        go = FileLock(tmp_path / "go.lock", thread_local=False)
        with go:
            children = _children(*[["read", "10", str(tmp_path / "go.lock")]] * 3, env=env)
            # Real processes start when their interpreters are ready: they begin together.
            assert [child.stdout.readline() for child in children if child.stdout] == [
                "ready\n"
            ] * 3
            sb.reset_stats()
        lowest = []
        for child in children:
            out, _ = child.communicate(timeout=120)
            assert child.returncode == 0
            lowest.append(json.loads(out)["lowest_remaining"])
        stats = sb.stats()
    answered = stats["by_method"]["GET"]
    assert answered["200"] == 30
    if shared:
        assert stats["rate_limited"] == 0
    else:
        assert stats["rate_limited"] > 0 or min(lowest) <= 1, lowest
