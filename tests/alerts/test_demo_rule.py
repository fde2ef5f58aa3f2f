"""The demo's alert rule, replayed over stored history: it fires in the outage's hour only (most
gpt-4o calls timing out), not on a lone timeout among successes, and resolves the hour after."""

from __future__ import annotations

from datetime import timedelta

from alerts.demo import NAME, add_demo_rule
from alerts.evaluator import replay
from core.settings import Settings
from db.queries.alerts import list_rules, rule_status
from db.queries.auth import create_project
from db.queries.fleet import floor_hour
from tests.web.outage import attribute_all, ingest, ns_at, run_spans

H = timedelta(hours=1)


def test_demo_rule_fires_on_the_outage_hour_only(database_url, engine, sessionmaker):
    from datetime import datetime, timezone

    with sessionmaker.begin() as session:
        project_id = create_project(session, "default").id
    outage = floor_hour(datetime.now(timezone.utc)) - 6 * H
    spans = []
    for i in range(4):  # the outage: every gpt-4o call times out
        spans += run_spans(ns_at(outage, 60_000 * (i + 1)), agent="billing", outcome="failed")[1]
    for i, outcome in enumerate(["failed", "ok", "ok", "ok"]):  # later: one timeout among successes
        spans += run_spans(ns_at(outage + 3 * H, 60_000 * (i + 1)), agent="billing", outcome=outcome)[1]
    ingest(database_url, project_id, spans)
    attribute_all(sessionmaker)
    with sessionmaker.begin() as session:
        add_demo_rule(session, project_id)
        add_demo_rule(session, project_id)  # idempotent
    results = replay(engine, sessionmaker, Settings(), outage - 2 * H, outage + 5 * H, H)
    assert len(results) == 8 and not any(r.errors for r in results)
    with sessionmaker() as session:
        [rule] = list_rules(session, project_id)
        assert rule.name == NAME and rule.channel_ids == []
        # Fired when the outage hour was judged (at outage + 1 h), resolved an hour later, quiet since.
        assert rule_status(session, project_id) == {rule.id: ("ok", outage + 2 * H, outage + H)}


def test_replay_stops_between_cycles_when_told(database_url, engine, sessionmaker, monkeypatch):
    """The demo's history replay runs in a thread the server joins at shutdown: a set stop event
    ends it before its next cycle (so it never queries a database being stopped)."""
    import threading
    from datetime import datetime, timezone

    with sessionmaker.begin() as session:
        add_demo_rule(session, create_project(session, "default").id)
    until = floor_hour(datetime.now(timezone.utc))
    stop = threading.Event()
    seen = []

    def counting(*args):
        seen.append(args[-1])
        if len(seen) == 3:
            stop.set()
        return original(*args)

    import alerts.evaluator as evaluator

    original = evaluator.run_cycle
    with monkeypatch.context() as m:
        m.setattr(evaluator, "run_cycle", counting)
        results = replay(engine, sessionmaker, Settings(), until - 10 * H, until, H, stop=stop)
    assert len(seen) == 3 and len(results) == 3
    assert len(replay(engine, sessionmaker, Settings(), until - 10 * H, until, H)) == 11
