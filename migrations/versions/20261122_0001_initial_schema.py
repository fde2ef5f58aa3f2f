"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 00:20:26.917932
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('project_id', sa.BigInteger(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('target', sa.Text(), nullable=True),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('prev_hash', sa.LargeBinary(), nullable=False),
    sa.Column('hash', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events')),
    sa.UniqueConstraint('hash', name=op.f('uq_audit_events_hash'))
    )
    op.create_index(op.f('ix_audit_events_project_id'), 'audit_events', ['project_id'], unique=False)
    op.create_table('projects',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('slug', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
    sa.UniqueConstraint('slug', name=op.f('uq_projects_slug'))
    )
    op.create_table('span_edges',
    sa.Column('project_id', sa.BigInteger(), nullable=False),
    sa.Column('trace_id', sa.LargeBinary(), nullable=False),
    sa.Column('span_id', sa.LargeBinary(), nullable=False),
    sa.Column('relation', sa.Text(), nullable=False),
    sa.Column('linked_trace_id', sa.LargeBinary(), nullable=False),
    sa.Column('linked_span_id', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'trace_id', 'span_id', 'relation', 'linked_trace_id', 'linked_span_id', name=op.f('pk_span_edges'))
    )
    op.create_index('ix_span_edges_linked', 'span_edges', ['project_id', 'linked_trace_id', 'linked_span_id'], unique=False)
    op.create_table('spans',
    sa.Column('project_id', sa.BigInteger(), nullable=False),
    sa.Column('trace_id', sa.LargeBinary(), nullable=False),
    sa.Column('span_id', sa.LargeBinary(), nullable=False),
    sa.Column('parent_span_id', sa.LargeBinary(), nullable=True),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('kind', sa.SmallInteger(), nullable=False),
    sa.Column('category', sa.Text(), nullable=False),
    sa.Column('operation', sa.Text(), nullable=True),
    sa.Column('start_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('start_ns', sa.BigInteger(), nullable=False),
    sa.Column('duration_ns', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('status_message', sa.Text(), nullable=True),
    sa.Column('error_type', sa.Text(), nullable=True),
    sa.Column('error_class', sa.Text(), nullable=True),
    sa.Column('service_name', sa.Text(), nullable=True),
    sa.Column('agent_name', sa.Text(), nullable=True),
    sa.Column('tool_name', sa.Text(), nullable=True),
    sa.Column('provider', sa.Text(), nullable=True),
    sa.Column('request_model', sa.Text(), nullable=True),
    sa.Column('response_model', sa.Text(), nullable=True),
    sa.Column('input_tokens', sa.BigInteger(), nullable=True),
    sa.Column('output_tokens', sa.BigInteger(), nullable=True),
    sa.Column('cache_read_tokens', sa.BigInteger(), nullable=True),
    sa.Column('cache_write_tokens', sa.BigInteger(), nullable=True),
    sa.Column('reasoning_tokens', sa.BigInteger(), nullable=True),
    sa.Column('cost_usd', sa.Numeric(precision=20, scale=10), nullable=True),
    sa.Column('cost_source', sa.Text(), nullable=True),
    sa.Column('reported_cost_usd', sa.Numeric(precision=20, scale=10), nullable=True),
    sa.Column('session_id', sa.Text(), nullable=True),
    sa.Column('user_id', sa.Text(), nullable=True),
    sa.Column('input', sa.Text(), nullable=True),
    sa.Column('output', sa.Text(), nullable=True),
    sa.Column('attributes', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('events', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('links', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('resource', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('scope', sa.Text(), nullable=True),
    sa.Column('ingested_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'trace_id', 'span_id', name=op.f('pk_spans'))
    )
    op.create_index('ix_spans_project_start', 'spans', ['project_id', 'start_time'], unique=False)
    op.create_table('traces',
    sa.Column('project_id', sa.BigInteger(), nullable=False),
    sa.Column('trace_id', sa.LargeBinary(), nullable=False),
    sa.Column('root_span_id', sa.LargeBinary(), nullable=True),
    sa.Column('root_name', sa.Text(), nullable=True),
    sa.Column('service_name', sa.Text(), nullable=True),
    sa.Column('start_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('span_count', sa.Integer(), nullable=False),
    sa.Column('error_count', sa.Integer(), nullable=False),
    sa.Column('llm_calls', sa.Integer(), nullable=False),
    sa.Column('unpriced_calls', sa.Integer(), nullable=False),
    sa.Column('input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('output_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cache_read_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cache_write_tokens', sa.BigInteger(), nullable=False),
    sa.Column('reasoning_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cost_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('agents', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('models', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('services', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('session_id', sa.Text(), nullable=True),
    sa.Column('user_id', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'trace_id', name=op.f('pk_traces'))
    )
    op.create_index('ix_traces_agents', 'traces', ['agents'], unique=False, postgresql_using='gin')
    op.create_index('ix_traces_models', 'traces', ['models'], unique=False, postgresql_using='gin')
    op.create_index('ix_traces_project_start', 'traces', ['project_id', 'start_time', 'trace_id'], unique=False)
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
    op.create_table('users',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('email', sa.Text(), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('is_admin', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('api_keys',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('project_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('prefix', sa.Text(), nullable=False),
    sa.Column('key_hash', sa.LargeBinary(), nullable=False),
    sa.Column('scopes', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_api_keys_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    op.create_index(op.f('ix_api_keys_project_id'), 'api_keys', ['project_id'], unique=False)
    op.create_table('memberships',
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('project_id', sa.BigInteger(), nullable=False),
    sa.Column('role', sa.Text(), nullable=False),
    sa.CheckConstraint("role in ('owner', 'member', 'viewer')", name=op.f('ck_memberships_role')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_memberships_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_memberships_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'project_id', name=op.f('pk_memberships'))
    )
    op.create_table('model_prices',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('project_id', sa.BigInteger(), nullable=False),
    sa.Column('model_pattern', sa.Text(), nullable=False),
    sa.Column('provider', sa.Text(), nullable=True),
    sa.Column('input_per_mtok', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('output_per_mtok', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('cache_read_per_mtok', sa.Numeric(precision=20, scale=10), nullable=True),
    sa.Column('cache_write_per_mtok', sa.Numeric(precision=20, scale=10), nullable=True),
    sa.Column('effective_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('effective_to', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_model_prices_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_prices')),
    sa.UniqueConstraint('project_id', 'model_pattern', 'provider', 'effective_from', name=op.f('uq_model_prices_project_id_model_pattern_provider_effective_from'))
    )
    op.create_index(op.f('ix_model_prices_project_id'), 'model_prices', ['project_id'], unique=False)
    op.create_table('user_sessions',
    sa.Column('token_hash', sa.LargeBinary(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_user_sessions'))
    )
    op.create_index(op.f('ix_user_sessions_user_id'), 'user_sessions', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_user_sessions_user_id'), table_name='user_sessions')
    op.drop_table('user_sessions')
    op.drop_index(op.f('ix_model_prices_project_id'), table_name='model_prices')
    op.drop_table('model_prices')
    op.drop_table('memberships')
    op.drop_index(op.f('ix_api_keys_project_id'), table_name='api_keys')
    op.drop_table('api_keys')
    op.drop_table('users')
    op.drop_table('usage_rollups')
    op.drop_index('ix_traces_project_start', table_name='traces')
    op.drop_index('ix_traces_models', table_name='traces', postgresql_using='gin')
    op.drop_index('ix_traces_agents', table_name='traces', postgresql_using='gin')
    op.drop_table('traces')
    op.drop_index('ix_spans_project_start', table_name='spans')
    op.drop_table('spans')
    op.drop_index('ix_span_edges_linked', table_name='span_edges')
    op.drop_table('span_edges')
    op.drop_table('projects')
    op.drop_index(op.f('ix_audit_events_project_id'), table_name='audit_events')
    op.drop_table('audit_events')
