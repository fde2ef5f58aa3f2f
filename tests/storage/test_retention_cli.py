"""`causeline retention show|set|hold|release` against a real database; every change audited."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from db.queries.auth import create_project
from server.cli import main


@pytest.fixture
def cli(database_url, monkeypatch, sessionmaker):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CAUSELINE_INIT_PROJECT", "acme")
    with sessionmaker.begin() as session:
        create_project(session, "acme")
        create_project(session, "other")
    return main


def events(engine):
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT p.slug, e.action, e.actor, e.details FROM audit_events e JOIN projects p ON p.id = e.project_id "
            "ORDER BY e.id")).all()


def test_show_set_hold_release(cli, capsys, engine):
    assert cli(["retention", "show"]) == 0
    shown = capsys.readouterr().out
    assert "180 days (default)" in shown and "730 days (default)" in shown and "legal hold   off" in shown

    assert cli(["retention", "set", "--days", "90"]) == 0
    assert "spans kept 90 days, rollups 730 days" in capsys.readouterr().out
    assert cli(["retention", "set", "--rollup-days", "1095", "--project", "other"]) == 0
    capsys.readouterr()
    assert cli(["retention", "show", "--project", "other"]) == 0
    shown = capsys.readouterr().out
    assert "spans        180 days (default)" in shown and "rollups      1095 days (own)" in shown
    assert cli(["retention", "set", "--days", "default"]) == 0
    assert cli(["retention", "set", "--days", "0"]) == 2
    assert cli(["retention", "set", "--days", "400", "--rollup-days", "300"]) == 2
    with pytest.raises(SystemExit):  # argparse refuses it
        cli(["retention", "set", "--days", "x"])

    assert cli(["retention", "hold", "--reason", "case 17 <script>"]) == 0
    assert cli(["retention", "hold", "--reason", "again"]) == 1
    capsys.readouterr()
    assert cli(["retention", "show"]) == 0
    assert "legal hold   ON: case 17 <script>" in capsys.readouterr().out
    assert cli(["retention", "release"]) == 0
    assert cli(["retention", "release"]) == 1
    assert cli(["retention", "show", "--project", "nope"]) == 1

    audit = events(engine)
    assert [(e.slug, e.action) for e in audit] == [
        ("acme", "retention.set"), ("other", "retention.set"), ("acme", "retention.set"),
        ("acme", "retention.hold"), ("acme", "retention.release")]
    assert all(e.actor.startswith("cli:") for e in audit)
    assert audit[0].details["days"] == 90 and audit[0].details["previous_days"] is None
    assert audit[2].details == {"days": None, "rollup_days": None, "previous_days": 90, "previous_rollup_days": None}
    assert audit[3].details["reason"] == "case 17 <script>" == audit[4].details["reason"]
    assert cli(["audit", "verify"]) == 0
