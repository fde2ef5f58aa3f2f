"""provider_rollups: usage_rollups without service and agent, backfilled from usage_rollups

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-02 00:45:00

Provider health and anomalies group by (provider, requested model, hour) and never by service
or agent; over usage_rollups they summed ~4x more rows than they needed (the 80-bucket latency
histogram sum was ~75% of their time). The new table holds the same measures summed over service
and agent, so it is filled exactly from usage_rollups (the ingest statement keeps both).
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0022'
down_revision = '0020'
branch_labels = None
depends_on = None

# Frozen copy of core.latency's bucket count at this revision.
_BUCKETS = 80
_SUMS = ("calls", "errors", "retries", "fallbacks", "unpriced_calls", "input_tokens", "output_tokens",
         "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost_usd", "duration_ns")


def upgrade() -> None:
    op.create_table('provider_rollups',
    sa.Column('project_id', sa.BigInteger(), nullable=False),
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
    sa.Column('provider', sa.Text(), nullable=False),
    sa.Column('request_model', sa.Text(), nullable=False),
    sa.Column('response_model', sa.Text(), nullable=False),
    sa.Column('error_class', sa.Text(), nullable=False),
    *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _SUMS[:10]),
    sa.Column('cost_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('duration_ns', sa.BigInteger(), nullable=False),
    sa.Column('latency_buckets', postgresql.ARRAY(sa.BigInteger()), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'hour', 'provider', 'request_model', 'response_model', 'error_class',
                            name=op.f('pk_provider_rollups'))
    )
    # Sums capped like the ingest statement's (a saturated usage_rollups row stays saturated here).
    sums = ", ".join(
        f"LEAST(sum({c}), {'9999999999.9999999999' if c == 'cost_usd' else '9223372036854775807'})"
        for c in _SUMS)
    histogram = "ARRAY[" + ", ".join(f"sum(latency_buckets[{i}])" for i in range(1, _BUCKETS + 1)) + "]::int8[]"
    op.execute(f"""
        INSERT INTO provider_rollups
        SELECT project_id, hour, provider, request_model, response_model, error_class, {sums}, {histogram}
        FROM usage_rollups GROUP BY 1, 2, 3, 4, 5, 6""")


def downgrade() -> None:
    op.drop_table('provider_rollups')
