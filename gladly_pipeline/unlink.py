"""`gladly-pipeline unlink`: remove one email, phone or external id from a customer's profile."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from gladly_archive.keyed import audit_key, default_region
from gladly_archive.location import resolve_archive_root
from gladly_client import Priority
from gladly_pipeline.common import RootOption, client_from_env
from gladly_pipeline.errors import SETTINGS_ERRORS
from gladly_pipeline.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_OK, EXIT_USAGE


def unlink(
    customer: Annotated[
        str | None,
        typer.Option(help="The customer: a Gladly id, or an email or phone that finds them."),
    ] = None,
    email: Annotated[str | None, typer.Option(help="The email to remove.")] = None,
    phone: Annotated[
        str | None, typer.Option(help="The phone to remove (as people type it).")
    ] = None,
    external_id: Annotated[
        str | None,
        typer.Option(help="The legacy externalCustomerId to remove (adaptors before 2021-05-12)."),
    ] = None,
    execute: Annotated[
        bool,
        typer.Option(
            "--execute",
            help="Really change the profile. Without it nothing is changed: it is rehearsed.",
        ),
    ] = False,
    root: RootOption = None,
) -> None:
    """Remove one detail that keeps reappearing from a customer's profile, and watch for it.

    The profile is read live; every other email, phone and id is sent back exactly as read
    (Gladly replaces a list whole), and the profile is read again to verify. The detail's
    keyed hash goes into the archive's refill watch: every later `export` and `enrich` reports
    it if it comes back (exit 3) and names the likely source. Audited with keyed hashes only;
    the same command again resumes (a cut-off run is finished by re-reading the profile).
    Needs GLADLY_AUDIT_KEY. Exit codes: 0 done (or rehearsed); 1 Gladly refused the change or
    it did not verify; 2 bad input, or nothing to do (the detail is not on the profile, the
    customer not found): nothing changed; 3 done, but other details changed meanwhile;
    69 Gladly unreachable; 78 bad settings.
    """
    from erasure.engine import identity_from_env
    from erasure.unlink import run_unlink
    from erasure.unlink_request import parse_unlink

    console = Console(stderr=True)
    archive_root = resolve_archive_root(root)
    try:
        request = parse_unlink(
            customer=customer,
            email=email,
            phone=phone,
            external_id=external_id,
            region=default_region(),
        )
        key = audit_key()
        with client_from_env(Priority.PROMPT) as client:
            report = run_unlink(
                request,
                root=archive_root,
                client=client,
                key=key,
                actor=identity_from_env("cli:unlink").actor,
                dry_run=not execute,
            )
    except SETTINGS_ERRORS:
        raise  # exit 78, said by the root command
    except ValueError as exc:  # bad input, or nothing to do (UnlinkInputError): nothing changed
        console.print(f"[red]{exc}[/red]", soft_wrap=True, highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    what = report.kind.replace("_", " ")
    if report.resumed:
        console.print(
            f"request {report.request_id[:16]}… was finished by an earlier run: the {what} is "
            f"off customer {report.customer_id}'s profile and watched (watch {report.watch_id})",
            highlight=False,
        )
        raise typer.Exit(EXIT_OK)
    kept = ", ".join(f"{n} {k[:-1]}(s)" for k, n in report.kept.items())
    if report.dry_run:
        console.print(
            f"REHEARSAL (nothing changed; add --execute): customer {report.customer_id} has "
            f"the {what}; {report.note} ({kept} kept)",
            highlight=False,
        )
        raise typer.Exit(EXIT_OK)
    chain = {True: "holds", False: "BROKEN", None: "not checked"}[report.chain_ok]
    if report.done:
        console.print(
            f"UNLINKED the {what} from customer {report.customer_id} ({kept} kept), verified; "
            f"watched for a refill as {report.watch_id}; request {report.request_id[:16]}…; "
            f"audit chain {chain}",
            highlight=False,
        )
        if report.note and not report.recovered:
            console.print(f"[yellow]{report.note}[/yellow]", highlight=False)
            raise typer.Exit(EXIT_ATTENTION)
        raise typer.Exit(EXIT_OK if report.chain_ok is not False else EXIT_FAILED)
    console.print(
        f"[red]{report.outcome}[/red] customer {report.customer_id}: {report.note}; "
        f"audit chain {chain}",
        highlight=False,
    )
    raise typer.Exit(EXIT_FAILED)
