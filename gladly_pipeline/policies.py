"""`gladly-pipeline policies validate` and `gladly-pipeline holds hash`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from gladly_archive.keyed import audit_key
from gladly_archive.location import resolve_archive_root
from gladly_pipeline.common import RootOption
from gladly_pipeline.exit_codes import EXIT_USAGE
from retention_policies import PolicyValidationError, keyed_hash, load_policies
from retention_policies.references import References

err = Console(stderr=True)


def validate(
    path: Annotated[Path, typer.Argument(help="A policy YAML file or a directory of them.")],
    root: RootOption = None,
    names: Annotated[
        bool,
        typer.Option(
            "--names/--no-names",
            help="Check every inbox and topic a policy names against the archive's "
            "(--no-names: the files alone, e.g. in a repository's CI).",
        ),
    ] = True,
) -> None:
    """Validate retention policies; print each with its version hash, or every problem.

    Inbox and topic names are resolved against the archive (`--root`, env
    GLADLY_PIPELINE_ROOT): an unknown name is a problem listing the valid ones.
    """
    try:
        references = References.from_archive(resolve_archive_root(root)) if names else None
        policies = load_policies(path, references=references)
    except PolicyValidationError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        count = len(exc.problems)
        typer.echo(f"{count} problem{'s' if count != 1 else ''}; nothing is valid.", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    for policy in policies:
        state = "" if policy.enabled else "  (disabled)"
        typer.echo(
            f"{policy.name}  resource={policy.resource}  action={policy.action.type}  "
            f"hash={policy.version_hash}{state}"
        )
    typer.echo(f"{len(policies)} polic{'ies' if len(policies) != 1 else 'y'} valid.")


def holds_hash(
    email: Annotated[str | None, typer.Option("--email", help="The email to hash.")] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="The phone to hash.")] = None,
) -> None:
    """Print the keyed hash a holds file stores for an email or phone (key: GLADLY_AUDIT_KEY)."""
    if (email is None) == (phone is None):
        err.print("[red]Give exactly one of --email or --phone.[/red]")
        raise typer.Exit(EXIT_USAGE)
    key = audit_key()  # it keys the hashes of holds; unset, it exits 78
    if email is not None:
        typer.echo(keyed_hash(email, kind="email", key=key))
    elif phone is not None:
        try:
            typer.echo(keyed_hash(phone, kind="phone", key=key, strict=True))
        except ValueError as exc:  # the phone cannot be read: say why, never echo it
            err.print(f"[red]--phone: the phone is {escape(str(exc))}[/red]")
            raise typer.Exit(EXIT_USAGE) from None
