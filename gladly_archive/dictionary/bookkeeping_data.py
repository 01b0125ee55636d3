"""The data dictionary's entries for the pipeline's own records: manifest, quarantine, the
customer file index, tombstones, the refill watch and the audit log."""

from __future__ import annotations

from gladly_archive.dictionary.terms import NONE, PERSONAL, PSEUDONYMOUS, Column, DatasetEntry

__all__ = ["ENTRIES"]

_JOBS = "Gladly API GET /api/v1/export/jobs"
_KEYED = "HMAC-SHA256 hex with GLADLY_AUDIT_KEY"

MANIFEST = DatasetEntry(
    directory="_manifest/",
    summary=(
        "One row per archived export job or per-customer run: its window, what was read from "
        "each file, and when it was committed. A job's manifest is written last, after all "
        "its rows are in place: a job without one is not archived (it is the export's "
        "watermark)."
    ),
    layout="`_manifest/job_id=<job id>.parquet`, one file per job.",
    reading="A job has one row.",
    columns={
        "job_id": Column(
            "The export job's Gladly id, or the per-customer run's id (`api-…`).",
            f"{_JOBS}: id; pipeline: the run's id",
            NONE,
        ),
        "kind": Column(
            "`export_job` for an export job, `api` for a per-customer run.",
            "pipeline: how the rows were fetched",
            NONE,
        ),
        "window_start": Column(
            "The start of the export job's window (UTC); NULL for a per-customer run.",
            f"{_JOBS}: parameters.startAt",
            NONE,
        ),
        "window_end": Column(
            "The end of the export job's window (UTC); NULL for a per-customer run.",
            f"{_JOBS}: parameters.endAt",
            NONE,
        ),
        "job_updated_at": Column(
            "When Gladly last updated the job, i.e. finished it (UTC); Gladly deletes the job "
            "14 days later. NULL for a per-customer run.",
            f"{_JOBS}: updatedAt",
            NONE,
        ),
        "files": Column(
            "One entry per file read: name, rows_written, lines_read (non-blank lines), "
            "bytes_read and sha256 (hex of the bytes downloaded; empty for a per-customer run's "
            "`api:…` entries).",
            "pipeline: counted while reading",
            NONE,
        ),
        "quarantined_lines": Column(
            "How many lines of the job's files went to `_quarantine/`.",
            "pipeline: counted while reading",
            NONE,
        ),
        "archived_at": Column(
            "When the job was committed (UTC).", "pipeline: the commit's clock", NONE
        ),
        "schema_version": Column(
            "The archive's schema version the job was written with.",
            "pipeline: SCHEMA_VERSION",
            NONE,
        ),
    },
)

QUARANTINE = DatasetEntry(
    directory="_quarantine/",
    summary=(
        "One row per line of an export file that could not become a row (not UTF-8, not JSON, "
        "not an object, an id, time or type missing), with where it was: nothing is dropped "
        "silently. Erasing a customer or an item drops the lines holding its id (a line "
        "holding its data without the id is kept)."
    ),
    layout="`_quarantine/job=<job id>/`.",
    reading="Every row is a distinct line.",
    columns={
        "job_id": Column("The job whose file held the line.", "pipeline: the job's id", NONE),
        "file_name": Column(
            "The file it was read from, e.g. `conversation_items.jsonl`.",
            "pipeline: the file's name",
            NONE,
        ),
        "line_number": Column(
            "The line's 1-based number in that file, as editors count (blank lines count).",
            "pipeline: counted while reading",
            NONE,
        ),
        "error": Column(
            "What was wrong with the line, never its content.",
            "pipeline: the reader's verdict",
            NONE,
        ),
        "raw_line": Column(
            "The line's bytes exactly as read.",
            "export file conversation_items.jsonl, customers.jsonl, agents.jsonl, topics.jsonl: "
            "the whole line",
            PERSONAL,
        ),
        "quarantined_at": Column(
            "When the line was set aside (UTC).", "pipeline: the run's clock", NONE
        ),
    },
)

CUSTOMER_FILES = DatasetEntry(
    directory="_index/customer_files/",
    summary=(
        "Which data files hold a customer's rows (items, customers, transcripts), so erasing a "
        "customer rewrites only those files. Kept up to date by every commit, fold and purge."
    ),
    layout="`_index/customer_files/` (no subdirectories).",
    reading="One row per customer and file; a row whose file is gone is dropped with it.",
    columns={
        "customer_id": Column(
            "Gladly's id of a customer with rows in the file.",
            "derived: the file's customer_id values",
            PSEUDONYMOUS,
        ),
        "dataset": Column(
            "The file's dataset: items, customers or transcripts.",
            "pipeline: the file's dataset",
            NONE,
        ),
        "path": Column(
            "The file's path relative to the archive root.", "pipeline: the file's path", NONE
        ),
        "job_id": Column(
            "The job whose commit wrote the file, or the fold or purge that rewrote it.",
            "pipeline: the job's or run's id",
            NONE,
        ),
    },
)

TOMBSTONES = DatasetEntry(
    directory="tombstones/",
    summary=(
        "One row per customer a deletion run erased: what keeps the customer from coming back "
        f"unnoticed. Emails and phones only as keyed hashes ({_KEYED}), never in clear; a later "
        "export that brings a profile with one of them reports it as reappeared."
    ),
    layout="`tombstones/run=<run id>/part-0.parquet`, one file per deletion run.",
    reading="Read every row: a customer erased twice has a row per run.",
    columns={
        "customer_id": Column(
            "Gladly's id of the erased customer; a customer Gladly merged has a row under each "
            "of its ids.",
            "pipeline: the deletion run's target",
            PSEUDONYMOUS,
        ),
        "email_hashes": Column(
            f"Keyed hashes ({_KEYED}) of the customer's normalised emails.",
            "derived: the customer's emails as the request and the archive knew them",
            PSEUDONYMOUS,
        ),
        "phone_hashes": Column(
            f"Keyed hashes ({_KEYED}) of the customer's normalised phone numbers.",
            "derived: the customer's phones as the request and the archive knew them",
            PSEUDONYMOUS,
        ),
        "deleted_at": Column(
            "When the deletion run recorded the erasure (UTC, our clock).",
            "pipeline: the run's clock",
            NONE,
        ),
        "run_id": Column(
            "The deletion run's id, as in the audit log.", "pipeline: the run's id", NONE
        ),
        "plan_hash": Column(
            "The hash of the plan the run executed (a retention plan, or a one-off request's).",
            "pipeline: the plan's hash",
            NONE,
        ),
    },
)

REFILL_WATCH = DatasetEntry(
    directory="refill_watch/",
    summary=(
        "One row per detail (email, phone, external id) `unlink` removed from a profile: what "
        "every export and `enrich` watch for, in case a lookup adaptor or a new contact brings "
        f"it back. The detail only as its keyed hash ({_KEYED}), never in clear."
    ),
    layout="`refill_watch/watch=<watch id>/part-0.parquet`, one file per unlinked detail.",
    reading="A watch has one row.",
    columns={
        "watch_id": Column(
            "The watch's id: the start of the unlink request's keyed hash; names its directory.",
            "derived: request_id",
            PSEUDONYMOUS,
        ),
        "kind": Column(
            "What was unlinked: email, phone or external_id.", "pipeline: the request", NONE
        ),
        "detail_hash": Column(
            f"The keyed hash ({_KEYED}) of the normalised detail (an external id trimmed).",
            "derived: the unlinked detail",
            PSEUDONYMOUS,
        ),
        "customer_id": Column(
            "Gladly's id of the profile the detail was removed from.",
            "pipeline: the request",
            PSEUDONYMOUS,
        ),
        "unlinked_at": Column(
            "When the profile lost the detail, on Gladly's clock (UTC): export files Gladly "
            "made later show whether it came back.",
            "Gladly API GET /api/v1/customer-profiles/{id}: updatedAt (read back after the change)",
            NONE,
        ),
        "recorded_at": Column(
            "When the watch was written (UTC, our clock).", "pipeline: the run's clock", NONE
        ),
        "request_id": Column(
            "The unlink request's identity: a keyed hash of the profile and the detail it "
            "names (the audit log's policy_hash).",
            "derived: the request",
            PSEUDONYMOUS,
        ),
    },
)

ENTRIES = {
    "manifest": MANIFEST,
    "quarantine": QUARANTINE,
    "customer_files": CUSTOMER_FILES,
    "tombstones": TOMBSTONES,
    "refill_watch": REFILL_WATCH,
}
