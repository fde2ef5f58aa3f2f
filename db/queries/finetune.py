"""The model calls a fine-tuning export reads (core/finetune.py), streamed in batches.

Chat/completion calls (category llm) that did not fail, in runs of the chosen outcome, with
optional filters; content that arrived as GenAI log events is merged in, batch by batch, as
on every read. Scoped by project; the index on (project_id, start_time) serves the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from core.content import with_log_content
from core.finetune import CallContent
from core.run_outcome import OUTCOMES
from db.genai_logs import log_content
from db.models import Score, SpanRow, TraceRow

BATCH = 500


@dataclass(frozen=True)
class ExportFilters:
    since: datetime
    until: datetime
    outcome: str | None = "ok"  # None: runs of any outcome
    agent: str | None = None
    step: str | None = None  # the call's span name, or its parent's (the step it ran in)
    model: str | None = None  # requested or served
    score_name: str | None = None
    min_score: float | None = None

    def __post_init__(self) -> None:
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)} (or any)")
        if self.since >= self.until:
            raise ValueError("until must be later than since")


def calls(session: Session, project_id: int, f: ExportFilters, *, limit: int | None = None) -> Iterator[CallContent]:
    parent = aliased(SpanRow)
    query = (select(SpanRow.trace_id, SpanRow.span_id, SpanRow.input, SpanRow.output, SpanRow.agent_name,
                    func.coalesce(SpanRow.response_model, SpanRow.request_model).label("model"),
                    SpanRow.input_tokens, SpanRow.output_tokens)
             .join(TraceRow, and_(TraceRow.project_id == SpanRow.project_id, TraceRow.trace_id == SpanRow.trace_id))
             .where(SpanRow.project_id == project_id, SpanRow.category == "llm", SpanRow.status != "error",
                    SpanRow.start_time >= f.since, SpanRow.start_time < f.until))
    if f.outcome is not None:
        query = query.where(TraceRow.outcome == f.outcome)
    if f.agent:
        query = query.where(SpanRow.agent_name == f.agent)
    if f.model:
        query = query.where(or_(SpanRow.request_model == f.model, SpanRow.response_model == f.model))
    if f.step:
        query = query.outerjoin(parent, and_(parent.project_id == SpanRow.project_id,
                                             parent.trace_id == SpanRow.trace_id,
                                             parent.span_id == SpanRow.parent_span_id)
                                ).where(or_(SpanRow.name == f.step, parent.name == f.step))
    if f.score_name or f.min_score is not None:
        # A score of the call itself or of its whole run.
        scored = [Score.project_id == project_id, Score.trace_id == SpanRow.trace_id,
                  or_(Score.span_id == SpanRow.span_id, Score.span_id.is_(None))]
        if f.score_name:
            scored.append(Score.name == f.score_name)
        if f.min_score is not None:
            scored.append(Score.value >= f.min_score)
        query = query.where(exists().where(*scored))
    query = query.order_by(SpanRow.start_time, SpanRow.trace_id, SpanRow.span_id)
    if limit is not None:
        query = query.limit(limit)
    rows = session.execute(query.execution_options(yield_per=BATCH))
    for batch in rows.partitions():
        yield from _with_logs(session, project_id, batch)


def _with_logs(session: Session, project_id: int, batch) -> list[CallContent]:
    missing: dict[bytes, list[bytes]] = {}
    for r in batch:
        if r.input is None or r.output is None:
            missing.setdefault(r.trace_id, []).append(r.span_id)
    logged = {(t, s): records for t, spans in missing.items()
              for s, records in log_content(session, project_id, t, spans).items()}
    out = []
    for r in batch:
        prompt, answer = r.input, r.output
        if (r.trace_id, r.span_id) in logged:
            prompt, answer = with_log_content(prompt, answer, logged[(r.trace_id, r.span_id)])
        out.append(CallContent(r.trace_id, r.span_id, prompt, answer, r.model, r.agent_name, r.input_tokens,
                               r.output_tokens))
    return out
