"""The audit trail in PostgreSQL: append-only by trigger, one gap-free chain under concurrent
writers, tampering behind the application's back caught by `causeline audit verify`."""

from __future__ import annotations

import threading

import psycopg
import pytest
from sqlalchemy import text

from core.audit_chain import verify
from db.engine import libpq_url
from db.queries.audit import append, walk
from tests.e2e.test_cli import causeline


def test_update_delete_and_truncate_are_refused(sessionmaker, project, database_url):
    with sessionmaker.begin() as session:
        append(session, project_id=project[0], actor="user:a@x", action="login")
    for statement in ("UPDATE audit_events SET actor = 'user:mallory'", "DELETE FROM audit_events",
                      "TRUNCATE audit_events"):
        with psycopg.connect(libpq_url(database_url)) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)


def test_concurrent_writers_keep_one_chain_without_gaps(sessionmaker, project):
    project_id = project[0]
    errors = []

    def writer(n: int) -> None:
        try:
            for i in range(20):
                with sessionmaker.begin() as session:
                    append(session, project_id=project_id, actor=f"user:w{n}", action="trace.view", target=str(i))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with sessionmaker() as session:
        seqs = session.execute(text("select seq from audit_events where chain = :c order by seq"),
                               {"c": project_id}).scalars().all()
        assert seqs == list(range(1, 121))
        assert verify(walk(session, project_id)) == (120, None)


def test_verify_catches_a_row_edited_behind_the_applications_back(sessionmaker, project, database_url):
    with sessionmaker.begin() as session:
        for i in range(5):
            append(session, project_id=project[0], actor="user:a@x", action="trace.view", target=f"t{i}")
    intact = causeline("audit", "verify", database_url=database_url)
    assert intact.returncode == 0 and "5 events verified" in intact.stdout
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        # A superuser can switch triggers off; the chain still tells.
        conn.execute("SET session_replication_role = replica")
        event_id = conn.execute("UPDATE audit_events SET target = 'nothing to see' WHERE seq = 3 RETURNING id").fetchone()[0]
    broken = causeline("audit", "verify", database_url=database_url)
    assert broken.returncode == 3
    assert f"BROKEN at event {event_id}" in broken.stderr and "seq 3" in broken.stderr and "altered" in broken.stderr
