"""judge_calls: every call Causeline makes to the operator's model endpoint

Revision ID: 0017
Revises: 0012
Create Date: 2026-12-01 21:40:00

LLM-as-judge evaluations, judge-assisted attribution and replays are recorded one row per call
(prompt version, model, tokens, cost, outcome), so what evaluation itself costs is visible and a
per-project daily budget can be enforced from the rows of the day (ix_judge_calls_created).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0017'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'judge_calls',
        sa.Column('project_id', sa.BigInteger(), nullable=False),
        sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('purpose', sa.Text(), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('prompt_version', sa.Text(), nullable=True),
        sa.Column('trace_id', sa.LargeBinary(), nullable=True),
        sa.Column('span_id', sa.LargeBinary(), nullable=True),
        sa.Column('model', sa.Text(), nullable=False),
        sa.Column('input_tokens', sa.BigInteger(), nullable=True),
        sa.Column('output_tokens', sa.BigInteger(), nullable=True),
        sa.Column('cost_usd', sa.Numeric(20, 10), nullable=True),
        sa.Column('latency_ms', sa.Float(), nullable=True),
        sa.Column('outcome', sa.Text(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.CheckConstraint("purpose IN ('evaluator', 'attribution', 'replay')", name=op.f('ck_judge_calls_purpose')),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_judge_calls_project_id_projects'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('project_id', 'id', name=op.f('pk_judge_calls')),
    )
    op.create_index('ix_judge_calls_created', 'judge_calls', ['project_id', 'created_at'])
    op.create_index('ix_judge_calls_trace', 'judge_calls', ['project_id', 'trace_id'])


def downgrade() -> None:
    op.drop_table('judge_calls')
