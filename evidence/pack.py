"""Evidence packs: what the audit log proves about a run or a data subject, no personal data."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from audit_log import AuditLog, verify_chain, write_events_file
from evidence.page import render_report
from evidence.summary import ATTENTION, ERASED, PlanRef, summarise
from gladly_archive import Archive
from gladly_archive.keyed import keyed_hash
from gladly_archive.location import resolve_archive_root
from gladly_archive.tombstones import match_tombstones
from retention_policies.plan import Plan, PlanIntegrityError

__all__ = [
    "ATTENTION",
    "ERASED",
    "EVIDENCE_DIR",
    "EvidenceError",
    "EvidencePack",
    "UnknownRunError",
    "build_evidence",
]

EVIDENCE_DIR = "_evidence"


class EvidenceError(ValueError):
    """The report cannot be built as asked (bad selector, output in the way, remote root)."""


class UnknownRunError(EvidenceError):
    """No event of the audit log belongs to the run asked for."""

    def __init__(self, run_id: str, known: list[str]) -> None:
        """Name the run and the latest runs the log does hold."""
        self.run_id = run_id
        self.known = known
        listed = ", ".join(known) if known else "none: the audit log is empty"
        super().__init__(f"no events for run {run_id}; known runs (latest 5): {listed}")


@dataclass(frozen=True)
class EvidencePack:
    """A written evidence pack: its directory, its three files and the summary they show."""

    out_dir: Path
    events_path: Path
    summary_path: Path
    html_path: Path
    summary: dict[str, Any]

    @property
    def status(self) -> Literal["ok", "attention", "broken"]:
        """broken: the audit chain does not verify; attention: something was not erased."""
        status: Literal["ok", "attention", "broken"] = self.summary["status"]
        return status


def build_evidence(
    root: str | os.PathLike[str] | None = None,
    *,
    run_id: str | None = None,
    subject_email: str | None = None,
    subject_phone: str | None = None,
    plans_dir: str | os.PathLike[str] | None = None,
    key: bytes | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
) -> EvidencePack:
    """Select the events of one run or of one data subject and write an evidence pack.

    The pack is ``events.parquet`` (the selected events, AUDIT_EVENTS schema, verifiable
    hashes), ``summary.json`` and ``report.html``. A subject is matched by the keyed hash of
    its email or phone (``key``, default GLADLY_AUDIT_KEY); the clear value is never written.
    Plans are looked up by hash under ``plans_dir`` and ``<root>/_plans``. Raises
    EvidenceError (UnknownRunError) for a bad request, AuditError if the log is unreadable.
    """
    from gladly_archive.keyed import audit_key
    from retention_policies.planning import plans_dir as default_plans

    chosen = [v for v in (run_id, subject_email, subject_phone) if v is not None]
    if len(chosen) != 1 or not chosen[0].strip():
        raise EvidenceError("choose exactly one of: a run id, a subject email, a subject phone")
    archive_root = resolve_archive_root(root)
    if "://" in archive_root:
        raise EvidenceError(f"the audit log is local only; {archive_root} is not a local path")
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    key = key or audit_key()  # the chain is keyed: no key, nothing can be vouched for
    chain = verify_chain(archive_root, key=key)
    events = AuditLog(archive_root, key=key).events()
    scope: dict[str, Any]
    if run_id is not None:
        selected = _select_run(events, run_id)
        scope = {"kind": "run", "run_id": run_id}
        label = run_id
    else:
        kind: Literal["email", "phone"] = "email" if subject_email is not None else "phone"
        value = subject_email if subject_email is not None else subject_phone
        assert value is not None  # exactly one selector was checked above
        subject = keyed_hash(value, kind=kind, key=key, strict=True)
        # Policy deletions carry no subject hash: the tombstones say whose contact it was.
        stones = match_tombstones(
            Archive(archive_root),
            email_hashes=[subject] if kind == "email" else [],
            phone_hashes=[subject] if kind == "phone" else [],
        )
        tombstoned = set(stones.column("customer_id").to_pylist())
        selected = _select_subject(events, subject, tombstoned)
        scope = {
            "kind": "subject",
            "subject_kind": kind,
            "subject_hash": subject,
            "tombstoned_customers": sorted(tombstoned),
        }
        label = f"subject-{subject[:12]}"
    final = _out_path(archive_root, out_dir, label, moment)
    hashes = {h for h in pc.unique(selected.column("plan_hash")).to_pylist() if h}
    search = [Path(plans_dir)] if plans_dir is not None else []
    plans = _find_plans(hashes, [*search, default_plans(archive_root)])
    return _write_pack(final, selected, summarise(selected, chain, plans, scope, moment))


# -- selection -------------------------------------------------------------------------------


def _select_run(events: pa.Table, run_id: str) -> pa.Table:
    picked = events.filter(pc.equal(events.column("run_id"), run_id))
    if picked.num_rows == 0:
        known = [str(r) for r in pc.unique(events.column("run_id")).to_pylist()]
        raise UnknownRunError(run_id, known[::-1][:5])  # the log is in run order
    return picked


def _select_subject(
    events: pa.Table, subject_hash: str, tombstoned: set[str] | None = None
) -> pa.Table:
    """The subject's events (by its hash, or about a customer whose tombstone holds it), the
    events of the customers those runs targeted for it (same run), and those runs' own events
    (start, approval, tombstone, purge, finish)."""
    if events.num_rows == 0:
        return events
    direct = pc.fill_null(pc.equal(events.column("subject_hash"), subject_hash), False)
    if tombstoned:
        about = pc.is_in(events.column("customer_id"), pa.array(sorted(tombstoned), pa.string()))
        direct = pc.or_(direct, pc.fill_null(about, False))
    hits = events.filter(direct).select(["run_id", "customer_id"]).to_pylist()
    runs = pa.array(sorted({h["run_id"] for h in hits}), pa.string())
    pairs = pa.array(sorted({f"{h['run_id']}/{h['customer_id']}" for h in hits}), pa.string())
    customer = pc.fill_null(events.column("customer_id"), "")
    joined = pc.binary_join_element_wise(events.column("run_id"), customer, "/")
    run_level = pc.is_in(
        pc.fill_null(events.column("target_type"), ""), pa.array(["run", "archive"])
    )
    mask = pc.or_(
        pc.or_(direct, pc.and_(pc.is_in(joined, pairs), pc.not_equal(customer, ""))),
        pc.and_(pc.is_in(events.column("run_id"), runs), run_level),
    )
    return events.filter(mask)


def _find_plans(hashes: set[str], search: list[Path]) -> dict[str, PlanRef]:
    """Plan directories whose plan.json names one of ``hashes``, read back and verified."""
    found: dict[str, PlanRef] = {}
    for base in search:
        if not base.is_dir():
            continue
        direct = (base / "plan.json").is_file()
        for directory in [base] if direct else sorted(p.parent for p in base.glob("*/plan.json")):
            try:
                recorded = json.loads((directory / "plan.json").read_text()).get("hash")
            except (OSError, ValueError, AttributeError):
                continue
            if recorded not in hashes or (recorded in found and found[recorded].plan):
                continue
            try:
                found[recorded] = PlanRef(directory, Plan.read(directory), None)
            except PlanIntegrityError as exc:
                found[recorded] = PlanRef(directory, None, str(exc))
    return found


# -- writing ---------------------------------------------------------------------------------


def _out_path(root: str, out_dir: str | os.PathLike[str] | None, label: str, now: datetime) -> Path:
    if out_dir is not None:
        final = Path(out_dir)
        if final.exists() and (not final.is_dir() or any(final.iterdir())):
            raise EvidenceError(f"{final} exists and is not an empty directory; choose another")
        return final
    base = Path(root) / EVIDENCE_DIR / f"{label}-{now:%Y%m%dT%H%M%SZ}"
    final, n = base, 1
    while final.exists():
        n += 1
        final = base.with_name(f"{base.name}-{n}")
    return final


def _write_pack(final: Path, selected: pa.Table, summary: dict[str, Any]) -> EvidencePack:
    """Write the three files into a temporary directory and rename it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        summary["events"]["parquet_sha256"] = write_events_file(selected, tmp / "events.parquet")
        text = json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n"
        (tmp / "summary.json").write_text(text, encoding="utf-8")
        (tmp / "report.html").write_text(render_report(summary), encoding="utf-8")
        if final.exists():
            final.rmdir()  # checked empty before the work began
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return EvidencePack(
        final, final / "events.parquet", final / "summary.json", final / "report.html", summary
    )
