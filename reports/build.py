"""Building report models from storage: what each kind of report reads, in one place."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Callable, Iterator

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.failure import guardrail_blocked
from core.report_manifest import PackedManifestBuilder, build_manifest
from core.report_model import MAX_ROWS, Cover, PeriodFacts, Report, incident_report, period_report
from core.retention import DEFAULT_DAYS, DEFAULT_ROLLUP_DAYS, describe, effective
from db.queries.audit import head
from db.queries.forensics import trace_attribution, trace_cost_breakdown
from db.queries.judge_attributions import judge_view, step_span_name
from db.queries.reports import (
    guardrail_spans, runs_in_window, trace_span_digests, trace_span_records, window_packed_entries,
)
from db.queries.retention import policy
from db.snapshot import export_snapshot, snapshot_bind, use_snapshot
from pages.failures import failures_data
from pages.fleet import anomaly_data, cost_data, fleet_filters, health_data
from reports.spool import EntrySpool


class ReportError(ValueError):
    """The report cannot be built as asked (unknown run, bad window); the message says why."""


def retention_text(session: Session, project_id: int, settings) -> str:
    """The retention in force for the project (its own or the server's defaults, and its hold)."""
    return describe(effective(
        policy(session, project_id), datetime.now(timezone.utc),
        default_days=getattr(settings, "retention_days", DEFAULT_DAYS),
        default_rollup_days=getattr(settings, "rollup_retention_days", DEFAULT_ROLLUP_DAYS)))


def cover(session: Session, project_id: int, project_slug: str, generator: str, settings) -> Cover:
    h = head(session, project_id)
    return Cover(project_slug, datetime.now(timezone.utc), generator, retention_text(session, project_id, settings), (h.seq, h.hash.hex()))


def incident(session: Session, project_id: int, project_slug: str, trace_id: bytes, *, generator: str,
             sees_content: bool, include_content: bool, settings=None) -> Report:
    with _reading(session) as reading:
        return _incident(reading, project_id, project_slug, trace_id, generator=generator, sees_content=sees_content,
                         include_content=include_content, settings=settings)


def _incident(session: Session, project_id: int, project_slug: str, trace_id: bytes, *, generator: str,
              sees_content: bool, include_content: bool, settings=None) -> Report:
    result = trace_attribution(session, project_id, trace_id)
    if result is None:
        raise ReportError(f"no run {trace_id.hex()} in project {project_slug!r}")
    trace_ids = result.attribution.trace_ids or (trace_id,)
    spans = trace_span_records(session, project_id, trace_ids)
    if not spans:
        raise ReportError(f"run {trace_id.hex()} has no stored spans")
    costs = trace_cost_breakdown(session, project_id, trace_id)
    return incident_report(cover(session, project_id, project_slug, generator, settings), trace_id, spans,
                           result.attribution, costs,
                           build_manifest(trace_span_digests(session, project_id, trace_ids)),
                           sees_content=sees_content, include_content=include_content,
                           judge=_judge(session, project_id, trace_id))


@contextmanager
def _reading(session: Session) -> Iterator[Session]:
    """The session a report reads on: a REPEATABLE READ, read-only transaction of its own, so
    every statement of the report sees one snapshot (the caller's session may be READ COMMITTED
    and mid-transaction, where each statement sees what committed before it). A session bound
    to one connection reads on it: its transaction decides."""
    bind = session.get_bind()
    if not isinstance(bind, Engine):
        yield session
        return
    with Session(snapshot_bind(bind)) as reading:
        yield reading


def _judge(session: Session, project_id: int, trace_id: bytes) -> dict | None:
    judged = judge_view(session, project_id, trace_id)
    if judged is None:
        return None
    return {"agent": judged.agent, "step_index": judged.step_index,
            "step_span": step_span_name(session, project_id, trace_id, judged.span_id),
            "reasoning": judged.reasoning, "model": judged.model, "prompt_version": judged.prompt_version}


def _spool_window(session: Session, project_id: int, since: datetime, until: datetime,
                  spool: EntrySpool) -> PackedManifestBuilder:
    builder = PackedManifestBuilder(spool.write)
    for chunk in window_packed_entries(session, project_id, since, until, stored=True):
        builder.extend(chunk)
    return builder


def period(session: Session, project_id: int, project_slug: str, since: datetime, until: datetime, *,
           generator: str, spool: EntrySpool, settings=None, meanwhile: Callable[[], object] | None = None) -> Report:
    """The manifest's entries go to `spool` (the caller closes it after rendering). The
    records' stored digests (spans.digest) are read on a connection of their own while the
    sections are read on another (the database does both at once), both in one snapshot
    (db/snapshot.py): a run committed or erased meanwhile is in both or in neither, so the
    sections and the sealed manifest describe the same records. `meanwhile` (a rendering's
    imports) runs in a thread of its own from the start: the sections mostly wait for the
    database, and it is a second of CPU."""
    try:
        filters = fleet_filters(project_id, since, until)
    except ValueError as exc:  # pages.params.InvalidQuery is a ValueError too
        raise ReportError(str(exc)) from None
    since, until = filters.since, filters.until
    bind = session.get_bind()
    # The pool is left last: it waits for the digests, and the snapshot they import lives as
    # long as the reading session's transaction.
    with _reading(session) as reading, ThreadPoolExecutor(2, thread_name_prefix="report") as pool:
        preparing = pool.submit(meanwhile) if meanwhile is not None else None
        if reading is not session:
            snapshot = export_snapshot(reading)

            def digest() -> PackedManifestBuilder:
                with Session(snapshot_bind(bind)) as own:
                    use_snapshot(own, snapshot)
                    return _spool_window(own, project_id, since, until, spool)
            digesting = pool.submit(digest)
        else:  # a session on one connection: digest on it, after the sections
            digesting = None
        facts = _period_facts(reading, filters)
        if preparing is not None:
            preparing.result()
        try:
            builder = digesting.result() if digesting else _spool_window(reading, project_id, since, until, spool)
        except ValueError as exc:  # an id of a size OTLP does not allow: the packed form cannot hold it
            raise ReportError(str(exc)) from None
        front = cover(reading, project_id, project_slug, generator, settings)
    return period_report(front, since, until, facts, builder.finish(spool))


def _period_facts(session: Session, filters) -> PeriodFacts:
    project_id, since, until = filters.project_id, filters.since, filters.until
    runs, totals = runs_in_window(session, project_id, since, until, MAX_ROWS)
    health = health_data(session, filters, "day")
    failures = failures_data(session, project_id, since=since, until=until, limit=10)
    anomalies = anomaly_data(session, filters, "hour", None)
    by_model = cost_data(session, filters, "model", 50)
    by_day = cost_data(session, filters, "day", 400)
    blocks: dict[str, int] = {}
    for name, category, attributes, count in guardrail_spans(session, project_id, since, until):
        if guardrail_blocked(attributes, category):
            blocks[name] = blocks.get(name, 0) + count
    recovered = {g.key: g.recovered for g in failures.groups.get("error_class", [])}
    return PeriodFacts(
        runs=runs, runs_total=totals["runs"], spans=totals["spans"], model_calls=totals["model_calls"],
        tokens_in=totals["tokens_in"], tokens_out=totals["tokens_out"], cost_usd=totals["cost_usd"],
        unpriced_calls=totals["unpriced_calls"],
        models=[(m.provider, m.model, m.calls, m.errors, m.retries, m.fallbacks,
                 m.series[0].time if m.series else None, m.series[-1].time if m.series else None)
                for m in health.models],
        model_changes=[(c.provider, c.request_model, ", ".join(c.previous_models), c.new_model, c.first_seen,
                        c.calls_since) for c in health.served_model_changes],
        failures_by_class=[(g.key or "(none)", g.failed_runs, g.failures, recovered.get(g.key, 0))
                           for g in failures.groups.get("error_class", [])],
        # The share of the window's root causes, not of its failed runs: a failure that was
        # recovered (a retried rate limit, a guardrail block) fails no run, so that share is
        # undefined exactly when every failure was caught, which the table must still show.
        failure_concentration=[(dim, g.key or "(none)", g.failures,
                                round(g.failures / failures.totals.failures, 3) if failures.totals.failures else None)
                               for dim, groups in failures.groups.items() if dim != "error_class"
                               for g in groups[:3]],
        guardrail_blocks=sorted(blocks.items(), key=lambda kv: (-kv[1], kv[0])),
        anomalies=[(a.provider, a.model, a.metric, a.time, a.value, a.baseline.median, a.z)
                   for a in anomalies.anomalies],
        cost_by_model=[(g.key or "(unknown)", g.calls, g.tokens.input if g.tokens else None,
                        g.tokens.output if g.tokens else None, g.cost_usd, "yes" if g.cost_complete else "no")
                       for g in by_model.groups],
        cost_by_day=[((g.key or "")[:10], float(g.cost_usd or 0)) for g in by_day.groups],
    )
