"""POST /v1/logs — GenAI events (prompts and completions as OTLP log records) attached to spans.

Same media types, encodings, keys and limits as /v1/traces (collector/export.py). The
content events are decoded by core/otlp_logs.py and stored keyed by their span
(genai_log_records), whether the span is stored yet or not; reads merge them into the span's
input/output (db/queries/traces.py). Evaluation results (`gen_ai.evaluation.result`) are stored
as scores (source `otel`). Other log records are not stored and are counted in
partial_success.rejected_log_records. 200 only after commit; 400 for storage refusing the
data; 503 with Retry-After when storage is unavailable.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy.exc
from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from sqlalchemy.orm import Session, sessionmaker

from core.otlp import DecodeError, Limits
from core.otlp_logs import DecodedLogs, decode_logs_json, decode_logs_protobuf
from core.redaction import RedactionPolicy, redact_messages, redact_text
from core.scores import redacted
from db.genai_logs import insert_log_records
from db.queries.scores import insert_scores

from collector.body import JSON
from collector.export import partial_success, receive
from collector.http import IngestPrincipal, error
from collector.service import IngestService
from collector.writer import is_data_error, refusal_message


def make_logs_router(service: IngestService) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/v1/logs", tags=["ingest"], summary="OTLP/HTTP log export: GenAI events (prompts, completions) of spans",
        responses={400: {}, 401: {}, 403: {}, 413: {}, 415: {}, 500: {}, 503: {}},
    )
    async def export_logs(request: Request, principal: IngestPrincipal) -> Response:
        sessions = request.app.state.sessionmaker

        async def store(media: str, body: bytes, project_id: int) -> Response:
            redaction = await to_thread.run_sync(service.redaction, project_id)
            return await _store(service.limits, sessions, media, body, project_id, redaction)

        return await receive(service, request, principal.project_id, store)

    return router


async def _store(limits: Limits, sessions: sessionmaker[Session], media: str, body: bytes,
                 project_id: int, redaction: RedactionPolicy | None = None) -> Response:
    decode = decode_logs_json if media == JSON else decode_logs_protobuf
    try:
        decoded: DecodedLogs = await to_thread.run_sync(decode, body, limits)
    except DecodeError as exc:
        return error(media, 400, str(exc))
    if decoded.records or decoded.scores:
        try:
            await to_thread.run_sync(_write, sessions, project_id, decoded, redaction)
        except sqlalchemy.exc.DBAPIError as exc:
            if not is_dataerror(exc.orig):
                raise  # unavailable: 503 + Retry-After (collector.http.failure)
            return error(media, 400, refusal_message(exc.orig).replace("these spans", "these log records")
                          + "; nothing from this request was stored")
    return partial_success(media, ExportLogsServiceResponse(), "rejected_log_records", decoded.rejected,
                           decoded.error_message)


def _write(sessions: sessionmaker[Session], project_id: int, decoded: DecodedLogs,
           redaction: RedactionPolicy | None) -> None:
    # The project's redaction applies to log content as to span content (core/redaction.py).
    records = [dataclasses.replace(r, input=redact_messages(r.input, redaction), output=redact_messages(r.output, redaction))
               for r in decoded.records]
    with sessions.begin() as session:
        insert_log_records(session, project_id, records)
        scores = decoded.scores if redaction is None else redacted(decoded.scores, lambda t: redact_text(t, redaction)[0])
        insert_scores(session, project_id, scores)  # evaluation results: scores, stored once
