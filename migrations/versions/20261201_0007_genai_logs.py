"""GenAI content from OTLP log records (POST /v1/logs)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:30:00

One row per GenAI event, keyed by the span it belongs to and a digest of the record; no
foreign key to spans, as the log may arrive before its span.
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'genai_log_records',
        sa.Column('project_id', sa.BigInteger(), nullable=False),
        sa.Column('trace_id', sa.LargeBinary(), nullable=False),
        sa.Column('span_id', sa.LargeBinary(), nullable=False),
        sa.Column('record_key', sa.LargeBinary(), nullable=False),
        sa.Column('time_ns', sa.BigInteger(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('event_name', sa.Text(), nullable=False),
        sa.Column('input', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('output', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('ingested_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('project_id', 'trace_id', 'span_id', 'record_key', name=op.f('pk_genai_log_records')),
    )


def downgrade() -> None:
    op.drop_table('genai_log_records')
