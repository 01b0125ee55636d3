"""docs/datasets.md from the archive's Arrow schemas and their descriptions.

Regenerate it with ``python -m gladly_archive.dictionary_doc > docs/datasets.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import pyarrow as pa

from gladly_archive.dictionary import (
    DESCRIPTION,
    DICTIONARY,
    PERSONAL_KEY,
    PERSONAL_LEVELS,
    SOURCE,
    SOURCE_KINDS,
)
from gladly_archive.schemas import DATASETS, REFILL_WATCH, SCHEMA_VERSION, TOMBSTONES

__all__ = ["REGENERATE", "arrow_type", "documented_schemas", "render_markdown"]

REGENERATE = "python -m gladly_archive.dictionary_doc > docs/datasets.md"
_DATASET_KEY = b"gladly_pipeline.dataset"

_INTRO = """\
<!-- Generated from the Arrow schemas (gladly_archive/schemas.py) and the data dictionary
(gladly_archive/dictionary/); do not edit by hand. Regenerate with:
{regenerate} -->

# The archive's datasets

Everything the pipeline keeps lives under the archive root (`./gladly-data`,
`GLADLY_PIPELINE_ROOT` or `--root`) as Parquet files with an explicit Arrow schema. This page
lists each dataset and every column: its Arrow type, what it means, where its value comes from
and whether it can hold personal data. The same words are in the files themselves: each
field's metadata holds `description`, `source` and `personal`, and each file's footer names
its dataset (`gladly_pipeline.dataset`) and schema version (`gladly_pipeline.schema_version`,
now {version}).

## Reading the archive

Read a dataset with a recursive glob, so its recent and its folded files are both read (rows
are moved between them, never changed):

```sql
-- duckdb
SELECT content_type, count(*) AS items
FROM read_parquet('gladly-data/items/**/*.parquet') GROUP BY content_type;

-- datasets that keep every listing or fetch: the newest row per id is the current one
SELECT * FROM read_parquet('gladly-data/agents/**/*.parquet')
QUALIFY row_number() OVER (PARTITION BY agent_id ORDER BY archived_at DESC) = 1;
```

```python
import pandas as pd
import polars as pl
import pyarrow.parquet as pq

items = pd.read_parquet("gladly-data/items", columns=["conversation_id", "timestamp", "text"])
transcripts = pl.scan_parquet("gladly-data/transcripts/**/*.parquet").collect()

schema = pq.read_schema(one_file)  # any file of a dataset
schema.metadata[b"gladly_pipeline.schema_version"]
schema.field("text").metadata[b"description"]
```

Directories named `job=…` and `run=…` are Hive partitions: DuckDB and pandas read them as an
extra `job` or `run` column (polars does with `hive_partitioning=True`).

## Personal data

Each column says whether it can hold personal data, in one of three words:

| Personal data | Meaning |
|---|---|
{personal}

## Sources

| Source | Meaning |
|---|---|
{sources}

## Not datasets

`_staging/` (commits in progress), `_facts/` (the planner's cache, always safe to delete),
`_plans/` (plans written by `plan` and `sweep`), `_enrichment/state.json`, `_sweep/` and
`_layout.json` are the pipeline's working state. The audit log (`_audit/`) has its own
schema and version (audit_log/files.py), its fields described the same way; docs/erasure.md
explains it.
"""


def arrow_type(data_type: pa.DataType) -> str:
    """An Arrow type as readers name it: `list<string>` rather than `list<item: string>`."""
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        kind = "large_list" if pa.types.is_large_list(data_type) else "list"
        return f"{kind}<{arrow_type(data_type.value_type)}>"
    if pa.types.is_struct(data_type):
        members = (data_type.field(i) for i in range(data_type.num_fields))
        return "struct<" + ", ".join(f"{f.name}: {arrow_type(f.type)}" for f in members) + ">"
    return str(data_type)


def documented_schemas() -> list[pa.Schema]:
    """Every schema this page documents, in its order: DATASETS, tombstones, refill watch."""
    return [*DATASETS.values(), TOMBSTONES, REFILL_WATCH]


def _meta(field: pa.Field, key: bytes) -> str:
    value: bytes = (field.metadata or {}).get(key, b"")
    return value.decode()


def _rows(schema: pa.Schema) -> Iterable[str]:
    for field in schema:
        kind = f"`{arrow_type(field.type)}`" + ("" if field.nullable else " not null")
        cells = [
            f"`{field.name}`",
            kind,
            _meta(field, DESCRIPTION),
            _meta(field, SOURCE),
            _meta(field, PERSONAL_KEY),
        ]
        yield "| " + " | ".join(cells) + " |"


def _section(schema: pa.Schema) -> str:
    name = (schema.metadata or {})[_DATASET_KEY].decode()
    entry = DICTIONARY[name]
    lines = [
        f"## `{entry.directory}`",
        "",
        entry.summary,
        "",
        f"**Layout.** {entry.layout}",
        "",
        f"**Reading.** {entry.reading}",
        "",
        "| Column | Type | Meaning | Source | Personal data |",
        "|---|---|---|---|---|",
        *_rows(schema),
    ]
    return "\n".join(lines) + "\n"


def render_markdown(schemas: Iterable[pa.Schema] | None = None) -> str:
    """The whole of docs/datasets.md for `schemas` (default: `documented_schemas()`)."""
    intro = _INTRO.format(
        regenerate=REGENERATE,
        version=SCHEMA_VERSION,
        personal="\n".join(f"| {k} | {v} |" for k, v in PERSONAL_LEVELS.items()),
        sources="\n".join(f"| {k} | {v} |" for k, v in SOURCE_KINDS.items()),
    )
    chosen = documented_schemas() if schemas is None else list(schemas)
    sections = [_section(schema) for schema in chosen]
    return "\n".join([intro, *sections])


def main() -> None:
    """Print docs/datasets.md to stdout."""
    sys.stdout.write(render_markdown())


if __name__ == "__main__":
    main()
