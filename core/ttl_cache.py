"""A small thread-safe TTL cache (keys by hash, price overrides): in memory, no I/O."""

from __future__ import annotations

import threading
import time
from typing import Callable

CACHE_MAX_ENTRIES = 10_000

# fresh()'s answer when the cache holds no fresh value (None may be a cached value).
MISSING = object()


class TTLCache:
    """A small TTL cache; when full, the oldest entries go first (insertion order)."""

    def __init__(self, ttl: float, miss_ttl: float | None = None, max_entries: int = CACHE_MAX_ENTRIES) -> None:
        self._ttl = ttl
        self._miss_ttl = ttl if miss_ttl is None else miss_ttl
        self._max_entries = max_entries
        self._data: dict = {}
        self._lock = threading.Lock()

    def fresh(self, key):
        """The cached value while it is fresh, else MISSING; never loads, so an event loop may ask
        without a thread hop (the ingest path's key check and project rules, on every request)."""
        with self._lock:
            hit = self._data.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else MISSING

    def get_or_load(self, key, load: Callable[[], object]):
        now = time.monotonic()
        value = self.fresh(key)
        if value is not MISSING:
            return value
        value = load()
        ttl = self._ttl if value is not None else self._miss_ttl
        with self._lock:
            self._data.pop(key, None)  # re-inserted last: the newest
            while len(self._data) >= self._max_entries:
                del self._data[next(iter(self._data))]
            self._data[key] = (now + ttl, value)
        return value

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key) -> bool:
        return key in self._data
