"""failure step name

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 01:22:21.221605
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('trace_failures', sa.Column('step_name', sa.Text(), nullable=True))
    # Rows written before this revision know no step: have the attributor recompute them.
    op.execute("UPDATE traces SET attributed_at = NULL WHERE error_count > 0")


def downgrade() -> None:
    op.drop_column('trace_failures', 'step_name')
