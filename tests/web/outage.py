"""A provider outage, through the real write path (rollups) and failure attribution
(trace_failures), for the Overview and Providers pages.

Two hours ago, in one hour (service "shop", agent "support"):
- 3 runs ok (openai gpt-4o);
- 2 runs recovered: gpt-4o times out (504), the agent falls back to anthropic claude-sonnet-4-5;
- 1 run failed: gpt-4o times out and the run fails (no fallback).
One hour later, 1 run ok whose gpt-4o is answered by a new version (a served-model change).
Runs 7, failed 1, recovered 2; gpt-4o: 7 calls, 3 errors (timeout); 2 fallbacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import psycopg

from collector.body import PROTOBUF
from collector.pipeline import prepare
from core.otlp import Limits
from db.engine import libpq_url
from db.ingest import prepare_connection, write_batch
from db.queries.fleet import floor_hour
from db.queries.forensics import attribute_pending
from tests import otlp_payloads as P

MS = 1_000_000
NEW_SERVED = "gpt-4o-2026-12-01"


@dataclass
class Outage:
    hour: datetime
    ok: list[bytes] = field(default_factory=list)
    recovered: list[bytes] = field(default_factory=list)
    failed: list[bytes] = field(default_factory=list)
    changed: bytes = b""


def ns_at(at: datetime, offset_ms: float = 0) -> int:
    return int(at.timestamp()) * 1_000_000_000 + int(offset_ms * MS)


def run_spans(start: int, *, agent: str, outcome: str, served: str = "gpt-4o", model: str = "gpt-4o",
         provider: str = "openai", name: str = "handle ticket"):
    tid, root = P.trace_id(), P.span_id()
    failed_root = outcome == "failed"
    spans = [P.span(tid, root, name=name, start=start, duration=5000 * MS, status=2 if failed_root else 1,
                    message="gave up" if failed_root else "",
                    attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent})]
    call = P.span(tid, P.span_id(), parent=root, name=f"chat {model}", start=start + 10 * MS,
                  duration=(30_000 if outcome != "ok" else 800) * MS, status=2 if outcome != "ok" else 1,
                  message="Error code: 504 - upstream timed out" if outcome != "ok" else "",
                  attributes={**P.llm_attrs(model, 100, 0 if outcome != "ok" else 20), "gen_ai.provider.name": provider,
                              "gen_ai.response.model": served, "gen_ai.agent.name": agent,
                              **({"error.type": "504"} if outcome != "ok" else {})})
    spans.append(call)
    if outcome == "recovered":
        spans.append(P.span(tid, P.span_id(), parent=root, name="chat claude-sonnet-4-5", start=start + 31_000 * MS,
                            duration=900 * MS, status=1,
                            links=[(tid, call.span_id, {"causeline.link.type": "fallback_of"})],
                            attributes={**P.llm_attrs("claude-sonnet-4-5", 120, 30),
                                        "gen_ai.provider.name": "anthropic", "gen_ai.agent.name": agent}))
    return tid, spans


def ingest(database_url: str, project_id: int, spans, service: str = "shop") -> None:
    body = P.request(spans, service=service).SerializeToString()
    prepared = prepare(body, PROTOBUF, project_id=project_id, limits=Limits(), overrides=())
    with psycopg.connect(libpq_url(database_url)) as conn:
        prepare_connection(conn)
        write_batch(conn, prepared.rows, prepared.edges)


def attribute_all(sessionmaker) -> None:
    with sessionmaker.begin() as session:
        while attribute_pending(session, now=datetime.now(timezone.utc) + timedelta(hours=1), delay=0, limit=100):
            pass


def seed_outage(database_url: str, sessionmaker, project_id: int, *, now: datetime | None = None,
                agent: str = "support", service: str = "shop") -> Outage:
    now = now or datetime.now(timezone.utc)
    outage = Outage(hour=floor_hour(now) - timedelta(hours=2))
    spans = []
    for i, outcome in enumerate(["ok", "ok", "ok", "recovered", "recovered", "failed"]):
        tid, run = run_spans(ns_at(outage.hour, 60_000 * (i + 1)), agent=agent, outcome=outcome)
        getattr(outage, outcome).append(tid)
        spans += run
    outage.changed, run = run_spans(ns_at(outage.hour + timedelta(hours=1), 60_000), agent=agent, outcome="ok",
                               served=NEW_SERVED)
    spans += run
    ingest(database_url, project_id, spans, service=service)
    attribute_all(sessionmaker)
    return outage
