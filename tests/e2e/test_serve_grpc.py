"""`serve` owns the OTLP/gRPC listener: a real server process starts it with the HTTP listeners,
ingests through it, and stops it on SIGTERM; a gRPC port in use stops start-up with a clear message."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import grpc
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from sqlalchemy import create_engine, text

from db.engine import sqlalchemy_url
from tests.collector.test_ingest_grpc import sdk_spans
from tests.e2e.test_kill9 import free_port

KEY = "cl_serve-grpc-test-key-0123456789abcdef"

# grpc_port goes through model_copy: it works before and after core/settings.py declares the field.
SCRIPT = """
import sys
from core.settings import Settings
from server.serve import serve
url, port, grpc_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
settings = Settings(database_url=url, port=port, otlp_port=0, demo="off", init_api_key=sys.argv[4],
                    init_admin_password="serve-grpc-admin", batch_max_wait_ms=5)
serve(settings.model_copy(update={"grpc_port": grpc_port}), url, embedded=False, parts=("collector",))
"""


def start(database_url: str, grpc_port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SCRIPT, database_url, str(free_port()), str(grpc_port), KEY],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_serve_starts_ingests_over_grpc_and_stops_on_sigterm(database_url):
    grpc_port = free_port()
    process = start(database_url, grpc_port)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{grpc_port}", insecure=True,
                                    headers={"authorization": f"Bearer {KEY}"})
        assert exporter.export(sdk_spans()) == SpanExportResult.SUCCESS
        exporter.shutdown()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert f"OTLP/gRPC    127.0.0.1:{grpc_port}" in output
    assert "Causeline stopped." in output
    engine = create_engine(sqlalchemy_url(database_url))
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from spans")).scalar_one() == 3
    engine.dispose()
    with socket.socket() as probe:  # the listener is gone with the process
        assert probe.connect_ex(("127.0.0.1", grpc_port)) != 0


def test_a_grpc_port_in_use_stops_start_up(database_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = start(database_url, taken.getsockname()[1])
        output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "could not start its listeners" in output
    assert "set CAUSELINE_GRPC_PORT to a free port" in output
