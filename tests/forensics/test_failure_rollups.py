"""/api/failures from failure_rollups equals the answer from trace_failures on the same data,
including after re-attributions that move a run to another hour and change its cost, and the
rollup always equals a rebuild from trace_failures (db/queries/failure_rollups.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from db.queries import failure_rollups
from db.queries.failure_rollups import contribution_sql, serves
from db.queries.failures import mean_confidence
from db.queries.forensics import attribute_pending
from pages.failures import failures_data

H = datetime(2026, 1, 5, 10, tzinfo=timezone.utc)


@pytest.mark.parametrize(("since", "until", "filters", "expected"), [
    (H, H + timedelta(days=1), {}, True),
    (H, H + timedelta(days=30), {}, True),                         # trend slices of 30 h
    (H, H + timedelta(hours=12), {}, False),                       # slices of 30 min
    (H, H + timedelta(hours=25), {}, False),                       # slices not on the hour
    (H + timedelta(minutes=30), H + timedelta(days=1, minutes=30), {}, False),
    (H, H + timedelta(days=1, seconds=1), {}, False),
    (H, H + timedelta(days=1), {"service": "web"}, False),        # needs the runs' services
    (H, H + timedelta(days=1), {"agent": "a"}, False),
    (H, H + timedelta(days=1), {"model": "gpt-4o"}, False),
    (H, H + timedelta(days=1), {"provider": "openai"}, False),     # would count a run per provider
    (H, H + timedelta(days=1), {"provider": None}, True),
])
def test_serves(since, until, filters, expected):
    assert serves(since, until, **filters) is expected


@pytest.mark.parametrize(("total", "n", "expected"), [
    (0.9, 1, 0.9),
    (0.7249999999999999, 1, 0.73),   # the same sum added in another order
    (0.7250000000000001, 1, 0.73),
    (1.45, 2, 0.73),                  # a half rounds up, whatever side of it the float fell
    (0.1 + 0.2, 3, 0.1),
    (2.0, 3, 0.67),
])
def test_mean_confidence_ignores_summation_order(total, n, expected):
    assert mean_confidence(total, n) == expected


def _rollup_and_rebuild(session, project_id):
    cols = "hour, dim, grp, failures, recovered, tokens_burned, cost_burned_usd, cost_recovered_usd, " \
           "round(confidence_sum::numeric, 6), runs, failed_runs, failed_runs_cost_usd, failed_runs_tokens"
    stored = session.execute(text(f"SELECT {cols} FROM failure_rollups WHERE project_id = :p ORDER BY 1, 2, 3"),
                             {"p": project_id}).all()
    rebuilt = session.execute(text(f"SELECT {cols} FROM ({contribution_sql('tf.project_id = :p')}) r ORDER BY 1, 2, 3"),
                              {"p": project_id}).all()
    return stored, rebuilt


def _both(env, monkeypatch, since, until, **params):
    with env.sessionmaker() as session:
        assert serves(since, until, **{k: v for k, v in params.items() if k not in ("group_by", "limit")})
        fast = failures_data(session, env.project_id, since=since, until=until, **params).model_dump(mode="json")
        with monkeypatch.context() as m:
            m.setattr(failure_rollups, "serves", lambda *a, **k: False)
            slow = failures_data(session, env.project_id, since=since, until=until, **params).model_dump(mode="json")
    return fast, slow


@pytest.mark.slow
def test_rollup_answers_as_trace_failures_through_reattribution(scenario_env, monkeypatch):
    env = scenario_env
    now = datetime.now(timezone.utc)
    with env.sessionmaker.begin() as session:
        assert attribute_pending(session, now=now + timedelta(minutes=1), delay=5, limit=100) == 11
    until = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    windows = [(until - timedelta(days=1), until), (until - timedelta(days=2), until),
               (until - timedelta(hours=24 * 30), until)]

    def check():
        # Read once with the journal not folded (the readers add it), then folded.
        compare()
        with env.sessionmaker.begin() as session:
            failure_rollups.fold(session)
        with env.sessionmaker() as session:
            assert session.execute(text("SELECT count(*) FROM failure_rollup_deltas")).scalar() == 0
            stored, rebuilt = _rollup_and_rebuild(session, env.project_id)
            assert stored == rebuilt and stored
        compare()

    def compare():
        for since, end in windows:
            fast, slow = _both(env, monkeypatch, since, end)
            assert fast == slow
            assert fast["totals"]["failures"] > 0
            for dim in ("error_class", "step"):
                fast, slow = _both(env, monkeypatch, since, end, group_by=dim, limit=2)
                assert fast == slow

    check()
    with env.sessionmaker() as session:
        before = failures_data(session, env.project_id, since=windows[0][0], until=until).totals.failures
        # Linked runs exist in the data (a root cause seen from another run): the read de-duplicates them.
        assert session.execute(text("SELECT count(*) FROM trace_failures WHERE root_trace_id <> trace_id")).scalar()

    # Re-attribution: one failed run moves 5 hours earlier (an earlier span arrived) and costs more;
    # every other run is re-attributed unchanged. Counts stay exact, nothing is counted twice.
    with env.sessionmaker.begin() as session:
        # Values computed here: Citus refuses volatile or stable functions of columns in an UPDATE.
        moved, start = session.execute(text("""
            SELECT trace_id, start_time FROM traces WHERE project_id = :p AND outcome = 'failed'
            ORDER BY trace_id LIMIT 1"""), {"p": env.project_id}).one()
        session.execute(text("""
            UPDATE traces SET start_time = :start, cost_usd = COALESCE(cost_usd, 0) + 1.5, updated_at = :now
            WHERE project_id = :p AND trace_id = :t"""),
            {"p": env.project_id, "t": moved, "start": start - timedelta(hours=5), "now": datetime.now(timezone.utc)})
        # The time as a parameter: Citus refuses a volatile clock_timestamp() in an UPDATE.
        session.execute(text("UPDATE traces SET updated_at = :now WHERE project_id = :p"),
                        {"p": env.project_id, "now": datetime.now(timezone.utc)})
    with env.sessionmaker.begin() as session:
        assert attribute_pending(session, now=datetime.now(timezone.utc) + timedelta(minutes=1), delay=5,
                                 limit=100) == 11
        hours = session.execute(text("SELECT DISTINCT date_trunc('hour', trace_start, 'UTC') FROM trace_failures "
                                     "WHERE trace_id = :t"), {"t": moved}).scalars().all()
        assert len(hours) == 1 and hours[0] <= until - timedelta(hours=6)
    check()
    with env.sessionmaker() as session:
        assert failures_data(session, env.project_id, since=windows[0][0], until=until).totals.failures == before

    # A run whose failures are gone after re-attribution leaves no trace in the rollup.
    with env.sessionmaker.begin() as session:
        failure_rollups.apply_traces(session, env.project_id, [moved], -1)
        session.execute(text("DELETE FROM trace_failures WHERE trace_id = :t"), {"t": moved})
        failure_rollups.fold(session)
        stored, rebuilt = _rollup_and_rebuild(session, env.project_id)
        assert stored == rebuilt
        assert session.execute(text("SELECT count(*) FROM failure_rollups WHERE runs = 0")).scalar() == 0


def test_default_window_ends_with_the_hour_and_is_served_from_the_rollup(sessionmaker, monkeypatch):
    """/api/failures without since/until: the Failures page's default window (core.window.quick_bounds)."""
    from db.queries.auth import create_project

    with sessionmaker.begin() as session:
        project_id = create_project(session, "defaults").id
    used = []
    real = failure_rollups.failures_from_rollups
    monkeypatch.setattr(failure_rollups, "failures_from_rollups", lambda *a, **k: used.append(k) or real(*a, **k))
    before = datetime.now(timezone.utc)
    with sessionmaker() as session:
        out = failures_data(session, project_id, since=None, until=None)
    assert out.until - out.since == timedelta(days=1)
    assert out.until.minute == out.until.second == out.until.microsecond == 0
    assert before <= out.until <= datetime.now(timezone.utc) + timedelta(hours=1)
    assert used and used[0]["since"] == out.since
