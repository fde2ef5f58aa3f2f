"""POST /v1/traces — OTLP/HTTP, answered per the OTLP specification.

200 only after commit (with partial_success when spans were refused); 400 undecodable, or
data storage refuses (retrying it would fail again); 401/403 key problems; 413 too large (on the
wire, inflated, or to decode within the in-flight memory budget); 415 wrong media type or
encoding; 503 with Retry-After when the writer is behind, the in-flight memory budget is spent,
a decoder process died or storage is down (the exporter retries those);
500 (with a google.rpc.Status body, and logged) for anything unexpected.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect, HTTPConnection
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from access.deps import requires_key
from access.resolver import Denied
from core.permissions import Permission, Principal

from collector.body import JSON, BodyError, answer_media, envelope, read_inflated
from collector.ingest import Refused, charged, store, transient
from collector.service import IngestService

log = logging.getLogger("causeline.collector")

# google.rpc.Code for each HTTP status we answer with.
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 408: 4, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14}
_HTTP_STATUS = {"unauthenticated": 401, "forbidden": 403, "invalid": 400, "too_large": 413, "unavailable": 503}


def make_router(service: IngestService) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/v1/traces", tags=["ingest"], summary="OTLP/HTTP trace export (protobuf or JSON)",
        responses={400: {}, 401: {}, 403: {}, 413: {}, 415: {}, 500: {}, 503: {}},
    )
    async def export_traces(request: Request, principal: IngestPrincipal) -> Response:
        started = time.perf_counter()
        try:
            response = await _export(service, request, principal.project_id)
        except Exception as exc:  # noqa: BLE001 - always a precise OTLP answer, never a bare 500
            response = failure(service, request, exc)
        service.metrics.requests.labels(str(response.status_code)).inc()
        service.metrics.request_seconds.observe(time.perf_counter() - started)
        return response

    return router


def make_routers(service: IngestService) -> list[APIRouter]:
    """Every OTLP signal's router (logs and metrics import this module's answers, hence here)."""
    from collector.logs_http import make_logs_router
    from collector.metrics_http import make_metrics_router

    return [make_router(service), make_logs_router(service), make_metrics_router(service)]


class OtlpRefused(Exception):
    """Access refused (access/ decided; this edge only renders it as OTLP asks)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def otlp_denied(request: HTTPConnection, refused: Denied) -> OtlpRefused:
    return OtlpRefused(refused.status, refused.message)


async def otlp_refused_handler(request: Request, exc: OtlpRefused) -> Response:
    media = answer_media(request)
    ingest = getattr(request.app.state, "ingest", None)
    if ingest is not None:
        ingest.metrics.requests.labels(str(exc.status)).inc()
    retry_after = request.app.state.settings.retry_after_s if exc.status == 503 else None
    return error(media, exc.status, exc.message, retry_after=retry_after)


IngestPrincipal = Annotated[Principal, Depends(requires_key(Permission.INGEST, otlp_denied))]


async def _export(service: IngestService, request: Request, project_id: int) -> Response:
    settings = service.settings
    media = answer_media(request)
    try:
        media, encoding, declared = envelope(request, settings.max_body_bytes)
        # An overload is refused before the body costs any memory.
        with charged(service, media, declared) as charge:
            # The body handed straight over: store() lets it go once decoded, before the commit.
            stored = await store(service, await read_inflated(request, encoding, settings.max_body_bytes,
                                                              settings.body_timeout_s), media, project_id, charge)
    except BodyError as exc:
        return error(media, exc.status, exc.message)
    except Refused as exc:
        return refusal(service, media, exc)
    return _success(media, stored.rejected, stored.error_message)


def refusal(service: IngestService, media: str, exc: Refused) -> Response:
    """The HTTP answer to a refused export (503 + Retry-After when it may be retried)."""
    if exc.retry:
        return error(media, 503, exc.message, retry_after=service.settings.retry_after_s)
    return error(media, _HTTP_STATUS[exc.kind], exc.message)


def failure(service: IngestService, request: Request, exc: Exception) -> Response:
    media = answer_media(request)
    if isinstance(exc, ClientDisconnect):  # nobody is listening; nothing was stored
        return error(media, 400, "client disconnected before the body was read")
    if transient(exc):
        log.warning("ingest unavailable: %s: %s", type(exc).__name__, exc)
        return error(media, 503, f"storage or a worker is unavailable ({type(exc).__name__}); retry later",
                      retry_after=service.settings.retry_after_s)
    log.exception("unexpected error while handling an OTLP export")
    return error(media, 500, f"internal error ({type(exc).__name__}); see the collector's log")


def _success(media: str, rejected: int, message: str) -> Response:
    reply = ExportTraceServiceResponse()
    if rejected:  # left unset on full success, per the spec
        reply.partial_success.rejected_spans = rejected
        reply.partial_success.error_message = message
    if media == JSON:
        body = {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}} if rejected else {}
        return Response(json.dumps(body), media_type=JSON)
    return Response(reply.SerializeToString(), media_type="application/x-protobuf")


def error(media: str, status: int, message: str, retry_after: int | None = None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    if status == 408:  # the rest of a timed-out body may still come: this connection is done
        headers["Connection"] = "close"
    code = _GRPC_CODES.get(status, 2)
    if media == JSON:
        return Response(json.dumps({"code": code, "message": message}), status_code=status,
                        media_type=JSON, headers=headers)
    body = status_pb2.Status(code=code, message=message).SerializeToString()
    return Response(body, status_code=status, media_type="application/x-protobuf", headers=headers)
