"""trace_failures keyed by the root cause's trace too

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 01:28:58.271545

Span ids are unique only within their trace, so two root causes in different linked
traces may share one; the old key (project_id, trace_id, root_span_id) kept only one of
them. Autogenerate does not compare primary keys: written by hand.
"""

from __future__ import annotations

from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint('pk_trace_failures', 'trace_failures', type_='primary')
    op.create_primary_key('pk_trace_failures', 'trace_failures',
                          ['project_id', 'trace_id', 'root_trace_id', 'root_span_id'])
    # A root cause lost to the old key can only come from a linked trace: have the attributor
    # recompute the traces that have failures and a link to another trace.
    op.execute("""
        UPDATE traces t SET attributed_at = NULL
        WHERE EXISTS (SELECT 1 FROM trace_failures f WHERE f.project_id = t.project_id AND f.trace_id = t.trace_id)
          AND EXISTS (SELECT 1 FROM span_edges e WHERE e.project_id = t.project_id
                      AND (e.trace_id = t.trace_id OR e.linked_trace_id = t.trace_id)
                      AND e.trace_id <> e.linked_trace_id)""")


def downgrade() -> None:
    # The old key holds one row per root span id: keep the lowest root trace of each.
    op.execute("""
        DELETE FROM trace_failures a USING trace_failures b
        WHERE a.project_id = b.project_id AND a.trace_id = b.trace_id AND a.root_span_id = b.root_span_id
          AND a.root_trace_id > b.root_trace_id""")
    op.drop_constraint('pk_trace_failures', 'trace_failures', type_='primary')
    op.create_primary_key('pk_trace_failures', 'trace_failures', ['project_id', 'trace_id', 'root_span_id'])
