"""The API key cache (access/keys.py): keyed by the key's hash, malformed keys refused before
any query, short-lived misses, oldest entries evicted first."""

from __future__ import annotations

import time

import httpx
import pytest
from google.rpc import status_pb2

from access.credentials import plausible_key
from access.keys import KEY_MISS_CACHE_SECONDS, KeyCache
from core.ttl_cache import MISSING, TTLCache as _TTLCache
from core.security import hash_key
from db.engine import make_engine, make_sessionmaker
from tests import otlp_payloads as P
from tests.collector.conftest import start_collector
from tests.live import live_server


def test_cache_is_keyed_by_the_hash_not_the_secret(collector):
    keys = KeyCache(make_sessionmaker(collector.engine))
    assert keys.find(collector.key).project_id == collector.project_id
    assert hash_key(collector.key) in keys
    assert collector.key not in keys


@pytest.mark.parametrize("secret", ["", "x" * 257, "cl_é-key", "cl_tab\tkey", "cl_nul\x00"])
def test_malformed_keys_are_not_plausible(secret):
    assert not plausible_key(secret)


def test_malformed_key_is_401_before_any_query(database_url, engine, project):
    # Every query would fail (503): a 401 proves none was made.
    dead = make_engine("postgresql://nobody@127.0.0.1:1/nothing", pool_size=1)
    service, app = start_collector(database_url, dead, make_sessionmaker(dead), project)
    body = P.request([P.span(P.trace_id(), P.span_id())]).SerializeToString()
    try:
        with live_server(app) as url:
            response = httpx.post(f"{url}/v1/traces", content=body, timeout=30, headers={
                "content-type": "application/x-protobuf", "x-causeline-key": "k" * 300})
    finally:
        service.stop()
        dead.dispose()
    assert response.status_code == 401
    assert "malformed API key" in status_pb2.Status.FromString(response.content).message


def test_misses_expire_sooner_than_hits():
    assert KEY_MISS_CACHE_SECONDS <= 2
    cache, loads = _TTLCache(60, miss_ttl=0.05), []

    def load(value):
        loads.append(value)
        return value

    assert cache.get_or_load("miss", lambda: load(None)) is None
    assert cache.get_or_load("hit", lambda: load("v")) == "v"
    time.sleep(0.1)
    assert cache.get_or_load("miss", lambda: load("now-valid")) == "now-valid"
    assert cache.get_or_load("hit", lambda: load("reloaded")) == "v"
    assert loads == [None, "v", "now-valid"]


def test_full_cache_evicts_the_oldest_entries_only():
    cache = _TTLCache(60, max_entries=3)
    for key in "abcd":
        cache.get_or_load(key, lambda: key)
    assert len(cache) == 3 and "a" not in cache and all(k in cache for k in "bcd")


def test_fresh_answers_only_what_is_cached_and_fresh():
    """What the ingest path asks on every request without a thread hop (collector/service.py
    rules(), access/deps.py key_principal_for): a cached miss (None) is an answer too."""
    cache = _TTLCache(60, miss_ttl=1.0)
    assert cache.fresh("hit") is MISSING and cache.fresh("miss") is MISSING
    cache.get_or_load("hit", lambda: "v")
    cache.get_or_load("miss", lambda: None)
    assert cache.fresh("hit") == "v" and cache.fresh("miss") is None
    time.sleep(1.1)
    assert cache.fresh("miss") is MISSING and cache.fresh("hit") == "v"


def test_a_looked_up_key_is_answered_from_the_cache(collector):
    """After the first lookup a key is answered by cached() (no thread, no query) until it
    expires; an unknown key's cached miss likewise, and a malformed key needs no cache at all."""
    keys = KeyCache(make_sessionmaker(collector.engine))
    assert keys.cached(collector.key) is MISSING
    assert keys.find(collector.key).project_id == collector.project_id
    assert keys.cached(collector.key).project_id == collector.project_id
    unknown = "cl_" + "0" * 40
    assert keys.find(unknown) is None and keys.cached(unknown) is None
    assert keys.cached("k" * 300) is None
