"""The tamper-evident, PII-free audit log: journal, keyed hash chain, verifier, outcomes."""

from __future__ import annotations

from audit_log.files import read_events
from audit_log.verify import (
    AUDIT_DIR,
    AUDIT_EVENTS,
    AUDIT_SCHEMA_VERSION,
    GENESIS,
    AuditError,
    ChainReport,
    verify_chain,
)
from audit_log.writer import AuditLog, AuditRun, check_fields, write_events_file

__all__ = [
    "AUDIT_DIR",
    "AUDIT_EVENTS",
    "AUDIT_SCHEMA_VERSION",
    "GENESIS",
    "AuditError",
    "AuditLog",
    "AuditRun",
    "ChainReport",
    "check_fields",
    "read_events",
    "verify_chain",
    "write_events_file",
]
