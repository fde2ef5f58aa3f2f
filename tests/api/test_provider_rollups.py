"""provider_rollups (usage_rollups without service and agent) answers provider health, anomalies,
served-model changes and the model/provider/time cost groupings exactly as usage_rollups did, on
the same data written through the real write path (db.ingest.write_batch): a month of bench
traffic over two services and three agents, plus model calls recorded twice by stacked
instrumentations, delivered in pieces (so de-duplication corrects rollups already written, +1/-1)
and redelivered."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from bench.queries import load
from core.latency import BUCKETS
from db.queries.costs import costs
from db.queries.fleet import Filters
from db.queries.health import Point, fetch_series, find_anomalies, provider_health
from tests import otlp_payloads as P
from tests.api.test_fleet_api import ingest, ns
from tests.rollups import provider_rollups_mismatch, provider_rollups_rows

UNTIL = datetime(2026, 3, 1, tzinfo=timezone.utc)


def stacked(tid: bytes, at: datetime, *, outer_usage: bool, inp: int):
    """Agent -> framework's model-call span -> the client's span of the same call (one call)."""
    root, outer, inner = P.span_id(), P.span_id(), P.span_id()
    outer_attrs = P.llm_attrs(inp=inp + 7, out=9) if outer_usage else {
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
    return [
        P.span(tid, root, name="invoke_agent planner", start=ns(at), duration=10**10,
               attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}),
        P.span(tid, outer, parent=root, name="ChatOpenAI", start=ns(at, 1), duration=5 * 10**8, attributes=outer_attrs),
        P.span(tid, inner, parent=outer, name="chat gpt-4o", start=ns(at, 2), duration=4 * 10**8,
               attributes=P.llm_attrs(inp=inp, out=20)),
    ]


@pytest.fixture
def month(database_url, project):
    project_id = project[0]
    load(database_url, project_id, 400, UNTIL)
    # Stacked calls in the last week, in two services: the inner span first (counted), the outer
    # one later (the pair is then counted once, by whichever the rule picks: a correction of the
    # rollup row already written), then everything again in another split (nothing changes).
    for day in range(7):
        at = UNTIL - timedelta(days=day + 1, hours=day)
        for number, service in enumerate(("svc-a", "svc-b")):
            root, outer, inner = stacked(P.trace_id(), at + timedelta(minutes=number), outer_usage=day % 2 == 0,
                                         inp=100 + day)
            ingest(database_url, project_id, [root, inner], service=service)
            ingest(database_url, project_id, [outer], service=service)
            assert ingest(database_url, project_id, [outer, inner, root], service=service) == 0
    return project_id


def _old(monkeypatch):
    """The answers as they were: every query reads usage_rollups."""
    monkeypatch.setattr(Filters, "usage_table", lambda self: "usage_rollups")


def test_the_narrow_rollup_is_usage_rollups_summed_over_service_and_agent(month, session):
    assert provider_rollups_rows(session) > 0
    assert provider_rollups_mismatch(session) == []


def test_redelivering_a_whole_batch_changes_neither_rollup(month, database_url, session):
    # The bench's own rows again (same seed): nothing is inserted or counted twice.
    before = session.execute(SUMS).all()
    load(database_url, month, 400, UNTIL)
    session.rollback()
    assert session.execute(SUMS).all() == before
    assert provider_rollups_mismatch(session) == []


SUMS = text("SELECT provider, request_model, sum(calls), sum(input_tokens), sum(cost_usd) "
              "FROM provider_rollups GROUP BY 1, 2 ORDER BY 1, 2")


def old_fetch_series(session, filters: Filters, bucket: str) -> dict:
    """fetch_series as it was before provider_rollups: sums and histograms grouped in SQL over
    usage_rollups, in two statements."""
    trunc = "hour" if bucket == "hour" else "date_trunc('day', hour, 'UTC')"
    where, params = filters.usage_where()
    series: dict = {}
    for provider, model, t, served, error_class, calls, errors, retries, fallbacks, unpriced, cost, dur in session.execute(
            text(f"""SELECT provider, request_model, {trunc}, response_model, error_class, sum(calls), sum(errors),
                     sum(retries), sum(fallbacks), sum(unpriced_calls), sum(cost_usd), sum(duration_ns)
                     FROM usage_rollups WHERE {where} GROUP BY 1, 2, 3, 4, 5"""), params):
        point = series.setdefault((provider, model), {}).setdefault(t, Point())
        point.add(Point(int(calls), int(errors), int(retries), int(fallbacks), int(unpriced), cost, int(dur),
                        {error_class: int(calls)} if error_class else {}, {served: int(calls)} if served else {}))
    histogram = ", ".join(f"sum(latency_buckets[{i}])" for i in range(1, BUCKETS + 1))
    for provider, model, t, counts in session.execute(text(
            f"SELECT provider, request_model, {trunc}, ARRAY[{histogram}] FROM usage_rollups WHERE {where} "
            "GROUP BY 1, 2, 3"), params):
        series[(provider, model)][t].histogram = [int(c) for c in counts]
    return series


@pytest.mark.parametrize("bucket", ["hour", "day"])
@pytest.mark.parametrize("narrow", [{}, {"provider": "openai"}, {"model": "gpt-4o"}, {"service": "web-agent"}])
def test_series_are_the_old_queries_answers(month, session, bucket, narrow):
    filters = Filters(month, UNTIL - timedelta(days=30), UNTIL, **narrow)
    new = fetch_series(session, filters, bucket)
    assert new and new == old_fetch_series(session, filters, bucket)


@pytest.mark.parametrize("bucket", ["hour", "day"])
def test_provider_health_and_anomalies_answer_as_before(month, session, monkeypatch, bucket):
    filters = Filters(month, UNTIL - timedelta(days=30), UNTIL)
    new = (provider_health(session, filters, bucket), find_anomalies(session, filters, bucket))
    assert new[0].series and new[0].changes  # bench data: the gpt-4o served-version change
    _old(monkeypatch)
    assert (provider_health(session, filters, bucket), find_anomalies(session, filters, bucket)) == new


@pytest.mark.parametrize("group_by", ["model", "provider", "day", "hour"])
def test_costs_answer_as_before_with_exact_edges(month, session, monkeypatch, group_by):
    # Off the hour at both ends: the partial hours come from spans, the rest from the rollup.
    filters = Filters(month, UNTIL - timedelta(days=20, minutes=30), UNTIL - timedelta(minutes=50))
    new = costs(session, filters, group_by, limit=1000)
    assert new.total.calls > 0
    _old(monkeypatch)
    old = costs(session, filters, group_by, limit=1000)
    # The same groups and totals; only the table that answered differs.
    assert (old.source, new.source) == ("usage_rollups", "provider_rollups")
    assert replace(old, source=new.source) == new


def test_a_service_or_agent_filter_reads_usage_rollups():
    assert Filters(1, UNTIL, UNTIL).usage_table() == "provider_rollups"
    assert Filters(1, UNTIL, UNTIL, service="web-agent").usage_table() == "usage_rollups"
    assert Filters(1, UNTIL, UNTIL, agent="support", model="gpt-4o").usage_table() == "usage_rollups"


def test_filtered_answers_still_agree(month, session):
    """Filters on provider or model stay on the narrow rollup; with a service filter the wide one
    answers, and summed over every service it gives the unfiltered answer."""
    since = UNTIL - timedelta(days=30)
    whole = provider_health(session, Filters(month, since, UNTIL, provider="openai"), "day").series
    by_service = [provider_health(session, Filters(month, since, UNTIL, provider="openai", service=s), "day").series
                  for s in ("web-agent", "batch-agent", "svc-a", "svc-b")]
    for key, points in whole.items():
        for t, point in points.items():
            parts = [s[key][t] for s in by_service if t in s.get(key, {})]
            assert point.calls == sum(p.calls for p in parts)
            assert point.histogram == [sum(c) for c in zip(*(p.histogram for p in parts))]


def test_models_seen_are_the_same_pairs(month, session):
    from db.queries.prices import models_seen

    old = session.execute(text(
        "SELECT DISTINCT provider, model FROM (SELECT provider, request_model AS model FROM usage_rollups "
        "UNION SELECT provider, response_model FROM usage_rollups) m WHERE model <> '' ORDER BY 1, 2")).all()
    assert len(old) >= 5 and models_seen(session, month) == [tuple(r) for r in old]
