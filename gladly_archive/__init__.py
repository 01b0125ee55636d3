"""Everything we keep: transcript archive, customers, tombstones and the audit log (issue 4)."""
