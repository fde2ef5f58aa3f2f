"""The audit trail: per-project hash chains, append-only by trigger

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 16:20:00

audit_events had no writer, so it is empty; its new NOT NULL columns need no backfill
(the table is emptied first, while it still may be).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

APPEND_ONLY = """
CREATE FUNCTION causeline_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION causeline_audit_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION causeline_audit_append_only();
"""


def upgrade() -> None:
    op.execute("DELETE FROM audit_events")
    op.add_column('audit_events', sa.Column('chain', sa.BigInteger(), nullable=False))
    op.add_column('audit_events', sa.Column('seq', sa.BigInteger(), nullable=False))
    op.add_column('audit_events', sa.Column('outcome', sa.Text(), nullable=False))
    op.add_column('audit_events', sa.Column('client_addr', sa.Text(), nullable=True))
    op.create_unique_constraint(op.f('uq_audit_events_chain_seq'), 'audit_events', ['chain', 'seq'])
    op.create_index('ix_audit_events_chain_at', 'audit_events', ['chain', 'at'], unique=False)
    op.execute(APPEND_ONLY)


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
    op.execute("DROP TRIGGER audit_events_no_update_delete ON audit_events")
    op.execute("DROP FUNCTION causeline_audit_append_only()")
    op.execute("DELETE FROM audit_events")
    op.drop_index('ix_audit_events_chain_at', table_name='audit_events')
    op.drop_constraint(op.f('uq_audit_events_chain_seq'), 'audit_events', type_='unique')
    op.drop_column('audit_events', 'client_addr')
    op.drop_column('audit_events', 'outcome')
    op.drop_column('audit_events', 'seq')
    op.drop_column('audit_events', 'chain')
