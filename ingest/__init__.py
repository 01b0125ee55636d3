"""Turn Gladly's data into archive rows: export jobs, per-customer downloads, enrichment."""
