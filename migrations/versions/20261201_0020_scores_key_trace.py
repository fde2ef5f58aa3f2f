"""scores keyed by (project_id, trace_id, score_key)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 22:55:00

The primary key gains the run's trace id, so `scores` can be distributed by trace on Citus beside
`spans` (docs/scaling.md): the score pages join scores to their spans, and Citus joins distributed
tables only on their distribution column. Every score key is already a digest of its trace (or, for
an API idempotency id, one run's), so no stored score changes identity.
"""

from __future__ import annotations

from alembic import op


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint('pk_scores', 'scores', type_='primary')
    op.create_primary_key('pk_scores', 'scores', ['project_id', 'trace_id', 'score_key'])


def downgrade() -> None:
    op.drop_constraint('pk_scores', 'scores', type_='primary')
    op.create_primary_key('pk_scores', 'scores', ['project_id', 'score_key'])
