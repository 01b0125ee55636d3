"""Retention policies as code, legal holds and pure plan evaluation (issue 5)."""
