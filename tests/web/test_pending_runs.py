"""A failed run written but not attributed yet is not reported as "none failed": the Failures page
and the Overview say runs are still being attributed, then show the failure once it is."""

from __future__ import annotations

from datetime import timedelta

from db.queries.forensics import attribute_pending
from tests import otlp_payloads as P
from tests.web.conftest import login
from tests.web.workbench_seed import ERROR, H, ingest, llm, ns

WINDOW = {"since": "2026-11-22T10:00:00Z", "until": "2026-11-22T11:00:00Z"}


def test_runs_being_attributed_are_not_called_healthy(client, seeded, database_url, sessionmaker):
    tid, root = P.trace_id(), P.span_id()
    start = H + timedelta(minutes=5)
    spans = [P.span(tid, root, name="invoke_agent support", start=ns(start), duration=2_000_000_000,
                    attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"},
                    status=ERROR, message="gave up"),
             llm(tid, root, model="gpt-4o", start=ns(start, 10), status=ERROR, **{"error.type": "timeout"})]
    ingest(database_url, seeded.project.id, spans, "support-svc")
    login(client, seeded)

    failures = client.get("/failures", params=WINDOW).text
    assert "No failures attributed yet." in failures and "1 still being attributed" in failures
    assert "none failed" not in failures
    overview = client.get("/overview", params=WINDOW).text
    assert "No failed run attributed yet: 1 run(s) of this window are still being attributed." in overview
    assert "None attributed yet: 1 run(s) still being attributed." in overview
    assert client.get("/api/overview", params=WINDOW).json()["totals"]["pending_runs"] == 1

    with sessionmaker.begin() as session:
        assert attribute_pending(session, now=H + timedelta(days=30), delay=0, limit=10) >= 1
    failures = client.get("/failures", params=WINDOW).text
    assert "still being attributed" not in failures and "timeout" in failures
    overview = client.get("/overview", params=WINDOW)
    assert "still being attributed" not in overview.text and tid.hex() in overview.text
    assert client.get("/api/overview", params=WINDOW).json()["totals"]["pending_runs"] == 0
