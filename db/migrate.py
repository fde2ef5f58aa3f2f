"""Run Alembic programmatically: `causeline migrate`, tests and readiness checks use these."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
import psycopg
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

import migrations
from core.retention import AHEAD_DAYS
from db.engine import libpq_url, sqlalchemy_url
from db.partitions import ensure_partitions

SCRIPTS = Path(migrations.__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    # Built in code rather than read from alembic.ini, so an installed package migrates too.
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
    ensure_partitions_now(database_url)


def ensure_partitions_now(database_url: str) -> list[date]:
    """Today's partition and the next days' (the server keeps doing it while it runs)."""
    engine = create_engine(sqlalchemy_url(database_url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            return ensure_partitions(conn, datetime.now(timezone.utc).date(), AHEAD_DAYS)
    finally:
        engine.dispose()


def distribute(database_url: str, shard_count: int | None = None) -> list[str]:
    """The Citus layout (db/citus.py), after upgrade(); returns the tables placed now."""
    from db.citus import distribute as place
    from db.ingest_citus import install

    engine = create_engine(sqlalchemy_url(database_url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            placed = place(conn, shard_count)
    finally:
        engine.dispose()
    with psycopg.connect(libpq_url(database_url)) as conn:
        install(conn)  # the ingest path's functions on the workers (db/ingest_citus.py)
    return placed


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def head_revision(database_url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
