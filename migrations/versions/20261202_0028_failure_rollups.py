"""failure_rollups: /api/failures from an hourly rollup of trace_failures, backfilled

Revision ID: 0028
Revises: 0023
Create Date: 2026-12-02 04:00:00

/api/failures read every trace_failures row of its window (and the run's traces row for each):
it grew with the failures. failure_rollups holds the same measures per project x hour x
dimension x group, kept by the attributor (db/queries/failure_rollups.py). trace_failures gains
the run's cost and tokens as they were when its rows were written (what the rows added to the
rollup, so a re-attribution subtracts exactly that) and a partial index on the rows whose root
cause lies in another run (de-duplicated per window at read time).
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa

revision = '0028'
down_revision = '0023'
branch_labels = None
depends_on = None

_MONEY = sa.Numeric(precision=20, scale=10)
# Frozen copy of db.queries.failures.DIMENSIONS at this revision (plus the totals' 'total').
_GROUPS = """('error_class', COALESCE(tf.error_class, '')), ('provider', COALESCE(tf.provider, '')),
    ('model', COALESCE(COALESCE(tf.response_model, tf.request_model), '')), ('tool', COALESCE(tf.tool_name, '')),
    ('agent', COALESCE(tf.agent_name, '')), ('step', COALESCE(COALESCE(tf.step_name, tf.span_name), '')),
    ('total', '')"""


def upgrade() -> None:
    op.add_column('trace_failures', sa.Column('rolled_run_cost_usd', _MONEY, nullable=True))
    op.add_column('trace_failures', sa.Column('rolled_run_tokens', sa.BigInteger(), nullable=True))
    op.create_index('ix_trace_failures_linked', 'trace_failures', ['project_id', 'trace_start'],
                    postgresql_where=sa.text('root_trace_id <> trace_id'))
    op.create_table('failure_rollups',
    sa.Column('project_id', sa.BigInteger(), nullable=False),
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dim', sa.Text(), nullable=False),
    sa.Column('grp', sa.Text(), nullable=False),
    sa.Column('failures', sa.BigInteger(), nullable=False),
    sa.Column('recovered', sa.BigInteger(), nullable=False),
    sa.Column('tokens_burned', sa.BigInteger(), nullable=False),
    sa.Column('cost_burned_usd', _MONEY, nullable=False),
    sa.Column('cost_recovered_usd', _MONEY, nullable=False),
    sa.Column('confidence_sum', sa.Float(), nullable=False),
    sa.Column('runs', sa.BigInteger(), nullable=False),
    sa.Column('failed_runs', sa.BigInteger(), nullable=False),
    sa.Column('failed_runs_cost_usd', _MONEY, nullable=False),
    sa.Column('failed_runs_tokens', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'hour', 'dim', 'grp', name=op.f('pk_failure_rollups'))
    )
    op.create_table('failure_rollup_deltas',
    sa.Column('project_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dim', sa.Text(), nullable=False),
    sa.Column('grp', sa.Text(), nullable=False),
    *(sa.Column(name, _MONEY if name.endswith('_usd') else sa.Float() if name == 'confidence_sum' else sa.BigInteger(),
                nullable=False)
      for name in ('failures', 'recovered', 'tokens_burned', 'cost_burned_usd', 'cost_recovered_usd', 'confidence_sum',
                   'runs', 'failed_runs', 'failed_runs_cost_usd', 'failed_runs_tokens')),
    sa.PrimaryKeyConstraint('project_id', 'id', name=op.f('pk_failure_rollup_deltas'))
    )
    op.create_index('ix_failure_rollup_deltas_project_hour', 'failure_rollup_deltas', ['project_id', 'hour'])
    op.execute("""
        UPDATE trace_failures tf
        SET rolled_run_cost_usd = t.cost_usd, rolled_run_tokens = t.input_tokens + t.output_tokens
        FROM traces t WHERE t.project_id = tf.project_id AND t.trace_id = tf.trace_id""")
    op.execute(f"""
        INSERT INTO failure_rollups
        SELECT project_id, hour, dim, grp,
               sum(failures), sum(recovered), sum(tokens_burned), sum(cost_burned_usd), sum(cost_recovered_usd),
               sum(confidence_sum), count(*), count(*) FILTER (WHERE failed),
               COALESCE(sum(run_cost) FILTER (WHERE failed), 0),
               COALESCE(sum(run_tokens) FILTER (WHERE failed), 0)
        FROM (
            SELECT tf.project_id, date_trunc('hour', tf.trace_start, 'UTC') AS hour, g.dim, g.grp, tf.trace_id,
                   count(*) FILTER (WHERE tf.root_trace_id = tf.trace_id) AS failures,
                   count(*) FILTER (WHERE tf.root_trace_id = tf.trace_id AND tf.recovered) AS recovered,
                   COALESCE(sum(tf.tokens_burned) FILTER (WHERE tf.root_trace_id = tf.trace_id), 0) AS tokens_burned,
                   COALESCE(sum(tf.cost_burned_usd) FILTER (WHERE tf.root_trace_id = tf.trace_id), 0) AS cost_burned_usd,
                   COALESCE(sum(tf.cost_burned_usd) FILTER (WHERE tf.root_trace_id = tf.trace_id AND tf.recovered), 0)
                       AS cost_recovered_usd,
                   COALESCE(sum(tf.confidence) FILTER (WHERE tf.root_trace_id = tf.trace_id), 0) AS confidence_sum,
                   bool_or(tf.trace_failed) AS failed, max(tf.rolled_run_cost_usd) AS run_cost,
                   max(tf.rolled_run_tokens) AS run_tokens
            FROM trace_failures tf CROSS JOIN LATERAL (VALUES {_GROUPS}) AS g(dim, grp)
            GROUP BY 1, 2, 3, 4, 5
        ) per_run
        GROUP BY 1, 2, 3, 4""")


def downgrade() -> None:
    op.drop_table('failure_rollup_deltas')
    op.drop_table('failure_rollups')
    op.drop_index('ix_trace_failures_linked', table_name='trace_failures')
    op.drop_column('trace_failures', 'rolled_run_tokens')
    op.drop_column('trace_failures', 'rolled_run_cost_usd')
