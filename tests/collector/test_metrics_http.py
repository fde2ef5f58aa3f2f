"""POST /v1/metrics: accepted and discarded, every data point counted as rejected with how to turn metrics off."""

from __future__ import annotations

import json

import httpx
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, MetricExporter, PeriodicExportingMetricReader

from tests.collector.test_ingest_http import count, status_message


class Recording(MetricExporter):
    """The real OTLP exporter, with each export's result kept."""

    def __init__(self, inner: OTLPMetricExporter) -> None:
        super().__init__()
        self.inner = inner
        self.results: list[MetricExportResult] = []

    def export(self, metrics_data, timeout_millis: float = 10_000, **kwargs) -> MetricExportResult:
        result = self.inner.export(metrics_data, timeout_millis=timeout_millis)
        self.results.append(result)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        self.inner.shutdown()


def test_sdk_metric_export_succeeds_and_nothing_is_stored(collector):
    exporter = Recording(OTLPMetricExporter(endpoint=f"{collector.url}/v1/metrics", headers=collector.auth()))
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("tests")
    meter.create_counter("gen_ai.client.token.usage").add(12, {"gen_ai.token.type": "input"})
    meter.create_histogram("gen_ai.client.operation.duration").record(0.5)
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert exporter.results and set(exporter.results) == {MetricExportResult.SUCCESS}  # no retry, no error log
    assert count(collector, "select count(*) from spans") == 0


def test_the_answer_counts_the_points_and_says_how_to_turn_metrics_off(collector):
    request = ExportMetricsServiceRequest()
    metrics = request.resource_metrics.add().scope_metrics.add().metrics
    gauge = metrics.add(name="g").gauge
    gauge.data_points.add(as_int=1)
    gauge.data_points.add(as_int=2)
    metrics.add(name="h").histogram.data_points.add(count=3)
    response = httpx.post(f"{collector.url}/v1/metrics", content=request.SerializeToString(),
                          headers={"content-type": "application/x-protobuf", **collector.auth()}, timeout=30)
    assert response.status_code == 200
    partial = ExportMetricsServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_data_points == 3
    assert "not metrics" in partial.error_message and "OTEL_METRICS_EXPORTER=none" in partial.error_message
    assert "TRACELOOP_METRICS_ENABLED=false" in partial.error_message

    as_json = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "s", "sum": {"dataPoints": [{"asDouble": 1.5, "exemplars": [{"traceId": "not-hex"}]}]}}]}]}]}
    response = httpx.post(f"{collector.url}/v1/metrics", content=json.dumps(as_json).encode(),
                          headers={"content-type": "application/json", **collector.auth()}, timeout=30)
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedDataPoints"] == "1"


def test_metrics_need_an_ingest_key(collector):
    response = httpx.post(f"{collector.url}/v1/metrics", content=b"",
                          headers={"content-type": "application/x-protobuf"}, timeout=30)
    assert response.status_code == 401 and "missing API key" in status_message(response)
