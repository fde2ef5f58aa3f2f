"""judge_attributions: the judge's verdict on failed runs with weak structural evidence

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-01 22:00:00

One row per run (core/judge_attribution.py): which agent and step the judge blamed, its
reasoning, the prompt version, model and judge call, for the version of the run it read
(trace_updated_at), so a run is asked once until it gets new spans.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'judge_attributions',
        sa.Column('project_id', sa.BigInteger(), nullable=False),
        sa.Column('trace_id', sa.LargeBinary(), nullable=False),
        sa.Column('trace_updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('agent', sa.Text(), nullable=True),
        sa.Column('step_index', sa.Integer(), nullable=True),
        sa.Column('span_id', sa.LargeBinary(), nullable=True),
        sa.Column('reasoning', sa.Text(), nullable=True),
        sa.Column('prompt_version', sa.Text(), nullable=True),
        sa.Column('model', sa.Text(), nullable=True),
        sa.Column('judge_call_id', sa.BigInteger(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint("status IN ('asking', 'verdict', 'error', 'not_needed')",
                           name=op.f('ck_judge_attributions_status')),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_judge_attributions_project_id_projects'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('project_id', 'trace_id', name=op.f('pk_judge_attributions')),
    )


def downgrade() -> None:
    op.drop_table('judge_attributions')
