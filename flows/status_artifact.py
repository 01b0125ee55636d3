"""The status as a Prefect artifact (`gladly-status`): what needs a person on top, then the
sections `gladly-pipeline status` prints, the same lines. Ids and counts only. Reading it never
fails the flow that publishes it: a read that raises is published (and logged, in one line) as
a status that could not be read, and why."""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import nullcontext
from datetime import UTC, datetime

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from evidence.status import in_status_order, read_audit_status
from flows.secrets import run_client
from gladly_archive.keyed import optional_audit_key
from gladly_client import GladlyClient
from ingest.status import read_archive_status

__all__ = ["STATUS_ARTIFACT", "publish_status", "status_markdown"]

# Lowercase letters, digits and dashes: what Prefect accepts as an artifact key.
STATUS_ARTIFACT = "gladly-status"


def status_markdown(
    root: str, *, now: datetime, audit_key: bytes | None, client: GladlyClient | None = None
) -> tuple[list[str], str]:
    """Read both halves of the status (as `gladly-pipeline status` does; `client` lists Gladly's
    export jobs) and return what needs attention and the artifact's markdown."""
    archive = read_archive_status(root, now=now, audit_key=audit_key, client=client)
    audit = read_audit_status(root, now=now, audit_key=audit_key)
    both = in_status_order(archive.attention(), audit.attention())
    notes = [note for part in both.values() for note in part]
    source = "its audit log and Gladly's export jobs" if client is not None else "its audit log"
    lines = [*_heading(root, now), f"  read from the archive, {source}"]
    for block in in_status_order(archive.lines(), audit.lines()).values():
        lines += ["", *block]
    parts = [f"# {'Needs attention' if notes else 'Nothing needs attention'}", ""]
    if notes:
        parts += [_fenced([f"- {note}" for note in notes]), ""]
    parts += ["## Status", "", _fenced(lines)]
    return notes, "\n".join(parts) + "\n"


def publish_status(
    root: str, env: Mapping[str, str], client: GladlyClient | None = None
) -> list[str] | None:
    """Publish the status of the archive at `root` as the `gladly-status` artifact; the audit
    key comes from `env` (GLADLY_AUDIT_KEY, as the flows read it), and Gladly's export jobs
    are listed with `client` or, without one, with a client made from `env` (so that every
    flow publishes the same, live, status). What needs attention is returned, or None when the
    status could not be read: then one warning line names the error (no traceback) and the
    artifact says so."""
    now = datetime.now(UTC)
    try:
        with nullcontext(client) if client is not None else run_client(env) as live:
            notes, markdown = status_markdown(
                root, now=now, audit_key=optional_audit_key(env), client=live
            )
    except Exception as exc:  # whatever it is: the status must never fail the flow
        why = _why(exc)
        get_run_logger().warning("STATUS NOT READ: %s", why)
        create_markdown_artifact(
            key=STATUS_ARTIFACT,
            markdown="# The status could not be read\n\n"
            + _fenced([*_heading(root, now), f"  {why}"])
            + "\n",
            description="The status could not be read",
        )
        return None
    create_markdown_artifact(
        key=STATUS_ARTIFACT,
        markdown=markdown,
        description=f"{len(notes)} thing(s) need attention" if notes else "Nothing needs attention",
    )
    return notes


# Our rooms' errors are written to name ids, counts and settings, never a person's data; any
# other error (a library's) may quote what it choked on, so only its class is published.
_OUR_ROOMS = frozenset(
    {"gladly_client", "gladly_archive", "audit_log", "ingest", "evidence", "flows"}
    | {"retention_policies", "erasure"}
)


def _why(exc: Exception) -> str:
    """The error in one line: class and message for ours (and a file system error's code and
    path), the class alone for anything else."""
    name = type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return " ".join(f"{name}: {exc.strerror}: {exc.filename or ''}".split())
    if type(exc).__module__.split(".")[0] in _OUR_ROOMS:
        return " ".join(f"{name}: {exc}".split())
    return f"{name} (run `gladly-pipeline status` for the details)"


def _heading(root: str, now: datetime) -> list[str]:
    return [f"Status at {now:%Y-%m-%d %H:%M}Z", f"  archive {root}"]


def _fenced(lines: list[str]) -> str:
    """The lines as a code block (kept as printed: no markdown read in ids or problems), its
    fence longer than any run of backticks inside."""
    fence = "`" * max(3, _backticks(lines) + 1)
    return "\n".join([f"{fence}text", *lines, fence])


def _backticks(lines: list[str]) -> int:
    """The longest run of backticks in the lines."""
    return max((len(run) for run in re.findall("`+", "\n".join(lines))), default=0)
