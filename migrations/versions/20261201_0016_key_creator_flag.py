"""api_keys.created_by_member: whether a member (not the operator) created the key

Revision ID: 0016
Revises: 0011
Create Date: 2026-12-01 18:30:00

`created_by` is set NULL when the creating user's row is deleted, and NULL also meant "made by
the operator on the command line", whose keys carry their full scopes: deleting a user turned
their keys into uncapped ones. The flag keeps the two apart: a member's key whose creator is
gone carries nothing (core/permissions.key_permissions). Backfill: every key with a creator
today was made by a member.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0016'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("created_by_member", sa.Boolean(), server_default=sa.text("false"),
                                        nullable=False))
    op.execute("UPDATE api_keys SET created_by_member = true WHERE created_by IS NOT NULL")


def downgrade() -> None:
    op.drop_column("api_keys", "created_by_member")
