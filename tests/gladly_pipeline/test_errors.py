"""The table from what escaped a command to its exit code and words (gladly_pipeline.errors)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from gladly_archive import ArchiveLockedError
from gladly_archive.keyed import RegionSettingError
from gladly_archive.location import ArchiveRootError
from gladly_client import (
    AuthenticationError,
    BadRequestError,
    GladlyConnectionError,
    GladlySettingsError,
    GladlyTimeoutError,
    IncompleteDownloadError,
    MalformedResponseError,
    NotFoundError,
    NotModelledError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)
from gladly_pipeline.errors import describe
from gladly_pipeline.run_state import RunState

API = {"method": "GET", "path_template": "/customer-profiles/{id}"}
EMAIL = "dana.private@example.com"


@pytest.mark.parametrize(
    ("exc", "code", "words"),
    [
        (GladlySettingsError("missing Gladly settings: set GLADLY_USER"), 78, "GLADLY_USER"),
        (ArchiveRootError("the archive root x is a file"), 78, "is a file"),
        (RegionSettingError("GLADLY_DEFAULT_REGION='XX' is not a region code"), 78, "region"),
        (AuthenticationError(status=401, **API), 78, "check GLADLY_USER and GLADLY_API_TOKEN"),
        (PermissionDeniedError(status=403, **API), 78, "lacks the permission or role"),
        (GladlyConnectionError("GET", "/x", "ConnectionError: Connection refused"), 69, "reach"),
        (GladlyTimeoutError("GET", "/x", "ReadTimeout"), 69, "in time"),
        (IncompleteDownloadError("GET", "/x", 10, 20), 69, "cut short"),
        (MalformedResponseError("GET", "/x", status=200, received=3), 69, "garbled"),
        (ServerError(status=503, **API), 69, "kept failing after every retry"),
        (RateLimitError(status=429, **API), 69, "still rate limited"),
        (BadRequestError(status=400, **API), 1, "did not accept a request"),
        (NotFoundError(status=404, **API), 1, "returned 404"),
        (ResponseValidationError("GET", "/x", "Customer", ["id"]), 1, "shape"),
        (NotModelledError(method="POST", path_template="/tasks"), 1, "rehearsal cannot show"),
        (ArchiveLockedError("archive is locked by live process 12"), 1, "wait for the other run"),
        (KeyError(EMAIL), 1, "unexpected internal error (KeyError)"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_each_failure_has_its_code_and_at_most_two_lines(
    exc: BaseException, code: int, words: str
) -> None:
    failure = describe(exc)
    assert failure.code == code
    assert 1 <= len(failure.lines()) <= 2
    assert words in " ".join(failure.lines())
    assert EMAIL not in " ".join(failure.lines())  # an unexpected error's text is never shown


def test_a_call_the_sandbox_does_not_model_is_never_called_gladly_s_refusal() -> None:
    failure = describe(NotModelledError(method="POST", path_template="/tasks"))
    said = " ".join(failure.lines())
    assert failure.code == 1
    assert "the sandbox does not model POST /tasks: this is not Gladly's answer" in said
    assert "did not accept" not in said
    assert "refused" not in said


def test_a_path_is_configuration_under_the_archive_root_and_usage_elsewhere(
    tmp_path: Path,
) -> None:
    run = RunState(root=str(tmp_path / "archive"))
    denied = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "archive" / "x"))
    assert describe(denied, run).code == 78
    assert "cannot be written by this user" in describe(denied, run).what
    given = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "plans.csv"))
    assert describe(given, run).code == 2
    missing = FileNotFoundError(errno.ENOENT, "No such file or directory", "nope.yaml")
    assert describe(missing, run).code == 2
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "archive" / "y"))
    assert describe(full, run).code == 1


def test_ctrl_c_names_what_the_disk_says_was_cut_off_and_never_fails_on_it() -> None:
    run = RunState(counted="target(s) finished", done=2, resume="the rerun re-checks it")
    run.current = "a guess made while running"
    run.cut_off = lambda: "1 target(s) cut off after the call was sent"
    assert run.interrupted_lines() == [
        "Interrupted: 2 target(s) finished; 1 target(s) cut off after the call was sent.",
        "Nothing half-done is lost: run the same command again to resume (the rerun re-checks it).",
    ]
    run.cut_off = lambda: ""  # the disk says nothing was cut off: the guess is not repeated
    assert run.interrupted_lines()[0] == "Interrupted: 2 target(s) finished."

    def unreadable() -> str:
        raise OSError("the audit log cannot be read")

    run.cut_off = unreadable  # a courtesy: the count made while running is said instead
    assert run.interrupted_lines()[0] == (
        "Interrupted: 2 target(s) finished; a guess made while running."
    )
