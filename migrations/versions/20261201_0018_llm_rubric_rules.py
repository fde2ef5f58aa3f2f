"""evaluator_rules.kind gains 'llm_rubric': a project's rubric for the LLM-as-judge evaluators

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 22:00:00

A rubric rule holds the criteria a judge model grades a sampled run's final answer against
(core/judge_evaluators.py). Only the CHECK constraint changes; no row is rewritten.
"""

from __future__ import annotations

from alembic import op


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint(op.f('ck_evaluator_rules_kind'), 'evaluator_rules', type_='check')
    op.create_check_constraint(op.f('ck_evaluator_rules_kind'), 'evaluator_rules',
                               "kind IN ('json_schema', 'regex', 'llm_rubric')")


def downgrade() -> None:
    op.execute("DELETE FROM evaluator_rules WHERE kind = 'llm_rubric'")
    op.drop_constraint(op.f('ck_evaluator_rules_kind'), 'evaluator_rules', type_='check')
    op.create_check_constraint(op.f('ck_evaluator_rules_kind'), 'evaluator_rules', "kind IN ('json_schema', 'regex')")
