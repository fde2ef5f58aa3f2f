"""IngestService: what a collector process holds — key and price caches, the writer, metrics."""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Callable

from anyio import to_thread
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy.orm import Session, sessionmaker

from core.otlp import Limits
from core.pricing import PriceOverride
from core.settings import Settings
from db.queries.auth import KeyPrincipal, find_key
from db.queries.prices import price_overrides

from collector.pipeline import Prepared, prepare, warm_up
from collector.writer import BatchWriter

KEY_CACHE_SECONDS = 10.0  # a revoked key stops working within this long
PRICE_CACHE_SECONDS = 30.0
CACHE_MAX_ENTRIES = 10_000


class _TTLCache:
    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._data: dict = {}
        self._lock = threading.Lock()

    def get_or_load(self, key, load: Callable[[], object]):
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        value = load()
        with self._lock:
            if len(self._data) >= CACHE_MAX_ENTRIES:
                self._data.clear()
            self._data[key] = (now + self._ttl, value)
        return value


@dataclass
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    spans_received: Counter
    spans_rejected: Counter
    prepare_seconds: Histogram
    request_seconds: Histogram


def _metrics(writer: BatchWriter) -> Metrics:
    registry = CollectorRegistry()

    class WriterCollector:
        def collect(self):
            stats = writer.stats
            yield CounterMetricFamily("causeline_spans_written", "Spans committed to storage.", value=stats.spans_written)
            yield CounterMetricFamily("causeline_spans_duplicate", "Redelivered spans already stored (not counted twice).", value=stats.spans_duplicate)
            yield CounterMetricFamily("causeline_write_batches", "Committed write transactions.", value=stats.batches)
            yield CounterMetricFamily("causeline_write_failures", "Write transactions that failed (requests got 503).", value=stats.failures)
            yield CounterMetricFamily("causeline_write_seconds", "Time spent in committed write transactions.", value=stats.write_seconds_total)
            yield GaugeMetricFamily("causeline_queue_spans", "Spans accepted and waiting to be committed.", value=writer.queued_spans)
            yield GaugeMetricFamily("causeline_queue_capacity_spans", "Bound of the queue.", value=writer.max_queue_spans)
            yield GaugeMetricFamily("causeline_last_write_seconds", "Duration of the last write transaction.", value=stats.last_batch_seconds)

    registry.register(WriterCollector())
    return Metrics(
        registry=registry,
        requests=Counter("causeline_ingest_requests", "OTLP export requests by HTTP status.", ["status"], registry=registry),
        spans_received=Counter("causeline_spans_accepted", "Spans accepted (valid) in export requests.", registry=registry),
        spans_rejected=Counter("causeline_spans_rejected", "Spans refused by validation (partial_success).", registry=registry),
        prepare_seconds=Histogram("causeline_prepare_seconds", "Decode, normalize and price time per request.", registry=registry),
        request_seconds=Histogram("causeline_ingest_request_seconds", "Export request time until commit.", registry=registry),
    )


class IngestService:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], writer: BatchWriter) -> None:
        self.settings = settings
        self.writer = writer
        self.limits = Limits(
            max_attribute_chars=settings.max_attribute_value_chars,
            max_attributes=settings.max_attributes_per_span,
            max_events=settings.max_events_per_span,
            max_links=settings.max_links_per_span,
        )
        self._sessions = sessions
        self._keys = _TTLCache(KEY_CACHE_SECONDS)
        self._prices = _TTLCache(PRICE_CACHE_SECONDS)
        self.metrics = _metrics(writer)
        self._processes: ProcessPoolExecutor | None = None

    def authenticate(self, secret: str) -> KeyPrincipal | None:
        """Blocking (a query on a cache miss): call from a worker thread."""
        def load():
            with self._sessions() as session:
                return find_key(session, secret)
        return self._keys.get_or_load(secret, load)

    def overrides(self, project_id: int) -> list[PriceOverride]:
        def load():
            with self._sessions() as session:
                return price_overrides(session, project_id)
        return self._prices.get_or_load(project_id, load)

    async def prepare(self, body: bytes, media: str, project_id: int, overrides: list[PriceOverride]) -> Prepared:
        """Decode, normalize and price off the event loop: in a worker process when configured
        (CPU parallelism beyond the GIL), else in a thread."""
        call = functools.partial(prepare, body, media, project_id=project_id, limits=self.limits, overrides=overrides)
        if self._processes is not None:
            return await asyncio.get_running_loop().run_in_executor(self._processes, call)
        return await to_thread.run_sync(call)

    def start(self) -> None:
        if self.settings.ingest_processes:
            # spawn, not fork: the process already runs threads (writer, event loop helpers).
            self._processes = ProcessPoolExecutor(
                self.settings.ingest_processes, mp_context=multiprocessing.get_context("spawn"))
            for warmed in [self._processes.submit(warm_up) for _ in range(self.settings.ingest_processes)]:
                warmed.result(timeout=120)
        self.writer.start()

    def stop(self) -> None:
        self.writer.stop()
        if self._processes is not None:
            self._processes.shutdown(cancel_futures=True)
            self._processes = None
