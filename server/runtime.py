"""Where the database is: DATABASE_URL, or an embedded PostgreSQL started for this process."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from core.settings import Settings
from db.embedded import EmbeddedPostgres


@contextlib.contextmanager
def database(settings: Settings, say: Callable[[str], None] | None = None) -> Iterator[tuple[str, bool]]:
    """Yields (url, embedded). An embedded server is stopped when the block ends, unless
    another live process still uses it (`say`, when given, hears which)."""
    if settings.database_url:
        yield settings.database_url, False
        return
    embedded = EmbeddedPostgres(settings.resolved_home())
    if say is not None:
        say(f"Starting the embedded PostgreSQL (data in {embedded.pgdata})...")
    url = embedded.start()
    try:
        yield url, True
    finally:
        holders = embedded.close()
        if say is not None and holders:
            say(f"The embedded PostgreSQL keeps running: still used by process(es) {', '.join(map(str, holders))}.")
