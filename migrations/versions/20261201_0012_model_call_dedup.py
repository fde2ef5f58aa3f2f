"""Model calls recorded twice by stacked instrumentations count once: spans.response_id and
span_duplicates (core/model_call_dedup.py)

Revision ID: 0012
Revises: 0016
Create Date: 2026-12-01 18:30:00

The marks live in their own narrow table, not on `spans`: a mark set after its span was stored
would otherwise rewrite the whole span row and every index of it (the full-text ones included).
Spans stored before this revision count as they did (no response id, never marked); a span
arriving later for such a trace is still linked to them by the nested rule.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("spans", sa.Column("response_id", sa.Text(), nullable=True))
    op.create_table(
        "span_duplicates",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("trace_id", sa.LargeBinary(), nullable=False),
        sa.Column("span_id", sa.LargeBinary(), nullable=False),
        sa.Column("duplicate_of", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.CheckConstraint("reason IN ('same_response_id', 'nested')", name=op.f("ck_span_duplicates_reason")),
        sa.PrimaryKeyConstraint("project_id", "trace_id", "span_id", name=op.f("pk_span_duplicates")),
    )


def downgrade() -> None:
    op.drop_table("span_duplicates")
    op.drop_column("spans", "response_id")
