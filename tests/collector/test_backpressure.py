"""Bounded memory and honest failures: a full queue and a dead database both answer 503 + Retry-After,
and nothing is acknowledged that was not committed."""

from __future__ import annotations

import threading

import httpx
import psycopg
from google.rpc import status_pb2
from sqlalchemy import text

from collector.writer import BatchWriter
from db.engine import libpq_url
from tests import otlp_payloads as P
from tests.collector.conftest import make_settings, start_collector
from tests.live import live_server

PB = {"content-type": "application/x-protobuf"}


def one_trace_body(n: int) -> bytes:
    tid = P.trace_id()
    return P.request([P.span(tid, P.span_id(), start=P.BASE_NS + i) for i in range(n)]).SerializeToString()


def test_full_queue_answers_503_with_retry_after_then_drains(database_url, engine, sessionmaker, project):
    settings = make_settings(database_url, queue_max_spans=10, retry_after_s=3)
    # The writer is not started yet: accepted requests wait in the queue.
    service, app = start_collector(database_url, engine, sessionmaker, project, settings=settings, start_writer=False)
    headers = {**PB, "authorization": f"Bearer {project[1]}"}
    with live_server(app) as url:
        first_result = {}
        first = threading.Thread(target=lambda: first_result.update(
            r=httpx.post(f"{url}/v1/traces", content=one_trace_body(8), headers=headers, timeout=30)))
        first.start()
        while service.writer.queued_spans < 8:
            threading.Event().wait(0.01)
        refused = httpx.post(f"{url}/v1/traces", content=one_trace_body(5), headers=headers, timeout=30)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "3"
        service.start()
        first.join(30)
        assert first_result["r"].status_code == 200
        retried = httpx.post(f"{url}/v1/traces", content=one_trace_body(5), headers=headers, timeout=30)
        assert retried.status_code == 200
    service.stop()
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from spans")).scalar_one() == 13


def test_storage_down_answers_503_and_acknowledges_nothing(database_url, engine, sessionmaker, project):
    settings = make_settings(database_url)
    broken = {"on": True}

    def connect(conninfo):
        if broken["on"]:
            raise psycopg.OperationalError("connection refused (simulated outage)")
        return psycopg.connect(conninfo)

    writer = BatchWriter(libpq_url(database_url), max_queue_spans=1000, batch_max_spans=1000,
                         batch_max_wait_ms=1, connect=connect)
    service, app = start_collector(database_url, engine, sessionmaker, project, settings=settings, writer=writer)
    headers = {**PB, "authorization": f"Bearer {project[1]}"}
    body = one_trace_body(3)
    with live_server(app) as url:
        down = httpx.post(f"{url}/v1/traces", content=body, headers=headers, timeout=30)
        assert down.status_code == 503 and down.headers["retry-after"] == "2"
        broken["on"] = False
        assert httpx.post(f"{url}/v1/traces", content=body, headers=headers, timeout=30).status_code == 200
    service.stop()
    with engine.connect() as conn:
        assert conn.execute(text("select span_count from traces")).scalar_one() == 3
    assert writer.stats.failures == 1


def big_body(nbytes: int) -> bytes:
    tid = P.trace_id()
    attributes = {f"blob.{i}": "x" * 60_000 for i in range(nbytes // 60_000)}
    return P.request([P.span(tid, P.span_id(), attributes=attributes)]).SerializeToString()


def test_inflight_bytes_are_bounded_with_503_then_drain(database_url, engine, sessionmaker, project):
    settings = make_settings(database_url, max_inflight_bytes=1024 * 1024, retry_after_s=4)
    service, app = start_collector(database_url, engine, sessionmaker, project, settings=settings, start_writer=False)
    headers = {**PB, "authorization": f"Bearer {project[1]}"}
    with live_server(app) as url:
        # Larger than the whole budget, but nothing else is in flight: accepted (it waits for the writer).
        first_result = {}
        first = threading.Thread(target=lambda: first_result.update(
            r=httpx.post(f"{url}/v1/traces", content=big_body(1_200_000), headers=headers, timeout=30)))
        first.start()
        while service.writer.queued_spans < 1:
            threading.Event().wait(0.01)
        assert service.inflight.used > 1024 * 1024
        refused = httpx.post(f"{url}/v1/traces", content=big_body(100_000), headers=headers, timeout=30)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "4"
        assert "bytes in flight" in status_pb2.Status.FromString(refused.content).message
        service.start()
        first.join(30)
        assert first_result["r"].status_code == 200
        assert service.inflight.used == 0
        retried = httpx.post(f"{url}/v1/traces", content=big_body(100_000), headers=headers, timeout=30)
        assert retried.status_code == 200
    service.stop()
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from spans")).scalar_one() == 2
