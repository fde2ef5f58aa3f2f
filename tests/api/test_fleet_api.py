"""Across traces, through the real write path (db.ingest.write_batch) into real PostgreSQL:
GET /api/costs, /api/health/providers, /api/anomalies with exact numbers, and rollups that
never count a redelivered span twice."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest
from sqlalchemy import text

from collector.body import PROTOBUF
from collector.pipeline import prepare
from core.latency import BOUNDS_NS, bucket_index, histogram, quantile_ms
from core.otlp import Limits
from db.engine import libpq_url
from db.ingest import prepare_connection, write_batch
from tests import otlp_payloads as P

H = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)
MS = 1_000_000


def ns(at: datetime, offset_ms: float = 0) -> int:
    return int(at.timestamp()) * 1_000_000_000 + int(offset_ms * MS)


def ingest(database_url: str, project_id: int, spans, service: str = "svc-a") -> int:
    body = P.request(spans, service=service).SerializeToString()
    prepared = prepare(body, PROTOBUF, project_id=project_id, limits=Limits(), overrides=())
    with psycopg.connect(libpq_url(database_url)) as conn:
        prepare_connection(conn)
        return write_batch(conn, prepared.rows, prepared.edges).inserted


def llm(tid, *, model="gpt-4o", provider="openai", served=None, start, ms, inp=100, out=20, status=0,
        agent="support", links=(), **attrs):
    attributes = {**P.llm_attrs(model, inp, out), "gen_ai.provider.name": provider,
                  "gen_ai.response.model": served or model, "gen_ai.agent.name": agent, **attrs}
    return P.span(tid, P.span_id(), name=f"chat {model}", start=start, duration=int(ms * MS),
                  attributes=attributes, status=status, links=list(links))


def tool(tid, name, *, start, ms, status=0, agent="support"):
    return P.span(tid, P.span_id(), name=f"execute_tool {name}", start=start, duration=int(ms * MS), status=status,
                  attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name,
                              "gen_ai.agent.name": agent})


@pytest.fixture
def auth(project):
    return {"authorization": f"Bearer {project[2]}"}


@pytest.fixture
def scenario(database_url, project):
    """Trace A (svc-a, support): ok call, rate-limited call, its retry, two tools (one fails).
    Trace B (svc-b, billing, session s1 / user u1): a fallback to claude, an unpriced call, and
    two hours later gpt-4o answered by a new served version."""
    project_id = project[0]
    a, b = P.trace_id(), P.trace_id()
    ok = llm(a, start=ns(H, 1000), ms=500)
    failed = llm(a, start=ns(H, 2000), ms=1500, inp=200, out=40, status=2, **{"error.type": "429"})
    retry = llm(a, start=ns(H, 4000), ms=700, links=[(a, failed.span_id, {"causeline.link.type": "retry_of"})],
                **{"causeline.attempt": 2})
    tools = [tool(a, "search_docs", start=ns(H, 5000), ms=30), tool(a, "get_order", start=ns(H, 6000), ms=50, status=2)]
    spans_a = [ok, failed, retry, *tools]
    fallback = llm(b, model="claude-sonnet-4-5", provider="anthropic", start=ns(H, 3000), ms=900, inp=300, out=60,
                   agent="billing", links=[(a, failed.span_id, {"causeline.link.type": "fallback_of"})],
                   **{"gen_ai.conversation.id": "s1", "user.id": "u1"})
    unpriced = llm(b, model="my-private-model", provider="acme", start=ns(H, 3500), ms=100, inp=50, out=5,
                   agent="billing")
    later = llm(b, served="gpt-4o-2099-01-01", start=ns(H + timedelta(hours=2), 0), ms=800, agent="billing")
    assert ingest(database_url, project_id, spans_a) == 5
    assert ingest(database_url, project_id, [fallback, unpriced, later], service="svc-b") == 3
    return {"a": spans_a, "b": [fallback, unpriced, later]}


def window(**extra):
    return {"since": H.isoformat(), "until": (H + timedelta(hours=6)).isoformat(), **extra}


def span_cost(engine, model) -> Decimal:
    with engine.connect() as conn:
        return conn.execute(text("select sum(cost_usd) from spans where coalesce(response_model, request_model) = :m"),
                            {"m": model}).scalar_one()


def test_costs_by_model_exact_with_unpriced_separate(client, auth, scenario, engine):
    body = client.get("/api/costs", params=window(group_by="model"), headers=auth).json()
    assert body["window"]["since"].startswith("2026-01-05T10:00") and body["source"] == "provider_rollups"
    groups = {g["key"]: g for g in body["groups"]}
    # One row per requested model: the gpt-4o call served by a new dated version is inside it.
    assert set(groups) == {"gpt-4o", "claude-sonnet-4-5", "my-private-model"}
    gpt = groups["gpt-4o"]
    assert (gpt["calls"], gpt["errors"], gpt["retries"], gpt["fallbacks"], gpt["unpriced_calls"]) == (4, 1, 1, 0, 0)
    assert gpt["served_models"] == [{"model": "gpt-4o", "calls": 3}, {"model": "gpt-4o-2099-01-01", "calls": 1}]
    assert gpt["tokens"] == {"input": 500, "output": 100, "cache_read": 0, "cache_write": 0, "reasoning": 0}
    assert Decimal(gpt["cost_usd"]) == span_cost(engine, "gpt-4o") + span_cost(engine, "gpt-4o-2099-01-01") > 0
    assert gpt["cost_complete"]
    private = groups["my-private-model"]
    assert private["unpriced_calls"] == 1 and private["cost_usd"] is None and not private["cost_complete"]
    assert groups["claude-sonnet-4-5"]["fallbacks"] == 1
    total = body["total"]
    assert (total["calls"], total["unpriced_calls"], total["tokens"]["input"]) == (6, 1, 850)
    with engine.connect() as conn:
        assert Decimal(total["cost_usd"]) == conn.execute(text("select sum(cost_usd) from spans")).scalar_one()
    assert not total["cost_complete"]
    # The series: hourly over a 6 h window, buckets that had calls only.
    assert body["series_bucket"] == "hour"
    assert [(g["key"][11:16], g["calls"]) for g in body["series"]] == [("10:00", 5), ("12:00", 1)]


def test_a_failed_call_and_its_served_version_are_one_model(client, auth, database_url, project, engine):
    """A call that failed before any model answered has no response model; the next one was
    served by a dated version: both requested gpt-4o, so they are one row."""
    tid = P.trace_id()
    failed_attrs = {**P.llm_attrs("gpt-4o", 10, 0), "error.type": "timeout"}
    del failed_attrs["gen_ai.response.model"]
    failed = P.span(tid, P.span_id(), name="chat gpt-4o", start=ns(H, 100), duration=int(30_000 * MS),
                    attributes=failed_attrs, status=2)
    served = llm(tid, served="gpt-4o-2024-08-06", start=ns(H, 31_000), ms=800)
    assert ingest(database_url, project[0], [failed, served]) == 2
    body = client.get("/api/costs", params=window(group_by="model"), headers=auth).json()
    assert [(g["key"], g["calls"], g["errors"]) for g in body["groups"]] == [("gpt-4o", 2, 1)]
    assert body["groups"][0]["served_models"] == [{"model": "gpt-4o-2024-08-06", "calls": 1}]
    for model in ("gpt-4o", "gpt-4o-2024-08-06"):  # either name finds the row
        only = client.get("/api/costs", params=window(group_by="model", model=model), headers=auth).json()
        assert [g["key"] for g in only["groups"]] == ["gpt-4o"]


def _spans_in(engine, since, until, where="category in ('llm', 'embedding')"):
    with engine.connect() as conn:
        return conn.execute(text(f"select count(*), sum(cost_usd), sum(input_tokens) from spans "
                                 f"where {where} and start_time >= :s and start_time < :u"),
                            {"s": since, "u": until}).one()


@pytest.mark.parametrize("since,until", [
    (H + timedelta(seconds=2.5), H + timedelta(hours=2, seconds=0.5)),  # both edges partial
    (H + timedelta(seconds=2.5), H + timedelta(hours=2)),                 # until on the hour: excludes 12:00:00
    (H + timedelta(seconds=3.2), H + timedelta(seconds=4.5)),             # inside one hour
    (H - timedelta(minutes=30), H + timedelta(hours=3)),                  # whole hours + empty edges
])
def test_cost_windows_are_exact_not_rounded_to_the_hour(client, auth, scenario, engine, since, until):
    params = {"since": since.isoformat(), "until": until.isoformat()}
    body = client.get("/api/costs", params={**params, "group_by": "provider"}, headers=auth).json()
    assert body["window"]["since"] == since.isoformat().replace("+00:00", "Z")
    assert body["window"]["until"] == until.isoformat().replace("+00:00", "Z")
    calls, cost, tokens = _spans_in(engine, since, until)
    total = body["total"]
    assert total["calls"] == calls and total["tokens"]["input"] == (tokens or 0)
    assert Decimal(total["cost_usd"] or 0) == (cost or 0)
    tools = client.get("/api/costs", params={**params, "group_by": "tool"}, headers=auth).json()
    assert tools["total"]["calls"] == _spans_in(engine, since, until, "category = 'tool'")[0]


def test_exact_window_counts_each_edge_call_once(client, auth, scenario):
    # 10:00:02.5 .. 12:00:00.5: the retry, the fallback, the unpriced call and the 12:00 call.
    params = {"since": (H + timedelta(seconds=2.5)).isoformat(),
              "until": (H + timedelta(hours=2, seconds=0.5)).isoformat()}
    body = client.get("/api/costs", params={**params, "group_by": "model"}, headers=auth).json()
    assert {g["key"]: g["calls"] for g in body["groups"]} == {"gpt-4o": 2, "claude-sonnet-4-5": 1,
                                                               "my-private-model": 1}
    assert body["total"]["unpriced_calls"] == 1 and body["total"]["retries"] == 1
    tools = client.get("/api/costs", params={**params, "group_by": "tool"}, headers=auth).json()
    assert {g["key"]: (g["calls"], g["errors"]) for g in tools["groups"]} == {"search_docs": (1, 0),
                                                                              "get_order": (1, 1)}


@pytest.mark.parametrize("group_by,expected", [
    ("provider", {"openai": 4, "anthropic": 1, "acme": 1}),
    ("agent", {"support": 3, "billing": 3}),
    ("service", {"svc-a": 3, "svc-b": 3}),
    ("hour", {"2026-01-05T10:00:00Z": 5, "2026-01-05T12:00:00Z": 1}),
    ("day", {"2026-01-05T00:00:00Z": 6}),
    ("tool", {"search_docs": 1, "get_order": 1}),
    ("session", {"s1": 3, None: 3}),
    ("user", {"u1": 3, None: 3}),
])
def test_costs_group_by(client, auth, scenario, group_by, expected):
    body = client.get("/api/costs", params=window(group_by=group_by), headers=auth).json()
    keys = {(g["key"].replace("+00:00", "Z") if isinstance(g["key"], str) else g["key"]): g["calls"]
            for g in body["groups"]}
    assert keys == expected
    # The table that answered: the narrow provider rollup unless the grouping needs service or agent.
    assert body["source"] == {"agent": "usage_rollups", "service": "usage_rollups", "tool": "tool_rollups",
                              "session": "traces", "user": "traces"}.get(group_by, "provider_rollups")
    if group_by == "tool":
        assert {g["key"]: g["errors"] for g in body["groups"]} == {"search_docs": 0, "get_order": 1}
        assert all(g["cost_usd"] is None and g["tokens"] is None for g in body["groups"])
    if group_by == "session":
        assert {g["key"]: g["traces"] for g in body["groups"]} == {"s1": 1, None: 1}


def test_costs_filters_and_validation(client, auth, scenario):
    only = client.get("/api/costs", params=window(group_by="model", provider="openai", agent="billing"), headers=auth)
    assert [(g["key"], g["calls"]) for g in only.json()["groups"]] == [("gpt-4o", 1)]
    assert only.json()["source"] == "usage_rollups"  # the agent filter needs the wide rollup
    served = client.get("/api/costs", params=window(group_by="agent", model="gpt-4o-2099-01-01"), headers=auth)
    assert [(g["key"], g["calls"]) for g in served.json()["groups"]] == [("billing", 1)]
    bad = client.get("/api/costs", params=window(group_by="user", provider="openai"), headers=auth)
    assert bad.status_code == 422 and "provider filter" in bad.text
    too_long = client.get("/api/costs", params={"since": "2025-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
                          headers=auth)
    assert too_long.status_code == 422 and "90 days" in too_long.text
    assert client.get("/api/costs").status_code == 401


def test_other_projects_see_nothing(client, scenario, sessionmaker):
    from db.queries.auth import create_api_key, create_project

    with sessionmaker.begin() as session:
        other = create_project(session, "other")
        key = create_api_key(session, other.id, name="o", scopes=["read"]).secret
    body = client.get("/api/costs", params=window(), headers={"authorization": f"Bearer {key}"}).json()
    assert body["groups"] == [] and body["total"]["calls"] == 0


def test_provider_health(client, auth, scenario):
    body = client.get("/api/health/providers", params=window(), headers=auth).json()
    assert body["bucket"] == "hour"
    models = {(m["provider"], m["model"]): m for m in body["models"]}
    gpt = models[("openai", "gpt-4o")]
    assert (gpt["calls"], gpt["errors"], gpt["retries"], gpt["fallbacks"]) == (4, 1, 1, 0)
    assert gpt["error_rate"] == 0.25 and gpt["retry_rate"] == 0.25
    assert gpt["errors_by_class"] == [{"error_class": "rate_limited", "errors": 1, "rate": 0.25}]
    assert gpt["served_models"] == [{"model": "gpt-4o", "calls": 3}, {"model": "gpt-4o-2099-01-01", "calls": 1}]
    durations = [500 * MS, 1500 * MS, 700 * MS, 800 * MS]
    assert gpt["latency"]["p50_ms"] == quantile_ms(histogram(durations), 0.5)
    assert abs(gpt["latency"]["p50_ms"] - 700) / 700 < 0.19
    assert gpt["latency"]["mean_ms"] == 875.0
    assert [(p["time"][:13], p["calls"], p["errors_by_class"]) for p in gpt["series"]] == [
        ("2026-01-05T10", 3, {"rate_limited": 1}), ("2026-01-05T12", 1, {})]
    claude = models[("anthropic", "claude-sonnet-4-5")]
    assert claude["fallback_rate"] == 1.0 and claude["latency"]["p99_ms"] is not None
    assert body["served_model_changes"] == [{
        "provider": "openai", "request_model": "gpt-4o", "previous_models": ["gpt-4o"],
        "new_model": "gpt-4o-2099-01-01", "first_seen": "2026-01-05T12:00:00Z", "calls_since": 1}]
    daily = client.get("/api/health/providers", params={**window(), "bucket": "day", "provider": "acme"},
                       headers=auth).json()
    assert [(m["model"], m["calls"], len(m["series"])) for m in daily["models"]] == [("my-private-model", 1, 1)]


def test_redelivery_counts_nothing_twice_in_the_new_rollups(database_url, project, scenario, engine, client, auth):
    def dump():
        with engine.connect() as conn:
            return (conn.execute(text("select * from usage_rollups order by 1,2,3,4,5,6,7,8")).all(),
                    conn.execute(text("select * from tool_rollups order by 1,2,3,4,5,6")).all())

    before = dump()
    before_health = client.get("/api/health/providers", params=window(), headers=auth).json()
    assert ingest(database_url, project[0], scenario["a"]) == 0
    assert ingest(database_url, project[0], scenario["b"], service="svc-b") == 0
    # Mixed with one new span: only that one is added.
    tid = P.trace_id()
    assert ingest(database_url, project[0], [*scenario["a"], tool(tid, "search_docs", start=ns(H, 9000), ms=40)]) == 1
    usage, tools = dump()
    assert usage == before[0]
    assert sum(r.calls for r in tools) == sum(r.calls for r in before[1]) + 1
    health = client.get("/api/health/providers", params=window(), headers=auth).json()
    assert health == before_health
    with engine.connect() as conn:
        assert conn.execute(text("select sum(calls) from usage_rollups")).scalar_one() == 6
        assert conn.execute(text("select count(*) from spans where retry_kind is not null")).scalar_one() == 2


def test_sql_histogram_buckets_match_core_latency(database_url, project, engine):
    durations = [0, 1, 999_999, 1_000_000, BOUNDS_NS[4] - 1, BOUNDS_NS[4], 123_456_789, 10**13]
    tid = P.trace_id()
    spans = [llm(tid, start=ns(H, i), ms=d / MS) for i, d in enumerate(durations)]
    ingest(database_url, project[0], spans)
    with engine.connect() as conn:
        stored = conn.execute(text("select latency_buckets from usage_rollups")).scalar_one()
    expected = [0] * len(stored)
    for d in durations:
        expected[bucket_index(d)] += 1
    assert stored == expected


def test_anomalies_on_a_synthetic_day(client, auth, database_url, project):
    """30 hours of gpt-4o at 30 calls/hour and 1 error/hour; hour 27 is slow, hour 28 fails a lot."""
    project_id = project[0]
    start = H - timedelta(hours=24)
    spans = []
    for hour in range(30):
        tid = P.trace_id()
        at = start + timedelta(hours=hour)
        errors = 12 if hour == 28 else 1
        for call in range(30):
            ms = 3000 + call if hour == 27 else 400 + 5 * call
            failed = call < errors
            spans.append(llm(tid, start=ns(at, call * 1000), ms=ms, status=2 if failed else 0,
                             **({"error.type": "timeout"} if failed else {})))
    for i in range(0, len(spans), 300):
        ingest(database_url, project_id, spans[i:i + 300])
    body = client.get("/api/anomalies", params={"since": H.isoformat(), "until": (H + timedelta(hours=6)).isoformat()},
                      headers=auth).json()
    found = [(a["metric"], a["time"][:13], a["provider"], a["model"], a["direction"]) for a in body["anomalies"]]
    assert found == [
        ("latency_p95_ms", "2026-01-05T13", "openai", "gpt-4o", "up"),
        ("error_rate", "2026-01-05T14", "openai", "gpt-4o", "up"),
    ]
    err = body["anomalies"][1]
    assert err["value"] == 0.4 and err["calls"] == 30 and err["baseline"]["points"] == 24
    assert err["baseline"]["median"] == pytest.approx(1 / 30) and err["z"] >= 4
    assert "robust z" in err["evidence"] and "Robust z-score" in body["method"]
    only_cost = client.get("/api/anomalies", params={"since": H.isoformat(), "metric": "cost_per_call_usd",
                                                     "until": (H + timedelta(hours=6)).isoformat()}, headers=auth)
    assert only_cost.json()["anomalies"] == []


def test_openapi_documents_the_endpoints(client, auth):
    paths = client.get("/openapi.json", headers=auth).json()["paths"]
    for path in ("/api/costs", "/api/health/providers", "/api/anomalies"):
        assert path in paths, path
