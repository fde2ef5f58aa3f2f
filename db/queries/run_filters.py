"""The one builder of run filters: which traces (runs) the trace list, its totals and its JSON
twin show. Every filter is served by an index walked in start-time order, or by a primary-key
probe per candidate run:

- window, outcome, agent, model: ix_traces_project_start / ix_traces_outcome / GIN on the arrays;
- status: error_count on the rollup, the root span's status by primary key;
- provider, error class: EXISTS on spans by the primary key's (project_id, trace_id) prefix
  (an error class only among runs with errors);
- minimum cost and duration: on the rollup row (no span is read);
- free text: the GIN tsvector indexes of db/queries/trace_search.py (matches read first when
  the totals say they are few);
- scores: the runs with a score (of a name, at least a value) by ix_scores_trace.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import LargeBinary, Select, and_, cast, exists, func, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import aliased

from core.run_outcome import OUTCOMES
from db.models import SpanRow, TraceRow
from db.queries.scores import scored_traces
from db.queries.trace_search import matching_traces

TRACE_STATUSES = ("ok", "error", "unset")
# The root span, joined by filtered_runs for the status filter.
_ROOT = aliased(SpanRow, name="root")


@dataclass(frozen=True)
class RunFilters:
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None
    service: str | None = None
    agent: str | None = None
    model: str | None = None
    provider: str | None = None
    error_class: str | None = None
    min_cost: Decimal | None = None
    min_duration: timedelta | None = None
    outcome: str | None = None
    search: str | None = None
    search_content: bool = False  # search captured input/output too (readers who may see content)
    search_first: bool = False  # few runs match the search: read its matches first (trace_search.py)
    score_name: str | None = None  # the run or one of its spans has a score of this name
    min_score: float | None = None  # ... (of score_name, if given) of at least this value

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in TRACE_STATUSES:
            raise ValueError(f"status must be one of {', '.join(TRACE_STATUSES)}")
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")


def filtered_runs(columns, project_id: int, f: RunFilters) -> Select:
    """`select(*columns)` over traces with every filter of `f` applied. The root span is joined
    (as `root`) only when the status filter needs it: a join there would be planned for every
    candidate run, not only the page's."""
    root = _ROOT
    query = select(*columns).select_from(TraceRow).where(TraceRow.project_id == project_id)
    if f.status in ("ok", "unset"):
        query = query.outerjoin(root, and_(
            root.project_id == TraceRow.project_id, root.trace_id == TraceRow.trace_id,
            root.span_id == TraceRow.root_span_id))
    if f.since is not None:
        query = query.where(TraceRow.start_time >= f.since)
    if f.until is not None:
        query = query.where(TraceRow.start_time < f.until)
    # Spelled out per value rather than `status == ...` so PostgreSQL can use error_count
    # directly and skip the root-span lookup for `error`.
    if f.status == "error":
        query = query.where(TraceRow.error_count > 0)
    elif f.status == "ok":
        query = query.where(TraceRow.error_count == 0, root.status == "ok")
    elif f.status == "unset":
        query = query.where(TraceRow.error_count == 0, or_(root.status.is_(None), root.status != "ok"))
    if f.service:
        query = query.where(or_(TraceRow.service_name == f.service, TraceRow.services.contains([f.service])))
    if f.agent:
        query = query.where(TraceRow.agents.contains([f.agent]))  # GIN index ix_traces_agents
    if f.model:
        query = query.where(TraceRow.models.contains([f.model]))  # GIN index ix_traces_models
    if f.outcome:
        query = query.where(TraceRow.outcome == f.outcome)  # ix_traces_outcome
    if f.provider:
        query = query.where(_has_span(SpanRow.provider == f.provider))
    if f.error_class:
        query = query.where(TraceRow.error_count > 0, _has_span(SpanRow.error_class == f.error_class))
    if f.min_cost is not None:
        query = query.where(TraceRow.cost_usd >= f.min_cost)
    if f.min_duration is not None:
        query = query.where(TraceRow.end_time - TraceRow.start_time >= f.min_duration)
    if f.search:
        query = query.where(TraceRow.trace_id.in_(matching_traces(project_id, f.search, content=f.search_content,
                                                                      first=f.search_first)))
    if f.score_name or f.min_score is not None:
        query = query.where(TraceRow.trace_id.in_(scored_traces(project_id, name=f.score_name, min_value=f.min_score)))
    return query


def _has_span(condition):
    """A span of the run matches: probed by the spans primary key (project_id, trace_id, ...) for
    each candidate run. OFFSET 0 keeps PostgreSQL from turning the EXISTS into a semi-join, which
    it may plan as a scan of every span of the project for a rare provider. A run's spans start
    within its rollup's [start_time, end_time] (the earliest start, the latest end): the bounds
    let each probe skip the daily partitions outside the run (run-time pruning), 1.7x faster
    over 100,000 runs."""
    return exists(select(1).where(SpanRow.project_id == TraceRow.project_id, SpanRow.trace_id == TraceRow.trace_id,
                                  SpanRow.start_time >= TraceRow.start_time, SpanRow.start_time <= TraceRow.end_time,
                                  condition).offset(0))


def plan_for_values(session, f: RunFilters) -> None:
    """A search is planned for its words, every time: psycopg prepares a statement run often and
    PostgreSQL then may switch to a generic plan, which cannot tell a rare word from a common
    one and walks every run of the window computing tsvectors (seconds where the index answers in
    milliseconds). For the current transaction only."""
    if f.search:
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


@dataclass(frozen=True)
class RunTotals:
    runs: int
    failed: int            # outcome failed (attributed runs)
    with_errors: int       # a span failed (attributed or not)
    cost_usd: Decimal      # priced calls only
    unpriced_calls: int    # never counted as $0
    input_tokens: int
    output_tokens: int
    capped: bool = False   # a search matched more than `runs` runs: counting stopped there, and
    #                        the other totals (of an arbitrary part) are zero, not to be shown


# A search's totals are counted up to this many runs: a common word matches most runs of the
# window, and adding them all up reads every match (seconds over 1M spans); "more than 1,000
# runs" is what the list then says.
SEARCH_TOTALS_CAP = 1000


def _totals_columns():
    return (
        func.count(),
        func.count().filter(TraceRow.outcome == "failed"),
        func.count().filter(TraceRow.error_count > 0),
        func.coalesce(func.sum(TraceRow.cost_usd), 0),
        func.coalesce(func.sum(TraceRow.unpriced_calls), 0),
        func.coalesce(func.sum(TraceRow.input_tokens), 0),
        func.coalesce(func.sum(TraceRow.output_tokens), 0),
    )


def run_totals(session, project_id: int, f: RunFilters) -> RunTotals:
    """Totals of every run the filters select (not only the page shown); with a search, only up
    to SEARCH_TOTALS_CAP runs (search_totals)."""
    plan_for_values(session, f)
    if f.search:
        return search_totals(session, project_id, f)
    row = session.execute(filtered_runs(_totals_columns(), project_id, f)).one()
    return RunTotals(int(row[0]), int(row[1]), int(row[2]), Decimal(row[3]), int(row[4]), int(row[5]), int(row[6]))


def search_totals(session, project_id: int, f: RunFilters) -> RunTotals:
    """The totals of a search's runs, or `capped` once more than SEARCH_TOTALS_CAP match.

    First the matches among the spans of the window's last 24 hours (the GIN indexes of its
    last daily partitions only): a common word passes the cap there, in a day's matches
    instead of 30 days'. Otherwise every match, through the GIN indexes, up to the cap
    (no time bound on the spans: PostgreSQL would AND in the start-time index, reading the
    window's every span), and the totals of the runs found."""
    others = replace(f, search=None, search_first=False)
    runs = filtered_runs((TraceRow.trace_id,), project_id, others)
    last_day = (f.until or datetime.now(timezone.utc)) - timedelta(days=1)
    found: set[bytes] = set()
    for spans_from in (max(last_day, f.since) if f.since else last_day, None):
        matches = matching_traces(project_id, f.search, content=f.search_content, spans_from=spans_from)
        found.update(session.scalars(runs.where(TraceRow.trace_id.in_(matches)).limit(SEARCH_TOTALS_CAP + 1)))
        if len(found) > SEARCH_TOTALS_CAP:
            return RunTotals(SEARCH_TOTALS_CAP, 0, 0, Decimal(0), 0, 0, 0, capped=True)
    row = session.execute(select(*_totals_columns()).where(
        TraceRow.project_id == project_id, TraceRow.trace_id == func.any(cast(list(found), ARRAY(LargeBinary))))).one()
    return RunTotals(int(row[0]), int(row[1]), int(row[2]), Decimal(row[3]), int(row[4]), int(row[5]), int(row[6]))
