"""The evaluation pass over new traces, and the per-project evaluator rules.

Traces whose spans changed since they were last evaluated (`evaluated_at` behind `updated_at`)
and that have been quiet for `delay` seconds are claimed with FOR UPDATE SKIP LOCKED, so
several collector processes share the work and never score a trace twice at once. For each:
the OpenTelemetry evaluation events on its spans become scores (source `otel`), and every
model call's output is judged by the built-in evaluators and the project's rules
(core/evaluators.py; source = the evaluator's name, replacing that evaluator's earlier verdict).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.content import with_log_content
from core.evaluators import Call, Rule, RuleError, as_score, evaluate, parse_rule
from core.scores import EVALUATION_EVENT, ScoreInput, from_span_events
from db.genai_logs import log_content
from db.models import EvaluatorRule, SpanRow, TraceRow
from db.queries.scores import insert_scores

MAX_CALLS_PER_TRACE = 2000  # a trace's model calls judged per pass (bounded work per claim)


def evaluate_pending(session: Session, *, delay: float = 5.0, limit: int = 200, builtins: bool = True,
                     now: datetime | None = None) -> int:
    """Evaluate up to `limit` pending traces; returns how many. Does not commit."""
    cutoff = (func.now() if now is None else now) - timedelta(seconds=delay)
    claimed = session.execute(
        select(TraceRow.project_id, TraceRow.trace_id, TraceRow.updated_at)
        .where(or_(TraceRow.evaluated_at.is_(None), TraceRow.evaluated_at < TraceRow.updated_at),
               TraceRow.updated_at <= cutoff)
        .order_by(TraceRow.updated_at).limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    rules: dict[int, list[Rule]] = {}
    for project_id, trace_id, seen in claimed:
        if builtins and project_id not in rules:
            rules[project_id] = project_rules(session, project_id)
        scores = _event_scores(session, project_id, trace_id)
        insert_scores(session, project_id, scores)
        if builtins:
            insert_scores(session, project_id, _verdicts(session, project_id, trace_id, rules[project_id]),
                          replace=True)
        session.execute(update(TraceRow).where(TraceRow.project_id == project_id, TraceRow.trace_id == trace_id)
                        .values(evaluated_at=seen))
    return len(claimed)


def _event_scores(session: Session, project_id: int, trace_id: bytes) -> list[ScoreInput]:
    rows = session.execute(select(SpanRow.span_id, SpanRow.events).where(
        SpanRow.project_id == project_id, SpanRow.trace_id == trace_id,
        SpanRow.events.contains([{"name": EVALUATION_EVENT}])))
    return [score for span_id, events in rows for score in from_span_events(events, trace_id, span_id)]


def _verdicts(session: Session, project_id: int, trace_id: bytes, rules: list[Rule]) -> list[ScoreInput]:
    # Chat/completion calls only: an embedding has no answer to judge.
    calls = session.execute(
        select(SpanRow.span_id, SpanRow.name, SpanRow.status, SpanRow.output, SpanRow.output_tokens,
               SpanRow.attributes, SpanRow.agent_name,
               func.coalesce(SpanRow.response_model, SpanRow.request_model).label("model"))
        .where(SpanRow.project_id == project_id, SpanRow.trace_id == trace_id, SpanRow.category == "llm")
        .order_by(SpanRow.start_ns, SpanRow.span_id).limit(MAX_CALLS_PER_TRACE)).all()
    if not calls:
        return []
    missing = [c.span_id for c in calls if c.output is None]
    logged = log_content(session, project_id, trace_id, missing) if missing else {}
    scores = []
    for c in calls:
        output = c.output
        if output is None and c.span_id in logged:
            output = with_log_content(None, None, logged[c.span_id])[1]
        call = Call(output, c.attributes or {}, c.status, c.output_tokens, c.model, c.agent_name, c.name)
        scores.extend(as_score(v, trace_id, c.span_id) for v in evaluate(call, rules))
    return scores


# -- rules ------------------------------------------------------------------------------------------

def project_rules(session: Session, project_id: int) -> list[Rule]:
    """The project's enabled rules, compiled; a row that no longer compiles is skipped (it was
    checked when saved; a row edited by hand must not stop evaluation)."""
    rules = []
    for row in session.scalars(select(EvaluatorRule).where(
            EvaluatorRule.project_id == project_id, EvaluatorRule.enabled).order_by(EvaluatorRule.name)):
        try:
            rules.append(parse_rule(row.name, row.kind, row.config))
        except RuleError:
            continue
    return rules


def list_rules(session: Session, project_id: int) -> list[EvaluatorRule]:
    return list(session.scalars(select(EvaluatorRule).where(EvaluatorRule.project_id == project_id)
                                .order_by(EvaluatorRule.name)))


def save_rule(session: Session, project_id: int, name: str, kind: str, config: dict, enabled: bool = True) -> None:
    """Create or replace a rule (checked first: RuleError). Does not commit."""
    parse_rule(name, kind, config)
    statement = insert(EvaluatorRule).values(project_id=project_id, name=name, kind=kind, config=config,
                                             enabled=enabled)
    session.execute(statement.on_conflict_do_update(
        index_elements=[EvaluatorRule.project_id, EvaluatorRule.name],
        set_={"kind": kind, "config": config, "enabled": enabled}))


def delete_rule(session: Session, project_id: int, name: str) -> bool:
    result = session.execute(delete(EvaluatorRule).where(EvaluatorRule.project_id == project_id,
                                                          EvaluatorRule.name == name))
    return bool(result.rowcount)


__all__ = ["evaluate_pending", "project_rules", "list_rules", "save_rule", "delete_rule"]
