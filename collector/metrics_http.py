"""POST /v1/metrics — accepted and discarded, with a partial_success that says so.

Causeline does not store metrics. A 404 (what an unknown path gives) is not retried by
exporters either (OTLP/HTTP retries only 429, 502, 503, 504), but they log it as a failed
export every interval; a 200 whose partial_success counts every data point as rejected and
tells how to turn metrics off is what the spec provides for data the server will not keep."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse

from core.otlp import DecodeError
from core.otlp_metrics import NOT_STORED, count_data_points_json, count_data_points_protobuf

from collector.body import JSON
from collector.export import partial_success, receive
from collector.http import IngestPrincipal, error
from collector.service import IngestService


def make_metrics_router(service: IngestService) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/v1/metrics", tags=["ingest"], summary="OTLP/HTTP metric export: accepted and discarded (not stored)",
        responses={400: {}, 401: {}, 403: {}, 413: {}, 415: {}, 503: {}},
    )
    async def export_metrics(request: Request, principal: IngestPrincipal) -> Response:
        return await receive(service, request, principal.project_id, _discard)

    return router


async def _discard(media: str, body: bytes, project_id: int) -> Response:
    count = count_data_points_json if media == JSON else count_data_points_protobuf
    try:
        points = await to_thread.run_sync(count, body)
    except DecodeError as exc:
        return error(media, 400, str(exc))
    return partial_success(media, ExportMetricsServiceResponse(), "rejected_data_points", points,
                           NOT_STORED.format(n=points))
