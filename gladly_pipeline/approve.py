"""`gladly-pipeline approve`: answer a retention run paused for approval, from the shell."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from gladly_pipeline.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE


def approve(
    run_id: Annotated[str, typer.Argument(help="The paused flow run's id (its log names it).")],
    plan_hash: Annotated[
        str, typer.Option("--plan-hash", help="The plan's hash (at least 12 characters).")
    ],
    approver: Annotated[str, typer.Option(help="Your handle (not an email); not the requester's.")],
    reject: Annotated[
        bool, typer.Option("--reject", help="Reject the plan: nothing is deleted.")
    ] = False,
) -> None:
    """Approve (or --reject) the plan a paused `apply-retention` run waits on.

    Needs PREFECT_API_URL. The run checks the answer itself: an approval naming another plan
    or given by the requester is refused in the run's log and the run keeps waiting.
    """
    from pydantic import ValidationError

    from flows.approval import PlanApproval, resume_approval

    console = Console(stderr=True)
    decision = "reject" if reject else "approve"
    try:
        PlanApproval(decision=decision, approver=approver, plan_hash=plan_hash)
    except ValidationError as exc:
        fields = ", ".join(str(e["loc"][0]).replace("_", "-") for e in exc.errors())
        console.print(
            f"[red]invalid --{fields}[/red]: --approver is a handle of letters, digits and "
            "_.:- (2-64); --plan-hash at least 12 hexadecimal characters of the plan's hash"
        )
        raise typer.Exit(EXIT_USAGE) from None
    try:
        resume_approval(run_id, decision=decision, approver=approver, plan_hash=plan_hash)
    except ValueError:
        console.print(f"[red]{run_id!r} is not a flow run id[/red] (the run's log prints it)")
        raise typer.Exit(EXIT_USAGE) from None
    except Exception as exc:  # Prefect's client errors: no run, not paused, no server
        console.print(
            f"[red]could not answer run {run_id}:[/red] {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}"
        )
        raise typer.Exit(EXIT_FAILED) from None
    console.print(
        f"sent: {decision} plan {plan_hash[:12]} as {approver}; the run's log says whether it "
        "was accepted",
        highlight=False,
    )
    raise typer.Exit(EXIT_OK)
