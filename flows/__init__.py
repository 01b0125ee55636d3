"""Prefect wiring only: flows, thin tasks, approval pause, artifacts and Secret blocks."""

# First, before any module of ours loads pyarrow: Arrow's allocator (gladly_archive.memory_pool).
import gladly_archive.memory_pool  # noqa: F401
