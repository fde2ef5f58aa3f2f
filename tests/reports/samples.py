"""Demo-like runs for report tests and the samples in docs/samples/, ingested through the
collector's pipeline (so the hourly rollups behind the period report are filled).

Regenerate the samples: `PYTHONPATH=. python -m tests.reports.samples docs/samples`
(starts its own embedded PostgreSQL)."""

from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import psycopg

from collector.body import PROTOBUF
from collector.pipeline import prepare
from core.otlp import Limits
from db.engine import libpq_url, make_engine, make_sessionmaker
from db.ingest import prepare_connection, write_batch
from tests import otlp_payloads as P

START = datetime(2026, 11, 16, 8, 0, tzinfo=timezone.utc)
DAYS = 3
MS = 1_000_000


def _ns(at: datetime, offset_ms: float = 0) -> int:
    return int(at.timestamp()) * 1_000_000_000 + int(offset_ms * MS)


def _run(rng: random.Random, at: datetime, day: int) -> list:
    """One support-agent run: agent -> guardrail -> chat (maybe rate-limited, then retried) -> tool."""
    tid, agent = P.trace_id(), P.span_id()
    served = "gpt-4o-2026-11-17" if day >= 1 else "gpt-4o-2024-08-06"  # a silent served-model change
    spans = [P.span(tid, agent, name="invoke_agent support", start=_ns(at), duration=3000 * MS,
                    attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"})]
    blocked = rng.random() < 0.06
    spans.append(P.span(tid, P.span_id(), parent=agent, name="guardrail pii_filter", start=_ns(at, 5), duration=8 * MS,
                        attributes={"causeline.guardrail.passed": not blocked, "gen_ai.agent.name": "support"},
                        status=2 if blocked else 0, message="PII in the request" if blocked else ""))
    if blocked:
        return spans
    t = 20.0
    if day == 2 and rng.random() < 0.3:  # a rate-limit storm on the last day
        failed = P.span(tid, P.span_id(), parent=agent, name="chat gpt-4o", start=_ns(at, t), duration=150 * MS,
                        attributes={**P.llm_attrs("gpt-4o", 900, 0), "gen_ai.response.model": served,
                                    "gen_ai.agent.name": "support", "error.type": "429"}, status=2)
        spans.append(failed)
        t += 400
        spans.append(P.span(tid, P.span_id(), parent=agent, name="chat gpt-4o", start=_ns(at, t), duration=900 * MS,
                            attributes={**P.llm_attrs("gpt-4o", 900, 140), "gen_ai.response.model": served,
                                        "gen_ai.agent.name": "support", "causeline.attempt": 2},
                            links=[(tid, failed.span_id, {"causeline.link.type": "retry_of"})]))
    else:
        model = "gpt-4o" if rng.random() < 0.8 else "claude-sonnet-4-5"
        attrs = P.llm_attrs(model, rng.randint(600, 1400), rng.randint(60, 300))
        if model == "gpt-4o":
            attrs["gen_ai.response.model"] = served
        else:
            attrs["gen_ai.provider.name"] = "anthropic"
        spans.append(P.span(tid, P.span_id(), parent=agent, name=f"chat {model}", start=_ns(at, t),
                            duration=rng.randint(400, 1500) * MS,
                            attributes={**attrs, "gen_ai.agent.name": "support"}))
    spans.append(P.span(tid, P.span_id(), parent=agent, name="execute_tool lookup_order", start=_ns(at, 2000),
                        duration=40 * MS, attributes={"gen_ai.operation.name": "execute_tool",
                                                      "gen_ai.tool.name": "lookup_order",
                                                      "gen_ai.agent.name": "support"}))
    return spans


def ingest_demo_runs(database_url: str, project_id: int, *, seed: int = 7) -> int:
    rng = random.Random(seed)
    runs = 0
    with psycopg.connect(libpq_url(database_url)) as conn:
        prepare_connection(conn)
        for day in range(DAYS):
            batch = []
            for hour in range(0, 10):
                for minute in (5, 25, 45):
                    batch += _run(rng, START + timedelta(days=day, hours=hour, minutes=minute), day)
                    runs += 1
            body = P.request(batch, service="support-api").SerializeToString()
            prepared = prepare(body, PROTOBUF, project_id=project_id, limits=Limits(), overrides=())
            write_batch(conn, prepared.rows, prepared.edges)
    return runs


def attribute_all(sessionmaker) -> None:
    """What the collector's background attributor does: root causes into trace_failures."""
    from db.queries.forensics import attribute_pending

    while True:
        with sessionmaker.begin() as session:
            if not attribute_pending(session, delay=0, limit=200):
                return


def main(out_dir: str) -> int:
    from reports.service import create
    from tests.api.seed import seed_agent_trace, seed_project
    from tests.pg import TestPostgres

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pg = TestPostgres()
    try:
        url = pg.fresh_database()
        engine = make_engine(url, pool_size=2)  # a report reads on two connections of its own
        with make_sessionmaker(engine).begin() as session:
            project = seed_project(session, "support-bot")
            trace = seed_agent_trace(session, project.id, base=START + timedelta(days=1, hours=3, minutes=12))
        ingest_demo_runs(url, project.id)
        attribute_all(make_sessionmaker(engine))
        with make_sessionmaker(engine).begin() as session:
            common = dict(project_id=project.id, project_slug=project.slug, actor="user:auditor@example.com",
                          sees_content=True, settings=SimpleNamespace(report_signing_key=None))
            for kind, kw in (("incident", dict(trace_id=trace.trace_id, include_content=True)),
                             ("period", dict(since=START, until=START + timedelta(days=DAYS)))):
                name = f"sample-{kind}.pdf"
                with (out / name).open("wb") as file:
                    created = create(session, out=file, kind=kind, fmt="pdf", **kw, **common)
                (out / (name + ".sig.json")).write_bytes(created.seal_bytes)
                print(f"wrote {out / name} ({created.size} bytes)")
        engine.dispose()
    finally:
        pg.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/samples"))
