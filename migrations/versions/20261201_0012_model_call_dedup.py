"""Model calls recorded twice by stacked instrumentations count once: spans.response_id,
spans.duplicate_of and spans.duplicate_reason (core/model_call_dedup.py)

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-01 18:30:00

New columns only: spans stored before this revision count as they did (no response id, never
marked). A span arriving later for such a trace is still linked to them by the nested rule.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("spans", sa.Column("response_id", sa.Text(), nullable=True))
    op.add_column("spans", sa.Column("duplicate_of", sa.LargeBinary(), nullable=True))
    op.add_column("spans", sa.Column("duplicate_reason", sa.Text(), nullable=True))
    # NOT VALID: the existing rows hold NULLs (they pass), and a large spans table is not scanned.
    op.execute("ALTER TABLE spans ADD CONSTRAINT ck_spans_duplicate CHECK ("
               "(duplicate_of IS NULL AND duplicate_reason IS NULL) OR "
               "(duplicate_of IS NOT NULL AND duplicate_reason IN ('same_response_id', 'nested'))) NOT VALID")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_spans_duplicate"), "spans", type_="check")
    op.drop_column("spans", "duplicate_reason")
    op.drop_column("spans", "duplicate_of")
    op.drop_column("spans", "response_id")
