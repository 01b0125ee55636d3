"""The data dictionary's entry for the audit log's events (schema in audit_log/files.py)."""

from __future__ import annotations

from gladly_archive.dictionary.terms import NONE, PSEUDONYMOUS, Column, DatasetEntry

__all__ = ["ENTRIES"]

_RUN = "pipeline: the audit log"
_CALLER = "pipeline: the deletion engine, `unlink` or the purge"

AUDIT = DatasetEntry(
    directory="_audit/",
    summary=(
        "One row per audit event of a deletion, `unlink` or purge run: every intent before a "
        "call and every result after it, each event chained to the previous one by a keyed "
        "hash. Written by audit_log, which screens every value: ids, hashes and codes, never an "
        "email, phone, name or text. Its schema has its own version (2) in each file's footer."
    ),
    layout=(
        "`_audit/runs/<NNNNNN>-<run id>.parquet`, one file per sealed run; "
        "`_audit/journal/<run id>.jsonl` while a run is open."
    ),
    reading=(
        "Every event counts, in run number then seq order; `gladly-pipeline audit verify` "
        "checks the chain (docs/erasure.md)."
    ),
    columns={
        "run_id": Column("The run's id; it also names the run's file.", _RUN, NONE),
        "seq": Column("The event's position in its run: 0, 1, 2, …", _RUN, NONE),
        "time": Column("When the event was recorded (UTC).", _RUN, NONE),
        "actor": Column(
            "Who started the run: a handle (GLADLY_PIPELINE_ACTOR, else the OS user), never an "
            "email.",
            _CALLER,
            PSEUDONYMOUS,
        ),
        "approver": Column(
            "Who approved the plan, as the approval step named them; NULL when nobody did.",
            _CALLER,
            PSEUDONYMOUS,
        ),
        "flow": Column(
            "The flow, deployment or command that ran (e.g. `cli:recover`).", _CALLER, NONE
        ),
        "policy_name": Column(
            "The retention policy that chose the target, or the name a one-off request or "
            "`unlink` uses.",
            _CALLER,
            NONE,
        ),
        "policy_hash": Column(
            "The policy's version hash, or a one-off or unlink request's identity (a keyed "
            "hash of what it names).",
            _CALLER,
            PSEUDONYMOUS,
        ),
        "plan_hash": Column("The hash of the plan the run executes.", _CALLER, NONE),
        "target_type": Column(
            "What the event is about: customer, conversation, item, run or archive.",
            _CALLER,
            NONE,
        ),
        "target_id": Column(
            "The target's Gladly id (a customer, conversation or item); NULL for a run or the "
            "archive.",
            _CALLER,
            PSEUDONYMOUS,
        ),
        "customer_id": Column(
            "Gladly's id of the customer the target belongs to.", _CALLER, PSEUDONYMOUS
        ),
        "subject_hash": Column(
            "The keyed hash (HMAC-SHA256 hex with GLADLY_AUDIT_KEY) of the email or phone that "
            "asked for the deletion; NULL otherwise.",
            _CALLER,
            PSEUDONYMOUS,
        ),
        "action": Column(
            "What is done to the target, e.g. delete_customer, erase_conversation, unlink_email.",
            _CALLER,
            NONE,
        ),
        "step": Column(
            "The step the event records: run_started, hold_check, preflight, the call, verify, "
            "outcome, tombstone, purge, run_finished, …",
            _CALLER,
            NONE,
        ),
        "phase": Column(
            "`intent` (written before the call) or `result` (after it).", _CALLER, NONE
        ),
        "outcome": Column(
            "The step's outcome code, e.g. deleted, redacted, held, not_found, failed, ok.",
            _CALLER,
            NONE,
        ),
        "http_status": Column(
            "The HTTP status Gladly answered; NULL when no call was made.", _CALLER, NONE
        ),
        "error_code": Column("The error's code or class; NULL without error.", _CALLER, NONE),
        "attempt": Column(
            "1 + the earlier runs of the same plan or request that reached this target.",
            _CALLER,
            NONE,
        ),
        "duration_ms": Column("How long the call took, in milliseconds.", _CALLER, NONE),
        "detail": Column(
            "Screened detail: a content type, counts as JSON, the labels of the holds that "
            "matched (kind=value [reference]) or a merged customer's id.",
            _CALLER,
            PSEUDONYMOUS,
        ),
        "prev_hash": Column("The previous event's hash: the chain.", _RUN, NONE),
        "hash": Column(
            "This event's HMAC-SHA256 hex under a key derived from GLADLY_AUDIT_KEY.", _RUN, NONE
        ),
    },
)

ENTRIES = {"audit": AUDIT}
