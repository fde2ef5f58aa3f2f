"""Regenerates the sample reports in docs/samples/ from demo-like seeded runs:
`PYTHONPATH=. python -m tests.reports.samples docs/samples` (starts its own embedded PostgreSQL)."""

from __future__ import annotations

import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

from db.engine import make_engine, make_sessionmaker
from reports.service import create
from tests.api.seed import BASE_TIME, make_span, seed_agent_trace, seed_project, seed_simple_traces, store
from tests.pg import TestPostgres


def seed(session) -> tuple:
    project = seed_project(session, "support-bot")
    trace = seed_agent_trace(session, project.id)
    for day in range(3):
        seed_simple_traces(session, project.id, 12, base=BASE_TIME + timedelta(days=day, hours=2),
                           every=timedelta(minutes=37), error_every=5 if day == 1 else 0, agent="triage",
                           model="gpt-4o-mini")
    guard_trace = b"\x42" * 16
    store(session, [make_span(project.id, guard_trace, name="guardrail pii_filter", start_ms=0, duration_ms=12,
                              category="guardrail", status="error", status_message="PII detected in output",
                              error_class="guardrail_blocked", service_name="support-api",
                              attributes={"causeline.guardrail.passed": False}, cost_usd=Decimal(0),
                              base=BASE_TIME + timedelta(hours=5))])
    return project, trace


def main(out_dir: str) -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pg = TestPostgres()
    try:
        engine = make_engine(pg.fresh_database(), pool_size=1)
        with make_sessionmaker(engine).begin() as session:
            project, trace = seed(session)
            settings = SimpleNamespace(report_signing_key=None)
            common = dict(project_id=project.id, project_slug=project.slug, actor="user:auditor@example.com",
                          sees_content=True, settings=settings)
            made = [create(session, kind="incident", trace_id=trace.trace_id, fmt="pdf", include_content=True,
                           **common),
                    create(session, kind="period", since=BASE_TIME - timedelta(hours=1),
                           until=BASE_TIME + timedelta(days=3), fmt="pdf", **common)]
            for created in made:
                name = f"sample-{created.report.kind}.{created.fmt}"
                (out / name).write_bytes(created.body)
                (out / (name + ".sig.json")).write_bytes(created.seal_bytes)
                print(f"wrote {out / name} ({len(created.body)} bytes)")
        engine.dispose()
    finally:
        pg.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/samples"))
