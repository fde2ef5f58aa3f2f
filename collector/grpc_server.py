"""OTLP/gRPC trace receiver (TraceService/Export, default port 4317), answered per the OTLP spec.

Same key check, limits and durability as OTLP/HTTP (collector/ingest.py): OK only after commit,
with partial_success when spans were refused; UNAUTHENTICATED / PERMISSION_DENIED for key
problems; INVALID_ARGUMENT for a body that is no OTLP export or that storage refuses (retrying
fails again); UNAVAILABLE with google.rpc.RetryInfo when the writer is behind, too many bytes are
in flight, a decoder process died or storage is down (exporters retry those); INTERNAL for
anything unexpected (logged). gRPC itself inflates gzip and refuses a message above the body limit
(compressed or not) with RESOURCE_EXHAUSTED without RetryInfo, which the spec makes non-retryable.

Runs on the process's event loop: `serve()`, `started` and `should_exit` mirror uvicorn.Server,
so `causeline serve` starts and stops it with the HTTP listeners.
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
from google.protobuf.any_pb2 import Any
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from access.credentials import KEY_HEADER

from collector.body import PROTOBUF
from collector.ingest import Refused, authorize, charged, store, transient
from collector.service import IngestService

log = logging.getLogger("causeline.collector")

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
GRACE_SECONDS = 30.0  # on shutdown, exports in flight get this long to be committed and answered
# RetryInfo as the OpenTelemetry Python exporter reads it (the Go exporters read the status details).
RETRY_INFO_KEY = "google.rpc.retryinfo-bin"
STATUS_DETAILS_KEY = "grpc-status-details-bin"

_CODES = {
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "forbidden": grpc.StatusCode.PERMISSION_DENIED,
    "invalid": grpc.StatusCode.INVALID_ARGUMENT,
    "too_large": grpc.StatusCode.RESOURCE_EXHAUSTED,  # without RetryInfo: not to be retried (OTLP spec)
    "unavailable": grpc.StatusCode.UNAVAILABLE,
}


IDLE_CONNECTION_MS = 300_000


class GrpcReceiver:
    def __init__(self, service: IngestService, host: str, port: int) -> None:
        self._service = service
        self._address = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
        self._exit = asyncio.Event()
        self.started = False
        self.port: int | None = None  # the bound port (useful with port 0)

    @property
    def should_exit(self) -> bool:
        return self._exit.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self._exit.set()

    async def serve(self, sockets=None) -> None:
        """Listen until should_exit is set, then let exports in flight finish (GRACE_SECONDS).
        `sockets` is ignored (grpcio binds its own address and cannot adopt a socket); it is
        accepted so the receiver can be started like the uvicorn servers beside it."""
        settings = self._service.settings
        # grpcio has no cap per client address: calls at once are capped (beyond: RESOURCE_EXHAUSTED,
        # which exporters retry) and idle connections are closed.
        server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            ("grpc.so_reuseport", 0),  # a port in use is an error, not a silently shared listener
            ("grpc.max_connection_idle_ms", IDLE_CONNECTION_MS),
        ], maximum_concurrent_rpcs=settings.max_connections)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
            # Raw bytes in and out: the body is decoded by our own bounded decoder (core/otlp.py).
            "Export": grpc.unary_unary_rpc_method_handler(self._export),
        }),))
        try:
            self.port = server.add_insecure_port(self._address)
        except RuntimeError as exc:
            message = (f"OTLP/gRPC cannot listen on {self._address} (in use?); stop what uses it or set "
                       f"CAUSELINE_GRPC_PORT to a free port (0 turns this listener off)")
            log.error(message)
            raise OSError(message) from exc
        await server.start()
        self.started = True
        try:
            await self._exit.wait()
        finally:
            await server.stop(GRACE_SECONDS)

    async def _export(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        started = time.perf_counter()
        service = self._service
        code, message, retry = grpc.StatusCode.OK, "", False
        try:
            metadata = {item.key: item.value for item in context.invocation_metadata() or ()}
            principal = await authorize(service, metadata.get("authorization"), metadata.get(KEY_HEADER))
            with charged(service, PROTOBUF, len(request)) as charge:
                stored = await store(service, request, PROTOBUF, principal.project_id, charge, caller_keeps_body=True)
        except Refused as exc:
            code, message, retry = _CODES[exc.kind], exc.message, exc.retry
        except asyncio.CancelledError:  # the client gave up (deadline, disconnect); counted as such
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:  # noqa: BLE001 - always a precise OTLP answer
            if transient(exc):
                log.warning("ingest unavailable: %s: %s", type(exc).__name__, exc)
                code, retry = grpc.StatusCode.UNAVAILABLE, True
                message = f"storage or a worker is unavailable ({type(exc).__name__}); retry later"
            else:
                log.exception("unexpected error while handling an OTLP/gRPC export")
                code, message = grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see the collector's log"
        finally:
            service.metrics.grpc_requests.labels(code.name).inc()
            service.metrics.request_seconds.observe(time.perf_counter() - started)
        if code is not grpc.StatusCode.OK:
            trailers = _retry_trailers(code, message, service.settings.retry_after_s) if retry else ()
            await context.abort(code, message, trailers)
        reply = ExportTraceServiceResponse()
        if stored.rejected:  # left unset on full success, per the spec
            reply.partial_success.rejected_spans = stored.rejected
            reply.partial_success.error_message = stored.error_message
        return reply.SerializeToString()


def _retry_trailers(code: grpc.StatusCode, message: str, seconds: int) -> tuple[tuple[str, bytes], ...]:
    retry_info = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=seconds))
    detail = Any()
    detail.Pack(retry_info)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return ((STATUS_DETAILS_KEY, status.SerializeToString()), (RETRY_INFO_KEY, retry_info.SerializeToString()))
