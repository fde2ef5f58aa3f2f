"""Per-trace forensics from storage: attribution, lineage, cost breakdown, and the
materialization of root causes into `trace_failures` for the cross-trace view.

`attribute_pending` is what the background attributor (collector/attributor.py) runs
in a loop; tests call it directly. It:
  1. claims traces whose attribution is missing or older than their last update
     (`attributed_at IS NULL OR attributed_at < updated_at`) and that have been quiet
     for `delay` seconds, with `FOR UPDATE SKIP LOCKED` so several collectors share the
     work without waiting on each other — fairly: the projects whose oldest pending trace
     waited longest go first, each with an equal share of the batch, so one project's
     flood of traces never starves another's;
  2. recomputes attribution from the spans and edges (plus linked traces), within a
     per-trace budget: a trace over `max_spans` spans, or whose attribution runs past
     `budget_s` seconds, is attributed by the bounded method instead (this trace only, its
     first `max_spans` spans) and its rows say "partially attributed";
  3. replaces the trace's rows in `trace_failures` (delete + insert) and sets the run's
     outcome on `traces` (core/run_outcome.py: failed, recovered or ok);
  4. sets `attributed_at` to the `updated_at` it saw — not now(): a trace updated
     after the claim compares newer and is picked again.
The caller owns the transaction (commit or roll back).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import and_, delete, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from core.attribution import Stopped, TraceAttribution, attribute
from core.lineage import DEFAULT_DEPTH, Lineage, build_lineage
from core.run_outcome import run_outcome
from core.trace_costs import TraceCosts, trace_costs
from db.citus import routed_chunks
from db.models import TraceFailure, TraceRow
from db.queries.failure_rollups import apply_traces
from db.queries.claims import claim_traces
from db.queries.lineage import MAX_SPANS, Loaded, TraceGraph, load_trace_graph, load_unlinked_graphs

log = logging.getLogger("causeline.attributor")
BUDGET_S = 10.0       # per trace, for the full attribution and again for the bounded one
BUDGET_SPANS = 20_000  # a larger trace goes straight to the bounded method
BATCH_SPANS = 1_000    # a failed run this small, linked to no other, is read together with others
BATCH_READ_SPANS = 20_000  # spans of such runs read by one statement

@dataclass(frozen=True)
class AttributionResult:
    trace: TraceRow
    attribution: TraceAttribution
    truncated: bool


def trace_attribution(session: Session, project_id: int, trace_id: bytes, *, depth: int = DEFAULT_DEPTH,
                      max_spans: int = MAX_SPANS,
                      should_stop: Callable[[], bool] | None = None,
                      loaded: Loaded | None = None) -> AttributionResult | None:
    """Raises core.attribution.Stopped when `should_stop` answers True before the end.
    `loaded`: the trace and spans the caller already read (the trace page), not read again."""
    graph = load_trace_graph(session, project_id, trace_id, max_depth=depth, max_spans=max_spans, loaded=loaded)
    if graph is None:
        return None
    return _attributed(graph, should_stop=should_stop)


def _attributed(graph: TraceGraph, *, should_stop: Callable[[], bool] | None) -> AttributionResult:
    attribution = attribute(graph.trace.trace_id, graph.spans, graph.edges, should_stop=should_stop)
    return AttributionResult(graph.trace, attribution, graph.truncated)


def trace_lineage(session: Session, project_id: int, trace_id: bytes, *, depth: int = DEFAULT_DEPTH) -> Lineage | None:
    graph = load_trace_graph(session, project_id, trace_id, max_depth=depth)
    if graph is None:
        return None
    return build_lineage(trace_id, graph.spans, graph.edges, max_depth=depth, truncated=graph.truncated)


def trace_cost_breakdown(session: Session, project_id: int, trace_id: bytes, *,
                         loaded: Loaded | None = None) -> TraceCosts | None:
    """The data of the trace page's Costs panel and of /api/traces/{id}/costs. `loaded`: the
    trace and spans the caller already read (the trace page), not read again."""
    graph = load_trace_graph(session, project_id, trace_id, max_depth=0, loaded=loaded)
    if graph is None:
        return None
    return trace_costs(trace_id, graph.spans)


def failure_rows(project_id: int, trace: TraceRow, attribution: TraceAttribution) -> list[dict]:
    """trace_failures rows for one trace: the failures that touch it (root cause, a failed
    span or a data consumer in this trace), one row per root-cause span, keyed like the table
    by (root_trace_id, root_span_id): span ids are unique only within their trace."""
    rows: dict[tuple[bytes, bytes], dict] = {}
    tid = trace.trace_id
    for failure in attribution.failures:
        touched = (
            failure.root_cause.trace_id == tid
            or any(s.trace_id == tid for s in failure.failed_spans)
            or any(s.trace_id == tid for s in failure.blast_radius.data_consumers)
        )
        key = (failure.root_cause.trace_id, failure.root_cause.span_id)
        if not touched or key in rows:
            continue
        rows[key] = dict(
            project_id=project_id, trace_id=tid, root_span_id=failure.root_cause.span_id,
            root_trace_id=failure.root_cause.trace_id, trace_start=trace.start_time,
            error_class=failure.error_class, category=failure.category, span_name=failure.root_cause.name,
            step_name=failure.step_name,
            service_name=failure.service_name, agent_name=failure.agent_name, tool_name=failure.tool_name,
            provider=failure.provider, request_model=failure.request_model,
            response_model=failure.response_model, recovered=failure.recovered,
            trace_failed=attribution.failed, confidence=failure.confidence,
            tokens_burned=failure.burned.total_tokens, cost_burned_usd=failure.burned.cost_usd,
            duration_ns=failure.burned.duration_ns, propagation_depth=len(failure.propagation_path) - 1,
            blast_radius=failure.blast_radius.size, evidence=list(failure.evidence),
            rolled_run_cost_usd=trace.cost_usd,
            rolled_run_tokens=(trace.input_tokens or 0) + (trace.output_tokens or 0),
        )
    return list(rows.values())


def attribute_pending(session: Session, *, now: datetime | None = None, delay: float = 5.0, limit: int = 20,
                      depth: int = DEFAULT_DEPTH, budget_s: float = BUDGET_S,
                      max_spans: int = BUDGET_SPANS) -> int:
    """Attribute up to `limit` pending traces quiet for `delay` seconds; returns how many
    (fewer than claimed when the batch ran past twice the per-trace budget).
    `now=None` uses the database clock (the one `updated_at` comes from)."""
    claimed = _claim(session, now=now, delay=delay, limit=limit)
    linked = _linked(session, claimed)
    # Most traces have no failed span and no link to another trace: nothing can fail in them,
    # so they are settled in one statement instead of a full attribution each.
    quiet = [c for c in claimed if c.error_count == 0 and (c.project_id, c.trace_id) not in linked]
    _set_outcomes(session, [(c, "ok") for c in quiet])
    done = len(quiet)
    started = time.monotonic()
    out_of_time = lambda: done > len(quiet) and time.monotonic() - started > 2 * budget_s  # noqa: E731
    failed = [c for c in claimed if c.error_count > 0 or (c.project_id, c.trace_id) in linked]
    for project_id, runs, together in _work(failed, linked, min(BATCH_SPANS, max_spans)):
        if out_of_time():
            break  # the rest stay pending for the next batch: one batch never holds its locks for long
        if together:
            traces = session.scalars(select(TraceRow).where(
                TraceRow.project_id == project_id, TraceRow.trace_id.in_([c.trace_id for c in runs]))).all()
            graphs = load_unlinked_graphs(session, project_id, traces)
        results = []
        for c in runs:
            if out_of_time():
                break
            done += 1
            graph = graphs.get(c.trace_id) if together else None
            if together and graph is None:  # the run is gone
                result, note = None, None
            else:
                result, note = _within_budget(session, project_id, c.trace_id, c.span_count, depth=depth,
                                              budget_s=budget_s, max_spans=max_spans, graph=graph)
            results.append((c, result, note))
        _store(session, project_id, results)
    return done


def _work(failed: list, linked: set, batch_spans: int) -> list[tuple[int, list, bool]]:
    """The failed runs in claim order (which is fair across projects), as (project, runs, read
    together): consecutive small runs of one project linked to no other run are read together,
    at most BATCH_READ_SPANS spans at a time; a larger or linked run is read alone, following its
    links."""
    work: list[tuple[int, list, bool]] = []
    spans = 0
    for c in failed:
        if (c.project_id, c.trace_id) in linked or c.span_count > batch_spans:
            work.append((c.project_id, [c], False))
            continue
        if work and work[-1][2] and work[-1][0] == c.project_id and spans + c.span_count <= BATCH_READ_SPANS:
            work[-1][1].append(c)
            spans += c.span_count
        else:
            work.append((c.project_id, [c], True))
            spans = c.span_count
    return work


def _store(session: Session, project_id: int, results: list) -> None:
    """Replace these runs' trace_failures rows with their new attribution (None: the run is gone)
    and set their outcome and attributed_at. failure_rollups stays exact: the runs' old rows out,
    their new rows in (same transaction)."""
    if not results:
        return
    ids = [c.trace_id for c, _, _ in results]
    apply_traces(session, project_id, ids, -1)
    for chunk in routed_chunks(session, ids):
        session.execute(delete(TraceFailure).where(TraceFailure.project_id == project_id,
                                                   TraceFailure.trace_id.in_(chunk)))
    rows, outcomes = [], []
    for c, result, note in results:
        outcome = None
        if result is not None:
            run_rows = failure_rows(project_id, result.trace, result.attribution)
            for row in run_rows:
                if note:
                    row["evidence"] = [note, *row["evidence"]]
            rows += run_rows
            outcome = run_outcome(result.attribution.failed, len(run_rows))
        outcomes.append((c, outcome))
    if rows:
        # The table, not the ORM entity: an ORM bulk insert leaves out each row's None values
        # and so splits the rows into one statement per distinct set of keys.
        session.execute(insert(TraceFailure.__table__), rows)
        apply_traces(session, project_id, list({row["trace_id"]: None for row in rows}), 1)
    _set_outcomes(session, outcomes)


def _set_outcomes(session: Session, outcomes: list) -> None:
    """Set each claimed run's outcome, and its attributed_at to the updated_at it was claimed
    with (not now(): a run updated since compares newer and is picked again)."""
    for chunk in routed_chunks(session, outcomes):
        if len(chunk) == 1:
            [(c, outcome)] = chunk
            session.execute(update(TraceRow).where(TraceRow.project_id == c.project_id,
                                                   TraceRow.trace_id == c.trace_id)
                            .values(attributed_at=c.updated_at, outcome=outcome))
            continue
        session.execute(text("""
            UPDATE traces t SET attributed_at = q.seen, outcome = q.outcome
            FROM unnest(CAST(:projects AS bigint[]), CAST(:traces AS bytea[]), CAST(:seen AS timestamptz[]),
                        CAST(:outcomes AS text[])) AS q(project_id, trace_id, seen, outcome)
            WHERE t.project_id = q.project_id AND t.trace_id = q.trace_id"""),
            {"projects": [c.project_id for c, _ in chunk], "traces": [c.trace_id for c, _ in chunk],
             "seen": [c.updated_at for c, _ in chunk], "outcomes": [outcome for _, outcome in chunk]})


def _claim(session: Session, *, now: datetime | None, delay: float, limit: int) -> list:
    """Pending traces, locked (SKIP LOCKED): the projects whose oldest pending trace waited
    longest first (at most `limit` of them), each with an equal share of `limit`, oldest first."""
    cutoff = (func.now() if now is None else now) - timedelta(seconds=delay)
    pending = and_(or_(TraceRow.attributed_at.is_(None), TraceRow.attributed_at < TraceRow.updated_at),
                   TraceRow.updated_at <= cutoff)
    projects = session.execute(
        select(TraceRow.project_id).where(pending).group_by(TraceRow.project_id)
        .order_by(func.min(TraceRow.updated_at), TraceRow.project_id).limit(limit)
    ).scalars().all()
    if not projects:
        return []
    share = max(1, limit // len(projects))
    claimed: list = []
    taken: dict[int, list[bytes]] = {}
    # First an equal share each; then what is left of the batch to the same projects, in
    # the same order (so a lone project still gets the whole batch).
    for rounds in (share, None):
        for project_id in projects:  # small indexed statements; each locks only what it returns
            room = limit - len(claimed)
            if room <= 0:
                return claimed
            query = (
                select(TraceRow.project_id, TraceRow.trace_id, TraceRow.updated_at, TraceRow.error_count,
                       TraceRow.span_count)
                .where(TraceRow.project_id == project_id, pending)
                .order_by(TraceRow.updated_at)
                .limit(min(room, rounds or room))
            )
            if rounds is None:
                if len(taken[project_id]) < share:
                    continue  # it had no more at the first pass
                query = query.where(TraceRow.trace_id.notin_(taken[project_id]))  # our own locks do not skip
            rows = claim_traces(session, query, pending)
            taken.setdefault(project_id, []).extend(r.trace_id for r in rows)
            claimed += rows
    return claimed


def _within_budget(session: Session, project_id: int, trace_id: bytes, span_count: int, *, depth: int,
                   budget_s: float, max_spans: int,
                   graph: TraceGraph | None = None) -> tuple[AttributionResult | None, str | None]:
    """The full attribution, or the bounded one (this trace only, its first `max_spans` spans)
    with the note its rows carry; (None, None) for a trace that no longer exists. `graph`: the
    trace's graph, already read (a run linked to no other)."""

    def deadline() -> Callable[[], bool]:
        end = time.monotonic() + budget_s
        return lambda: time.monotonic() > end

    if span_count <= max_spans:
        try:
            if graph is not None:
                return _attributed(graph, should_stop=deadline()), None
            return trace_attribution(session, project_id, trace_id, depth=depth, should_stop=deadline()), None
        except Stopped:
            why = f"attribution took longer than its {budget_s:g} s budget"
    else:
        why = f"{span_count} spans, over the {max_spans} span budget"
    note = (f"partially attributed, trace too large ({why}): linked traces not followed, "
            f"first {max_spans} spans only")
    try:
        result = trace_attribution(session, project_id, trace_id, depth=0, max_spans=max_spans,
                                   should_stop=deadline())
    except Stopped:
        log.warning("trace %s of project %s too large to attribute within %g s (%s); left unattributed",
                    trace_id.hex(), project_id, budget_s, why)
        return None, None
    log.info("trace %s of project %s %s", trace_id.hex(), project_id, note)
    return result, note


def _linked(session: Session, claimed) -> set[tuple[int, bytes]]:
    """The claimed traces with an edge to or from another trace. error_count only grows, so a
    trace with no failed span and no such edge never had a failure of its own, and no failure
    elsewhere can reach it (a data consumer, a handoff)."""
    if not claimed:
        return set()
    rows = session.execute(text("""
        SELECT e.project_id, e.trace_id FROM span_edges e
        JOIN unnest(CAST(:projects AS bigint[]), CAST(:traces AS bytea[])) AS q(project_id, trace_id)
          ON e.project_id = q.project_id AND e.trace_id = q.trace_id
        WHERE e.linked_trace_id <> e.trace_id
        UNION
        SELECT e.project_id, e.linked_trace_id FROM span_edges e
        JOIN unnest(CAST(:projects AS bigint[]), CAST(:traces AS bytea[])) AS q(project_id, trace_id)
          ON e.project_id = q.project_id AND e.linked_trace_id = q.trace_id
        WHERE e.linked_trace_id <> e.trace_id"""),
        {"projects": [c.project_id for c in claimed], "traces": [c.trace_id for c in claimed]}).all()
    return {(project_id, bytes(trace_id)) for project_id, trace_id in rows}
