"""Scores as the API returns them and the pages show them (docs/evaluation.md)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from core.masking import mask_text
from core.scores import shown_value
from core.judge_evaluators import SOURCE_PREFIX
from db.models import JudgeCall, Score
from db.queries.judging import verdict_calls
from db.queries.score_steps import score_aggregates_by_step
from db.queries.scores import score_aggregates, trace_scores


class ScoreIn(BaseModel):
    """What POST /api/scores takes (one object or a list of up to 1000). Documented here for
    OpenAPI; the checks themselves are core.scores.parse_score (400 with a message)."""

    trace_id: str = Field(description="32 hex characters: the run scored.")
    span_id: str | None = Field(default=None, description="16 hex characters: the span scored (omit for the run).")
    name: str = Field(description="What was measured, e.g. `relevance`, `json_valid` (at most 200 characters).")
    value: float | bool | str = Field(description="A number, a boolean, or a string (a category label).")
    data_type: str | None = Field(default=None, description="numeric, boolean or categorical; inferred from `value` "
                                                            "when omitted, refused when it disagrees.")
    source: str | None = Field(default=None, description="Who scored (default `api`): a reviewer, a tool.")
    comment: str | None = Field(default=None, description="Why; at most 4000 characters.")
    id: str | None = Field(default=None, description="Idempotency key: a score sent again with the same id is "
                                                     "stored once. Without it, an identical score is stored once.")


class ScoreOut(BaseModel):
    trace_id: str
    span_id: str | None
    name: str
    data_type: str = Field(description="numeric, boolean (value 1 or 0) or categorical (label only).")
    value: float | None
    label: str | None
    shown: str = Field(description="The value as the UI shows it.")
    source: str = Field(description="api, otel (an OpenTelemetry evaluation event), a built-in evaluator's name, or "
                                    "judge:<prompt>@<version> (an LLM-as-judge verdict).")
    comment: str | None = Field(description="Why (masked for readers who may not see captured content).")
    created_at: datetime
    judge: JudgeCallOut | None = Field(default=None, description="For an LLM-as-judge verdict (source `judge:...`): "
                                                                "the judge call's model, tokens and cost.")


class JudgeCallOut(BaseModel):
    """The model call that produced an LLM-as-judge verdict: what the evaluation itself cost."""
    model: str
    prompt_version: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: str | None = Field(description="Null: unpriced (a model genai-prices does not know).")
    latency_ms: float | None


class ScoreList(BaseModel):
    scores: list[ScoreOut]


class ScoresWritten(BaseModel):
    received: int
    stored: int = Field(description="New scores; the rest were already stored (same id or same content).")


class ScoreGroupOut(BaseModel):
    name: str
    group: str = Field(description="The model, agent or UTC day; `(trace)` for scores on a whole run.")
    count: int
    mean: float | None = Field(description="Mean of numeric and boolean scores (for a boolean: the share true).")
    min: float | None
    max: float | None
    labels: dict[str, int] = Field(description="Counts of the most frequent labels (categories).")


class ScoreSummary(BaseModel):
    by: str
    since: datetime
    until: datetime
    groups: list[ScoreGroupOut]


def score_out(score: Score, *, content: bool, call: JudgeCall | None = None) -> ScoreOut:
    """A score as returned; its comment (an evaluator's explanation may quote the prompt) is
    masked for readers without `read_content`, like captured content. `call`: the judge call
    behind an LLM-as-judge verdict."""
    judge = None if call is None else JudgeCallOut(
        model=call.model, prompt_version=call.prompt_version, input_tokens=call.input_tokens,
        output_tokens=call.output_tokens, latency_ms=call.latency_ms,
        cost_usd=None if call.cost_usd is None else format(call.cost_usd.normalize(), "f"))
    return ScoreOut(judge=judge, trace_id=score.trace_id.hex(), span_id=score.span_id.hex() if score.span_id else None,
                    name=score.name, data_type=score.data_type, value=score.value, label=score.label,
                    shown=shown_value(score.data_type, score.value, score.label), source=score.source,
                    comment=score.comment if content else mask_text(score.comment), created_at=score.created_at)


def run_scores(session: Session, project_id: int, trace_id: bytes, *, content: bool,
               span_id: bytes | None = None) -> list[ScoreOut]:
    """A run's (or one span's) scores for the trace page and API, LLM-as-judge verdicts with the
    call that produced them."""
    scores = trace_scores(session, project_id, trace_id, span_id)
    calls = verdict_calls(session, project_id, trace_id) if any(
        s.source.startswith(SOURCE_PREFIX) for s in scores) else {}
    return [score_out(s, content=content, call=calls.get((s.span_id, s.name))
                      if s.source.startswith(SOURCE_PREFIX) else None) for s in scores]
class OverviewScores(BaseModel):
    """Evaluation scores per score name, aggregated per model, agent, workflow step and UTC day."""
    since: datetime
    until: datetime
    by_model: list[ScoreGroupOut]
    by_agent: list[ScoreGroupOut]
    by_step: list[ScoreGroupOut] = Field(description="The nearest workflow step around the scored span.")
    by_day: list[ScoreGroupOut]


def _group_out(g) -> ScoreGroupOut:
    return ScoreGroupOut(name=g.name, group=g.group, count=g.count, mean=g.mean, min=g.minimum, max=g.maximum,
                         labels=g.labels)


def overview_scores(session: Session, project_id: int, *, since: datetime, until: datetime) -> OverviewScores:
    def by(what: str) -> list[ScoreGroupOut]:
        return [_group_out(g) for g in score_aggregates(session, project_id, by=what, since=since, until=until)]
    return OverviewScores(since=since, until=until, by_model=by("model"), by_agent=by("agent"),
                          by_step=[_group_out(g) for g in score_aggregates_by_step(session, project_id, since=since,
                                                                                  until=until)],
                          by_day=by("day"))


def score_summary(session: Session, project_id: int, *, by: str, since: datetime, until: datetime,
                  name: str | None = None) -> ScoreSummary:
    groups = score_aggregates(session, project_id, by=by, since=since, until=until, name=name)
    return ScoreSummary(by=by, since=since, until=until, groups=[
        ScoreGroupOut(name=g.name, group=g.group, count=g.count, mean=g.mean, min=g.minimum, max=g.maximum,
                      labels=g.labels) for g in groups])
