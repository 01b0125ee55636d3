"""The gladly-pipeline command line: parse, call the functions the flows call, print, exit."""

# First, before any module of ours loads pyarrow: Arrow's allocator (gladly_archive.memory_pool).
import gladly_archive.memory_pool  # noqa: F401
