"""Bounded queue and the batch writer threads.

Requests hand over their rows, already encoded as COPY data (db.ingest.Encoded), and wait on a
Future that resolves only after the batch holding their rows is committed (group commit: many
requests, one transaction). When more spans wait than the bound allows, submit() refuses at once
(the HTTP layer answers 503 + Retry-After), so memory stays bounded.

Several writer threads (`connections`), each with its own PostgreSQL connection, take batches from
the one queue: while one transaction waits for its commit to be flushed, another is being written.
Deduplication and rollups stay exact: both are decided by the database inside each transaction.

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
from typing import Callable

import psycopg

from core.settings import Settings
from db.ingest import Encoded, WriteResult, prepare_connection, replan, write_encoded

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """More spans are waiting to be written than the configured bound."""


class WriterUnavailable(Exception):
    """The batch could not be committed (database down, writer stopped): retry later."""


class StorageRefused(Exception):
    """PostgreSQL refused this request's data (not retryable: the same data fails again)."""


# Writer threads, each with its own connection: two keep PostgreSQL busy while one transaction
# waits for its commit to be flushed (more mostly adds lock waits on the shared rollup rows).
DEFAULT_CONNECTIONS = 2

# A writer connection plans its statements again this often (db.ingest.replan): the plans then
# follow the tables as they fill. From a fresh database, 800 requests of one 9.5-span trace each
# cost 16.8-18.6 s of PostgreSQL CPU with the first plans kept, 7.6-8.1 s planned again every 2 s.
REPLAN_SECONDS = 2.0

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
    data: Encoded
    future: Future = field(default_factory=Future)


@dataclass
class WriterStats:
    batches: int = 0
    spans_written: int = 0
    spans_duplicate: int = 0
    failures: int = 0
    requests_refused: int = 0
    retries: int = 0  # transactions run again after a deadlock or serialization failure
    last_batch_seconds: float = 0.0
    write_seconds_total: float = 0.0


class BatchWriter:
    def __init__(
        self, conninfo: str, *, max_queue_spans: int, batch_max_spans: int, batch_max_wait_ms: int,
        connections: int = 2, connect: Callable[[str], psycopg.Connection] = psycopg.connect,
    ) -> None:
        self._conninfo = conninfo
        self._connect = connect
        self.max_queue_spans = max_queue_spans
        self.connections = max(1, connections)
        self._batch_max_spans = batch_max_spans
        self._batch_wait = batch_max_wait_ms / 1000
        self._items: deque[_Item] = deque()
        self._queued_spans = 0
        self._queued_bytes = 0
        self._expected = 0  # requests being decoded: worth waiting for when filling a batch
        self._cond = threading.Condition()
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._local = threading.local()  # each writer thread's own connection
        self._stats_lock = threading.Lock()
        self.stats = WriterStats()

    @classmethod
    def from_settings(cls, conninfo: str, settings: Settings) -> BatchWriter:
        """The writer `causeline serve` runs; tests build theirs the same way."""
        return cls(conninfo, max_queue_spans=settings.queue_max_spans, batch_max_spans=settings.batch_max_spans,
                   batch_max_wait_ms=settings.batch_max_wait_ms,
                   connections=settings.writer_connections)

    # -- producer side ---------------------------------------------------------------------------

    @property
    def queued_spans(self) -> int:
        return self._queued_spans

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def expect(self) -> None:
        """A request started decoding: a batch being filled may wait for it (see arrived())."""
        with self._cond:
            self._expected += 1

    def arrived(self) -> None:
        """That request was submitted, or will not be."""
        with self._cond:
            self._expected = max(0, self._expected - 1)
            self._cond.notify_all()

    def submit(self, data: Encoded) -> Future:
        item = _Item(data)
        with self._cond:
            if self._stopping:
                raise WriterUnavailable("the collector is shutting down")
            # An empty queue always takes one request, however large, or it could never pass.
            if self._queued_spans and self._queued_spans + data.count > self.max_queue_spans:
                raise QueueFull(f"{self._queued_spans} spans are waiting to be written")
            self._items.append(item)
            self._queued_spans += data.count
            self._queued_bytes += data.nbytes
            self._cond.notify()
        return item.future

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._run, name=f"causeline-writer-{n}", daemon=True)
                         for n in range(self.connections)]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop. Anything still queued after `timeout` is failed, not lost:
        its requests were never acknowledged. Safe to call more than once."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            leftover = list(self._items)
            self._items.clear()
            self._queued_spans = 0
            self._queued_bytes = 0
        for item in leftover:
            _resolve(item.future, exception=WriterUnavailable("the collector stopped before writing this batch"))
        # A thread still alive owns its connection (and closes it when it ends).
        self._threads = [thread for thread in self._threads if thread.is_alive()]

    # -- consumer side ---------------------------------------------------------------------------

    def _take_batch(self) -> list[_Item]:
        with self._cond:
            while True:
                while not self._items and not self._stopping:
                    self._cond.wait()
                if not self._items:
                    return []
                # Give requests being decoded a moment to join this transaction; none is waited
                # for when every request in flight is queued already.
                deadline = time.monotonic() + self._batch_wait
                while self._queued_spans < self._batch_max_spans and self._expected and not self._stopping:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                batch, count, nbytes = [], 0, 0
                while self._items and (not batch or count + self._items[0].data.count <= self._batch_max_spans):
                    item = self._items.popleft()
                    count += item.data.count
                    nbytes += item.data.nbytes
                    # A request that gave up (client gone, cancelled) is not written: it was never
                    # acknowledged. Past this call its future can no longer be cancelled.
                    if item.future.set_running_or_notify_cancel():
                        batch.append(item)
                self._queued_spans -= count
                self._queued_bytes -= nbytes
                if batch:
                    return batch

    def _run(self) -> None:
        try:
            while True:
                batch: list[_Item] = []
                try:
                    batch = self._take_batch()
                    if not batch:
                        return
                    self._write(batch)
                except BaseException as exc:  # noqa: BLE001 - a writer thread must never die silently
                    log.exception("writer failed unexpectedly; failing its current batch and continuing")
                    with self._stats_lock:
                        self.stats.failures += 1
                    self._drop_connection()
                    for item in batch:
                        _resolve(item.future, exception=WriterUnavailable(f"storage unavailable: {type(exc).__name__}"))
                    if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit
                        raise
                    time.sleep(0.05)  # do not spin if the failure repeats
        finally:
            self._drop_connection()

    def _write(self, batch: list[_Item]) -> None:
        spans = sum(item.data.count for item in batch)
        started = time.perf_counter()
        try:
            result = self._write_with_retry([item.data for item in batch])
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the waiting requests
            with self._stats_lock:
                self.stats.failures += 1
            if is_data_error(exc):
                log.warning("batch of %d spans refused by storage (%s); writing its %d request(s) one by one",
                            spans, refusal_message(exc), len(batch))
                self._keep_connection_if_clean()
                self._write_each(batch, exc)
                return
            log.warning("batch of %d spans not written: %s", spans, exc)
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
                result = self._write_with_retry([item.data])
            except Exception as exc:  # noqa: BLE001
                if is_data_error(exc):
                    self._keep_connection_if_clean()
                    self._refuse(item, exc)
                    continue
                log.warning("request of %d spans not written: %s", item.data.count, exc)
                self._drop_connection()
                for rest in batch[index:]:
                    _resolve(rest.future, exception=WriterUnavailable(f"storage unavailable: {type(exc).__name__}"))
                return
            self._count(result, time.perf_counter() - started)
            _resolve(item.future, result)

    def _refuse(self, item: _Item, exc: BaseException) -> None:
        message = refusal_message(exc)
        log.warning("request of %d spans refused: %s", item.data.count, message)
        with self._stats_lock:
            self.stats.requests_refused += 1
        _resolve(item.future, exception=StorageRefused(message))

    def _count(self, result: WriteResult, elapsed: float) -> None:
        with self._stats_lock:
            self.stats.batches += 1
            self.stats.spans_written += result.inserted
            self.stats.spans_duplicate += result.received - result.inserted
            self.stats.last_batch_seconds = elapsed
            self.stats.write_seconds_total += elapsed

    def _write_with_retry(self, batch: list[Encoded]) -> WriteResult:
        # Deadlocks between collectors sharing a database are transient: the transaction
        # rolled back entirely, so running it again is safe.
        for attempt in range(3):
            try:
                return write_encoded(self._connection(), batch)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == 2:
                    raise
                with self._stats_lock:
                    self.stats.retries += 1
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _connection(self) -> psycopg.Connection:
        """This writer thread's connection."""
        conn = getattr(self._local, "conn", None)
        now = time.monotonic()
        if conn is None or conn.closed:
            conn = self._local.conn = self._connect(self._conninfo)
            prepare_connection(conn)
            self._local.planned = now
        elif now - self._local.planned >= REPLAN_SECONDS:
            replan(conn)
            self._local.planned = now
        return conn

    def _keep_connection_if_clean(self) -> None:
        """After a data error write_encoded rolled back: keep the connection unless it is not idle."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            return
        try:
            clean = not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        except Exception:  # noqa: BLE001
            clean = False
        if not clean:
            self._drop_connection()

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            self._local.conn = None
