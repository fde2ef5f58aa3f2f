"""What the LLM-as-judge evaluators read of a run, and what they mark (judge/evaluate.py).

A run is read in one short query (its model calls, retrievals and tool calls, content from GenAI
log events filled in), then the session is closed before any judge is asked. Which (span, judge)
pairs were already asked is read from judge_calls: a call answered, failed or unusable is never
asked again for the same span, so a run that the judge cannot handle is not retried forever.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from core.content import with_log_content
from core.judge_evaluators import RunSpan
from db.models import GenaiLogRecord, JudgeCall, SpanRow

MAX_SPANS = 5_000  # of one run read for judging (the earliest: the question and context come first)
_CATEGORIES = ("llm", "retrieval", "tool")


def run_spans(session: Session, project_id: int, trace_id: bytes) -> list[RunSpan]:
    rows = session.execute(
        select(SpanRow.span_id, SpanRow.category, SpanRow.start_ns, SpanRow.status, SpanRow.input, SpanRow.output,
               SpanRow.attributes, SpanRow.name, SpanRow.response_model, SpanRow.request_model, SpanRow.agent_name)
        .where(SpanRow.project_id == project_id, SpanRow.trace_id == trace_id, SpanRow.category.in_(_CATEGORIES))
        .order_by(SpanRow.start_ns, SpanRow.span_id).limit(MAX_SPANS)).all()
    missing = [r.span_id for r in rows if r.category == "llm" and (r.input is None or r.output is None)]
    logged: dict[bytes, list] = {}
    if missing:
        for record in session.execute(
                select(GenaiLogRecord.span_id, GenaiLogRecord.input, GenaiLogRecord.output)
                .where(GenaiLogRecord.project_id == project_id, GenaiLogRecord.trace_id == trace_id,
                       GenaiLogRecord.span_id.in_(missing))
                .order_by(GenaiLogRecord.span_id, GenaiLogRecord.time_ns, GenaiLogRecord.seq)):
            logged.setdefault(record.span_id, []).append((record.input, record.output))
    spans = []
    for r in rows:
        content_in, content_out = with_log_content(r.input, r.output, logged.get(r.span_id, ()))
        # Only retrievals' attributes are read (their documents): a call's may be large.
        spans.append(RunSpan(r.span_id, r.category, r.start_ns, r.status, content_in, content_out,
                             r.attributes if r.category == "retrieval" else {}, r.name,
                             r.response_model or r.request_model, r.agent_name))
    return spans


def judged(session: Session, project_id: int, trace_id: bytes) -> set[tuple[bytes | None, str]]:
    """(span, judge) pairs already asked about this run, whatever the outcome."""
    return {(span_id, name) for span_id, name in session.execute(
        select(JudgeCall.span_id, JudgeCall.name).distinct()
        .where(JudgeCall.project_id == project_id, JudgeCall.trace_id == trace_id,
               JudgeCall.purpose == "evaluator"))}


def mark_unusable(session: Session, project_id: int, trace_id: bytes, span_id: bytes, name: str,
                  reason: str) -> None:
    """The newest call of this judge on this span answered, but not with a verdict: recorded as a
    `garbage` failure (its tokens and cost stay: they were spent). Does not commit."""
    newest = (select(JudgeCall.id)
              .where(JudgeCall.project_id == project_id, JudgeCall.trace_id == trace_id,
                     JudgeCall.span_id == span_id, JudgeCall.name == name, JudgeCall.purpose == "evaluator")
              .order_by(JudgeCall.id.desc()).limit(1).scalar_subquery())
    session.execute(update(JudgeCall)
                    .where(and_(JudgeCall.project_id == project_id, JudgeCall.id == newest))
                    .values(outcome="garbage", error=reason[:500]))




def verdict_calls(session: Session, project_id: int, trace_id: bytes) -> dict[tuple[bytes | None, str], JudgeCall]:
    """The newest answered evaluator call per (span, judge) of a run: what each verdict cost."""
    rows = session.scalars(
        select(JudgeCall)
        .where(JudgeCall.project_id == project_id, JudgeCall.trace_id == trace_id,
               JudgeCall.purpose == "evaluator", JudgeCall.outcome == "ok")
        .order_by(JudgeCall.id))
    return {(r.span_id, r.name): r for r in rows}  # a run has a few calls per judge; the newest wins


def usage_today(session: Session, project_id: int, *, now: datetime | None = None) -> list:
    """The project's calls of the UTC day by purpose, judge and outcome: calls, tokens, priced
    cost and unpriced calls."""
    now = now or datetime.now(timezone.utc)
    day = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    tokens = func.coalesce(JudgeCall.input_tokens, 0) + func.coalesce(JudgeCall.output_tokens, 0)
    return session.execute(
        select(JudgeCall.purpose, JudgeCall.name, JudgeCall.outcome, func.count().label("calls"),
               func.coalesce(func.sum(tokens), 0).label("tokens"),
               func.coalesce(func.sum(JudgeCall.cost_usd), 0).label("cost_usd"),
               func.count().filter(JudgeCall.cost_usd.is_(None)).label("unpriced"))
        .where(JudgeCall.project_id == project_id, JudgeCall.created_at >= day)
        .group_by(JudgeCall.purpose, JudgeCall.name, JudgeCall.outcome)
        .order_by(JudgeCall.purpose, JudgeCall.name, JudgeCall.outcome)).all()
