"""The private PostgreSQL used when no DATABASE_URL is given (pgserver bundles the binaries)."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DATABASE = "causeline"


class EmbeddedPostgres:
    """Starts (or joins) a PostgreSQL server whose data lives in `home/pg`; stops it on close().

    pgserver counts handles per data directory across processes, so a test session
    and the server processes it spawns can share one instance.
    """

    def __init__(self, home: Path) -> None:
        self.pgdata = home / "pg"
        self._server: Any = None

    def start(self) -> str:
        # pgserver asks platformdirs for a runtime dir and warns when XDG_RUNTIME_DIR is unset.
        os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {DATABASE};")
        return self._server.get_uri(DATABASE)

    def url(self, database: str = DATABASE) -> str:
        return self._server.get_uri(database)

    def close(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
