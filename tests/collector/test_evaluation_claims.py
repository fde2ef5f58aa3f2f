"""Two evaluation passes at once (two collector processes) share the pending runs: each skips the
runs the other holds, and neither waits for the other's locks. Also run on Citus (tests/citus)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from db.models import Score, TraceRow
from db.queries.evaluation import evaluate_pending
from tests.claims import two_passes_at_once
from tests.collector.conftest import collector  # noqa: F401 - the fixture
from tests.forensics.test_attributor import post
from tests.otlp_payloads import span, span_id, trace_id

MS = 1_000_000


def test_two_evaluation_passes_skip_each_others_runs(collector, sessionmaker):  # noqa: F811
    base = time.time_ns()
    runs = [trace_id() for _ in range(6)]  # several runs a pass: on Citus, over several shards
    for tid in runs:
        post(collector, [span(tid, span_id(), name="chat gpt-4o", start=base, duration=30 * MS,
                              attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                                          "gen_ai.output.messages": '[{"role": "assistant", "parts": '
                                                                    '[{"type": "text", "content": "Done."}]}]'})])
    later = datetime.now(timezone.utc) + timedelta(seconds=10)
    # The second pass skips the runs the first holds and takes the others.
    assert two_passes_at_once(sessionmaker, lambda s, limit: evaluate_pending(s, now=later, delay=5, limit=limit),
                              3, 10) == (3, 3)
    with sessionmaker() as session:
        for tid in runs:
            trace = session.get(TraceRow, (collector.project_id, tid))
            assert trace.evaluated_at == trace.updated_at
            assert session.scalars(select(Score.name).where(Score.trace_id == tid, Score.source == "non_empty")).all()
    with sessionmaker.begin() as session:
        assert evaluate_pending(session, now=later, delay=5) == 0
