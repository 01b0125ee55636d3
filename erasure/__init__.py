"""Execute a plan or a one-off request: pre-flight, holds re-check, delete/redact, verify."""
