"""Settings > Evaluation and GET /api/evaluators: the built-in evaluators, the project's rules, the
LLM-as-judge configuration and what the judge cost today against the daily budget
(docs/evaluation.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from core.evaluators import BUILTINS
from core.judge_budget import Spent
from core.judge_evaluators import enabled_judges
from core.permissions import Permission, Principal
from core.settings import Settings
from db.queries.evaluation import list_rules
from db.queries.judge_calls import spent_today
from db.queries.judging import usage_today


class RuleIn(BaseModel):
    kind: Literal["json_schema", "regex", "llm_rubric"]
    config: dict = Field(description="json_schema: {schema}; regex: {pattern (RE2), expect: match|no_match}; "
                                     "llm_rubric: {rubric} (the criteria a judge model grades sampled runs' final "
                                     "answers against); each may add model, agent, span_name globs selecting the "
                                     "calls judged.")
    enabled: bool = True


class RuleOut(RuleIn):
    name: str


class JudgeConfigOut(BaseModel):
    configured: bool = Field(description="An endpoint is set (CAUSELINE_JUDGE_BASE_URL); false: nothing is ever sent.")
    model: str | None
    sample_rate: float = Field(description="Share of new runs judged (CAUSELINE_JUDGE_SAMPLE_RATE).")
    judges: list[str] = Field(description="Built-in judges run on sampled runs (CAUSELINE_JUDGE_EVALUATORS); the "
                                          "project's llm_rubric rules run too.")
    daily_tokens: int = Field(description="Budget per project per UTC day, evaluations and attributions together.")
    daily_usd: str


class UsageRowOut(BaseModel):
    purpose: str = Field(description="evaluator, attribution or replay.")
    name: str = Field(description="The judge, rubric rule, attribution method or replayed model.")
    outcome: str = Field(description="ok, or the failure: timeout, http, garbage (answered, but no verdict).")
    calls: int
    tokens: int
    cost_usd: str
    unpriced_calls: int


class UsageOut(BaseModel):
    calls: int = Field(description="Budgeted calls today (evaluations and attributions; replays are not budgeted).")
    tokens: int
    cost_usd: str
    token_share: float = Field(description="Share of the daily token budget used.")
    cost_share: float = Field(description="Share of the daily USD budget used.")
    failures: dict[str, int] = Field(description="Failed calls today by kind.")
    rows: list[UsageRowOut]


class EvaluatorsOut(BaseModel):
    builtins: list[str]
    rules: list[RuleOut]
    judge: JudgeConfigOut
    usage_today: UsageOut
    can_manage: bool = Field(default=False, description="Whether you may change the rules.")


def _money(value) -> str:
    return format(Decimal(value).quantize(Decimal("0.000001")).normalize(), "f")


def _share(used, budget) -> float:
    return round(float(used) / float(budget), 4) if budget else (1.0 if used else 0.0)


def evaluators_data(session: Session, principal: Principal, settings: Settings) -> EvaluatorsOut:
    rows = usage_today(session, principal.project_id)
    spent: Spent = spent_today(session, principal.project_id)  # the budgeted purposes
    failures: dict[str, int] = {}
    for row in rows:
        if row.outcome != "ok":
            failures[row.outcome] = failures.get(row.outcome, 0) + row.calls
    return EvaluatorsOut(
        builtins=list(BUILTINS),
        rules=[RuleOut(name=r.name, kind=r.kind, config=r.config, enabled=r.enabled)
               for r in list_rules(session, principal.project_id)],
        judge=JudgeConfigOut(configured=bool(settings.judge_base_url), model=settings.judge_model or None,
                             sample_rate=settings.judge_sample_rate,
                             judges=list(enabled_judges(settings.judge_evaluators)),
                             daily_tokens=settings.judge_daily_tokens, daily_usd=_money(settings.judge_daily_usd)),
        usage_today=UsageOut(
            calls=spent.calls, tokens=spent.tokens, cost_usd=_money(spent.cost_usd),
            token_share=_share(spent.tokens, settings.judge_daily_tokens),
            cost_share=_share(spent.cost_usd, settings.judge_daily_usd), failures=failures,
            rows=[UsageRowOut(purpose=r.purpose, name=r.name, outcome=r.outcome, calls=r.calls, tokens=r.tokens,
                              cost_usd=_money(r.cost_usd), unpriced_calls=r.unpriced) for r in rows]),
        can_manage=principal.can(Permission.MANAGE_SETTINGS),
    )
