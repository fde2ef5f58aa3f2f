"""The database a benchmark runs against: a fresh one on DATABASE_URL's server, or on an embedded
PostgreSQL in a temporary directory. Dropped afterwards, embedded server stopped and its files removed."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import psycopg
from sqlalchemy.engine import make_url

from db.embedded import EmbeddedPostgres
from db.engine import libpq_url
from db.migrate import upgrade


def admin(server_url: str, statement: str) -> None:
    """One statement in autocommit (CREATE/DROP DATABASE), on the database `server_url` names."""
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(statement)


@contextlib.contextmanager
def bench_database(name: str) -> Iterator[str]:
    """Yields the URL of a migrated, empty database called `name`."""
    home = embedded = None
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        home = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        embedded = EmbeddedPostgres(home)
        server_url = embedded.start()
    try:
        admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin(server_url, f'CREATE DATABASE "{name}"')
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        yield url
    finally:
        try:
            admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            if embedded is not None:
                embedded.close()
                shutil.rmtree(home, ignore_errors=True)
