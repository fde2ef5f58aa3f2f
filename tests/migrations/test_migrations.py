"""Every revision walks up and down, and the models match the head schema exactly."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from db.engine import sqlalchemy_url
from db.migrate import alembic_config


def test_walk_every_revision_up_and_down(pg):
    url = pg.empty_database()
    cfg = alembic_config(url)
    revisions = list(reversed(list(ScriptDirectory.from_config(cfg).walk_revisions())))
    assert revisions, "no revisions found"
    for rev in revisions:
        command.upgrade(cfg, rev.revision)
    command.check(cfg)  # raises when the models drift from the migrated schema
    for rev in reversed(revisions):
        command.downgrade(cfg, rev.down_revision or "base")
    engine = create_engine(sqlalchemy_url(url))
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    command.upgrade(cfg, "head")
    pg.drop(url)
