"""Alerts: channels, rules, per-subject state, deliveries (the outbox)

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-01 18:30:00

A delivery row is written before its notification is sent (docs/alerts.md): the outbox
makes delivery at-least-once, its idempotency key lets receivers drop a repeat.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision = '0013'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'alert_channels',
        sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column('project_id', sa.BigInteger(), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('target', sa.Text(), nullable=False),
        sa.Column('secret', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_alert_channels_project_id_projects'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_channels')),
        sa.UniqueConstraint('project_id', 'name', name=op.f('uq_alert_channels_project_id_name')),
    )
    op.create_table(
        'alert_rules',
        sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column('project_id', sa.BigInteger(), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('threshold', sa.Float(), nullable=False),
        sa.Column('window_s', sa.Integer(), nullable=False),
        sa.Column('renotify_s', sa.Integer(), nullable=False),
        sa.Column('min_volume', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
        sa.Column('channel_ids', postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_alert_rules_project_id_projects'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_rules')),
        sa.UniqueConstraint('project_id', 'name', name=op.f('uq_alert_rules_project_id_name')),
    )
    op.create_table(
        'alert_states',
        sa.Column('rule_id', sa.BigInteger(), nullable=False),
        sa.Column('subject', sa.Text(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('since', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_notified', sa.DateTime(timezone=True), nullable=True),
        sa.Column('fired_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('value', sa.Float(), nullable=True),
        sa.Column('evidence', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('evaluated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['rule_id'], ['alert_rules.id'], name=op.f('fk_alert_states_rule_id_alert_rules'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('rule_id', 'subject', name=op.f('pk_alert_states')),
    )
    op.create_table(
        'alert_deliveries',
        sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column('project_id', sa.BigInteger(), nullable=False),
        sa.Column('rule_id', sa.BigInteger(), nullable=True),
        sa.Column('channel_id', sa.BigInteger(), nullable=False),
        sa.Column('event', sa.Text(), nullable=False),
        sa.Column('idempotency_key', sa.Text(), nullable=False),
        sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['channel_id'], ['alert_channels.id'],
                                name=op.f('fk_alert_deliveries_channel_id_alert_channels'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_alert_deliveries_project_id_projects'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['rule_id'], ['alert_rules.id'], name=op.f('fk_alert_deliveries_rule_id_alert_rules'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_deliveries')),
        sa.UniqueConstraint('idempotency_key', name=op.f('uq_alert_deliveries_idempotency_key')),
    )
    op.create_index('ix_alert_deliveries_project_created', 'alert_deliveries', ['project_id', 'created_at'])
    op.create_index('ix_alert_deliveries_due', 'alert_deliveries', ['next_attempt_at'],
                    postgresql_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    op.drop_table('alert_deliveries')
    op.drop_table('alert_states')
    op.drop_table('alert_rules')
    op.drop_table('alert_channels')
