"""Optimizely's Enriched Events Export as a format: key layout, exact schemas, Parquet footers. Pure."""
