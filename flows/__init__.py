"""Prefect wiring only: flows, thin tasks, approval pause, artifacts and Secret blocks."""
