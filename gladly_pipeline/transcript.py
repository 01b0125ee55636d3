"""`gladly-pipeline transcript`: one conversation, or a customer's, as a person reads it."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path
from typing import Annotated, Literal, NoReturn

import typer

from gladly_archive.location import resolve_archive_root
from gladly_pipeline.common import RootOption
from gladly_pipeline.exit_codes import EXIT_USAGE

# A format named by --out's suffix when --format is not given.
_SUFFIX_FORMATS = {
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
}
# Ids that can be repeated in a message as given (anything else could be a terminal escape).
_PRINTABLE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Filesystems without hard links refuse os.link with one of these.
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


def transcript(
    conversation_id: Annotated[
        str | None, typer.Argument(help="The conversation's Gladly id.", show_default=False)
    ] = None,
    customer: Annotated[
        str | None,
        typer.Option(
            "--customer",
            metavar="EMAIL",
            help="Every conversation of the customers whose archived record has this email.",
        ),
    ] = None,
    customer_id: Annotated[
        str | None,
        typer.Option("--customer-id", metavar="ID", help="Every conversation of this customer."),
    ] = None,
    fmt: Annotated[
        Literal["text", "markdown", "html"] | None,
        typer.Option(
            "--format",
            help="text, markdown or html (default: from --out's suffix, else text).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="FILE",
            help="Write to this file (mode 0600, atomically) instead of standard output.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Let --out replace an existing file.")
    ] = False,
    no_notes: Annotated[
        bool,
        typer.Option(
            "--no-notes",
            help="Leave internal notes out (a copy a customer may see); the header says so.",
        ),
    ] = False,
    root: RootOption = None,
) -> None:
    """Print or write one conversation's transcript, or all of a customer's conversations
    (oldest first, each under its own heading), as a person reads it.

    Give exactly one of CONVERSATION_ID, --customer EMAIL or --customer-id ID. Each header
    names the conversation and customer by id (never by name, email or phone), its first and
    last time, channels, inbox and topics when known, and its agents; the lines read as the
    archive's `transcripts` dataset writes them, internal notes marked. Reads the archive only.
    Exit codes: 0 done; 2 a bad option, no such conversation or customer in the archive, or
    an --out file that exists (give --force); 1 the archive or the file could not be read or
    written.
    """
    from gladly_archive import Archive
    from gladly_archive.conversation_read import (
        conversations_of_customers,
        customers_with_email,
        read_conversations,
    )
    from gladly_archive.transcript_render import render_transcripts
    from ingest.status_sections import NotAnArchiveError, check_archive_root

    if sum(given is not None for given in (conversation_id, customer, customer_id)) != 1:
        _refuse("give exactly one of CONVERSATION_ID, --customer EMAIL or --customer-id ID")
    if out is not None:
        _check_out(out, force)
    where = resolve_archive_root(root)
    try:
        check_archive_root(where)
    except NotAnArchiveError as exc:
        _refuse(str(exc))
    archive = Archive(where)
    if customer is not None:
        customer_ids = customers_with_email(archive, customer)
        if not customer_ids:
            _refuse(f"no customer in the archive at {where} has that email")
        wanted = conversations_of_customers(archive, customer_ids)
        if not wanted:
            _refuse(f"no conversation in the archive at {where} is of a customer with that email")
    elif customer_id is not None:
        wanted = conversations_of_customers(archive, [customer_id])
        if not wanted:
            _refuse(f"customer {_shown(customer_id)} has no conversation in the archive at {where}")
    else:
        assert conversation_id is not None
        wanted = [conversation_id]
    selection = read_conversations(archive, wanted, notes=not no_notes)
    if conversation_id is not None and conversation_id not in selection.found:
        _refuse(f"no conversation {_shown(conversation_id)} in the archive at {where}")
    if not selection.conversations:
        _refuse("nothing to show: the conversation(s) hold only internal notes (--no-notes)")
    chosen = fmt or (_SUFFIX_FORMATS.get(out.suffix.lower(), "text") if out else "text")
    data = render_transcripts(selection.conversations, chosen).encode("utf-8")
    if out is None:
        typer.echo(data, nl=False)  # bytes: UTF-8 whatever the locale, never wrapped
        return
    try:
        write_private_file(out, data, force=force)
    except FileExistsError:  # it appeared while the transcript was read
        _refuse(f"--out {out} exists; give --force to replace it")
    count = len(selection.conversations)
    typer.echo(f"wrote {count} conversation(s) as {chosen} to {out} (mode 0600)", err=True)


def _refuse(message: str) -> NoReturn:
    """One line on stderr, exit 2: nothing was written."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _shown(value: str) -> str:
    """An id as given when it looks like one; otherwise words (it could hold escapes)."""
    return value if _PRINTABLE_ID.fullmatch(value) else "(the id given)"


def _check_out(out: Path, force: bool) -> None:
    """Refuse an --out that cannot be written before anything is read."""
    if out.is_dir():
        _refuse(f"--out {out} is a directory; give a file name")
    if not out.parent.is_dir():
        _refuse(f"--out {out}: its directory does not exist")
    if (out.exists() or out.is_symlink()) and not force:
        _refuse(f"--out {out} exists; give --force to replace it")


def write_private_file(path: Path, data: bytes, *, force: bool) -> None:
    """Write `data` to `path`, readable by this user only (0600), so that readers see the
    whole file or none: a temporary file in the same directory, fsynced, then renamed over
    `path` (`force`) or linked to it, which refuses a file that exists (FileExistsError)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o600)
        with os.fdopen(fd, "wb") as sink:
            sink.write(data)
            sink.flush()
            os.fsync(sink.fileno())
        if force:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _link_new(tmp: str, path: Path) -> None:
    """Put `tmp` at `path` unless something is there (atomically where hard links work)."""
    try:
        os.link(tmp, path)
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if path.exists() or path.is_symlink():
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
        os.replace(tmp, path)
