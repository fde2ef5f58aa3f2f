"""A model call recorded by two stacked instrumentations counts once, through the real collector
HTTP path into real PostgreSQL: nested or sibling, in one request or several, in any order, and
after redelivery (core/model_call_dedup.py decides, db/ingest_dedup.py + db/ingest.py apply)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import text

from tests import otlp_payloads as P

PB = {"content-type": "application/x-protobuf"}
SOURCES = Path(__file__).parent.parent / "fixtures" / "sources"


def post(collector, spans, service: str = "demo-service") -> None:
    response = httpx.post(collector.traces_endpoint, content=P.request(spans, service).SerializeToString(),
                          headers={**PB, **collector.auth()}, timeout=30)
    assert response.status_code == 200, response.text


def post_json(collector, body: dict) -> None:
    response = httpx.post(collector.traces_endpoint, json=body, headers=collector.auth(), timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == {}


def trace_totals(collector, tid: bytes) -> tuple:
    with collector.engine.connect() as conn:
        return tuple(conn.execute(text(
            "select span_count, llm_calls, unpriced_calls, input_tokens, output_tokens, cost_usd "
            "from traces where trace_id = :t"), {"t": tid}).one())


def marks(collector, tid: bytes) -> dict[bytes, tuple]:
    with collector.engine.connect() as conn:
        rows = conn.execute(text("select span_id, duplicate_of, reason from span_duplicates where trace_id = :t"),
                            {"t": tid})
        return {r.span_id: (r.duplicate_of, r.reason) for r in rows}


def usage(collector, service: str = "demo-service") -> tuple:
    with collector.engine.connect() as conn:
        return tuple(conn.execute(text(
            "select coalesce(sum(calls), 0), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), "
            "coalesce(sum(cost_usd), 0), coalesce(sum((select sum(x) from unnest(latency_buckets) x)), 0) "
            "from usage_rollups where service = :s"), {"s": service}).one())


def stacked(tid: bytes, *, outer_usage: bool = False, response_ids: tuple = (None, None)):
    """Agent -> framework's model-call span -> the client library's own span of the same call."""
    root, outer, inner = P.span_id(), P.span_id(), P.span_id()
    outer_attrs = P.llm_attrs() if outer_usage else {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
    inner_attrs = P.llm_attrs(inp=100, out=20)
    for attrs, rid in zip((outer_attrs, inner_attrs), response_ids):
        if rid:
            attrs["gen_ai.response.id"] = rid
    return [
        P.span(tid, root, name="invoke_agent planner", duration=10_000_000,
               attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}),
        P.span(tid, outer, parent=root, name="ChatOpenAI", start=P.BASE_NS + 1, duration=5_000_000,
               attributes=outer_attrs),
        P.span(tid, inner, parent=outer, name="chat gpt-4o", start=P.BASE_NS + 2, duration=4_000_000,
               attributes=inner_attrs),
    ]


def test_nested_duplicate_in_one_request_counts_once(collector):
    tid = P.trace_id()
    root, outer, inner = stacked(tid)
    post(collector, [root, outer, inner])
    assert marks(collector, tid) == {outer.span_id: (inner.span_id, "nested")}
    span_count, llm_calls, unpriced, t_in, t_out, cost = trace_totals(collector, tid)
    assert (span_count, llm_calls, unpriced, t_in, t_out) == (3, 1, 0, 100, 20)
    calls, u_in, u_out, u_cost, buckets = usage(collector)
    assert (calls, u_in, u_out, u_cost, buckets) == (1, 100, 20, cost, 1)


def test_the_better_span_arriving_later_takes_over_exactly(collector):
    """The client span is stored and counted first; the framework's span, which reports more
    (and so counts), arrives minutes later in another request: the first is taken back out."""
    tid = P.trace_id()
    root, outer, inner = stacked(tid, outer_usage=True)
    inner.attributes.extend(P.attrs({"gen_ai.usage.output_tokens": 20}))  # same kinds as outer...
    outer.attributes.extend(P.attrs({"gen_ai.usage.cache_read_input_tokens": 30}))  # ...outer reports one more
    post(collector, [root, inner])
    assert trace_totals(collector, tid)[1:5] == (1, 0, 100, 20)
    assert usage(collector)[0] == 1
    post(collector, [outer])
    assert marks(collector, tid) == {inner.span_id: (outer.span_id, "nested")}
    assert trace_totals(collector, tid)[:5] == (3, 1, 0, 100, 20)
    assert usage(collector)[:3] == (1, 100, 20)
    # Redelivered, all of it, in another split: nothing changes.
    before = (trace_totals(collector, tid), usage(collector), marks(collector, tid))
    post(collector, [outer, root])
    post(collector, [inner])
    assert (trace_totals(collector, tid), usage(collector), marks(collector, tid)) == before


def test_siblings_with_the_same_response_id_in_separate_requests(collector):
    tid, root = P.trace_id(), P.span_id()
    agent = P.span(tid, root, name="agent", attributes={"gen_ai.operation.name": "invoke_agent"})
    a = P.span(tid, P.span_id(), parent=root, name="openai.response", start=P.BASE_NS + 1,
               attributes=P.llm_attrs(**{"gen_ai.response.id": "resp_1"}))
    b = P.span(tid, P.span_id(), parent=root, name="Responses API", start=P.BASE_NS + 2,
               attributes=P.llm_attrs(**{"gen_ai.response.id": "resp_1"}))
    post(collector, [b], service="svc-b")
    post(collector, [agent, a], service="svc-a")
    winner, loser = sorted((a.span_id, b.span_id))
    assert marks(collector, tid) == {loser: (winner, "same_response_id")}
    assert trace_totals(collector, tid)[:5] == (3, 1, 0, 100, 20)
    # The loser's rollup row (its own service) holds nothing any more; the winner's holds the call.
    assert usage(collector, "svc-b" if loser == b.span_id else "svc-a")[:3] == (0, 0, 0)
    assert usage(collector, "svc-a" if loser == b.span_id else "svc-b")[:3] == (1, 100, 20)


def test_a_wrapper_span_arriving_last_links_the_two(collector):
    """The http span between the two model calls arrives last: until then the chain is broken."""
    tid, outer_id, middle_id = P.trace_id(), P.span_id(), P.span_id()
    outer = P.span(tid, outer_id, name="ChatAnthropic", attributes=P.llm_attrs(inp=50, out=5))
    middle = P.span(tid, middle_id, parent=outer_id, name="POST", start=P.BASE_NS + 1)
    inner = P.span(tid, P.span_id(), parent=middle_id, name="chat", start=P.BASE_NS + 2,
                   attributes=P.llm_attrs(inp=50, out=5))
    post(collector, [outer, inner])
    assert trace_totals(collector, tid)[1] == 2
    post(collector, [middle])
    winner, loser = sorted((outer_id, inner.span_id))
    assert marks(collector, tid) == {loser: (winner, "nested")}
    assert trace_totals(collector, tid)[:5] == (3, 1, 0, 50, 5)
    assert usage(collector)[:3] == (1, 50, 5)


# -- real shapes: recordings of the libraries (tests/fixtures/sources) stacked as users stack them ---

def _fixture(name: str) -> dict:
    return json.loads((SOURCES / name).read_text())["otlp"]


def _spans(body: dict):
    for rs in body["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            yield from ss["spans"]


def _attr(span: dict, key: str):
    return next((a["value"].get("stringValue") for a in span.get("attributes", ()) if a["key"] == key), None)


def _real_traces(collector, tid: str) -> tuple:
    return trace_totals(collector, bytes.fromhex(tid))


def test_openai_agents_under_openllmetry_and_logfire_in_one_trace(collector):
    """OpenLLMetry's agents instrumentation and Logfire's both record the same run of the OpenAI
    Agents SDK (one trace: Logfire's spans under OpenLLMetry's root): each of the three model
    calls (resp_1..3) is recorded twice, as siblings with the same gen_ai.response.id."""
    openllmetry = _fixture("opentelemetry-instrumentation-openai-agents-0.62.4.json")
    logfire = _fixture("logfire-5.4.0.json")
    tid = next(_spans(openllmetry))["traceId"]
    root = next(s for s in _spans(openllmetry) if not s.get("parentSpanId"))
    for span in _spans(logfire):
        span["traceId"] = tid
        if not span.get("parentSpanId"):
            span["parentSpanId"] = root["spanId"]
    # Logfire's run arrives first, in another request, and is counted alone until OpenLLMetry's does.
    post_json(collector, logfire)
    alone = _real_traces(collector, tid)
    assert alone[1] == 3
    post_json(collector, openllmetry)
    after = _real_traces(collector, tid)
    assert after[1:5] == alone[1:5] == (3, 0, 600, 120)
    assert after[5] == alone[5]
    found = marks(collector, bytes.fromhex(tid))
    assert len(found) == 3 and {reason for _, reason in found.values()} == {"same_response_id"}
    assert sum(usage(collector, service)[0] for service in {_service(openllmetry), _service(logfire)}) == 3


def _service(body: dict) -> str:
    attributes = body["resourceSpans"][0]["resource"]["attributes"]
    return next(a["value"]["stringValue"] for a in attributes if a["key"] == "service.name")


def test_openai_client_span_inside_the_agents_response_span(collector):
    """OpenLLMetry's `openai.response` span of the Agents SDK wraps the OpenAI client's own
    `openai.chat` span (recorded by opentelemetry-instrumentation-openai under traceloop-sdk):
    nested, with the same response id: one call each, in any order and after redelivery."""
    agents = _fixture("opentelemetry-instrumentation-openai-agents-0.62.4.json")
    client = _fixture("traceloop-sdk-0.62.4.json")
    chat = next(s for s in _spans(client) if s["name"] == "openai.chat")
    tid = next(_spans(agents))["traceId"]
    responses = [s for s in _spans(agents) if s["name"] == "openai.response"]
    wrapped = copy.deepcopy(client)  # the client's resource and scope, holding only the copies below
    wrapped["resourceSpans"] = wrapped["resourceSpans"][:1]
    resource = wrapped["resourceSpans"][0]
    resource["scopeSpans"] = [next(ss for ss in resource["scopeSpans"] if chat in ss["spans"])]
    scope = resource["scopeSpans"][0]
    scope["spans"] = []
    for n, response in enumerate(responses):
        span = copy.deepcopy(chat)
        span.update(traceId=tid, spanId=f"{n + 1:016x}", parentSpanId=response["spanId"],
                    startTimeUnixNano=response["startTimeUnixNano"], endTimeUnixNano=response["endTimeUnixNano"])
        for attribute in span["attributes"]:  # one call: the client saw the same answer
            if attribute["key"] == "gen_ai.response.id":
                attribute["value"] = {"stringValue": _attr(response, "gen_ai.response.id")}
        scope["spans"].append(span)
    post_json(collector, wrapped)
    post_json(collector, agents)
    post_json(collector, wrapped)  # redelivered
    found = marks(collector, bytes.fromhex(tid))
    assert len(found) == 3 and {reason for _, reason in found.values()} == {"same_response_id"}
    # The client's spans report more kinds of tokens: they count, the agents' spans do not.
    assert set(found) == {bytes.fromhex(s["spanId"]) for s in responses}
    assert set(found.values()) == {(bytes.fromhex(f"{n + 1:016x}"), "same_response_id") for n in range(3)}
    assert _real_traces(collector, tid)[1:5] == (3, 0, 3 * 40, 3 * 6)
    assert sum(usage(collector, service)[0] for service in {_service(agents), _service(wrapped)}) == 3


def test_two_writers_each_holding_one_recording_of_a_call(database_url, project, engine):
    """Both writers insert their span of the same call before either has decided anything (held
    back on the trace's row by a third session): whichever goes second sees the first's span and
    marks it; the totals count the call once."""
    import threading
    import time

    import psycopg

    from collector.body import PROTOBUF
    from collector.pipeline import prepare
    from core.otlp import Limits
    from db.engine import libpq_url
    from db.ingest import prepare_connection, write_batch

    tid = P.trace_id()
    root, outer, inner = stacked(tid)

    def write(spans) -> None:
        prepared = prepare(P.request(spans).SerializeToString(), PROTOBUF, project_id=project[0], limits=Limits(),
                           overrides=())
        with psycopg.connect(libpq_url(database_url)) as conn:
            prepare_connection(conn)
            write_batch(conn, prepared.rows, prepared.edges)

    write([root])  # the trace's row exists
    with psycopg.connect(libpq_url(database_url)) as holder:
        holder.execute("SELECT 1 FROM traces WHERE trace_id = %s FOR UPDATE", (tid,))
        threads = [threading.Thread(target=write, args=([span],)) for span in (outer, inner)]
        for thread in threads:
            thread.start()
        # Wait (no timing assertion) until both writers have inserted their span and wait for the row
        # (watched from its own autocommit session: pg_stat_activity is read once per transaction).
        with psycopg.connect(libpq_url(database_url), autocommit=True) as watcher:
            for _ in range(2400):
                waiting = watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                          "AND wait_event_type = 'Lock'").fetchone()[0]
                if waiting == 2:
                    break
                time.sleep(0.05)
        assert waiting == 2
        holder.rollback()
    for thread in threads:
        thread.join()
    db = SimpleNamespace(engine=engine)  # what the helpers above read
    assert marks(db, tid) == {outer.span_id: (inner.span_id, "nested")}
    assert trace_totals(db, tid)[:5] == (3, 1, 0, 100, 20)
    assert usage(db)[:3] == (1, 100, 20)


@pytest.mark.parametrize("later_day_first", [True, False])
def test_a_trace_across_midnight_is_read_in_both_days_partitions(collector, later_day_first):
    """The trace's spans sit in two daily partitions and arrive a day at a time, in either order:
    the de-dup read, bounded by the trace's start, sees both days, for the nested rule and the
    same-response-id rule alike."""
    from datetime import datetime, time, timedelta, timezone

    midnight = datetime.combine(datetime.now(timezone.utc).date() + timedelta(days=1), time(), tzinfo=timezone.utc)
    at = lambda seconds: int((midnight + timedelta(seconds=seconds)).timestamp() * 1e9)  # noqa: E731
    tid = P.trace_id()
    root, outer, inner = stacked(tid)
    root.start_time_unix_nano, root.end_time_unix_nano = at(-3), at(30)
    outer.start_time_unix_nano, outer.end_time_unix_nano = at(-2), at(20)  # the day before
    inner.start_time_unix_nano, inner.end_time_unix_nano = at(1), at(10)  # after midnight
    a = P.span(tid, P.span_id(), parent=root.span_id, name="openai.response", start=at(-1),
               attributes=P.llm_attrs(**{"gen_ai.response.id": "resp_midnight"}))
    b = P.span(tid, P.span_id(), parent=root.span_id, name="Responses API", start=at(2),
               attributes=P.llm_attrs(**{"gen_ai.response.id": "resp_midnight"}))
    earlier, later = [root, outer, a], [inner, b]
    for request in ([later, earlier] if later_day_first else [earlier, later]):
        post(collector, request)
    with collector.engine.connect() as conn:
        partitions = set(conn.execute(text(
            "select tableoid::regclass::text from spans where trace_id = :t"), {"t": tid}).scalars())
    assert len(partitions) == 2  # one daily partition each side of midnight
    winner, loser = sorted((a.span_id, b.span_id))
    assert marks(collector, tid) == {outer.span_id: (inner.span_id, "nested"), loser: (winner, "same_response_id")}
    assert trace_totals(collector, tid)[:5] == (5, 2, 0, 200, 40)
