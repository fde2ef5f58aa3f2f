"""IngestService: what a collector process holds — the price cache, the writer, metrics."""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from anyio import to_thread
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy.orm import Session, sessionmaker

from access.keys import KeyCache
from core.otlp import Limits
from core.pricing import PriceOverride
from core.settings import Settings
from core.redaction import RedactionPolicy
from core.ttl_cache import MISSING, TTLCache
from db.queries.prices import price_overrides
from db.queries.redaction import redaction_policy

from collector.body import JSON, PROTOBUF
from collector.pipeline import Ready, init_worker, prepare_copy, release_large_buffers, warm_up
from collector.writer import BatchWriter

log = logging.getLogger("causeline.collector")

PRICE_CACHE_SECONDS = 30.0


# Peak memory of decoding a body, per byte of (decompressed) body: the Python objects of the parse,
# the normalized spans and the encoded rows. Measured on the largest ratios found (a fresh
# process decoding one body, peak RSS growth / body size): protobuf with many small attributes
# 16.7x (a realistic agent workload: 11x); OTLP/JSON spans of 512 attributes 12.7x, JSON of bare
# empty objects 22x.
DECODE_COST = {PROTOBUF: 17, JSON: 24}


def decode_cost(nbytes: int, media: str) -> int:
    """Memory a body of `nbytes` may take while it is decoded."""
    return nbytes * DECODE_COST.get(media, max(DECODE_COST.values()))


class InflightBudget:
    """Memory held by requests in flight, in bytes, bounded: a request is charged before its body
    is read (the decode_cost() of its declared length, when declared), then the decode_cost() of
    the body as received while it waits for a decoder or is decoded; once decoded, until commit,
    its encoded rows (and its body when the caller keeps it: collector/ingest.py store()).

    A request that could never fit (its charge alone exceeds the budget) is refused for good
    (413): letting it pass alone would break the bound."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self._lock = threading.Lock()

    def try_acquire(self, nbytes: int) -> Charge | None:
        with self._lock:
            if self.used + nbytes > self.max_bytes:
                return None
            self.used += nbytes
            return Charge(self, nbytes)

    def try_raise(self, charge: Charge, nbytes: int) -> bool:
        """Charge `nbytes` from now on if the budget has room for the difference; False otherwise."""
        with self._lock:
            if self.used + nbytes - charge.nbytes > self.max_bytes:
                return False
            self.used += nbytes - charge.nbytes
            charge.nbytes = nbytes
        return True

    def _change(self, delta: int) -> None:
        with self._lock:
            self.used = max(0, self.used + delta)


class Charge:
    """One request's share of the InflightBudget."""

    def __init__(self, budget: InflightBudget, nbytes: int) -> None:
        self._budget = budget
        self.nbytes = nbytes

    def lower(self, nbytes: int) -> None:
        """Charge `nbytes` from now on (once decoded, a request holds far less than decoding took)."""
        self._budget._change(nbytes - self.nbytes)
        self.nbytes = nbytes

    def release(self) -> None:
        self._budget._change(-self.nbytes)
        self.nbytes = 0


def decode_processes(settings: Settings) -> int:
    """Decoder worker processes: CAUSELINE_INGEST_PROCESSES, or when unset (None/0) one per CPU.

    One per CPU, not CPU - 1: decoding and PostgreSQL take turns on the cores (a batch's rows are
    decoded while the previous batch commits), and the collector's main process only forwards bytes."""
    configured = settings.ingest_processes
    return configured if configured else max(1, os.cpu_count() or 1)


class PreparationUnavailable(Exception):
    """The decoder worker pool broke (a worker process died); it was replaced: retry."""


@dataclass
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    grpc_requests: Counter
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
            yield CounterMetricFamily("causeline_write_retries", "Write transactions run again after a deadlock or serialization failure (e.g. a shard moved).", value=stats.retries)
            yield CounterMetricFamily("causeline_write_refused_requests", "Requests whose spans storage refused (answered 400).", value=stats.requests_refused)

    registry.register(WriterCollector())
    return Metrics(
        registry=registry,
        requests=Counter("causeline_ingest_requests", "OTLP export requests by HTTP status.", ["status"], registry=registry),
        grpc_requests=Counter("causeline_ingest_grpc_requests", "OTLP/gRPC export requests by gRPC status code.", ["code"], registry=registry),
        spans_received=Counter("causeline_spans_accepted", "Spans accepted (valid) in export requests.", registry=registry),
        spans_rejected=Counter("causeline_spans_rejected", "Spans refused by validation (partial_success).", registry=registry),
        prepare_seconds=Histogram("causeline_prepare_seconds", "Decode, normalize and price time per request.", registry=registry),
        request_seconds=Histogram("causeline_ingest_request_seconds", "Export request time until commit.", registry=registry),
    )


class IngestService:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], writer: BatchWriter,
                 processes: int | None = None) -> None:
        """`processes`: decoder worker processes (default: decode_processes(settings)); 0 decodes in
        the collector's threads (tests that patch the pipeline)."""
        self.settings = settings
        self.processes = decode_processes(settings) if processes is None else processes
        self.writer = writer
        self.limits = Limits(
            max_attribute_chars=settings.max_attribute_value_chars,
            max_attributes=settings.max_attributes_per_span,
            max_events=settings.max_events_per_span,
            max_links=settings.max_links_per_span,
        )
        self._sessions = sessions
        self._prices = TTLCache(PRICE_CACHE_SECONDS)
        self._redaction = TTLCache(PRICE_CACHE_SECONDS)  # per-project redaction rules, same freshness
        self.keys = KeyCache(sessions)  # the app's key cache too (create_app), shared by HTTP and gRPC
        self.metrics = _metrics(writer)
        self.inflight = InflightBudget(settings.max_inflight_bytes)
        self._processes: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def overrides(self, project_id: int) -> list[PriceOverride]:
        def load():
            with self._sessions() as session:
                return price_overrides(session, project_id)
        return self._prices.get_or_load(project_id, load)

    def redaction(self, project_id: int):
        def load():
            with self._sessions() as session:
                return redaction_policy(session, project_id)
        return self._redaction.get_or_load(project_id, load)

    async def rules(self, project_id: int) -> tuple[list[PriceOverride], RedactionPolicy]:
        """The project's price overrides and redaction policy: from the caches while fresh (no
        thread hop: this runs for every request), else loaded in a worker thread."""
        overrides, redaction = self._prices.fresh(project_id), self._redaction.fresh(project_id)
        if overrides is MISSING or redaction is MISSING:
            return await to_thread.run_sync(lambda: (self.overrides(project_id), self.redaction(project_id)))
        return overrides, redaction

    async def prepare(self, body: bytes, media: str, project_id: int, overrides: list[PriceOverride],
                      redaction: RedactionPolicy) -> Ready:
        """Redact, decode, normalize, price and encode off the event loop: in a worker process (CPU
        parallelism beyond the GIL), or in a thread when there is no pool."""
        call = functools.partial(prepare_copy, body, media, project_id=project_id, limits=self.limits,
                                 overrides=overrides, redaction=redaction)
        pool = self._processes
        if pool is not None:
            try:
                return await asyncio.get_running_loop().run_in_executor(pool, call)
            except BrokenProcessPool:
                self._replace_pool(pool)
                raise PreparationUnavailable("a decoder worker process died; the pool was restarted") from None
        return await to_thread.run_sync(call)

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the process already runs threads (writer, event loop helpers).
        return ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=init_worker, initargs=(os.getpid(),))

    def _replace_pool(self, broken: ProcessPoolExecutor) -> None:
        """Swap a broken pool for a fresh one, once, however many requests saw it break."""
        with self._pool_lock:
            if self._processes is not broken:
                return  # already replaced (or stopped)
            self._processes = self._new_pool()  # workers start lazily, on the next submit
        log.warning("decoder worker pool broke (a worker process died); replaced it")
        try:
            broken.shutdown(wait=False, cancel_futures=True)
        except Exception:  # noqa: BLE001 - it is broken already
            pass

    def start(self) -> None:
        release_large_buffers()
        if self.processes:
            self._processes = self._new_pool()
            for warmed in [self._processes.submit(warm_up) for _ in range(self.processes)]:
                warmed.result(timeout=120)
        self.writer.start()

    def stop(self) -> None:
        self.writer.stop()
        with self._pool_lock:
            pool, self._processes = self._processes, None
        if pool is not None:
            pool.shutdown(cancel_futures=True)
