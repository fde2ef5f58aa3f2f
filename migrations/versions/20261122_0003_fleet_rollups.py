"""fleet rollups: model-call rollups by service/requested/served model/error class with retries,
fallbacks and latency histograms; tool rollups; spans.retry_kind

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 02:10:00.000000

usage_rollups gets a new key, so it is recreated and rebuilt from `spans` (the source of
truth) in the same transaction; downgrade rebuilds the old shape the same way.
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# Frozen copy of core.latency at this revision (80 buckets, 4 per doubling from 1 ms).
_BUCKETS = 80
_BOUNDS = ",".join(str(round(1_000_000 * 2 ** (j / 4))) for j in range(_BUCKETS - 1))
_BUCKET = f"width_bucket(duration_ns, '{{{_BOUNDS}}}'::int8[])"
_HISTOGRAM = "ARRAY[" + ", ".join(f"count(*) FILTER (WHERE b = {i})" for i in range(_BUCKETS)) + "]::int8[]"
_ERROR_KEY = "CASE WHEN status = 'error' THEN COALESCE(error_class, 'unknown') ELSE '' END"
_RETRY_KIND = """CASE
    WHEN links @> '[{"relation": "fallback_of"}]' THEN 'fallback'
    WHEN links @> '[{"relation": "retry_of"}]' THEN 'retry'
    WHEN attributes->>'causeline.attempt' ~ '^[0-9]{1,9}$' AND (attributes->>'causeline.attempt')::int > 1 THEN 'retry'
END"""


def _rollup_columns():
    return [
        sa.Column('calls', sa.BigInteger(), nullable=False),
        sa.Column('errors', sa.BigInteger(), nullable=False),
    ]


def _usage_table():
    return (
        sa.Column('project_id', sa.BigInteger(), nullable=False),
        sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
        sa.Column('service', sa.Text(), nullable=False),
        sa.Column('provider', sa.Text(), nullable=False),
        sa.Column('request_model', sa.Text(), nullable=False),
        sa.Column('response_model', sa.Text(), nullable=False),
        sa.Column('agent', sa.Text(), nullable=False),
        sa.Column('error_class', sa.Text(), nullable=False),
        *_rollup_columns(),
        sa.Column('retries', sa.BigInteger(), nullable=False),
        sa.Column('fallbacks', sa.BigInteger(), nullable=False),
        sa.Column('unpriced_calls', sa.BigInteger(), nullable=False),
        sa.Column('input_tokens', sa.BigInteger(), nullable=False),
        sa.Column('output_tokens', sa.BigInteger(), nullable=False),
        sa.Column('cache_read_tokens', sa.BigInteger(), nullable=False),
        sa.Column('cache_write_tokens', sa.BigInteger(), nullable=False),
        sa.Column('reasoning_tokens', sa.BigInteger(), nullable=False),
        sa.Column('cost_usd', sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column('duration_ns', sa.BigInteger(), nullable=False),
        sa.Column('latency_buckets', postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.PrimaryKeyConstraint('project_id', 'hour', 'service', 'provider', 'request_model', 'response_model',
                                'agent', 'error_class', name=op.f('pk_usage_rollups')),
    )


def upgrade() -> None:
    op.add_column('spans', sa.Column('retry_kind', sa.Text(), nullable=True))
    op.execute(f"UPDATE spans SET retry_kind = {_RETRY_KIND} WHERE links <> '[]' OR attributes ? 'causeline.attempt'")
    op.drop_table('usage_rollups')
    op.create_table('usage_rollups', *_usage_table())
    op.create_table('tool_rollups',
    sa.Column('project_id', sa.BigInteger(), nullable=False),
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
    sa.Column('service', sa.Text(), nullable=False),
    sa.Column('agent', sa.Text(), nullable=False),
    sa.Column('tool', sa.Text(), nullable=False),
    sa.Column('error_class', sa.Text(), nullable=False),
    *_rollup_columns(),
    sa.Column('retries', sa.BigInteger(), nullable=False),
    sa.Column('duration_ns', sa.BigInteger(), nullable=False),
    sa.Column('latency_buckets', postgresql.ARRAY(sa.BigInteger()), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'hour', 'service', 'agent', 'tool', 'error_class', name=op.f('pk_tool_rollups'))
    )
    calls = f"""
        SELECT date_trunc('hour', start_time, 'UTC') AS hour, COALESCE(service_name, '') AS service,
            COALESCE(agent_name, '') AS agent, {_ERROR_KEY} AS error_key, {_BUCKET} AS b,
            project_id, category, status, retry_kind, cost_source, provider, request_model, response_model,
            tool_name, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
            cost_usd, duration_ns
        FROM spans"""
    op.execute(f"""
        INSERT INTO usage_rollups
        SELECT project_id, hour, service, COALESCE(provider, ''), COALESCE(request_model, ''),
            COALESCE(response_model, ''), agent, error_key,
            count(*), count(*) FILTER (WHERE status = 'error'), count(*) FILTER (WHERE retry_kind = 'retry'),
            count(*) FILTER (WHERE retry_kind = 'fallback'), count(*) FILTER (WHERE cost_source = 'unpriced'),
            COALESCE(sum(input_tokens), 0), COALESCE(sum(output_tokens), 0),
            COALESCE(sum(cache_read_tokens), 0), COALESCE(sum(cache_write_tokens), 0),
            COALESCE(sum(reasoning_tokens), 0), COALESCE(sum(cost_usd), 0), sum(duration_ns), {_HISTOGRAM}
        FROM ({calls}) c WHERE category IN ('llm', 'embedding')
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8""")
    op.execute(f"""
        INSERT INTO tool_rollups
        SELECT project_id, hour, service, agent, COALESCE(tool_name, ''), error_key,
            count(*), count(*) FILTER (WHERE status = 'error'), count(*) FILTER (WHERE retry_kind IS NOT NULL),
            sum(duration_ns), {_HISTOGRAM}
        FROM ({calls}) c WHERE category = 'tool'
        GROUP BY 1, 2, 3, 4, 5, 6""")


def downgrade() -> None:
    op.drop_table('tool_rollups')
    op.drop_table('usage_rollups')
    op.create_table('usage_rollups',
    sa.Column('project_id', sa.BigInteger(), nullable=False),
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
    sa.Column('provider', sa.Text(), nullable=False),
    sa.Column('model', sa.Text(), nullable=False),
    sa.Column('agent', sa.Text(), nullable=False),
    sa.Column('calls', sa.BigInteger(), nullable=False),
    sa.Column('errors', sa.BigInteger(), nullable=False),
    sa.Column('unpriced_calls', sa.BigInteger(), nullable=False),
    sa.Column('input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('output_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cache_read_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cache_write_tokens', sa.BigInteger(), nullable=False),
    sa.Column('reasoning_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cost_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('duration_ns', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'hour', 'provider', 'model', 'agent', name=op.f('pk_usage_rollups'))
    )
    op.execute("""
        INSERT INTO usage_rollups
        SELECT project_id, date_trunc('hour', start_time, 'UTC'), COALESCE(provider, ''),
            COALESCE(response_model, request_model, ''), COALESCE(agent_name, ''),
            count(*), count(*) FILTER (WHERE status = 'error'), count(*) FILTER (WHERE cost_source = 'unpriced'),
            COALESCE(sum(input_tokens), 0), COALESCE(sum(output_tokens), 0),
            COALESCE(sum(cache_read_tokens), 0), COALESCE(sum(cache_write_tokens), 0),
            COALESCE(sum(reasoning_tokens), 0), COALESCE(sum(cost_usd), 0), sum(duration_ns)
        FROM spans WHERE category IN ('llm', 'embedding')
        GROUP BY 1, 2, 3, 4, 5""")
    op.drop_column('spans', 'retry_kind')
