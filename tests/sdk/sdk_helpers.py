"""Helpers shared by the SDK tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import gzip
import http.server
import threading
import zlib
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import causeline

# The "application's own" OpenTelemetry setup that Causeline joins in these tests.
HOST_EXPORTER = InMemorySpanExporter()
HOST_PROVIDER = TracerProvider()
HOST_PROVIDER.add_span_processor(SimpleSpanProcessor(HOST_EXPORTER))


class Recorder:
    """Spans that went through Causeline's real pipeline (batch processor + guarded exporter)."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter

    def spans(self) -> list[ReadableSpan]:
        assert causeline.flush(timeout=10), "flush timed out"
        return list(self.exporter.get_finished_spans())

    def one(self, name: str) -> ReadableSpan:
        found = [s for s in self.spans() if s.name == name]
        assert len(found) == 1, f"expected one span {name!r}, got {[s.name for s in self.spans()]}"
        return found[0]

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def clear(self) -> None:
        causeline.flush(timeout=10)
        self.exporter.clear()


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def link_types(span: ReadableSpan) -> list[tuple[str | None, int]]:
    return [(link.attributes.get("causeline.link.type"), link.context.span_id) for link in span.links]


# -- a loopback OTLP/HTTP endpoint that records what the real exporter sends ---------------


class StubCollector:
    """Answers ``status`` after ``delay`` seconds; with ``statuses``, the n-th request
    gets ``statuses[n % len(statuses)]`` instead (a flapping collector)."""

    def __init__(self, status: int = 200, delay: float = 0.0, statuses: tuple[int, ...] = ()) -> None:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        self.status = status
        self.statuses = statuses
        self.delay = delay
        self.stop = threading.Event()  # set by close(): a stalled request gives up
        self.requests: list[dict[str, Any]] = []
        self.spans: list[Any] = []
        self.resources: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                enc = (self.headers.get("content-encoding") or "").lower()
                if enc == "gzip":
                    body = gzip.decompress(body)
                elif enc == "deflate":
                    body = zlib.decompress(body)
                if stub.delay:
                    stub.stop.wait(stub.delay)
                req = trace_service_pb2.ExportTraceServiceRequest()
                req.ParseFromString(body)
                with stub._lock:
                    status = stub.statuses[len(stub.requests) % len(stub.statuses)] if stub.statuses else stub.status
                    stub.requests.append({"path": self.path, "headers": dict(self.headers)})
                    if status == 200:  # what the collector accepted
                        for rs in req.resource_spans:
                            res = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
                            for ss in rs.scope_spans:
                                for sp in ss.spans:
                                    stub.spans.append(sp)
                                    stub.resources.append(res)
                out = trace_service_pb2.ExportTraceServiceResponse().SerializeToString() if status == 200 else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- a loopback model server speaking the OpenAI, Anthropic and Gemini APIs ------------------

ANSWER = "The answer is 42."
USAGE = {"input": 21, "output": 7}


def _model_response(path: str, body: dict[str, Any]) -> dict[str, Any]:
    if path.endswith("/messages"):  # Anthropic
        return {
            "id": "msg_test_1",
            "type": "message",
            "role": "assistant",
            "model": body["model"] + "-20250929",
            "content": [{"type": "text", "text": ANSWER}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": USAGE["input"], "output_tokens": USAGE["output"]},
        }
    if ":generateContent" in path:  # Gemini
        return {
            "candidates": [{"content": {"parts": [{"text": ANSWER}], "role": "model"}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {
                "promptTokenCount": USAGE["input"],
                "candidatesTokenCount": USAGE["output"],
                "totalTokenCount": USAGE["input"] + USAGE["output"],
            },
            "modelVersion": path.rsplit("/", 1)[-1].split(":")[0] + "-001",
            "responseId": "gemini-resp-1",
        }
    return {  # OpenAI chat completions
        "id": "chatcmpl-test-1",
        "object": "chat.completion",
        "created": 1763700000,
        "model": body.get("model", "") + "-2024-08-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": USAGE["input"],
            "completion_tokens": USAGE["output"],
            "total_tokens": USAGE["input"] + USAGE["output"],
        },
    }


class FakeModelServer:
    """Answers every POST with a fixed completion in the API the path belongs to."""

    def __init__(self) -> None:
        import json

        self.paths: list[str] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                fake.paths.append(self.path)
                out = json.dumps(_model_response(self.path.split("?")[0], body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
