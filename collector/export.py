"""The request side shared by the OTLP signals other than traces (/v1/logs, /v1/metrics).

Media type, encoding, size caps, decompression and the in-flight byte budget,
answered exactly as /v1/traces answers them: the checks are the same functions
collector/http.py calls, and its status/error helpers make the answers. Only what the
body becomes is left to each signal (`Handler`)."""

from __future__ import annotations

import json
from typing import Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response

from collector.body import JSON, PROTOBUF, BodyError, answer_media, envelope, read_inflated
from collector.http import error, failure, refusal
from collector.ingest import Refused, charged, fit
from collector.service import IngestService

# (media, inflated body, project id) -> the answer
Handler = Callable[[str, bytes, int], Awaitable[Response]]


async def receive(service: IngestService, request: Request, project_id: int, handle: Handler) -> Response:
    """`project_id` of the key that access/ allowed to ingest (the route's IngestPrincipal).
    (The causeline_ingest_* request metrics stay about trace exports.)"""
    try:
        return await _receive(service, request, project_id, handle)
    except Exception as exc:  # noqa: BLE001 - always a precise OTLP answer, never a bare 500
        return failure(service, request, exc)


async def _receive(service: IngestService, request: Request, project_id: int, handle: Handler) -> Response:
    settings = service.settings
    media = answer_media(request)
    try:
        media, encoding, declared = envelope(request, settings.max_body_bytes)
        # Charged as a trace export is, until answered.
        with charged(service, media, declared) as charge:
            body = await read_inflated(request, encoding, settings.max_body_bytes, settings.body_timeout_s)
            fit(service, charge, media, len(body))
            return await handle(media, body, project_id)
    except BodyError as exc:
        return error(media, exc.status, exc.message)
    except Refused as exc:
        return refusal(service, media, exc)


def partial_success(media: str, reply, rejected_field: str, rejected: int, message: str) -> Response:
    """A 200 export response; partial_success is set only when something was refused or
    there is a warning to give (per the spec, left unset on full success)."""
    if rejected or message:
        setattr(reply.partial_success, rejected_field, rejected)
        reply.partial_success.error_message = message
    if media == JSON:
        camel = "".join(w.capitalize() if i else w for i, w in enumerate(rejected_field.split("_")))
        body = {"partialSuccess": {camel: str(rejected), "errorMessage": message}} if rejected or message else {}
        return Response(json.dumps(body), media_type=JSON)
    return Response(reply.SerializeToString(), media_type=PROTOBUF)
