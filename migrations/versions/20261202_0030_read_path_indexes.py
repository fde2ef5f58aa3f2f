"""Read paths: ix_traces_project_start covers each run's cost and tokens; span_edges' lineage edges indexed apart

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-02 10:10:00

The Overview's runs, cost and tokens over time (db/queries/overview.py) read every run of the
window. From the index alone (an index-only scan of (project_id, start_time) with the three
columns included) 100,000 runs took 39 ms in EXPLAIN ANALYZE instead of 131 ms through the
table's wide rows.
Every update of a run already writes a new entry in this index (updated_at is indexed, so no
update of `traces` is HOT); the entry is only wider.

Locks: each CREATE INDEX blocks writes (not reads) to its table while it builds, about a second per
million rows, and keeps that lock to the end of the migration's transaction. The covering index is
built under a temporary name and swapped in last (drop the old one, rename), so the lock that also
blocks reads of `traces` is held only from that swap to the commit.

A trace's lineage edges (every relation but `parent`, which spans.parent_span_id repeats) were
found by reading all of its edges: 10,000 for a 10,000-span trace, on every open of its page.
Two partial indexes hold only the others, a few per trace; edges inserted are indexed in them
only when they are not `parent` edges.
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa

revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_traces_project_start_covering', 'traces', ['project_id', 'start_time', 'trace_id'],
                    postgresql_include=['cost_usd', 'input_tokens', 'output_tokens'])
    op.create_index('ix_span_edges_lineage', 'span_edges', ['project_id', 'trace_id'],
                    postgresql_where=sa.text("relation <> 'parent'"))
    op.create_index('ix_span_edges_lineage_linked', 'span_edges', ['project_id', 'linked_trace_id'],
                    postgresql_where=sa.text("relation <> 'parent'"))
    op.drop_index('ix_traces_project_start', table_name='traces')
    op.execute('ALTER INDEX ix_traces_project_start_covering RENAME TO ix_traces_project_start')


def downgrade() -> None:
    op.drop_index('ix_span_edges_lineage_linked', table_name='span_edges')
    op.drop_index('ix_span_edges_lineage', table_name='span_edges')
    op.drop_index('ix_traces_project_start', table_name='traces')
    op.create_index('ix_traces_project_start', 'traces', ['project_id', 'start_time', 'trace_id'])
