"""OTLP metric exports: Causeline does not store metrics, it only counts what it discards.

The count goes back to the exporter as partial_success.rejected_data_points, so an
export that reaches Causeline by default (OpenLLMetry sends metrics unless told not to)
succeeds without retries or error logs, and still says that nothing of it was kept."""

from __future__ import annotations

from google.protobuf.message import DecodeError as ProtoDecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from core.otlp_json import DecodeError, load_json

_POINT_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")  # JSON names

NOT_STORED = ("Causeline stores traces and GenAI log events, not metrics: {n} data point(s) discarded. "
              "Turn metric export off with OTEL_METRICS_EXPORTER=none (OpenLLMetry: "
              "TRACELOOP_METRICS_ENABLED=false, or Traceloop.init(disable_metrics=True))")


def count_data_points_protobuf(body: bytes) -> int:
    request = ExportMetricsServiceRequest()
    try:
        request.ParseFromString(body)
    except ProtoDecodeError as exc:
        raise DecodeError(f"body is not a valid protobuf ExportMetricsServiceRequest: {exc}") from None
    total = 0
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")  # gauge, sum, histogram, exponential_histogram, summary
                if kind is not None:
                    total += len(getattr(metric, kind).data_points)
    return total


def count_data_points_json(body: bytes) -> int:
    """Counted on the JSON itself: nothing is kept, so nothing is converted (and an exemplar's
    hex ids cannot fail the count)."""
    document = load_json(body, "ExportMetricsServiceRequest")
    total = 0
    for resource_metrics in _items(document, "resourceMetrics"):
        for scope_metrics in _items(resource_metrics, "scopeMetrics"):
            for metric in _items(scope_metrics, "metrics"):
                for kind in _POINT_KINDS:
                    data = _field(metric, kind)
                    if isinstance(data, dict):
                        total += len(_items(data, "dataPoints"))
    return total


def _field(obj, json_name: str):
    if not isinstance(obj, dict):
        return None
    if json_name in obj:
        return obj[json_name]
    return obj.get("".join("_" + c.lower() if c.isupper() else c for c in json_name))


def _items(obj, json_name: str) -> list:
    value = _field(obj, json_name)
    return value if isinstance(value, list) else []


__all__ = ["NOT_STORED", "count_data_points_json", "count_data_points_protobuf"]
