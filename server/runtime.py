"""Where the database is: DATABASE_URL, or an embedded PostgreSQL started for this process."""

from __future__ import annotations

import contextlib
from typing import Iterator

from core.settings import Settings
from db.embedded import EmbeddedPostgres


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[tuple[str, bool]]:
    """Yields (url, embedded). An embedded server is stopped when the block ends."""
    if settings.database_url:
        yield settings.database_url, False
        return
    embedded = EmbeddedPostgres(settings.resolved_home())
    url = embedded.start()
    try:
        yield url, True
    finally:
        embedded.close()
