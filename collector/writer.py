"""Bounded queue and the batch writer thread.

Requests hand over already-normalized rows and wait on a Future that resolves only
after the batch holding their rows is committed (group commit: many requests, one
transaction). When more spans wait than the bound allows, submit() refuses at once
(the HTTP layer answers 503 + Retry-After), so memory stays bounded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Sequence

import psycopg

from db.ingest import WriteResult, prepare_connection, write_batch

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """More spans are waiting to be written than the configured bound."""


class WriterUnavailable(Exception):
    """The batch could not be committed (database down, writer stopped): retry later."""


@dataclass
class _Item:
    rows: Sequence[tuple]
    edges: Sequence[tuple]
    future: Future = field(default_factory=Future)


@dataclass
class WriterStats:
    batches: int = 0
    spans_written: int = 0
    spans_duplicate: int = 0
    failures: int = 0
    last_batch_seconds: float = 0.0
    write_seconds_total: float = 0.0


class BatchWriter:
    def __init__(
        self, conninfo: str, *, max_queue_spans: int, batch_max_spans: int, batch_max_wait_ms: int,
        connect: Callable[[str], psycopg.Connection] = psycopg.connect,
    ) -> None:
        self._conninfo = conninfo
        self._connect = connect
        self.max_queue_spans = max_queue_spans
        self._batch_max_spans = batch_max_spans
        self._batch_wait = batch_max_wait_ms / 1000
        self._items: deque[_Item] = deque()
        self._queued_spans = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None
        self.stats = WriterStats()

    # -- producer side ---------------------------------------------------------------------------

    @property
    def queued_spans(self) -> int:
        return self._queued_spans

    def submit(self, rows: Sequence[tuple], edges: Sequence[tuple]) -> Future:
        item = _Item(rows, edges)
        with self._cond:
            if self._stopping:
                raise WriterUnavailable("the collector is shutting down")
            # An empty queue always takes one request, however large, or it could never pass.
            if self._queued_spans and self._queued_spans + len(rows) > self.max_queue_spans:
                raise QueueFull(f"{self._queued_spans} spans are waiting to be written")
            self._items.append(item)
            self._queued_spans += len(rows)
            self._cond.notify()
        return item.future

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="causeline-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop. Anything still queued after `timeout` is failed, not lost:
        its requests were never acknowledged."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._cond:
            leftover = list(self._items)
            self._items.clear()
            self._queued_spans = 0
        for item in leftover:
            item.future.set_exception(WriterUnavailable("the collector stopped before writing this batch"))
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- consumer side ---------------------------------------------------------------------------

    def _take_batch(self) -> list[_Item]:
        with self._cond:
            while not self._items and not self._stopping:
                self._cond.wait()
            if not self._items:
                return []
            # Give concurrent requests a moment to join this transaction.
            deadline = time.monotonic() + self._batch_wait
            while self._queued_spans < self._batch_max_spans and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch, count = [], 0
            while self._items and (not batch or count + len(self._items[0].rows) <= self._batch_max_spans):
                item = self._items.popleft()
                batch.append(item)
                count += len(item.rows)
            self._queued_spans -= count
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                return
            self._write(batch)

    def _write(self, batch: list[_Item]) -> None:
        rows = [row for item in batch for row in item.rows]
        edges = [edge for item in batch for edge in item.edges]
        started = time.perf_counter()
        try:
            result = self._write_with_retry(rows, edges)
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the waiting requests
            self.stats.failures += 1
            log.warning("batch of %d spans not written: %s", len(rows), exc)
            self._drop_connection()
            for item in batch:
                item.future.set_exception(WriterUnavailable(f"storage unavailable: {type(exc).__name__}"))
            return
        elapsed = time.perf_counter() - started
        self.stats.batches += 1
        self.stats.spans_written += result.inserted
        self.stats.spans_duplicate += result.received - result.inserted
        self.stats.last_batch_seconds = elapsed
        self.stats.write_seconds_total += elapsed
        for item in batch:
            item.future.set_result(result)

    def _write_with_retry(self, rows, edges) -> WriteResult:
        # Deadlocks between collectors sharing a database are transient: the transaction
        # rolled back entirely, so running it again is safe.
        for attempt in range(3):
            try:
                return write_batch(self._connection(), rows, edges)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == 2:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect(self._conninfo)
            prepare_connection(self._conn)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            self._conn = None
