"""Bounded memory and honest failures: a full queue and a dead database both answer 503 + Retry-After,
and nothing is acknowledged that was not committed."""

from __future__ import annotations

import gzip
import socket
import threading
import time

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


def test_inflight_memory_is_bounded_with_503_then_drain(database_url, engine, sessionmaker, project):
    budget = 4 * 1024 * 1024
    settings = make_settings(database_url, max_inflight_bytes=budget, retry_after_s=4)
    service, app = start_collector(database_url, engine, sessionmaker, project, settings=settings, start_writer=False)
    headers = {**PB, "authorization": f"Bearer {project[1]}"}
    with live_server(app) as url:
        # The writer is not started: accepted requests hold their memory until commit.
        waiting: list[threading.Thread] = []
        answers: list[httpx.Response] = []
        refused = None
        for _ in range(60):
            if refused is not None:
                break
            before = len(service.writer._items)
            thread = threading.Thread(target=lambda: answers.append(
                httpx.post(f"{url}/v1/traces", content=big_body(120_000), headers=headers, timeout=60)))
            thread.start()
            while len(service.writer._items) == before and thread.is_alive():
                threading.Event().wait(0.01)
            if thread.is_alive():
                waiting.append(thread)
            else:
                thread.join()
                refused = answers.pop()
        assert refused is not None and refused.status_code == 503 and refused.headers["retry-after"] == "4"
        assert "bytes in flight" in status_pb2.Status.FromString(refused.content).message
        assert 0 < service.inflight.used <= budget and len(waiting) >= 2
        service.start()
        for thread in waiting:
            thread.join(60)
        assert [a.status_code for a in answers] == [200] * len(waiting)
        assert service.inflight.used == 0
        retried = httpx.post(f"{url}/v1/traces", content=big_body(120_000), headers=headers, timeout=30)
        assert retried.status_code == 200
    service.stop()
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from spans")).scalar_one() == len(waiting) + 1


def _start_upload(url: str, key: str, body: bytes, sent: int) -> socket.socket:
    """An export whose headers (with its Content-Length) and first `sent` body bytes are sent."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (f"POST /v1/traces HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-protobuf\r\n"
            f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n")
    sock.sendall(head.encode() + body[:sent])
    return sock


def _status(sock: socket.socket) -> int:
    answer = b""
    while b"\r\n" not in answer:
        received = sock.recv(4096)
        assert received, "the connection closed without an answer"
        answer += received
    return int(answer.split(b" ", 2)[1])


def test_a_request_is_charged_before_its_body_is_read(database_url, engine, sessionmaker, project):
    """Requests arriving together cannot all pass one check and then all read their bodies: the
    declared length's decoding cost is taken before the body is read (an overload of 256 clients
    once grew the collector by the bodies of every refused request)."""
    from collector.service import decode_cost

    body = big_body(120_000)
    cost = decode_cost(len(body), PB["content-type"])
    settings = make_settings(database_url, max_inflight_bytes=cost + cost // 2, retry_after_s=5)
    service, app = start_collector(database_url, engine, sessionmaker, project, settings=settings)
    try:
        with live_server(app) as url:
            uploading = _start_upload(url, project[1], body, sent=10)
            with uploading:
                deadline = time.monotonic() + 10
                while service.inflight.used != cost:  # charged while its body has not arrived
                    assert time.monotonic() < deadline, f"charged {service.inflight.used} bytes, not {cost}"
                    threading.Event().wait(0.01)
                other = httpx.post(f"{url}/v1/traces", content=big_body(120_000),
                                   headers={**PB, "authorization": f"Bearer {project[1]}"}, timeout=30)
                assert other.status_code == 503 and other.headers["retry-after"] == "5"
                assert "bytes in flight" in status_pb2.Status.FromString(other.content).message
                uploading.sendall(body[10:])
                assert _status(uploading) == 200
            assert service.inflight.used == 0
    finally:
        service.stop()
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from spans")).scalar_one() == 1


def test_a_body_too_large_to_decode_within_the_budget_is_a_413(database_url, engine, sessionmaker, project):
    settings = make_settings(database_url, max_inflight_bytes=1024 * 1024)
    service, app = start_collector(database_url, engine, sessionmaker, project, settings=settings)
    headers = {**PB, "authorization": f"Bearer {project[1]}"}
    try:
        with live_server(app) as url:
            # 120 kB of protobuf may take 2 MB to decode: it could never fit, so no retry would help.
            response = httpx.post(f"{url}/v1/traces", content=big_body(120_000), headers=headers, timeout=30)
            assert response.status_code == 413 and "retry-after" not in response.headers
            assert "in-flight memory budget" in status_pb2.Status.FromString(response.content).message
            assert service.inflight.used == 0
    finally:
        service.stop()
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from spans")).scalar_one() == 0


def test_a_compressed_body_is_charged_as_inflated(database_url, engine, sessionmaker, project):
    """A gzip body's declared length says little about its decoding cost: once inflated it is
    charged for what it is (collector/ingest.py fit()), and refused when that could never fit."""
    settings = make_settings(database_url, max_inflight_bytes=1024 * 1024)
    service, app = start_collector(database_url, engine, sessionmaker, project, settings=settings)
    body = gzip.compress(big_body(120_000))
    assert len(body) < 10_000  # its declared length alone would fit many times over
    try:
        with live_server(app) as url:
            response = httpx.post(f"{url}/v1/traces", content=body, timeout=30, headers={
                **PB, "content-encoding": "gzip", "authorization": f"Bearer {project[1]}"})
            assert response.status_code == 413 and "retry-after" not in response.headers
            assert "in-flight memory budget" in status_pb2.Status.FromString(response.content).message
            assert service.inflight.used == 0
    finally:
        service.stop()


def test_a_compressed_body_that_does_not_fit_now_is_a_503_and_leaves_nothing_charged(
        database_url, engine, sessionmaker, project):
    """Its declared (compressed) length fits, the body as inflated does not while other requests
    hold the rest of the budget: refused for now (fit()), and its share given back."""
    from collector.service import decode_cost

    raw = big_body(120_000)
    cost = decode_cost(len(raw), PB["content-type"])
    settings = make_settings(database_url, max_inflight_bytes=cost + cost // 2, retry_after_s=3)
    service, app = start_collector(database_url, engine, sessionmaker, project, settings=settings)
    others = service.inflight.try_acquire(cost)  # what requests in flight hold
    try:
        with live_server(app) as url:
            response = httpx.post(f"{url}/v1/traces", content=gzip.compress(raw), timeout=30, headers={
                **PB, "content-encoding": "gzip", "authorization": f"Bearer {project[1]}"})
            assert response.status_code == 503 and response.headers["retry-after"] == "3"
            assert "bytes in flight" in status_pb2.Status.FromString(response.content).message
            assert service.inflight.used == cost
    finally:
        others.release()
        service.stop()
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from spans")).scalar_one() == 0


def test_logs_and_metrics_bodies_that_can_never_fit_get_the_same_413(database_url, engine, sessionmaker, project):
    settings = make_settings(database_url, max_inflight_bytes=1024 * 1024)
    service, app = start_collector(database_url, engine, sessionmaker, project, settings=settings)
    headers = {**PB, "authorization": f"Bearer {project[1]}"}
    try:
        with live_server(app) as url:
            gzipped = {**headers, "content-encoding": "gzip"}
            for path in ("/v1/logs", "/v1/metrics"):
                # Refused on its declared length, and (compressed) once inflated.
                for body, sent in ((b"\x0a" * 120_000, headers), (gzip.compress(b"\x0a" * 120_000), gzipped)):
                    response = httpx.post(f"{url}{path}", content=body, headers=sent, timeout=30)
                    assert response.status_code == 413 and "retry-after" not in response.headers, path
                    assert "in-flight memory budget" in status_pb2.Status.FromString(response.content).message
            assert service.inflight.used == 0
    finally:
        service.stop()


def _charge_while_waiting_for_commit(service, send) -> int:
    """The in-flight charge of one request that is decoded and waits for a commit (writer not started)."""
    thread = threading.Thread(target=send)
    thread.start()
    while service.writer.queued_spans == 0 and thread.is_alive():
        threading.Event().wait(0.01)
    used = service.inflight.used
    service.start()
    thread.join(60)
    return used


def _encoded_size(service, body: bytes, project_id: int) -> int:
    from collector.pipeline import prepare_copy

    return prepare_copy(body, "application/x-protobuf",
                        project_id=project_id, limits=service.limits, overrides=[],
                        redaction=service.redaction(project_id)).data.nbytes


def test_a_decoded_http_request_holds_only_its_encoded_rows_until_commit(database_url, engine, sessionmaker, project):
    """The body is let go once decoded (collector/ingest.py store()): under overload hundreds of
    requests wait for their commit, and each body was a third of what it held."""
    service, app = start_collector(database_url, engine, sessionmaker, project, start_writer=False)
    body = big_body(300_000)
    with live_server(app) as url:
        answer = {}
        used = _charge_while_waiting_for_commit(service, lambda: answer.update(r=httpx.post(
            f"{url}/v1/traces", content=body, headers={**PB, "authorization": f"Bearer {project[1]}"}, timeout=60)))
    service.stop()
    assert answer["r"].status_code == 200
    assert used == _encoded_size(service, body, project[0])


def test_a_decoded_grpc_request_keeps_its_body_charged_until_commit(database_url, engine, sessionmaker, project):
    import grpc

    from tests.live import live_grpc

    service, _ = start_collector(database_url, engine, sessionmaker, project, start_writer=False)
    body = big_body(300_000)
    with live_grpc(service) as target, grpc.insecure_channel(target) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                                     request_serializer=None, response_deserializer=None)
        used = _charge_while_waiting_for_commit(
            service, lambda: export(body, metadata=(("authorization", f"Bearer {project[1]}"),), timeout=60))
    service.stop()
    assert used == len(body) + _encoded_size(service, body, project[0])
