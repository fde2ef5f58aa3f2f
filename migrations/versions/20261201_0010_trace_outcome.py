"""Run outcome on traces (failed / recovered / ok), set by the attributor; full-text search on spans

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 17:00:00

Existing traces keep NULL (= not yet attributed) and are queued again for the attributor,
which sets the outcome; the list filters and sorts on it through ix_traces_outcome.
The trace list's search reads ix_spans_{name,input,output}_search: GIN over each field as a
'simple' tsvector (no stemming, any language); readers who may not see content search names only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

SEARCHED = ("name", "input", "output")  # db/queries/trace_search.py queries the same expressions


def upgrade() -> None:
    op.add_column("traces", sa.Column("outcome", sa.Text(), nullable=True))
    op.create_check_constraint(op.f("ck_traces_outcome"), "traces", "outcome IN ('failed', 'recovered', 'ok')")
    op.create_index("ix_traces_outcome", "traces", ["project_id", "outcome", "start_time", "trace_id"])
    for field in SEARCHED:
        op.execute(f"CREATE INDEX ix_spans_{field}_search ON spans "
                   f"USING gin (to_tsvector('simple'::regconfig, coalesce({field}, '')))")
    # Backfill: attribute every trace again (the outcome is only known from attribution).
    op.execute("UPDATE traces SET attributed_at = NULL WHERE attributed_at IS NOT NULL")


def downgrade() -> None:
    for field in SEARCHED:
        op.execute(f"DROP INDEX ix_spans_{field}_search")
    op.drop_index("ix_traces_outcome", table_name="traces")
    op.drop_constraint(op.f("ck_traces_outcome"), "traces", type_="check")
    op.drop_column("traces", "outcome")
