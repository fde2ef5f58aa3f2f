"""The evaluation pass over new traces, and the per-project evaluator rules.

Traces whose spans changed since they were last evaluated (`evaluated_at` behind `updated_at`)
and that have been quiet for `delay` seconds are claimed with FOR UPDATE SKIP LOCKED, so
several collector processes share the work and never score a trace twice at once. For each:
the OpenTelemetry evaluation events on its spans, and spans that are evaluation results
themselves (GenAI `gen_ai.evaluation.*` or OpenInference EVALUATOR spans), become scores (source
`otel` / `openinference`), and every
model call's output is judged by the built-in evaluators and the project's rules
(core/evaluators.py; source = the evaluator's name, replacing that evaluator's earlier verdict).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.content import with_log_content
from core.evaluators import ATTRIBUTE_KEYS, Call, Rule, RuleError, as_score, evaluate, parse_rule
from core.scores import (
    EVALUATION_EVENT, ScoreInput, from_evaluation_span, from_openinference_evaluator, from_span_events,
)
from db.citus import routed_chunks
from db.models import EvaluatorRule, TraceRow
from db.queries.claims import claim_traces
from db.queries.scores import insert_scores

MAX_CALLS_PER_TRACE = 2000  # a trace's model calls judged per pass (bounded work per claim)

# The claimed traces travel as two arrays joined through unnest: one statement per step for the
# whole batch, whatever its size (the primary key's (project_id, trace_id) prefix serves each).
_CLAIMED = "unnest(CAST(:projects AS bigint[]), CAST(:traces AS bytea[])) AS c(project_id, trace_id)"
# Evaluation events on spans, and spans that are evaluation results themselves.
_EVENTS = text(f"""
SELECT s.project_id, s.trace_id, s.span_id, s.parent_span_id, s.events, s.name,
       CASE WHEN jsonb_exists(s.attributes, 'gen_ai.evaluation.name')
              OR s.attributes @> '{{"openinference.span.kind": "EVALUATOR"}}' THEN s.attributes END AS evaluation
FROM {_CLAIMED} JOIN spans s ON s.project_id = c.project_id AND s.trace_id = c.trace_id
WHERE s.events @> CAST(:wanted AS jsonb) OR jsonb_exists(s.attributes, 'gen_ai.evaluation.name')
   OR s.attributes @> '{{"openinference.span.kind": "EVALUATOR"}}'""")
# Only the attributes the evaluators read (an absent key and a JSON null both read as None).
_ATTRIBUTES = "jsonb_build_object(" + ", ".join(f"'{k}', s.attributes -> '{k}'" for k in ATTRIBUTE_KEYS) + ")"
# Its columns in the order _verdicts unpacks them.
_CALLS = text(f"""
SELECT * FROM (
  SELECT s.project_id, s.trace_id, s.span_id, s.name, s.status, s.output, s.output_tokens,
         {_ATTRIBUTES} AS attributes,
         s.agent_name, coalesce(s.response_model, s.request_model) AS model,
         row_number() OVER (PARTITION BY s.project_id, s.trace_id ORDER BY s.start_ns, s.span_id) AS n
  FROM {_CLAIMED} JOIN spans s ON s.project_id = c.project_id AND s.trace_id = c.trace_id
  WHERE s.category = 'llm') AS calls
WHERE n <= :max_calls""")
# The log records of the claimed traces (the caller keeps those of calls without output): the
# claimed keys are already sent, where one more array per call to look up cost more than the read.
_LOGS = text(f"""
SELECT g.project_id, g.trace_id, g.span_id, g.input, g.output
FROM {_CLAIMED} JOIN genai_log_records g ON g.project_id = c.project_id AND g.trace_id = c.trace_id
ORDER BY g.project_id, g.trace_id, g.span_id, g.time_ns, g.seq, g.record_key""")
_DONE = text("""
UPDATE traces t SET evaluated_at = d.seen
FROM unnest(CAST(:projects AS bigint[]), CAST(:traces AS bytea[]), CAST(:seen AS timestamptz[])) AS d(p, tr, seen)
WHERE t.project_id = d.p AND t.trace_id = d.tr""")


def evaluate_pending(session: Session, *, delay: float = 5.0, limit: int = 200, builtins: bool = True,
                     now: datetime | None = None, claimed_out: list | None = None) -> int:
    """Evaluate up to `limit` pending traces; returns how many, and appends their (project_id,
    trace_id, updated_at) to `claimed_out` when given. Does not commit."""
    cutoff = (func.now() if now is None else now) - timedelta(seconds=delay)
    pending = and_(or_(TraceRow.evaluated_at.is_(None), TraceRow.evaluated_at < TraceRow.updated_at),
                   TraceRow.updated_at <= cutoff)
    claimed = claim_traces(session, select(TraceRow.project_id, TraceRow.trace_id, TraceRow.updated_at)
                           .where(pending).order_by(TraceRow.updated_at).limit(limit), pending)
    if not claimed:
        return 0
    if claimed_out is not None:
        claimed_out.extend(tuple(row) for row in claimed)
    keys = {"projects": [p for p, _, _ in claimed], "traces": [t for _, t, _ in claimed]}
    found: dict[int, list[ScoreInput]] = {}
    for row in session.execute(_EVENTS, {**keys, "wanted": f'[{{"name": "{EVALUATION_EVENT}"}}]'}):
        scores = found.setdefault(row.project_id, [])
        scores.extend(from_span_events(row.events, row.trace_id, row.span_id))
        if row.evaluation is not None:
            score = (from_evaluation_span(row.evaluation, row.trace_id, row.span_id, row.parent_span_id)
                     or from_openinference_evaluator(row.evaluation, row.name, row.trace_id, row.span_id,
                                                     row.parent_span_id))
            scores.extend([score] if score is not None else [])
    for project_id, scores in found.items():
        insert_scores(session, project_id, scores)
    if builtins:
        for project_id, scores in _verdicts(session, keys).items():
            insert_scores(session, project_id, scores, replace=True)
    for chunk in routed_chunks(session, claimed):
        if len(chunk) == 1:
            [(project_id, trace_id, seen)] = chunk
            session.execute(update(TraceRow).where(TraceRow.project_id == project_id, TraceRow.trace_id == trace_id)
                            .values(evaluated_at=seen))
        else:
            session.execute(_DONE, {"projects": [p for p, _, _ in chunk], "traces": [t for _, t, _ in chunk],
                                    "seen": [seen for _, _, seen in chunk]})
    return len(claimed)


def _verdicts(session: Session, keys: dict) -> dict[int, list[ScoreInput]]:
    # Chat/completion calls only: an embedding has no answer to judge.
    # Plain tuples, unpacked once: a Row's attribute access cost more than the checks themselves.
    calls = [tuple(row) for row in session.execute(_CALLS, {**keys, "max_calls": MAX_CALLS_PER_TRACE})]
    missing = {call[:3] for call in calls if call[5] is None}
    logged: dict[tuple, list] = {}
    if missing:
        for project_id, trace_id, span_id, input_, output in session.execute(_LOGS, keys):
            if (key := (project_id, trace_id, span_id)) in missing:
                logged.setdefault(key, []).append((input_, output))
    rules: dict[int, list[Rule]] = {}
    verdicts: dict[int, list[ScoreInput]] = {}
    for project_id, trace_id, span_id, name, status, output, output_tokens, attributes, agent, model, _ in calls:
        if project_id not in rules:
            rules[project_id] = project_rules(session, project_id)
        records = logged.get((project_id, trace_id, span_id))
        if output is None and records:
            output = with_log_content(None, None, records)[1]
        call = Call(output, attributes or {}, status, output_tokens, model, agent, name)
        verdicts.setdefault(project_id, []).extend(
            as_score(v, trace_id, span_id) for v in evaluate(call, rules[project_id]))
    return verdicts


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
