"""spans.digest: each span's report leaf digest, computed by PostgreSQL when the row is written

Revision ID: 0023
Revises: 0020
Create Date: 2026-12-02 02:00:00

A period report of a month reads a million leaf digests; computing them at report time
(record_send of 41 fields and a SHA-256 per record) was most of its cost. The digest is now a
stored generated column: PostgreSQL computes it on INSERT and again on any UPDATE (erasure),
so it always matches its row, and nothing can write it directly. It is the v3 leaf exactly
(db/queries/reports.py `_leaf_v3`): sha256(0x00 || record_send(ROW(the 41 DIGEST_FIELDS))),
the parameters typed as the columns, so the record's per-field type oids and bytes are the
same. Verification never reads this column; it recomputes the leaf from the row.

IMMUTABLE is sound because the binary send functions of these types do not read session
settings: timestamptz sends int64 microseconds since 2000-01-01 UTC (no TimeZone, no
DateStyle), numeric its base-10000 digits, weight, sign and display scale (no lc_numeric),
bigint/smallint fixed-width integers, bytea its raw bytes (no bytea_output), jsonb a version
byte and jsonb's canonical text (key order and number output are fixed by jsonb itself), and
text its bytes. text and jsonb go through the connection's client_encoding conversion, so the
function pins client_encoding to UTF8 (the server's encoding: no conversion at all) for its
own duration.
"""

from __future__ import annotations

from alembic import op


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

# Frozen with the v3 leaf: a later spans column does not belong here.
_PARAMS = (
    ("project_id", "bigint"), ("trace_id", "bytea"), ("span_id", "bytea"), ("parent_span_id", "bytea"),
    ("name", "text"), ("kind", "smallint"), ("category", "text"), ("operation", "text"),
    ("start_time", "timestamptz"), ("end_time", "timestamptz"), ("start_ns", "bigint"), ("duration_ns", "bigint"),
    ("status", "text"), ("status_message", "text"), ("error_type", "text"), ("error_class", "text"),
    ("service_name", "text"), ("agent_name", "text"), ("tool_name", "text"), ("provider", "text"),
    ("request_model", "text"), ("response_model", "text"), ("input_tokens", "bigint"), ("output_tokens", "bigint"),
    ("cache_read_tokens", "bigint"), ("cache_write_tokens", "bigint"), ("reasoning_tokens", "bigint"),
    ("cost_usd", "numeric"), ("cost_source", "text"), ("reported_cost_usd", "numeric"), ("session_id", "text"),
    ("user_id", "text"), ("input", "text"), ("output", "text"), ("attributes", "jsonb"), ("events", "jsonb"),
    ("links", "jsonb"), ("resource", "jsonb"), ("scope", "text"), ("retry_kind", "text"),
    ("ingested_at", "timestamptz"),
)
_SIGNATURE = ", ".join(t for _, t in _PARAMS)


def upgrade() -> None:
    row = ", ".join(f"${i}" for i in range(1, len(_PARAMS) + 1))
    op.execute(f"""
        CREATE FUNCTION causeline_span_digest({_SIGNATURE}) RETURNS bytea
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        SET client_encoding = 'UTF8'
        AS $$ SELECT sha256('\\x00'::bytea || record_send(ROW({row}))) $$""")
    columns = ", ".join(name for name, _ in _PARAMS)
    op.execute(f"ALTER TABLE spans ADD COLUMN digest bytea GENERATED ALWAYS AS (causeline_span_digest({columns})) STORED")


def downgrade() -> None:
    op.execute("ALTER TABLE spans DROP COLUMN digest")
    op.execute(f"DROP FUNCTION causeline_span_digest({_SIGNATURE})")
