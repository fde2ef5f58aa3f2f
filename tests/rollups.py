"""provider_rollups must always equal usage_rollups summed over service and agent (db/ingest.py
writes both from the same counted calls and corrections; migration 0022 backfills one from the
other). `provider_rollups_mismatch` lists the keys where they differ: [] when they agree."""

from __future__ import annotations

from sqlalchemy import text

from core.latency import BUCKETS

_KEY = "project_id, hour, provider, request_model, response_model, error_class"
_SUMS = ("calls", "errors", "retries", "fallbacks", "unpriced_calls", "input_tokens", "output_tokens",
         "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost_usd", "duration_ns")
_HISTOGRAM = "ARRAY[" + ", ".join(f"sum(latency_buckets[{i}])" for i in range(1, BUCKETS + 1)) + "]::int8[]"
_MISMATCH = text(f"""
WITH expected AS (
    SELECT {_KEY}, {", ".join(f"sum({c}) AS {c}" for c in _SUMS)}, {_HISTOGRAM} AS latency_buckets
    FROM usage_rollups GROUP BY {_KEY}
), actual AS (
    SELECT {_KEY}, {", ".join(_SUMS)}, latency_buckets FROM provider_rollups
)
SELECT 'missing' AS side, * FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM actual) m
UNION ALL
SELECT 'unexpected', * FROM (SELECT * FROM actual EXCEPT ALL SELECT * FROM expected) u
""")


def provider_rollups_mismatch(conn) -> list[tuple]:
    """conn: a SQLAlchemy connection or session."""
    return [tuple(row) for row in conn.execute(_MISMATCH)]


def provider_rollups_rows(conn) -> int:
    return conn.execute(text("SELECT count(*) FROM provider_rollups")).scalar_one()
