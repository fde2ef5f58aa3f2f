"""Roles per membership (admin, engineer, auditor, viewer) and the creator of each API key

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 15:40:00

The roles of schema 0001 were never read; they map to the new ones as owner -> admin,
member -> engineer, viewer -> viewer (core.permissions.LEGACY_ROLES). Existing keys have no
creator: they were made by the operator and keep their scopes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint(op.f('ck_memberships_role'), 'memberships', type_='check')
    op.execute("""
        UPDATE memberships SET role = CASE role
            WHEN 'owner' THEN 'admin' WHEN 'member' THEN 'engineer' ELSE 'viewer' END
    """)
    op.create_check_constraint(op.f('ck_memberships_role'), 'memberships', "role in ('admin', 'engineer', 'auditor', 'viewer')")
    op.add_column('api_keys', sa.Column('created_by', sa.BigInteger(), nullable=True))
    op.create_foreign_key(op.f('fk_api_keys_created_by_users'), 'api_keys', 'users', ['created_by'], ['id'],
                          ondelete='SET NULL')


def downgrade() -> None:
    op.drop_constraint(op.f('fk_api_keys_created_by_users'), 'api_keys', type_='foreignkey')
    op.drop_column('api_keys', 'created_by')
    op.drop_constraint(op.f('ck_memberships_role'), 'memberships', type_='check')
    op.execute("""
        UPDATE memberships SET role = CASE role
            WHEN 'admin' THEN 'owner' WHEN 'viewer' THEN 'viewer' ELSE 'member' END
    """)
    op.create_check_constraint(op.f('ck_memberships_role'), 'memberships', "role in ('owner', 'member', 'viewer')")
