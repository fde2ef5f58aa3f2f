"""API keys looked up through a short cache, for the hot ingest path.

Keyed by the key's SHA-256, never the plaintext. A revoked key stops working within
KEY_CACHE_SECONDS; a key created a moment ago works within KEY_MISS_CACHE_SECONDS.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from core.security import hash_key
from core.ttl_cache import TTLCache
from db.queries.auth import KeyRecord, find_key, touch_key

from access.credentials import plausible_key

KEY_CACHE_SECONDS = 10.0
KEY_MISS_CACHE_SECONDS = 2.0


class KeyCache:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._cache = TTLCache(KEY_CACHE_SECONDS, miss_ttl=KEY_MISS_CACHE_SECONDS)

    def find(self, secret: str) -> KeyRecord | None:
        """Blocking (a query on a cache miss): call from a worker thread."""
        if not plausible_key(secret):
            return None

        def load():
            with self._sessions() as session:
                record = find_key(session, secret)
                if record is not None:  # "last used" in Settings: refreshed when the cache entry is
                    touch_key(session, record.key_id)
                    session.commit()
                return record
        return self._cache.get_or_load(hash_key(secret), load)

    def cached(self, secret: str):
        """find()'s answer when it needs no query (an implausible key, or one fresh in the cache),
        else core.ttl_cache.MISSING; never blocks."""
        if not plausible_key(secret):
            return None
        return self._cache.fresh(hash_key(secret))

    def __contains__(self, secret_hash: bytes) -> bool:
        return secret_hash in self._cache
