"""What an approver reads about a plan: its summary as plain lines (CLI) or markdown (Prefect)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["summary_lines", "summary_markdown"]

# A subject, the way a person counts it: one customer, conversation, contact or item.
_NOUNS = {
    "customer": ("customer", "customers"),
    "conversation": ("conversation", "conversations"),
    "contact": ("contact", "contacts"),
    "item": ("item", "items"),
}


def _n(count: Any) -> str:
    return f"{count:,}" if isinstance(count, int) else str(count)


def _plural(count: Any, resource: Any) -> str:
    one, many = _NOUNS.get(str(resource), ("subject", "subjects"))
    return f"{_n(count)} {one if count == 1 else many}"


def _targets(count: Any) -> str:
    return f"{_n(count)} {'target' if count == 1 else 'targets'}"


def _plain(text: str) -> str:
    return text


def _code(text: str) -> str:
    """`text` as a markdown code span, whatever backticks it holds."""
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _heading(policy: Mapping[str, Any], name: Callable[[str], str]) -> str:
    return (
        f"policy {name(str(policy.get('name')))} "
        f"({policy.get('resource')} → {policy.get('action')}): {policy.get('status')}"
    )


def _details(policy: Mapping[str, Any], name: Callable[[str], str]) -> list[str]:
    """The lines under a policy's heading; `name` formats ids and hold labels."""
    if policy.get("status") == "disabled":
        return []
    resource = policy.get("resource")
    subjects = _plural(policy.get("subjects", 0), resource)
    lines = [f"{_targets(policy.get('targets', 0))} ({subjects})"]
    if policy.get("status") != "blocked":
        # A blocked policy's reason gives its numbers (or says why it could not be evaluated).
        population = _plural(policy.get("population", 0), resource)
        lines.append(f"matched {_n(policy.get('matched', 0))} of {population}")
    held_by: Mapping[str, Any] = policy.get("held_by") or {}
    held = f"held: {_n(policy.get('held', 0))}"
    if held_by:
        held += " — by " + "; ".join(f"{name(label)}: {_n(n)}" for label, n in held_by.items())
    lines.append(held)
    if policy.get("status") == "blocked":
        lines.append(f"blocked: {policy.get('reason')}")
    samples = [str(s) for s in policy.get("samples") or []]
    if samples:
        more = ", …" if int(policy.get("subjects", 0)) > len(samples) else ""
        lines.append("sample: " + ", ".join(name(s) for s in samples) + more)
    return lines


def _by(counts: Mapping[str, Any], name: Callable[[str], str]) -> str:
    return ", ".join(f"{name(str(key))} {_n(n)}" for key, n in counts.items()) or "none"


def _totals(summary: Mapping[str, Any], name: Callable[[str], str]) -> list[str]:
    policies = list(summary.get("policies") or [])
    statuses: dict[str, int] = {}
    for policy in policies:
        statuses[str(policy.get("status"))] = statuses.get(str(policy.get("status")), 0) + 1
    not_erasable = summary.get("not_erasable_via_api", 0)
    kinds = summary.get("not_erasable_via_api_by_content_type") or {}
    reported = f"not erasable via API: {_n(not_erasable)} (reported, not deleted)"
    if kinds:
        # A row without a content type is a conversation's own record (Gladly cannot delete it).
        reported += " — " + "; ".join(
            f"{'conversation record' if kind == '(none)' else name(str(kind))}: {_n(n)}"
            for kind, n in kinds.items()
        )
    blocked = [str(b.get("name")) for b in summary.get("blocked_policies") or []]
    lines = [
        _targets(summary.get("targets", 0)),
        f"by action: {_by(summary.get('by_action') or {}, name)}",
        f"by operation: {_by(summary.get('by_operation') or {}, name)}",
        f"held back by legal holds: {_n(summary.get('excluded_by_holds', 0))}",
        reported,
        "policies: " + (", ".join(f"{_n(n)} {s}" for s, n in sorted(statuses.items())) or "none"),
    ]
    if blocked:
        lines.append("blocked: " + ", ".join(name(b) for b in blocked))
    return lines


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """A plan's summary (`Plan.summary()`, or its summary.json) as lines read top to bottom in
    any terminal: per policy a heading and its indented details, then the totals. No line is
    laid out for a width; a long one (a blocked policy's reason) is left for the terminal to
    wrap. The plan hash is not in the summary: the caller prints it."""
    lines: list[str] = []
    for policy in summary.get("policies") or []:
        lines.append(_heading(policy, _plain))
        lines += [f"  {line}" for line in _details(policy, _plain)]
    lines.append("totals")
    lines += [f"  {line}" for line in _totals(summary, _plain)]
    return lines


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """The same content as `summary_lines`, as markdown for a Prefect artifact: a heading per
    policy with its details as a list, then the totals."""
    parts: list[str] = []
    for policy in summary.get("policies") or []:
        parts += [f"### {_heading(policy, _code)}", ""]
        parts += [f"- {line}" for line in _details(policy, _code)]
        parts.append("")
    parts += ["### totals", ""]
    parts += [f"- {line}" for line in _totals(summary, _code)]
    return "\n".join(parts) + "\n"
