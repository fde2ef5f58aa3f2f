"""Bounded queue and the batch writer thread.

Requests hand over already-normalized rows and wait on a Future that resolves only
after the batch holding their rows is committed (group commit: many requests, one
transaction). When more spans wait than the bound allows, submit() refuses at once
(the HTTP layer answers 503 + Retry-After), so memory stays bounded.

Failures are told apart so that one client's bad data never fails the others:
- storage is unreachable or the transaction hit a transient conflict (connection errors,
  deadlock, serialization failure, admin shutdown): every request of the batch gets
  WriterUnavailable (HTTP 503 + Retry-After: the exporter retries, nothing was stored);
- PostgreSQL refused the data itself (SQLSTATE classes 22 data exception, 23 integrity,
  54 program limit, or the row could not even be encoded): each request of the batch is
  written again in its own transaction, and only those that still fail get StorageRefused
  (HTTP 400: retrying the same data would fail forever).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Callable, Sequence

import psycopg

from core.settings import Settings
from db.ingest import WriteResult, prepare_connection, write_batch

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """More spans are waiting to be written than the configured bound."""


class WriterUnavailable(Exception):
    """The batch could not be committed (database down, writer stopped): retry later."""


class StorageRefused(Exception):
    """PostgreSQL refused this request's data (not retryable: the same data fails again)."""


# SQLSTATE classes that say "this data", not "this moment": 22 data exception,
# 23 integrity constraint violation, 54 program limit exceeded (e.g. index row size).
_DATA_SQLSTATE_CLASSES = ("22", "23", "54")


def is_data_error(exc: BaseException) -> bool:
    """Would writing the same rows again fail the same way?"""
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate
        if state:
            return state[:2] in _DATA_SQLSTATE_CLASSES
        # Raised client-side while encoding a row (no SQLSTATE): also the data's fault.
        return isinstance(exc, (psycopg.DataError, psycopg.IntegrityError))
    # A value psycopg could not dump (e.g. an int beyond int8, a lone surrogate in a str).
    return isinstance(exc, (ValueError, TypeError, OverflowError))


def refusal_message(exc: BaseException) -> str:
    text = ""
    diag = getattr(exc, "diag", None)
    if diag is not None:
        text = diag.message_primary or ""
    text = (text or str(exc) or type(exc).__name__).strip().splitlines()[0]
    if len(text) > 200:
        text = text[:200] + "…"
    return f"storage refused these spans: {text}"


def _resolve(future: Future, result=None, exception: BaseException | None = None) -> None:
    """Complete `future` unless its request already gave up (cancelled) or it is done."""
    if future.done():
        return
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except InvalidStateError:  # cancelled between the check and the call
        pass


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
    requests_refused: int = 0
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

    @classmethod
    def from_settings(cls, conninfo: str, settings: Settings) -> BatchWriter:
        """The writer `causeline serve` runs; tests build theirs the same way."""
        return cls(conninfo, max_queue_spans=settings.queue_max_spans, batch_max_spans=settings.batch_max_spans,
                   batch_max_wait_ms=settings.batch_max_wait_ms)

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
        its requests were never acknowledged. Safe to call more than once."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._cond:
            leftover = list(self._items)
            self._items.clear()
            self._queued_spans = 0
        for item in leftover:
            _resolve(item.future, exception=WriterUnavailable("the collector stopped before writing this batch"))
        if thread is None or not thread.is_alive():  # else the writer still owns its connection
            self._thread = None
            self._drop_connection()

    # -- consumer side ---------------------------------------------------------------------------

    def _take_batch(self) -> list[_Item]:
        with self._cond:
            while True:
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
                    count += len(item.rows)
                    # A request that gave up (client gone, cancelled) is not written: it was never
                    # acknowledged. Past this call its future can no longer be cancelled.
                    if item.future.set_running_or_notify_cancel():
                        batch.append(item)
                self._queued_spans -= count
                if batch:
                    return batch

    def _run(self) -> None:
        while True:
            batch: list[_Item] = []
            try:
                batch = self._take_batch()
                if not batch:
                    return
                self._write(batch)
            except BaseException as exc:  # noqa: BLE001 - the writer thread must never die silently
                log.exception("writer failed unexpectedly; failing its current batch and continuing")
                self.stats.failures += 1
                self._drop_connection()
                for item in batch:
                    _resolve(item.future, exception=WriterUnavailable(f"storage unavailable: {type(exc).__name__}"))
                if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit
                    raise
                time.sleep(0.05)  # do not spin if the failure repeats

    def _write(self, batch: list[_Item]) -> None:
        rows = [row for item in batch for row in item.rows]
        edges = [edge for item in batch for edge in item.edges]
        started = time.perf_counter()
        try:
            result = self._write_with_retry(rows, edges)
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the waiting requests
            self.stats.failures += 1
            if is_data_error(exc):
                log.warning("batch of %d spans refused by storage (%s); writing its %d request(s) one by one",
                            len(rows), refusal_message(exc), len(batch))
                self._keep_connection_if_clean()
                self._write_each(batch, exc)
                return
            log.warning("batch of %d spans not written: %s", len(rows), exc)
            self._drop_connection()
            for item in batch:
                _resolve(item.future, exception=WriterUnavailable(f"storage unavailable: {type(exc).__name__}"))
            return
        self._count(result, time.perf_counter() - started)
        for item in batch:
            _resolve(item.future, result)

    def _write_each(self, batch: list[_Item], batch_error: BaseException) -> None:
        """Isolate the request(s) whose data storage refuses: each in its own transaction."""
        if len(batch) == 1:
            self._refuse(batch[0], batch_error)
            return
        for index, item in enumerate(batch):
            started = time.perf_counter()
            try:
                result = self._write_with_retry(item.rows, item.edges)
            except Exception as exc:  # noqa: BLE001
                if is_data_error(exc):
                    self._keep_connection_if_clean()
                    self._refuse(item, exc)
                    continue
                log.warning("request of %d spans not written: %s", len(item.rows), exc)
                self._drop_connection()
                for rest in batch[index:]:
                    _resolve(rest.future, exception=WriterUnavailable(f"storage unavailable: {type(exc).__name__}"))
                return
            self._count(result, time.perf_counter() - started)
            _resolve(item.future, result)

    def _refuse(self, item: _Item, exc: BaseException) -> None:
        message = refusal_message(exc)
        log.warning("request of %d spans refused: %s", len(item.rows), message)
        self.stats.requests_refused += 1
        _resolve(item.future, exception=StorageRefused(message))

    def _count(self, result: WriteResult, elapsed: float) -> None:
        self.stats.batches += 1
        self.stats.spans_written += result.inserted
        self.stats.spans_duplicate += result.received - result.inserted
        self.stats.last_batch_seconds = elapsed
        self.stats.write_seconds_total += elapsed

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

    def _keep_connection_if_clean(self) -> None:
        """After a data error write_batch rolled back: keep the connection unless it is not idle."""
        conn = self._conn
        if conn is None:
            return
        try:
            clean = not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        except Exception:  # noqa: BLE001
            clean = False
        if not clean:
            self._drop_connection()

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            self._conn = None
