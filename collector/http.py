"""POST /v1/traces — OTLP/HTTP, answered per the OTLP specification.

200 only after commit (with partial_success when spans were refused); 400 undecodable;
401/403 key problems; 413 too large; 415 wrong media type or encoding; 503 with
Retry-After when the writer is behind or storage is down (the exporter retries those).
"""

from __future__ import annotations

import asyncio
import json
import time

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from core.otlp import DecodeError
from db.queries.auth import bearer_token

from collector.body import JSON, BodyError, content_encoding, inflate, media_type
from collector.service import IngestService
from collector.writer import QueueFull, WriterUnavailable

# google.rpc.Code for each HTTP status we answer with.
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 413: 8, 415: 3, 429: 8, 503: 14}


def make_router(service: IngestService) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/v1/traces", tags=["ingest"], summary="OTLP/HTTP trace export (protobuf or JSON)",
        responses={400: {}, 401: {}, 403: {}, 413: {}, 415: {}, 503: {}},
    )
    async def export_traces(request: Request) -> Response:
        started = time.perf_counter()
        response = await _export(service, request)
        service.metrics.requests.labels(str(response.status_code)).inc()
        service.metrics.request_seconds.observe(time.perf_counter() - started)
        return response

    return router


async def _export(service: IngestService, request: Request) -> Response:
    settings = service.settings
    media = JSON
    try:
        media = media_type(request.headers.get("content-type"))
        encoding = content_encoding(request.headers.get("content-encoding"))
    except BodyError as exc:
        return _error(media, exc.status, exc.message)

    secret = bearer_token(request.headers.get("authorization"), request.headers.get("x-causeline-key"))
    if not secret:
        return _error(media, 401, "missing API key: send 'Authorization: Bearer <key>' or 'x-causeline-key: <key>'")
    principal = await to_thread.run_sync(service.authenticate, secret)
    if principal is None:
        return _error(media, 401, "unknown or revoked API key")
    if "ingest" not in principal.scopes:
        return _error(media, 403, f"API key {principal.prefix}… lacks the 'ingest' scope")

    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return _error(media, 413, f"body of {declared} bytes exceeds the {limit}-byte limit")
    try:
        body = await _read_capped(request, limit)
        body = await to_thread.run_sync(inflate, body, encoding, limit)
    except BodyError as exc:
        return _error(media, exc.status, exc.message)

    overrides = await to_thread.run_sync(service.overrides, principal.project_id)
    prep_started = time.perf_counter()
    try:
        prepared = await service.prepare(body, media, principal.project_id, overrides)
    except DecodeError as exc:
        return _error(media, 400, str(exc))
    service.metrics.prepare_seconds.observe(time.perf_counter() - prep_started)
    service.metrics.spans_rejected.inc(prepared.rejected)

    if prepared.rows:
        try:
            future = service.writer.submit(prepared.rows, prepared.edges)
        except QueueFull as exc:
            return _error(media, 503, f"ingest queue is full ({exc}); retry later", retry_after=settings.retry_after_s)
        except WriterUnavailable as exc:
            return _error(media, 503, str(exc), retry_after=settings.retry_after_s)
        try:
            await asyncio.wrap_future(future)
        except WriterUnavailable as exc:
            return _error(media, 503, f"{exc}; nothing from this request was stored, retry", retry_after=settings.retry_after_s)
        service.metrics.spans_received.inc(len(prepared.rows))
    return _success(media, prepared.rejected, prepared.error_message)


async def _read_capped(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyError(413, f"body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _success(media: str, rejected: int, message: str) -> Response:
    reply = ExportTraceServiceResponse()
    if rejected:  # left unset on full success, per the spec
        reply.partial_success.rejected_spans = rejected
        reply.partial_success.error_message = message
    if media == JSON:
        body = {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}} if rejected else {}
        return Response(json.dumps(body), media_type=JSON)
    return Response(reply.SerializeToString(), media_type="application/x-protobuf")


def _error(media: str, status: int, message: str, retry_after: int | None = None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    code = _GRPC_CODES.get(status, 2)
    if media == JSON:
        return Response(json.dumps({"code": code, "message": message}), status_code=status,
                        media_type=JSON, headers=headers)
    body = status_pb2.Status(code=code, message=message).SerializeToString()
    return Response(body, status_code=status, media_type="application/x-protobuf", headers=headers)
