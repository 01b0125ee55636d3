"""How a failure reaches the person at the terminal: one or two lines and a documented exit code."""

from __future__ import annotations

import errno
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer
from typer.core import TyperGroup

from gladly_archive import ArchiveError, ArchiveLockedError
from gladly_archive.layout import OldLayoutError
from gladly_archive.settings import SettingError
from gladly_client import (
    AuthenticationError,
    GladlyConnectionError,
    GladlyError,
    GladlySettingsError,
    GladlyTimeoutError,
    IncompleteDownloadError,
    MalformedResponseError,
    NotModelledError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)
from gladly_client.constants import ENV_BASE_URL
from gladly_pipeline.exit_codes import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
)
from gladly_pipeline.run_state import RunState, start_run

__all__ = ["SETTINGS_ERRORS", "Failure", "PipelineGroup", "describe"]

# A GLADLY_* setting that is missing or wrong. Commands that turn their own ValueErrors into
# exit 2 let these through (`except SETTINGS_ERRORS: raise`), so every one of them exits 78.
SETTINGS_ERRORS = (GladlySettingsError, SettingError)

CONFIG = "Configuration error"
UNAVAILABLE = "Gladly unavailable"
RERUN = "then run the same command again"
# A path given on the command line that cannot be used (not the archive root: its own check).
_BAD_PATH_ERRNOS = frozenset({errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.EACCES, errno.EPERM})


@dataclass(frozen=True)
class Failure:
    """What one failure tells the user: the exit code, what went wrong and where, the fix."""

    code: int
    what: str
    fix: str = ""

    def lines(self) -> list[str]:
        """At most two lines: what and where, then (indented) how to fix it."""
        return [self.what, *([f"  {self.fix}"] if self.fix else [])]


def describe(exc: BaseException, run: RunState | None = None) -> Failure:
    """The exit code and the words for an exception no command handled itself.

    Messages are built from what our exceptions say (method, path template, status, codes,
    setting names, paths of our own files), never from request or response bodies.
    """
    if isinstance(exc, SETTINGS_ERRORS):
        return Failure(EXIT_CONFIG, f"{CONFIG}: {exc}")
    if isinstance(exc, GladlyError):
        return _gladly_failure(exc, _gladly_host())
    if isinstance(exc, ArchiveLockedError):
        return Failure(EXIT_FAILED, f"Failed: {exc}", f"wait for the other run to finish, {RERUN}")
    if isinstance(exc, OldLayoutError):
        # A refusal: nothing was written; the message names the command that upgrades it.
        return Failure(EXIT_USAGE, f"Refused: {exc}")
    if isinstance(exc, ArchiveError):
        return Failure(EXIT_FAILED, f"Failed: {exc}")
    if isinstance(exc, OSError):
        return _os_failure(exc, run.root if run is not None else None)
    return Failure(
        EXIT_FAILED,
        f"Failed: unexpected internal error ({type(exc).__name__})",
        "run it again as `gladly-pipeline --debug …` to see where, and report it",
    )


def _gladly_failure(exc: GladlyError, host: str) -> Failure:
    at = f" at {host}" if host else ""
    if isinstance(exc, AuthenticationError):
        return Failure(
            EXIT_CONFIG,
            f"{CONFIG}: Gladly{at} refused the API user's credentials ({exc})",
            "check GLADLY_USER and GLADLY_API_TOKEN (the API user's email and its API token)",
        )
    if isinstance(exc, PermissionDeniedError):
        return Failure(
            EXIT_CONFIG,
            f"{CONFIG}: the API user lacks the permission or role this call needs ({exc})",
            "in Gladly, give the API user the API User role, and Compliance Administrator to "
            "delete profiles",
        )
    if isinstance(exc, GladlyTimeoutError):
        return Failure(
            EXIT_UNAVAILABLE,
            f"{UNAVAILABLE}: no answer{at} in time, after every retry ({exc})",
            f"check the network and GLADLY_BASE_URL, {RERUN}",
        )
    if isinstance(exc, MalformedResponseError | IncompleteDownloadError):
        return Failure(
            EXIT_UNAVAILABLE,
            f"{UNAVAILABLE}: its answers{at} kept arriving garbled or cut short ({exc})",
            f"something between here and Gladly (a proxy?) may interfere; {RERUN} later",
        )
    if isinstance(exc, GladlyConnectionError):
        return Failure(
            EXIT_UNAVAILABLE,
            f"{UNAVAILABLE}: cannot reach it{at}, after every retry ({exc})",
            f"check GLADLY_BASE_URL and the network, {RERUN}",
        )
    if isinstance(exc, ServerError):
        return Failure(
            EXIT_UNAVAILABLE,
            f"{UNAVAILABLE}: Gladly{at} kept failing after every retry ({exc})",
            f"Gladly may be down or busy; {RERUN} later",
        )
    if isinstance(exc, RateLimitError):
        return Failure(
            EXIT_UNAVAILABLE,
            f"{UNAVAILABLE}: still rate limited after every retry ({exc})",
            "another integration may be using the organisation's budget; lower "
            f"GLADLY_REQUESTS_PER_SECOND or wait, {RERUN}",
        )
    if isinstance(exc, NotModelledError):
        # The sandbox's limit, not Gladly's refusal: neither bad input nor a network fault.
        return Failure(
            EXIT_FAILED,
            f"Failed: rehearsal cannot show this step ({exc})",
            f"the server{at} is a rehearsal sandbox; only Gladly itself can show what this does",
        )
    if isinstance(exc, ResponseValidationError):
        return Failure(
            EXIT_FAILED,
            f"Failed: Gladly answered in a shape this release does not expect ({exc})",
            "Gladly may have changed its API: run it again with --debug, and report it",
        )
    return Failure(EXIT_FAILED, f"Failed: Gladly did not accept a request ({exc})")


def _os_failure(exc: OSError, root: str | None) -> Failure:
    name = str(exc.filename) if exc.filename is not None else ""
    reason = exc.strerror or type(exc).__name__
    under_root = bool(name and root and "://" not in root and _is_under(name, root))
    if under_root and (isinstance(exc, PermissionError) or exc.errno == errno.EROFS):
        return Failure(
            EXIT_CONFIG,
            f"{CONFIG}: the archive root {root} cannot be written by this user ({reason}: {name})",
            "set --root or GLADLY_PIPELINE_ROOT to a directory this user can read and write",
        )
    if name and not under_root and exc.errno in _BAD_PATH_ERRNOS:
        return Failure(
            EXIT_USAGE, f"Error: cannot use {name}: {reason}", "check the path given and its rights"
        )
    return Failure(EXIT_FAILED, f"Failed: {reason}" + (f": {name}" if name else ""))


def _is_under(path: str, root: str) -> bool:
    try:
        return Path(path).absolute().is_relative_to(Path(root).absolute())
    except (OSError, ValueError):
        return False


def _gladly_host() -> str:
    """Where the settings say Gladly is: host and port only (never a user, a path or a query)."""
    try:
        parts = urlsplit(os.environ.get(ENV_BASE_URL, "").strip())
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if host and port else host


def _echo(lines: Sequence[str]) -> None:
    # Plain, unwrapped lines: a narrow terminal wraps them, but they stay two lines for a log.
    for line in lines:
        typer.echo(line, err=True)


class PipelineGroup(TyperGroup):
    """The root command: a failure no command handled becomes one or two lines on stderr and a
    documented exit code (gladly_pipeline.exit_codes); `--debug` adds the traceback.

    Usage errors (an unknown option, a bad value) stay click's own, exit 2, in two plain lines.
    """

    def invoke(self, ctx: Any) -> Any:
        """Run the command; map what escapes it (Ctrl-C included) to its lines and exit code."""
        run = start_run()
        debug = bool(ctx.params.get("debug"))
        try:
            with _log_lines(debug):
                return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except BrokenPipeError:
            raise  # the reader went away (`… | head`): typer exits 1 quietly
        except KeyboardInterrupt:
            if debug:
                traceback.print_exc()
            _echo(run.interrupted_lines())
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            failure = describe(exc, run)
            if debug:
                traceback.print_exc()
            _echo(failure.lines())
            raise typer.Exit(failure.code) from None

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Parse and run; a usage error prints two plain lines (what, and where to get help)."""
        try:
            code = super().main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
        except typer.TyperException as exc:
            _echo(_usage_lines(exc))
            code = exc.exit_code
        except typer.Abort:
            _echo(["Aborted."])
            code = EXIT_FAILED
        code = code if isinstance(code, int) else EXIT_OK
        if standalone_mode:
            sys.exit(code)
        return code


class _StderrLines(logging.Handler):
    """Each record on whatever sys.stderr is when it is logged: a progress bar on a terminal
    redirects it, to print lines above the bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


class _OneLine(logging.Formatter):
    """A log record as its message alone: no traceback (that is --debug's)."""

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


def _not_a_retry(record: logging.LogRecord) -> bool:
    # The client's retry notices ("retrying … attempt 2 of 6"): what finally failed is said once,
    # at the end; --debug shows every attempt.
    return record.name.partition(".")[0] != "gladly_client"


@contextmanager
def _log_lines(debug: bool) -> Iterator[None]:
    """While a command runs, what our libraries log at WARNING and above reaches stderr as one
    line each (Python's last-resort handler would add tracebacks and every retry notice).
    Left alone where logging is configured already (pytest, Prefect)."""
    root = logging.getLogger()
    if root.handlers:
        yield
        return
    handler = _StderrLines(logging.WARNING)
    if debug:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(_OneLine())
        handler.addFilter(_not_a_retry)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


def _usage_lines(exc: typer.TyperException) -> list[str]:
    if type(exc).__name__ == "NoArgsIsHelpError":
        # Its message is the help itself, which typer has printed.
        return []
    lines = [f"Error: {' '.join(exc.format_message().split())}"]
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        lines.append(f"Try '{ctx.command_path} --help' for help.")
    return lines
