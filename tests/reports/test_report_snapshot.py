"""A period report reads its sections and its digests on two connections at once; a run
committed between those reads must be in both or in neither (one snapshot, db/snapshot.py)."""

from __future__ import annotations

import io
import json
import threading
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

import reports.build as build
from db.snapshot import export_snapshot, snapshot_bind, use_snapshot
from reports.service import create
from tests.api.seed import BASE_TIME, seed_simple_traces

SINCE, UNTIL = datetime(2026, 11, 19, tzinfo=timezone.utc), datetime(2026, 11, 22, tzinfo=timezone.utc)
WAIT_S = 60  # only a deadlock would take this long


@pytest.mark.parametrize("first", ["sections", "digests"])
def test_a_commit_between_the_reads_does_not_split_the_report(session, sessionmaker, seeded, monkeypatch, first):
    """Each order in turn: one read finishes, two runs are committed in the window, then the
    other read starts. The facts and the sealed manifest still count the same records."""
    project, _ = seeded
    done, committed = threading.Event(), threading.Event()
    read_facts, read_digests = build._period_facts, build._spool_window

    def commit() -> None:
        with sessionmaker.begin() as writer:
            seed_simple_traces(writer, project.id, 2, base=BASE_TIME + timedelta(hours=2))
        committed.set()

    def facts(reading, filters):
        if first == "sections":
            found = read_facts(reading, filters)
            commit()
            return found
        assert done.wait(WAIT_S)
        commit()
        return read_facts(reading, filters)

    def digests(*args, **kwargs):
        if first == "sections":
            assert committed.wait(WAIT_S)
            return read_digests(*args, **kwargs)
        found = read_digests(*args, **kwargs)
        done.set()
        return found

    monkeypatch.setattr(build, "_period_facts", facts)
    monkeypatch.setattr(build, "_spool_window", digests)
    out = io.BytesIO()
    created = create(session, out=out, project_id=project.id, project_slug=project.slug, actor="user:a@example.com",
                     sees_content=True, settings=SimpleNamespace(report_signing_key=None), kind="period",
                     fmt="json", since=SINCE, until=UNTIL)
    data = json.loads(out.getvalue())
    assert committed.is_set()
    assert int(data["facts"]["Spans"]) == data["manifest"]["count"] == created.report.manifest.count == 13
    assert int(data["facts"]["Runs"]) == 6
    # The runs did commit: a report made now covers them.
    monkeypatch.undo()
    session.commit()
    again = create(session, out=io.BytesIO(), project_id=project.id, project_slug=project.slug,
                   actor="user:a@example.com", sees_content=True, settings=SimpleNamespace(report_signing_key=None),
                   kind="period", fmt="json", since=SINCE, until=UNTIL)
    assert again.report.manifest.count == 15


def test_an_imported_snapshot_does_not_see_later_commits(engine, sessionmaker, seeded):
    project, _ = seeded
    count = text("SELECT count(*) FROM spans WHERE project_id = :p")
    with Session(snapshot_bind(engine)) as exporting, Session(snapshot_bind(engine)) as importing:
        snapshot = export_snapshot(exporting)
        before = exporting.execute(count, {"p": project.id}).scalar_one()
        with sessionmaker.begin() as writer:
            seed_simple_traces(writer, project.id, 1, base=BASE_TIME + timedelta(hours=2))
        use_snapshot(importing, snapshot)
        assert importing.execute(count, {"p": project.id}).scalar_one() == before
    with Session(engine) as fresh:
        assert fresh.execute(count, {"p": project.id}).scalar_one() == before + 1
    with pytest.raises(ValueError):
        use_snapshot(None, "1'; DROP TABLE spans; --")  # never spelled into a statement
