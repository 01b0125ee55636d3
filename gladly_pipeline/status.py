"""The state of the system in one read, for `gladly-pipeline status`: the archive's half
(`ingest.status`) and the audit log's (`evidence.status`) joined in the order the status shows
its sections, under a heading; as a person reads it and as one JSON object
(docs/status.schema.json). Ids, hashes, times and counts only, never personal data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from evidence.status import AuditStatus, in_status_order, read_audit_status
from gladly_client import GladlyClient
from ingest.status import ArchiveStatus, read_archive_status

__all__ = ["JSON_SCHEMA_VERSION", "SystemStatus", "read_status"]

# Bump when a key of the JSON output is renamed, removed or changes meaning.
JSON_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SystemStatus:
    """Everything `gladly-pipeline status` shows, as of the archive half's `now`."""

    archive: ArchiveStatus
    audit: AuditStatus

    def attention(self) -> list[str]:
        """What needs a person, one line each (ids and counts only); empty when nothing does."""
        both = in_status_order(self.archive.attention(), self.audit.attention())
        return [note for notes in both.values() for note in notes]

    def status_lines(self) -> list[str]:
        """A heading, then a block per section, then what needs attention."""
        live = self.archive.unarchived.live
        lines = [
            f"Status at {self.archive.now:%Y-%m-%d %H:%M}Z",
            f"  archive {self.archive.root}",
            "  read from the archive and its audit log"
            + ("; export jobs from Gladly (--live)" if live else " (no Gladly call)"),
        ]
        for block in in_status_order(self.archive.lines(), self.audit.lines()).values():
            lines += ["", *block]
        notes = self.attention()
        lines.append("")
        if not notes:
            return [*lines, "Nothing needs attention."]
        return [*lines, "Needs attention", *(f"  - {note}" for note in notes)]

    def status_json(self) -> dict[str, Any]:
        """The status as one JSON-ready object (docs/status.schema.json)."""
        notes = self.attention()
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "root": self.archive.root,
            "now": self.archive.now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "attention": bool(notes),
            "attention_notes": notes,
            **in_status_order(self.archive.json(), self.audit.json()),
        }


def read_status(
    root: str,
    *,
    now: datetime,
    audit_key: bytes | None,
    client: GladlyClient | None = None,
) -> SystemStatus:
    """Read the state of the archive at `root` as of `now` (NotAnArchiveError first when it is
    none). With `audit_key` the audit chain is verified and reappeared customers are matched;
    with `client`, Gladly's export jobs are listed to find those not archived. Nothing is
    written."""
    archive = read_archive_status(root, now=now, audit_key=audit_key, client=client)
    return SystemStatus(archive, read_audit_status(root, now=now, audit_key=audit_key))
