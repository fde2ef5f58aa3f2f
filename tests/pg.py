"""A PostgreSQL for the test session: DATABASE_URL when set, else an embedded one.

Each test that needs storage gets a fresh database cloned from a migrated template
(CREATE DATABASE ... TEMPLATE), so tests never see each other's rows.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from db.embedded import EmbeddedPostgres
from db.engine import libpq_url
from db.migrate import upgrade


class TestPostgres:
    def __init__(self) -> None:
        self._embedded: EmbeddedPostgres | None = None
        self._home: Path | None = None
        self._counter = itertools.count()
        self.tag = f"t{os.getpid()}"
        external = os.environ.get("DATABASE_URL")
        if external:
            self.server_url = external
        else:
            # Not pytest's tmp_path: its 0700 parents keep out the `pgserver` user postgres runs as under root.
            self._home = Path(tempfile.mkdtemp(prefix="causeline-test-pg-"))
            self._embedded = EmbeddedPostgres(self._home)
            self.server_url = self._embedded.start()
        self.template = f"causeline_tpl_{self.tag}"
        self._admin(f'DROP DATABASE IF EXISTS "{self.template}"')
        self._admin(f'CREATE DATABASE "{self.template}"')
        upgrade(self.url_for(self.template))

    def url_for(self, database: str) -> str:
        return make_url(self.server_url).set(database=database).render_as_string(hide_password=False)

    def _admin(self, sql: str) -> None:
        with psycopg.connect(libpq_url(self.server_url), autocommit=True) as conn:
            conn.execute(sql)

    def fresh_database(self) -> str:
        name = f"causeline_{self.tag}_{next(self._counter)}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return self.url_for(name)

    def empty_database(self) -> str:
        """A database with no schema at all (for the migration walk)."""
        name = f"causeline_{self.tag}_{next(self._counter)}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        try:
            self._admin(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
        finally:
            if self._embedded is not None:
                self._embedded.close()
                shutil.rmtree(self._home, ignore_errors=True)
