"""kill -9 of a real collector process in the middle of a load loses no acknowledged span, over
OTLP/HTTP and OTLP/gRPC; the client's retries complete the rest, and nothing is stored or counted twice."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import httpx
import pytest
from sqlalchemy import create_engine, text

from db.engine import sqlalchemy_url
from tests import otlp_payloads as P

KEY = "cl_kill9-test-key-0123456789abcdef"
BATCHES = 120
SPANS_PER_BATCH = 50  # one trace of 50 spans (1 agent root + 49 model calls) per request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# `causeline serve --only collector` with the gRPC port given through model_copy, which works
# whether or not core/settings.py declares CAUSELINE_GRPC_PORT yet.
SERVE_WITH_GRPC = """
import sys
from core.settings import Settings
from server.serve import serve
settings = Settings()
serve(settings.model_copy(update={"grpc_port": int(sys.argv[1])}), settings.database_url, embedded=False,
      parts=("collector",))
"""
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def start_server(database_url: str, port: int, otlp_port: int, log, grpc_port: int = 0) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "CAUSELINE_PORT": str(port),
           "CAUSELINE_OTLP_PORT": str(otlp_port), "CAUSELINE_GRPC_PORT": str(grpc_port), "CAUSELINE_INIT_API_KEY": KEY,
           "CAUSELINE_INIT_ADMIN_PASSWORD": "kill9-admin", "CAUSELINE_DEMO": "off",
           "CAUSELINE_BATCH_MAX_WAIT_MS": "5"}
    command = ([sys.executable, "-c", SERVE_WITH_GRPC, str(grpc_port)] if grpc_port else
               [sys.executable, "-m", "server.cli", "serve", "--only", "collector"])
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{otlp_port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError("collector exited during start-up")
        time.sleep(0.1)
    raise RuntimeError("collector did not start")


def batch_body(i: int) -> bytes:
    tid = i.to_bytes(16, "big")
    root = P.span(tid, (i * 1000 + 1).to_bytes(8, "big"), name="invoke_agent loader",
                  attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "loader"})
    calls = [P.span(tid, (i * 1000 + 2 + j).to_bytes(8, "big"), parent=root.span_id, start=P.BASE_NS + j,
                    name="chat gpt-4o", attributes=P.llm_attrs(inp=10, out=1)) for j in range(SPANS_PER_BATCH - 1)]
    return P.request([root, *calls]).SerializeToString()


class RetryingClient(threading.Thread):
    """Sends every batch until it is acknowledged, as an OTLP exporter with unbounded retries would."""

    def __init__(self, url: str, grpc_target: str | None = None) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.grpc_target = grpc_target
        self.acked: list[int] = []
        self.retries = 0

    def run(self) -> None:
        send = self._grpc_sender() if self.grpc_target else self._http_send
        for i in range(BATCHES):
            body = batch_body(i + 1)
            while True:
                if send(body):
                    self.acked.append(i + 1)
                    break
                self.retries += 1
                time.sleep(0.05)

    def _http_send(self, body: bytes) -> bool:
        headers = {"content-type": "application/x-protobuf", "authorization": f"Bearer {KEY}"}
        try:
            return httpx.post(self.url, content=body, headers=headers, timeout=10).status_code == 200
        except httpx.TransportError:
            return False

    def _grpc_sender(self):
        # Reconnect within a second of the restart (gRPC's default backoff grows to minutes).
        channel = grpc.insecure_channel(self.grpc_target, options=[
            ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 1000)])
        method = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)

        def send(body: bytes) -> bool:
            try:
                method(body, metadata=(("authorization", f"Bearer {KEY}"),), timeout=10)
                return True
            except grpc.RpcError:
                return False
        return send


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_kill_9_mid_load_loses_no_acknowledged_span(pg, tmp_path, transport):
    database_url = pg.fresh_database()
    port, otlp_port = free_port(), free_port()
    grpc_port = free_port() if transport == "grpc" else 0
    log = open(tmp_path / "server.log", "wb")
    server = start_server(database_url, port, otlp_port, log, grpc_port)
    client = RetryingClient(f"http://127.0.0.1:{otlp_port}/v1/traces", f"127.0.0.1:{grpc_port}" if grpc_port else None)
    engine = create_engine(sqlalchemy_url(database_url))
    try:
        client.start()
        while len(client.acked) < BATCHES // 3:
            time.sleep(0.01)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        acked_at_kill = list(client.acked)
        with engine.connect() as conn:
            stored = set(conn.execute(text("select distinct trace_id from spans")).scalars())
        missing = [i for i in acked_at_kill if i.to_bytes(16, "big") not in stored]
        assert not missing, f"acknowledged but not stored after kill -9: batches {missing}"

        server = start_server(database_url, port, otlp_port, log, grpc_port)
        client.join(120)
        assert not client.is_alive(), "client did not finish after the restart"
        assert client.retries > 0, "the kill did not interrupt the load; the test proved nothing"

        total = BATCHES * SPANS_PER_BATCH
        with engine.connect() as conn:
            assert conn.execute(text("select count(*) from spans")).scalar_one() == total
            traces = conn.execute(text(
                "select count(*), sum(span_count), sum(llm_calls), sum(input_tokens), "
                "bool_and(root_name = 'invoke_agent loader') from traces")).one()
            assert tuple(traces) == (BATCHES, total, total - BATCHES, 10 * (total - BATCHES), True)
            assert conn.execute(text("select sum(calls) from usage_rollups")).scalar_one() == total - BATCHES
            assert conn.execute(text("select count(*) from span_edges")).scalar_one() == total - BATCHES
    except (AssertionError, RuntimeError) as exc:
        log.flush()
        raise AssertionError(f"{exc}\n--- server log ---\n{(tmp_path / 'server.log').read_text()[-4000:]}") from exc
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        engine.dispose()
        log.close()
        pg.drop(database_url)
