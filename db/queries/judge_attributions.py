"""Rows of judge_attributions: which failed runs the judge should read, claiming one, storing
what came of it, and reading the judge's view for the trace page, the API and reports.

A run is claimed by writing its row as `asking` for the version of the run it will read (the
trace's updated_at) in a short transaction of its own; the call to the model is made after that
commits, so no lock or transaction is held meanwhile. A claim left behind by a process that died
is taken over after STALE_CLAIM. Functions take a session and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import JudgeAttribution, JudgeCall, SpanRow, TraceRow

STALE_CLAIM = timedelta(minutes=15)


@dataclass(frozen=True)
class Pending:
    project_id: int
    trace_id: bytes
    updated_at: datetime


def pending_runs(session: Session, *, limit: int, skip_projects: frozenset[int] = frozenset()) -> list[Pending]:
    """Failed runs whose attribution is up to date and that the judge has not seen in this
    version, oldest update first."""
    ja = JudgeAttribution
    query = (
        select(TraceRow.project_id, TraceRow.trace_id, TraceRow.updated_at)
        .outerjoin(ja, and_(ja.project_id == TraceRow.project_id, ja.trace_id == TraceRow.trace_id))
        .where(TraceRow.outcome == "failed", TraceRow.attributed_at >= TraceRow.updated_at,
               or_(ja.trace_id.is_(None), ja.trace_updated_at < TraceRow.updated_at,
                   and_(ja.status == "asking", ja.created_at < func.now() - STALE_CLAIM)))
        .order_by(TraceRow.updated_at).limit(limit)
    )
    if skip_projects:
        query = query.where(TraceRow.project_id.notin_(skip_projects))
    return [Pending(*row) for row in session.execute(query).all()]


def claim(session: Session, run: Pending) -> bool:
    """Mark the run as being asked about; False when another process has it (or already judged
    this version)."""
    ja = JudgeAttribution.__table__
    statement = insert(ja).values(project_id=run.project_id, trace_id=run.trace_id,
                                  trace_updated_at=run.updated_at, status="asking")
    cleared = {c: None for c in ("agent", "step_index", "span_id", "reasoning", "prompt_version", "model",
                                 "judge_call_id", "error")}
    statement = statement.on_conflict_do_update(
        index_elements=[ja.c.project_id, ja.c.trace_id],
        set_={"trace_updated_at": statement.excluded.trace_updated_at, "status": "asking",
              "created_at": func.now(), **cleared},
        where=or_(ja.c.trace_updated_at < statement.excluded.trace_updated_at,
                  and_(ja.c.status == "asking", ja.c.created_at < func.now() - STALE_CLAIM)),
    ).returning(ja.c.trace_id)
    return session.execute(statement).first() is not None


def release(session: Session, run: Pending) -> None:
    """Give a claim back untouched (the budget was spent: asked again another time)."""
    session.execute(JudgeAttribution.__table__.delete().where(
        JudgeAttribution.project_id == run.project_id, JudgeAttribution.trace_id == run.trace_id,
        JudgeAttribution.status == "asking"))


def settle(session: Session, run: Pending, *, status: str, agent: str | None = None, step_index: int | None = None,
           span_id: bytes | None = None, reasoning: str | None = None, prompt_version: str | None = None,
           model: str | None = None, judge_call_id: int | None = None, error: str | None = None) -> None:
    """Store what came of a claimed run (the claim's version stays)."""
    session.execute(JudgeAttribution.__table__.update().where(
        JudgeAttribution.project_id == run.project_id, JudgeAttribution.trace_id == run.trace_id,
    ).values(status=status, agent=agent, step_index=step_index, span_id=span_id, reasoning=reasoning,
             prompt_version=prompt_version, model=model, judge_call_id=judge_call_id, error=error,
             created_at=func.now()))


def last_call_id(session: Session, project_id: int, trace_id: bytes, name: str) -> int | None:
    """The judge call just recorded for this run (judge.ask records it and returns the reply)."""
    return session.scalar(select(func.max(JudgeCall.id)).where(
        JudgeCall.project_id == project_id, JudgeCall.trace_id == trace_id, JudgeCall.purpose == "attribution",
        JudgeCall.name == name))


def judge_view(session: Session, project_id: int, trace_id: bytes) -> JudgeAttribution | None:
    """The judge's verdict on the run, when it gave one (not while asking, nor after an error)."""
    return session.scalars(select(JudgeAttribution).where(
        JudgeAttribution.project_id == project_id, JudgeAttribution.trace_id == trace_id,
        JudgeAttribution.status == "verdict")).one_or_none()


def step_span_name(session: Session, project_id: int, trace_id: bytes, span_id: bytes | None) -> str | None:
    """The name of the span the judge's step is (for the link on the trace page)."""
    if span_id is None:
        return None
    return session.scalar(select(SpanRow.name).where(
        SpanRow.project_id == project_id, SpanRow.trace_id == trace_id, SpanRow.span_id == span_id).limit(1))
