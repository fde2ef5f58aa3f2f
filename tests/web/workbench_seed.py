"""Runs for the Failures and Costs pages, written through the real write path (db.ingest),
so the rollups the pages read are the batch writer's own, then attributed (trace_failures)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg

from collector.body import PROTOBUF
from collector.pipeline import prepare
from core.otlp import Limits
from db.engine import libpq_url
from db.ingest import prepare_connection, write_batch
from db.queries.forensics import attribute_pending
from tests import otlp_payloads as P

H = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)  # two days after tests.api.seed.BASE_TIME
MS = 1_000_000
ERROR = 2
XSS_MODEL = "<script>alert('model')</script>"
XSS_AGENT = "<img src=x onerror=alert('agent')>"
XSS_TOOL = "javascript:alert('tool')"


def ns(at: datetime, offset_ms: float = 0) -> int:
    return int(at.timestamp()) * 1_000_000_000 + int(offset_ms * MS)


def ingest(database_url: str, project_id: int, spans, service: str) -> int:
    body = P.request(spans, service=service).SerializeToString()
    prepared = prepare(body, PROTOBUF, project_id=project_id, limits=Limits(), overrides=())
    with psycopg.connect(libpq_url(database_url)) as conn:
        prepare_connection(conn)
        return write_batch(conn, prepared.rows, prepared.edges).inserted


def llm(tid, parent, *, model, start, ms=500, served=None, provider="openai", agent="support", inp=100, out=20,
        status=0, **attrs):
    attributes = {**P.llm_attrs(model, inp, out), "gen_ai.provider.name": provider, "gen_ai.agent.name": agent,
                  **attrs}
    if served is False:  # failed before any model answered
        del attributes["gen_ai.response.model"]
    else:
        attributes["gen_ai.response.model"] = served or model
    return P.span(tid, P.span_id(), parent=parent, name=f"chat {model}", start=start, duration=int(ms * MS),
                  attributes=attributes, status=status)


def agent_root(tid, sid, name, *, start, ms, status=0):
    return P.span(tid, sid, name=f"invoke_agent {name}", start=start, duration=int(ms * MS), status=status,
                  attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name})


def tool(tid, parent, name, *, start, ms=40, status=0, agent="support"):
    return P.span(tid, P.span_id(), parent=parent, name=f"execute_tool {name}", start=start, duration=int(ms * MS),
                  status=status, attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name,
                                             "gen_ai.agent.name": agent, **({"error.type": "ToolError"} if status else {})})


@dataclass
class Workbench:
    failed_run: str   # hex: support run whose gpt-4o call timed out (H + 1 h)
    ok_run: str       # hex: support run served by gpt-4o-2024-08-06 (H + 2 h)
    billing_run: str  # hex: billing run with an unpriced call and a failed tool (H + 5 h)


def seed_workbench(database_url: str, sessionmaker, project_id: int) -> Workbench:
    """Three runs in [H, H + 6 h):
    - H+1h support (svc-a): gpt-4o timed out before answering (no response model), the run failed;
    - H+2h support (svc-a): gpt-4o served by gpt-4o-2024-08-06, 1000 in / 200 out;
    - H+5h billing (svc-b): my-private-model (unpriced) then tool get_invoice failed, the run failed."""
    a, b, c = P.trace_id(), P.trace_id(), P.trace_id()
    ra, rb, rc = P.span_id(), P.span_id(), P.span_id()
    t1, t2, t5 = H + timedelta(hours=1), H + timedelta(hours=2), H + timedelta(hours=5)
    ingest(database_url, project_id, [
        agent_root(a, ra, "support", start=ns(t1), ms=31_000, status=ERROR),
        llm(a, ra, model="gpt-4o", served=False, start=ns(t1, 100), ms=30_000, inp=300, out=0, status=ERROR,
            **{"error.type": "timeout"}),
        agent_root(b, rb, "support", start=ns(t2), ms=2_000),
        llm(b, rb, model="gpt-4o", served="gpt-4o-2024-08-06", start=ns(t2, 100), ms=1_500, inp=1000, out=200),
    ], service="svc-a")
    ingest(database_url, project_id, [
        agent_root(c, rc, "billing", start=ns(t5), ms=3_000, status=ERROR),
        llm(c, rc, model="my-private-model", provider="acme", agent="billing", start=ns(t5, 100), ms=400, inp=50,
            out=5),
        tool(c, rc, "get_invoice", start=ns(t5, 600), status=ERROR, agent="billing"),
    ], service="svc-b")
    attribute(sessionmaker)
    return Workbench(a.hex(), b.hex(), c.hex())


def seed_hostile(database_url: str, sessionmaker, project_id: int) -> str:
    """One failed run whose model, agent and tool names are script payloads."""
    t, root = P.trace_id(), P.span_id()
    at = H + timedelta(hours=3)
    ingest(database_url, project_id, [
        agent_root(t, root, XSS_AGENT, start=ns(at), ms=2_000, status=ERROR),
        llm(t, root, model=XSS_MODEL, agent=XSS_AGENT, start=ns(at, 10), ms=300),
        tool(t, root, XSS_TOOL, start=ns(at, 400), status=ERROR, agent=XSS_AGENT),
    ], service="<svg onload=alert('svc')>")
    attribute(sessionmaker)
    return t.hex()


def attribute(sessionmaker) -> None:
    with sessionmaker.begin() as session:
        attribute_pending(session, now=datetime.now(timezone.utc) + timedelta(minutes=1), delay=0, limit=100)


def window(**extra) -> dict:
    return {"since": "2026-11-22T10:00:00Z", "until": "2026-11-22T16:00:00Z", **extra}
