"""Revision 0003 rebuilds the rollups from `spans`: down to 0002 and up again gives back exactly
what the write path had maintained."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from db.migrate import downgrade, upgrade
from tests import otlp_payloads as P
from tests.api.test_fleet_api import H, ingest, llm, ns, tool


def test_downgrade_and_upgrade_rebuild_the_rollups(database_url, project, engine):
    tid = P.trace_id()
    failed = llm(tid, start=ns(H), ms=1500, status=2, **{"error.type": "429"})
    spans = [
        failed,
        llm(tid, start=ns(H, 10), ms=700, links=[(tid, failed.span_id, {"causeline.link.type": "retry_of"})]),
        llm(tid, model="claude-sonnet-4-5", provider="anthropic", start=ns(H, 20), ms=900,
            links=[(tid, failed.span_id, {"causeline.link.type": "fallback_of"})]),
        llm(tid, start=ns(H + timedelta(hours=1)), ms=3, **{"causeline.attempt": "3"}),
        tool(tid, "search", start=ns(H, 30), ms=20, status=2),
    ]
    ingest(database_url, project[0], spans)

    def dump():
        with engine.connect() as conn:
            return (conn.execute(text("select * from usage_rollups order by 1,2,3,4,5,6,7,8")).all(),
                    conn.execute(text("select * from tool_rollups order by 1,2,3,4,5,6")).all(),
                    conn.execute(text("select span_id, retry_kind from spans order by 1")).all())

    before = dump()
    assert sum(r.retries for r in before[0]) == 2 and sum(r.fallbacks for r in before[0]) == 1
    engine.dispose()
    downgrade(database_url, "0002")
    with engine.connect() as conn:
        assert conn.execute(text("select sum(calls), sum(errors) from usage_rollups")).one() == (4, 1)
    engine.dispose()
    upgrade(database_url)
    assert dump() == before


def test_0022_backfills_provider_rollups_from_usage_rollups(database_url, project, engine):
    """Down to 0020 (no provider_rollups) and up again: the backfill from usage_rollups gives back
    exactly what the write path had maintained, de-duplication corrections included."""
    from tests.collector.test_model_call_dedup import stacked
    from tests.rollups import provider_rollups_mismatch

    tid = P.trace_id()
    root, outer, inner = stacked(tid, outer_usage=True)
    ingest(database_url, project[0], [root, inner], service="svc-a")
    ingest(database_url, project[0], [outer], service="svc-b")  # takes over: a -1 correction in svc-a's row
    ingest(database_url, project[0], [llm(tid, start=ns(H), ms=1500, status=2, **{"error.type": "429"}),
                                      llm(tid, start=ns(H, 10), ms=70, agent="billing")], service="svc-b")

    def dump():
        with engine.connect() as conn:
            return conn.execute(text("select * from provider_rollups order by 1,2,3,4,5,6")).all()

    before = dump()
    assert len(before) >= 3 and sum(r.calls for r in before) == 3
    engine.dispose()
    downgrade(database_url, "0020")
    engine.dispose()
    upgrade(database_url)
    assert dump() == before
    with engine.connect() as conn:
        assert provider_rollups_mismatch(conn) == []


def test_0028_backfills_failure_rollups_from_trace_failures(database_url, project, engine):
    """Down to 0023 (no failure_rollups) and up again: the backfill from trace_failures gives back
    exactly what the attributor had maintained."""
    from datetime import datetime, timezone

    from db.engine import make_sessionmaker
    from db.queries.failure_rollups import fold
    from db.queries.forensics import attribute_pending

    for hour in (0, 3):
        tid = P.trace_id()
        failed = llm(tid, start=ns(H + timedelta(hours=hour)), ms=1500, status=2, **{"error.type": "429"})
        ingest(database_url, project[0], [
            failed, tool(tid, "search", start=ns(H + timedelta(hours=hour), 30), ms=20, status=2)])
    with make_sessionmaker(engine).begin() as session:
        assert attribute_pending(session, now=datetime.now(timezone.utc) + timedelta(minutes=1), delay=0) == 2
    with make_sessionmaker(engine).begin() as session:
        fold(session)

    def dump():
        with engine.connect() as conn:
            return conn.execute(text("select * from failure_rollups order by 1,2,3,4")).all()

    before = dump()
    assert len({r.hour for r in before}) == 2 and sum(r.failures for r in before if r.dim == "total") >= 2
    engine.dispose()
    downgrade(database_url, "0023")
    engine.dispose()
    upgrade(database_url)
    assert dump() == before
