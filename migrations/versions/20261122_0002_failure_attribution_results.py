"""failure attribution results

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 00:43:07.151421
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('trace_failures',
    sa.Column('project_id', sa.BigInteger(), nullable=False),
    sa.Column('trace_id', sa.LargeBinary(), nullable=False),
    sa.Column('root_span_id', sa.LargeBinary(), nullable=False),
    sa.Column('root_trace_id', sa.LargeBinary(), nullable=False),
    sa.Column('trace_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('error_class', sa.Text(), nullable=False),
    sa.Column('category', sa.Text(), nullable=False),
    sa.Column('span_name', sa.Text(), nullable=False),
    sa.Column('service_name', sa.Text(), nullable=True),
    sa.Column('agent_name', sa.Text(), nullable=True),
    sa.Column('tool_name', sa.Text(), nullable=True),
    sa.Column('provider', sa.Text(), nullable=True),
    sa.Column('request_model', sa.Text(), nullable=True),
    sa.Column('response_model', sa.Text(), nullable=True),
    sa.Column('recovered', sa.Boolean(), nullable=False),
    sa.Column('trace_failed', sa.Boolean(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('tokens_burned', sa.BigInteger(), nullable=False),
    sa.Column('cost_burned_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('duration_ns', sa.BigInteger(), nullable=False),
    sa.Column('propagation_depth', sa.Integer(), nullable=False),
    sa.Column('blast_radius', sa.Integer(), nullable=False),
    sa.Column('evidence', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'trace_id', 'root_span_id', name=op.f('pk_trace_failures'))
    )
    op.create_index('ix_trace_failures_project_start', 'trace_failures', ['project_id', 'trace_start'], unique=False)
    op.add_column('traces', sa.Column('attributed_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_traces_unattributed', 'traces', ['updated_at'], unique=False, postgresql_where=sa.text('attributed_at IS NULL OR attributed_at < updated_at'))


def downgrade() -> None:
    op.drop_index('ix_traces_unattributed', table_name='traces', postgresql_where=sa.text('attributed_at IS NULL OR attributed_at < updated_at'))
    op.drop_column('traces', 'attributed_at')
    op.drop_index('ix_trace_failures_project_start', table_name='trace_failures')
    op.drop_table('trace_failures')
