"""Per-project redaction rules (built-ins switched off, custom patterns)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 16:40:00

No row means the default: every built-in detector on, no custom pattern.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'redaction_rules',
        sa.Column('project_id', sa.BigInteger(), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('pattern', sa.Text(), nullable=True),
        sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_redaction_rules_project_id_projects'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('project_id', 'name', name=op.f('pk_redaction_rules')),
    )


def downgrade() -> None:
    op.drop_table('redaction_rules')
