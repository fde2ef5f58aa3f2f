"""Scores (evaluation results) per trace or span; per-project evaluator rules; traces.evaluated_at

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 18:20:00

A score is keyed by (project_id, score_key): the key is a digest chosen by whoever writes it
(the API's idempotency key, an OTel event's identity, an evaluator's (span, name)), so a
redelivered score is stored once. evaluated_at marks traces the built-in evaluators have seen,
as attributed_at does for failure attribution; existing traces start unevaluated.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'scores',
        sa.Column('project_id', sa.BigInteger(), nullable=False),
        sa.Column('score_key', sa.LargeBinary(), nullable=False),
        sa.Column('trace_id', sa.LargeBinary(), nullable=False),
        sa.Column('span_id', sa.LargeBinary(), nullable=True),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('data_type', sa.Text(), nullable=False),
        sa.Column('value', sa.Float(), nullable=True),
        sa.Column('label', sa.Text(), nullable=True),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint("data_type IN ('numeric', 'boolean', 'categorical')", name=op.f('ck_scores_data_type')),
        sa.CheckConstraint('value IS NOT NULL OR label IS NOT NULL', name=op.f('ck_scores_has_value')),
        sa.PrimaryKeyConstraint('project_id', 'score_key', name=op.f('pk_scores')),
    )
    op.create_index('ix_scores_trace', 'scores', ['project_id', 'trace_id', 'name'])
    op.create_index('ix_scores_name_created', 'scores', ['project_id', 'name', 'created_at'])
    op.create_table(
        'evaluator_rules',
        sa.Column('project_id', sa.BigInteger(), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('config', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint("kind IN ('json_schema', 'regex')", name=op.f('ck_evaluator_rules_kind')),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_evaluator_rules_project_id_projects'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('project_id', 'name', name=op.f('pk_evaluator_rules')),
    )
    op.add_column('traces', sa.Column('evaluated_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_traces_unevaluated', 'traces', ['updated_at'],
                    postgresql_where=sa.text('evaluated_at IS NULL OR evaluated_at < updated_at'))


def downgrade() -> None:
    op.drop_index('ix_traces_unevaluated', table_name='traces')
    op.drop_column('traces', 'evaluated_at')
    op.drop_table('evaluator_rules')
    op.drop_index('ix_scores_name_created', table_name='scores')
    op.drop_index('ix_scores_trace', table_name='scores')
    op.drop_table('scores')
