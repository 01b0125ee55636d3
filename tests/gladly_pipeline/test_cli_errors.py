"""Every failure a user can cause, through the real command line: one or two lines, no traceback
(unless --debug), the documented exit code; Ctrl-C says what was done and a rerun resumes."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import retention_policies
from gladly_archive import Archive
from gladly_client import GladlyClient
from gladly_pipeline.cli import app
from gladly_pipeline.exit_codes import (
    EXIT_CONFIG,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
)
from gladly_sandbox import Sandbox
from gladly_sandbox.settings import ANY_ROUTE, FaultSpec, SandboxUser, default_users
from tests._console import flat, says
from tests._interrupt import interrupt_when

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SHIPPED = Path(retention_policies.__file__).parent / "policies"
NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
SEED = 17
NO_API_ROLE = SandboxUser("no-api-role@sandbox.example", "tok-no-api-role", frozenset())
TOKEN_TRIED = "tok-wrong-0123456789"
NARROW = "40"
ITEMS_FILE = "conversation_items.jsonl"
SETTINGS = (
    "GLADLY_BASE_URL",
    "GLADLY_USER",
    "GLADLY_API_TOKEN",
    "GLADLY_REQUESTS_PER_SECOND",
    "GLADLY_AUDIT_KEY",
    "GLADLY_PIPELINE_ROOT",
    "GLADLY_PIPELINE_DEBUG",
    "GLADLY_DEFAULT_REGION",
)


def message_lines(output: str) -> list[str]:
    """The non-empty lines a command printed (rich may add blank ones around a progress bar)."""
    return [line for line in output.splitlines() if line.strip()]


def assert_one_or_two_lines(output: str) -> None:
    """No traceback, and at most two lines: what went wrong (and where), then the fix."""
    assert "Traceback" not in output, output
    lines = message_lines(output)
    assert 1 <= len(lines) <= 2, output


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    users = [*default_users(SEED), NO_API_ROLE]
    with Sandbox(
        seed=SEED, customers=20, now=NOW, frozen_clock=True, rate_limit_per_second=None, users=users
    ) as sb:
        yield sb


@pytest.fixture
def failing_sandbox() -> Iterator[Sandbox]:
    """Every API answer a 5xx."""
    with Sandbox(
        seed=SEED,
        customers=5,
        now=NOW,
        frozen_clock=True,
        rate_limit_per_second=None,
        faults={ANY_ROUTE: FaultSpec(error_rate=1.0)},
    ) as sb:
        yield sb


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's client retries without sleeping (its backoff would take 15 s)."""
    original: Callable[..., GladlyClient] = GladlyClient.from_env.__func__  # type: ignore[attr-defined]

    def from_env(cls: type[GladlyClient], env: Any = None, **options: Any) -> GladlyClient:
        return original(cls, env, **{"sleep": lambda _seconds: None, **options})

    monkeypatch.setattr(GladlyClient, "from_env", classmethod(from_env))


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class World:
    """What a case may point its command at."""

    tmp: Path
    long: Path  # a directory with a very long path, as a deep TMPDIR gives
    sandbox: Sandbox
    locked: list[Path]

    def unreadable(self, path: Path) -> Path:
        """`path` with every permission taken away (given back after the test); skips the test
        where this user reads it anyway (root with its capabilities)."""
        self.locked.append(path)
        path.chmod(0)
        if os.access(path, os.R_OK):
            pytest.skip("this user reads everything (root with its capabilities)")
        return path

    def gladly(self, **changes: str) -> dict[str, str]:
        env = {
            "GLADLY_BASE_URL": self.sandbox.base_url,
            "GLADLY_USER": self.sandbox.user,
            "GLADLY_API_TOKEN": self.sandbox.api_token,
            "GLADLY_REQUESTS_PER_SECOND": "200",
        }
        return {**env, **changes}


@pytest.fixture
def world(tmp_path: Path, sandbox: Sandbox) -> Iterator[World]:
    long = tmp_path.joinpath(*(f"{n:02d}-{'a-rather-long-directory-name' * 2}" for n in range(5)))
    long.mkdir(parents=True)
    locked: list[Path] = []
    yield World(tmp_path, long, sandbox, locked)
    for path in locked:  # given back, so that pytest can remove them
        path.chmod(0o755)


def _file(world: World) -> tuple[list[str], dict[str, str]]:
    (world.long / "archive").write_text("not a directory")
    return ["export", "--root", str(world.long / "archive")], world.gladly()


def _file_from_env(world: World) -> tuple[list[str], dict[str, str]]:
    (world.long / "archive").write_text("not a directory")
    return ["plan", "--policies", str(SHIPPED)], {
        "GLADLY_PIPELINE_ROOT": str(world.long / "archive")
    }


def _unreachable_root(world: World) -> tuple[list[str], dict[str, str]]:
    (world.long / "locked" / "archive").mkdir(parents=True)
    world.unreadable(world.long / "locked")
    return ["fold", "--root", str(world.long / "locked" / "archive")], {}


def _unreadable_root(world: World) -> tuple[list[str], dict[str, str]]:
    (world.long / "archive").mkdir()
    return ["audit", "verify", "--root", str(world.unreadable(world.long / "archive"))], {}


def _scheme_mistyped(world: World) -> tuple[list[str], dict[str, str]]:
    return ["check"], world.gladly(GLADLY_BASE_URL="htps://acme.gladly.com")


def _host_mistyped(world: World) -> tuple[list[str], dict[str, str]]:
    return ["export", "--root", str(world.long)], world.gladly(GLADLY_BASE_URL="http://exa mple")


def _settings_missing(world: World) -> tuple[list[str], dict[str, str]]:
    return ["export", "--root", str(world.long)], {}


def _key_missing(world: World) -> tuple[list[str], dict[str, str]]:
    return ["audit", "verify", "--root", str(world.long)], {}


def _refused(world: World) -> tuple[list[str], dict[str, str]]:
    return ["check"], world.gladly(GLADLY_BASE_URL=f"http://127.0.0.1:{closed_port()}")


def _refused_export(world: World) -> tuple[list[str], dict[str, str]]:
    base = f"http://127.0.0.1:{closed_port()}"
    return ["export", "--root", str(world.long)], world.gladly(GLADLY_BASE_URL=base)


def _wrong_token(world: World) -> tuple[list[str], dict[str, str]]:
    return ["export", "--root", str(world.long)], world.gladly(GLADLY_API_TOKEN=TOKEN_TRIED)


def _wrong_token_check(world: World) -> tuple[list[str], dict[str, str]]:
    return ["check"], world.gladly(GLADLY_API_TOKEN=TOKEN_TRIED)


def _no_api_role(world: World) -> tuple[list[str], dict[str, str]]:
    return ["check"], world.gladly(
        GLADLY_USER=NO_API_ROLE.email, GLADLY_API_TOKEN=NO_API_ROLE.token
    )


def _no_api_role_export(world: World) -> tuple[list[str], dict[str, str]]:
    env = world.gladly(GLADLY_USER=NO_API_ROLE.email, GLADLY_API_TOKEN=NO_API_ROLE.token)
    return ["export", "--root", str(world.long)], env


def _policies_unreadable(world: World) -> tuple[list[str], dict[str, str]]:
    policy = world.long / "policy.yaml"
    policy.write_text((SHIPPED / "delete-inactive-customers.yaml").read_text())
    return ["plan", "--policies", str(world.unreadable(policy)), "--root", str(world.long)], {}


def _policies_dir_unreadable(world: World) -> tuple[list[str], dict[str, str]]:
    policies = world.long / "policies"
    policies.mkdir()
    policy = policies / "policy.yaml"
    policy.write_text((SHIPPED / "delete-inactive-customers.yaml").read_text())
    world.unreadable(policy)
    return ["plan", "--policies", str(policies), "--root", str(world.long)], {}


def _policies_not_text(world: World) -> tuple[list[str], dict[str, str]]:
    policy = world.long / "policy.yaml"
    policy.write_bytes(b"name: \xff\xfe\x00 not utf-8\n")
    return ["policies", "validate", str(policy), "--no-names"], {}


def _unknown_option(world: World) -> tuple[list[str], dict[str, str]]:
    return ["export", "--frobnicate", "--root", str(world.long)], {}


def _bad_value(world: World) -> tuple[list[str], dict[str, str]]:
    return ["fold", "--root", str(world.long), "--through", "2025-13-01"], {}


def _unknown_command(world: World) -> tuple[list[str], dict[str, str]]:
    return ["exprot"], {}


Case = Callable[[World], tuple[list[str], dict[str, str]]]
CASES: list[tuple[Case, int, str]] = [
    (_file, EXIT_CONFIG, "archive is a file, not a directory"),
    (_file_from_env, EXIT_CONFIG, "set --root or GLADLY_PIPELINE_ROOT"),
    (_unreachable_root, EXIT_CONFIG, "cannot be reached"),
    (_unreadable_root, EXIT_CONFIG, "cannot be read by this user"),
    (_scheme_mistyped, EXIT_CONFIG, "got the scheme 'htps'"),
    (_host_mistyped, EXIT_CONFIG, "'exa mple', which cannot be a host name"),
    (_settings_missing, EXIT_CONFIG, "set GLADLY_BASE_URL, GLADLY_USER, GLADLY_API_TOKEN"),
    (_key_missing, EXIT_CONFIG, "GLADLY_AUDIT_KEY is not set"),
    (_refused, EXIT_UNAVAILABLE, "Connection refused"),
    (_refused_export, EXIT_UNAVAILABLE, "check GLADLY_BASE_URL and the network"),
    (_wrong_token, EXIT_CONFIG, "check GLADLY_USER and GLADLY_API_TOKEN"),
    (_wrong_token_check, EXIT_CONFIG, "refused the API user's credentials"),
    (_no_api_role, EXIT_CONFIG, "the API user lacks the permission or role"),
    (_no_api_role_export, EXIT_CONFIG, "give the API user the API User role"),
    (_policies_unreadable, EXIT_USAGE, "is not readable"),
    (
        _policies_dir_unreadable,
        EXIT_USAGE,
        "policy.yaml: (document): cannot read: Permission denied",
    ),
    (_policies_not_text, EXIT_USAGE, "cannot read: not UTF-8 text"),
    (_unknown_option, EXIT_USAGE, "No such option: --frobnicate"),
    (_bad_value, EXIT_USAGE, "Invalid value for '--through'"),
    (_unknown_command, EXIT_USAGE, "No such command 'exprot'"),
]


@pytest.mark.parametrize(
    ("case", "code", "phrase"), CASES, ids=[c.__name__.strip("_") for c, _, _ in CASES]
)
def test_a_user_caused_failure_is_one_or_two_lines_and_its_exit_code(
    world: World, no_waiting: None, case: Case, code: int, phrase: str
) -> None:
    args, env = case(world)
    cleared: dict[str, str | None] = dict.fromkeys(SETTINGS)
    result = CliRunner().invoke(app, args, env={**cleared, "COLUMNS": NARROW, **env})
    assert result.exit_code == code, result.output
    assert_one_or_two_lines(result.output)
    assert says(result.output, phrase), result.output
    for secret in (TOKEN_TRIED, world.sandbox.api_token, NO_API_ROLE.token):
        assert secret not in result.output
    assert world.sandbox.user not in result.output  # an email: never printed


def test_gladly_failing_after_every_retry_is_unavailable(
    failing_sandbox: Sandbox, no_waiting: None, tmp_path: Path
) -> None:
    sb = failing_sandbox
    env = {
        **dict.fromkeys(SETTINGS),
        "GLADLY_BASE_URL": sb.base_url,
        "GLADLY_USER": sb.user,
        "GLADLY_API_TOKEN": sb.api_token,
        "COLUMNS": NARROW,
    }
    for args in (["check"], ["export", "--root", str(tmp_path)]):
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == EXIT_UNAVAILABLE, result.output
        assert_one_or_two_lines(result.output)
        assert says(result.output, "kept failing after every retry")


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--debug", "check"], {}), (["check"], {"GLADLY_PIPELINE_DEBUG": "1"})],
    ids=["option", "environment"],
)
def test_debug_shows_the_traceback_and_keeps_the_exit_code(
    args: list[str], env: dict[str, str]
) -> None:
    base: dict[str, str | None] = dict.fromkeys(SETTINGS)
    result = CliRunner().invoke(app, args, env={**base, **env})
    assert result.exit_code == EXIT_CONFIG
    assert "Traceback" in result.output
    assert says(result.output, "GladlySettingsError")
    assert says(result.output, "Configuration error: missing Gladly settings")


# The client's retries, without their waits, in a real process (so that Python's own logging,
# not pytest's capture, decides what reaches stderr).
NO_WAIT_CLI = (
    "import time; time.sleep = lambda _s: None; from gladly_pipeline.cli import main; main()"
)


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_a_real_process_says_a_refused_connection_in_two_lines(debug: bool) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k not in SETTINGS},
        "PYTHONPATH": str(REPO),
        "COLUMNS": NARROW,
        "GLADLY_BASE_URL": f"http://127.0.0.1:{closed_port()}",
        "GLADLY_USER": "api-user@acme.example.com",
        "GLADLY_API_TOKEN": TOKEN_TRIED,
    }
    args = ["--debug", "check"] if debug else ["check"]
    done = subprocess.run(
        [sys.executable, "-c", NO_WAIT_CLI, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == EXIT_UNAVAILABLE, done.stderr
    if debug:  # every retry and the traceback, then the same two lines
        assert "attempt 1 of 6" in done.stderr
        assert "Traceback" in done.stderr
        assert message_lines(done.stderr)[-2].startswith("Gladly unavailable: cannot reach it")
    else:
        assert_one_or_two_lines(done.stderr)
        assert says(done.stderr, "Connection refused")
    assert TOKEN_TRIED not in done.stderr
    assert "api-user@acme.example.com" not in done.stderr


def test_the_help_documents_every_exit_code() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    codes = ("0 done", "1 failed", "2 bad option", "3 done", "69 Gladly", "78 config", "130 inter")
    for code in codes:
        assert says(result.output, code), code
    assert says(result.output, "--debug")


# --- Ctrl-C ----------------------------------------------------------------------------------


def _manifests(root: Path) -> int:
    return len(list((root / "_manifest").glob("job_id=*.parquet")))


def _export(env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    with out.with_suffix(".out").open("wb") as stdout, out.with_suffix(".err").open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "gladly_pipeline.cli", "export"],
            cwd=REPO,
            env=env,
            stdout=stdout,
            stderr=err,
        )


@pytest.mark.slow
def test_ctrl_c_during_an_export_says_what_was_done_and_a_rerun_finishes_it(
    tmp_path: Path,
) -> None:
    root = tmp_path / "archive"
    with Sandbox(
        seed=5, customers=60, now=NOW, frozen_clock=True, rate_limit_per_second=None, latency_ms=60
    ) as sb:
        env = {
            **{k: v for k, v in os.environ.items() if k not in SETTINGS},
            "PYTHONPATH": str(REPO),
            "COLUMNS": NARROW,
            "GLADLY_BASE_URL": sb.base_url,
            "GLADLY_USER": sb.user,
            "GLADLY_API_TOKEN": sb.api_token,
            "GLADLY_REQUESTS_PER_SECOND": "200",
            "GLADLY_PIPELINE_ROOT": str(root),
        }
        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=200) as gladly:
            completed = {job.id for job in gladly.exports.list_jobs(status="COMPLETED")}
        assert len(completed) > 5  # enough work left to interrupt after the first job

        # Interrupt once the first job is archived: the sandbox answers the child's next
        # request only after that job's manifest is on disk (jobs commit one by one), so the
        # sandbox's own request counter says when, with no polling of the clock.
        archived_one = threading.Event()
        stats = sb.server.stats
        count = stats.record

        def record(route: str, method: str, status: int | str) -> None:
            count(route, method, status)
            if _manifests(root) >= 1:
                archived_one.set()

        stats.record = record  # type: ignore[method-assign]
        first = _export(env, tmp_path / "first")
        code = interrupt_when(archived_one, first, "job archived", still_running=True)
        stderr = (tmp_path / "first.err").read_text()
        assert code == EXIT_INTERRUPTED, stderr
        assert "Traceback" not in stderr
        archived = _manifests(root)
        assert 1 <= archived < len(completed), stderr
        said = re.search(r"Interrupted:(\d+)exportjob\(s\)archivedbythisrun", flat(stderr))
        assert said is not None, stderr
        assert int(said.group(1)) == archived  # counted from the manifests, as on disk
        assert says(stderr, "Nothing half-done is lost: run the same command again to resume")
        block = message_lines(stderr)[-2:]  # the last two lines, after the progress bars
        assert block[0].startswith("Interrupted: "), stderr
        assert block[1].startswith("Nothing half-done is lost"), stderr
        assert sb.api_token not in stderr

        second = _export(env, tmp_path / "second")
        assert second.wait(timeout=300) == EXIT_OK, (tmp_path / "second.err").read_text()

        # The truth from outside the code under test: the files the sandbox served.
        served = {
            json.loads(line)["id"]
            for job in completed
            for line in sb.exports.file_path(job, "conversation_items.jsonl")
            .read_text()
            .split("\n")
            if line.strip()
        }
        assert sb.state()["exports"]["jobs_completed"] == len(completed)

    archive = Archive(root)
    assert archive.archived_job_ids() == completed  # every job Gladly lists, once
    assert archive.read_manifest().num_rows == len(completed)
    items = archive.dataset("items").to_table(columns=["item_id"]).column("item_id").to_pylist()
    assert len(items) == len(set(items))  # no duplicates from the interrupted job
    assert set(items) == served
