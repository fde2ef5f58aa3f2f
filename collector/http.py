"""POST /v1/traces — OTLP/HTTP, answered per the OTLP specification.

200 only after commit (with partial_success when spans were refused); 400 undecodable, or
data storage refuses (retrying it would fail again); 401/403 key problems; 413 too large (on the
wire, inflated, or to decode within the in-flight memory budget); 415 wrong media type or
encoding; 503 with Retry-After when the writer is behind, the in-flight memory budget is spent,
a decoder process died or storage is down (the exporter retries those);
500 (with a google.rpc.Status body, and logged) for anything unexpected.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures.process import BrokenProcessPool

import psycopg
import sqlalchemy.exc

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from core.otlp import DecodeError
from db.queries.auth import bearer_token

from collector.body import JSON, BodyError, content_encoding, inflate, media_type
from collector.service import Charge, IngestService, PreparationUnavailable, decode_cost, plausible_key
from collector.writer import QueueFull, StorageRefused, WriterUnavailable

log = logging.getLogger("causeline.collector")

# google.rpc.Code for each HTTP status we answer with.
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14}

# Exceptions that mean "storage or a worker is unavailable right now": 503 + Retry-After.
_TRANSIENT = (
    sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.TimeoutError,
    sqlalchemy.exc.DisconnectionError, psycopg.OperationalError, psycopg.InterfaceError,
    BrokenProcessPool, PreparationUnavailable, ConnectionError, TimeoutError,
)


def _unavailable(exc: BaseException) -> bool:
    if isinstance(exc, _TRANSIENT):
        return True
    # Any other driver error while authenticating or reading price overrides is the
    # database's, not the client's (e.g. the schema is being migrated).
    return isinstance(exc, sqlalchemy.exc.DBAPIError)


def make_router(service: IngestService) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/v1/traces", tags=["ingest"], summary="OTLP/HTTP trace export (protobuf or JSON)",
        responses={400: {}, 401: {}, 403: {}, 413: {}, 415: {}, 500: {}, 503: {}},
    )
    async def export_traces(request: Request) -> Response:
        started = time.perf_counter()
        try:
            response = await _export(service, request)
        except Exception as exc:  # noqa: BLE001 - always a precise OTLP answer, never a bare 500
            response = _failure(service, request, exc)
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
    if not plausible_key(secret):
        return _error(media, 401, "malformed API key: expected up to 256 printable ASCII characters")
    principal = await to_thread.run_sync(service.authenticate, secret)
    if principal is None:
        return _error(media, 401, "unknown or revoked API key")
    if "ingest" not in principal.scopes:
        return _error(media, 403, f"API key {principal.prefix}… lacks the 'ingest' scope")

    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return _error(media, 413, f"body of {declared} bytes exceeds the {limit}-byte limit")
    if declared and declared.isdigit() and encoding == "identity":
        # Refused before reading it when it cannot fit now: an overload costs no body memory.
        refused = _over_budget(service, media, int(declared))
        if refused is not None:
            return refused
    try:
        body = await _read_capped(request, limit)
        body = await to_thread.run_sync(inflate, body, encoding, limit)
    except BodyError as exc:
        return _error(media, exc.status, exc.message)

    refused = _over_budget(service, media, len(body))
    if refused is not None:
        return refused
    charge = service.inflight.try_acquire(decode_cost(len(body), media))
    if charge is None:
        return _no_room(service, media)
    try:
        return await _store(service, media, body, principal.project_id, charge)
    finally:
        charge.release()


def _over_budget(service: IngestService, media: str, size: int) -> Response | None:
    """413 when decoding this body alone would exceed the in-flight memory budget (it never fits),
    503 when it does not fit now, None when it may."""
    budget = service.inflight
    cost = decode_cost(size, media)
    if cost > budget.max_bytes:
        return _error(media, 413, f"decoding this {size}-byte body would take about {cost >> 20} MiB, more than "
                                  f"the collector's in-flight memory budget ({budget.max_bytes >> 20} MiB): "
                                  f"send smaller batches")
    return None if budget.has_room(cost) else _no_room(service, media)


def _no_room(service: IngestService, media: str) -> Response:
    budget = service.inflight
    return _error(media, 503, f"too many request bytes in flight ({budget.used} of {budget.max_bytes} "
                              f"bytes of memory); retry later", retry_after=service.settings.retry_after_s)


async def _store(service: IngestService, media: str, body: bytes, project_id: int, charge: Charge) -> Response:
    settings = service.settings
    overrides = await to_thread.run_sync(service.overrides, project_id)
    prep_started = time.perf_counter()
    service.writer.expect()
    try:
        try:
            ready = await service.prepare(body, media, project_id, overrides)
        except DecodeError as exc:
            return _error(media, 400, str(exc))
        charge.lower(len(body) + ready.data.nbytes)
        service.metrics.prepare_seconds.observe(time.perf_counter() - prep_started)
        service.metrics.spans_rejected.inc(ready.rejected)
        if not ready.data.count:
            return _success(media, ready.rejected, ready.error_message)
        try:
            future = service.writer.submit(ready.data)
        except QueueFull as exc:
            return _error(media, 503, f"ingest queue is full ({exc}); retry later", retry_after=settings.retry_after_s)
        except WriterUnavailable as exc:
            return _error(media, 503, str(exc), retry_after=settings.retry_after_s)
    finally:
        service.writer.arrived()
    try:
        await asyncio.wrap_future(future)
    except WriterUnavailable as exc:
        return _error(media, 503, f"{exc}; nothing from this request was stored, retry", retry_after=settings.retry_after_s)
    except StorageRefused as exc:
        return _error(media, 400, f"{exc}; nothing from this request was stored")
    service.metrics.spans_received.inc(ready.data.count)
    return _success(media, ready.rejected, ready.error_message)


def _failure(service: IngestService, request: Request, exc: Exception) -> Response:
    try:
        media = media_type(request.headers.get("content-type"))
    except BodyError:
        media = JSON
    if isinstance(exc, ClientDisconnect):  # nobody is listening; nothing was stored
        return _error(media, 400, "client disconnected before the body was read")
    if _unavailable(exc):
        log.warning("ingest unavailable: %s: %s", type(exc).__name__, exc)
        return _error(media, 503, f"storage or a worker is unavailable ({type(exc).__name__}); retry later",
                      retry_after=service.settings.retry_after_s)
    log.exception("unexpected error while handling an OTLP export")
    return _error(media, 500, f"internal error ({type(exc).__name__}); see the collector's log")


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
