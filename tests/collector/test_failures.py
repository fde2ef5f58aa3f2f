"""Failures are answered precisely and contained: one client's bad data fails only its own request
(400, not a 503 retried forever), a cancelled request cannot kill the writer, an unreachable
database or a dead decoder process is a 503 with Retry-After, anything else a 500 with a Status body."""

from __future__ import annotations

import os
import signal
import time

import httpx
import psycopg
import pytest
from google.rpc import status_pb2
from sqlalchemy import text

from collector import pipeline
from collector import service as service_module
from collector.writer import BatchWriter, StorageRefused
from core.normalize import normalize
from core.otlp import decode_protobuf
from core.pricing import price_span
from db.engine import libpq_url, make_engine, make_sessionmaker
from db.ingest import STAGE_SPAN_COLUMNS, encode, span_row
from tests import otlp_payloads as P
from tests.collector.conftest import make_settings, start_collector
from tests.live import live_server

PB = {"content-type": "application/x-protobuf"}
_ATTRIBUTES = [name for name, _ in STAGE_SPAN_COLUMNS].index("attributes")


def rows_for(project_id: int, n: int = 2) -> tuple[bytes, list[tuple]]:
    tid = P.trace_id()
    body = P.request([P.span(tid, P.span_id(), start=P.BASE_NS + i, attributes=P.llm_attrs()) for i in range(n)])
    spans = decode_protobuf(body.SerializeToString()).spans
    return tid, [span_row(project_id, price_span(normalize(raw))) for raw in spans]


def poison(rows: list[tuple]) -> list[tuple]:
    """Rows PostgreSQL refuses (SQLSTATE 22P02: the attributes are not JSON)."""
    return [row[:_ATTRIBUTES] + ("{not json",) + row[_ATTRIBUTES + 1:] for row in rows]


def spans_of(engine, tid: bytes) -> int:
    with engine.connect() as conn:
        return conn.execute(text("select count(*) from spans where trace_id = :t"), {"t": tid}).scalar_one()


class CountingConnect:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, conninfo):
        self.calls += 1
        return psycopg.connect(conninfo)


def test_bad_request_in_a_batch_fails_alone_with_a_precise_refusal(database_url, engine, project):
    connect = CountingConnect()
    writer = BatchWriter(libpq_url(database_url), max_queue_spans=1000, batch_max_spans=1000,
                         batch_max_wait_ms=1, connections=1, connect=connect)
    good1, rows1 = rows_for(project[0])
    bad, rows2 = rows_for(project[0])
    good2, rows3 = rows_for(project[0])
    # Queued before the writer starts: all three land in one group-commit batch.
    futures = [writer.submit(encode(rows1)), writer.submit(encode(poison(rows2))), writer.submit(encode(rows3))]
    writer.start()
    try:
        assert futures[0].result(10).inserted == 2
        with pytest.raises(StorageRefused, match=r"^storage refused these spans: invalid input syntax for type json"):
            futures[1].result(10)
        assert futures[2].result(10).inserted == 2
        # A data error is no outage: the connection is kept.
        assert writer.submit(encode(rows_for(project[0])[1])).result(10).inserted == 2
    finally:
        writer.stop()
    assert connect.calls == 1
    assert (spans_of(engine, good1), spans_of(engine, bad), spans_of(engine, good2)) == (2, 0, 2)
    assert writer.stats.requests_refused == 1


def test_refused_data_is_a_400_not_a_503(database_url, engine, sessionmaker, project, monkeypatch):
    def prepare_poisoned(body, media, *, project_id, limits, overrides, redaction=None):
        prepared = pipeline.prepare(body, media, project_id=project_id, limits=limits, overrides=overrides)
        return pipeline.Ready(encode(poison(prepared.rows), prepared.edges), prepared.rejected, prepared.error_message)

    monkeypatch.setattr(service_module, "prepare_copy", prepare_poisoned)
    service, app = start_collector(database_url, engine, sessionmaker, project)
    try:
        with live_server(app) as url:
            body = P.request([P.span(P.trace_id(), P.span_id())]).SerializeToString()
            response = httpx.post(f"{url}/v1/traces", content=body,
                                  headers={**PB, "authorization": f"Bearer {project[1]}"}, timeout=30)
    finally:
        service.stop()
    assert response.status_code == 400 and "retry-after" not in response.headers
    message = status_pb2.Status.FromString(response.content).message
    assert message.startswith("storage refused these spans: invalid input syntax for type json")


def test_a_cancelled_request_does_not_kill_the_writer(database_url, engine, project):
    writer = BatchWriter(libpq_url(database_url), max_queue_spans=1000, batch_max_spans=1000, batch_max_wait_ms=1)
    gone_tid, gone_rows = rows_for(project[0])
    gone = writer.submit(encode(gone_rows))
    assert gone.cancel()  # what asyncio.wrap_future does when the HTTP request is cancelled
    writer.start()
    try:
        tid, rows = rows_for(project[0])
        assert writer.submit(encode(rows)).result(10).inserted == 2
        assert all(thread.is_alive() for thread in writer._threads)
    finally:
        writer.stop()
        writer.stop()  # idempotent
    assert spans_of(engine, tid) == 2 and spans_of(engine, gone_tid) == 0


def test_stop_with_cancelled_requests_still_queued(database_url, project):
    writer = BatchWriter(libpq_url(database_url), max_queue_spans=1000, batch_max_spans=1000, batch_max_wait_ms=1)
    cancelled, waiting = writer.submit(encode(rows_for(project[0])[1])), writer.submit(encode(rows_for(project[0])[1]))
    cancelled.cancel()
    writer.stop()  # never started: everything queued is failed, the cancelled one skipped
    assert cancelled.cancelled()
    with pytest.raises(Exception, match="stopped before writing"):
        waiting.result(1)


def test_writer_survives_an_unexpected_error(database_url, engine, project, monkeypatch):
    writer = BatchWriter(libpq_url(database_url), max_queue_spans=1000, batch_max_spans=1000, batch_max_wait_ms=1)
    original = writer._write
    calls = {"n": 0}

    def flaky(batch):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("bug")
        return original(batch)

    monkeypatch.setattr(writer, "_write", flaky)
    writer.start()
    try:
        with pytest.raises(Exception, match="storage unavailable: RuntimeError"):
            writer.submit(encode(rows_for(project[0])[1])).result(10)
        assert writer.submit(encode(rows_for(project[0])[1])).result(10).inserted == 2
    finally:
        writer.stop()


# -- HTTP: database unreachable, unexpected errors -------------------------------------------------

def test_unreachable_database_while_authenticating_is_503(database_url, engine, project):
    dead = make_engine("postgresql://nobody@127.0.0.1:1/nothing", pool_size=1)  # nothing listens on port 1
    service, app = start_collector(database_url, engine, make_sessionmaker(dead), project)
    try:
        with live_server(app) as url:
            body = P.request([P.span(P.trace_id(), P.span_id())]).SerializeToString()
            response = httpx.post(f"{url}/v1/traces", content=body,
                                  headers={**PB, "authorization": f"Bearer {project[1]}"}, timeout=30)
            as_json = httpx.post(f"{url}/v1/traces", json={}, headers={"authorization": f"Bearer {project[1]}"},
                                 timeout=30)
    finally:
        service.stop()
        dead.dispose()
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
    status = status_pb2.Status.FromString(response.content)
    assert status.code == 14 and "OperationalError" in status.message and "retry later" in status.message
    assert as_json.status_code == 503 and as_json.json()["code"] == 14


def test_unexpected_error_is_a_500_with_a_status_body(database_url, engine, sessionmaker, project, monkeypatch,
                                                      caplog):
    service, app = start_collector(database_url, engine, sessionmaker, project)

    def broken(project_id):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(service, "overrides", broken)
    try:
        with live_server(app) as url:
            body = P.request([P.span(P.trace_id(), P.span_id())]).SerializeToString()
            response = httpx.post(f"{url}/v1/traces", content=body,
                                  headers={**PB, "authorization": f"Bearer {project[1]}"}, timeout=30)
    finally:
        service.stop()
    assert response.status_code == 500 and response.headers["content-type"] == "application/x-protobuf"
    status = status_pb2.Status.FromString(response.content)
    assert status.code == 13 and "RuntimeError" in status.message
    assert "unexpected error while handling an OTLP export" in caplog.text


def test_dead_decoder_process_is_a_503_and_the_pool_is_replaced(database_url, engine, sessionmaker, project):
    settings = make_settings(database_url, ingest_processes=1)
    service, app = start_collector(database_url, engine, sessionmaker, project, settings=settings)
    headers = {**PB, "authorization": f"Bearer {project[1]}"}
    try:
        with live_server(app) as url:
            pool = service._processes
            for pid in list(pool._processes):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while not pool._broken and time.monotonic() < deadline:
                time.sleep(0.02)
            body = P.request([P.span(P.trace_id(), P.span_id())]).SerializeToString()
            broken = httpx.post(f"{url}/v1/traces", content=body, headers=headers, timeout=60)
            assert broken.status_code == 503 and broken.headers["retry-after"] == "2"
            assert "worker" in status_pb2.Status.FromString(broken.content).message
            assert service._processes is not pool
            again = httpx.post(f"{url}/v1/traces", content=body, headers=headers, timeout=120)
            assert again.status_code == 200, again.text
    finally:
        service.stop()
