"""Settings: explicit arguments, then CAUSELINE_*, then OTEL_*, then defaults."""

from __future__ import annotations

import pytest

from causeline.config import parse_otel_headers, resolve, traces_url

ENV_NAMES = [
    "CAUSELINE_ENDPOINT",
    "CAUSELINE_API_KEY",
    "CAUSELINE_SERVICE_NAME",
    "CAUSELINE_CAPTURE_CONTENT",
    "CAUSELINE_AUTO_INSTRUMENT",
    "CAUSELINE_ENVIRONMENT",
    "CAUSELINE_ENABLED",
    "CAUSELINE_MAX_QUEUE_SIZE",
    "CAUSELINE_MAX_CONTENT_LENGTH",
    "CAUSELINE_EXPORT_TIMEOUT",
    "CAUSELINE_SHUTDOWN_TIMEOUT",
    "CAUSELINE_COMPRESSION",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults():
    cfg = resolve()
    assert cfg.traces_endpoint == "http://127.0.0.1:4318/v1/traces"
    assert dict(cfg.headers) == {}
    assert cfg.capture_content is False
    assert cfg.auto_instrument is True
    assert cfg.enabled is True
    assert cfg.max_queue_size == 2048
    assert cfg.compression == "gzip"
    assert cfg.service_name.startswith("unknown_service")


def test_explicit_arguments_win(clean_env):
    clean_env.setenv("CAUSELINE_ENDPOINT", "http://env:1")
    clean_env.setenv("CAUSELINE_API_KEY", "env-key")
    clean_env.setenv("CAUSELINE_CAPTURE_CONTENT", "true")
    cfg = resolve(endpoint="https://arg.example:4318/", api_key="arg-key", capture_content=False, service_name="svc")
    assert cfg.traces_endpoint == "https://arg.example:4318/v1/traces"
    assert cfg.headers["Authorization"] == "Bearer arg-key"
    assert cfg.capture_content is False
    assert cfg.service_name == "svc"


def test_causeline_environment(clean_env):
    clean_env.setenv("CAUSELINE_ENDPOINT", "http://collector:4318")
    clean_env.setenv("CAUSELINE_API_KEY", "cl_live_abc")
    clean_env.setenv("CAUSELINE_SERVICE_NAME", "bot")
    clean_env.setenv("CAUSELINE_CAPTURE_CONTENT", "1")
    clean_env.setenv("CAUSELINE_AUTO_INSTRUMENT", "openai, threading")
    clean_env.setenv("CAUSELINE_ENVIRONMENT", "staging")
    clean_env.setenv("CAUSELINE_MAX_QUEUE_SIZE", "100")
    cfg = resolve()
    assert cfg.traces_endpoint == "http://collector:4318/v1/traces"
    assert cfg.headers == {"Authorization": "Bearer cl_live_abc"}
    assert cfg.service_name == "bot"
    assert cfg.capture_content is True
    assert cfg.auto_instrument == frozenset({"openai", "threading"})
    assert cfg.environment == "staging"
    assert cfg.max_queue_size == 100
    assert "cl_live_abc" not in repr(cfg)


def test_otel_fallbacks(clean_env):
    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318/")
    clean_env.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=t1,authorization=Bearer%20otel-key")
    clean_env.setenv("OTEL_SERVICE_NAME", "otel-svc")
    clean_env.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "none")
    cfg = resolve()
    assert cfg.traces_endpoint == "http://otel:4318/v1/traces"
    assert cfg.headers == {"x-tenant": "t1", "authorization": "Bearer otel-key"}
    assert cfg.has_api_key
    assert cfg.service_name == "otel-svc"
    assert cfg.compression == "none"
    # the traces-specific endpoint is a full URL, used as is
    clean_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://otel:9999/custom/traces")
    assert resolve().traces_endpoint == "http://otel:9999/custom/traces"
    # CAUSELINE_API_KEY replaces an OTEL authorization header
    clean_env.setenv("CAUSELINE_API_KEY", "mine")
    assert resolve().headers == {"x-tenant": "t1", "Authorization": "Bearer mine"}


def test_service_name_from_resource_attributes(clean_env):
    clean_env.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=a,service.name=from-resource")
    assert resolve().service_name == "from-resource"


def test_bad_values_fall_back_to_defaults(clean_env):
    clean_env.setenv("CAUSELINE_MAX_QUEUE_SIZE", "lots")
    clean_env.setenv("CAUSELINE_CAPTURE_CONTENT", "maybe")
    clean_env.setenv("CAUSELINE_EXPORT_TIMEOUT", "-1")
    clean_env.setenv("CAUSELINE_COMPRESSION", "zstd")
    cfg = resolve()
    assert cfg.max_queue_size == 2048
    assert cfg.capture_content is False
    assert cfg.export_timeout == 10.0
    assert cfg.compression == "gzip"


def test_disable_and_auto_instrument_forms(clean_env):
    clean_env.setenv("CAUSELINE_ENABLED", "false")
    clean_env.setenv("CAUSELINE_AUTO_INSTRUMENT", "0")
    cfg = resolve()
    assert cfg.enabled is False
    assert cfg.auto_instrument is False
    assert resolve(auto_instrument=["OpenAI"]).auto_instrument == frozenset({"openai"})
    assert resolve(auto_instrument="openai").auto_instrument == frozenset({"openai"})


def test_helpers():
    assert traces_url("http://h:4318") == "http://h:4318/v1/traces"
    assert traces_url("http://h:4318/v1/traces/") == "http://h:4318/v1/traces"
    assert traces_url("https://h/prefix/") == "https://h/prefix/v1/traces"
    assert parse_otel_headers("a=1, b = two%2C ,broken") == {"a": "1", "b": "two,"}


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "1e12"])
def test_non_finite_and_out_of_range_numbers_are_rejected(clean_env, raw):
    clean_env.setenv("CAUSELINE_SHUTDOWN_TIMEOUT", raw)
    clean_env.setenv("CAUSELINE_EXPORT_TIMEOUT", raw)
    cfg = resolve()
    assert cfg.shutdown_timeout == 5.0
    assert cfg.export_timeout == 10.0
    cfg = resolve(shutdown_timeout=float(raw), export_timeout=float(raw), max_content_length=10**12)
    assert (cfg.shutdown_timeout, cfg.export_timeout, cfg.max_content_length) == (5.0, 10.0, 4096)
    assert resolve(export_timeout="2.5", max_queue_size="64").export_timeout == 2.5


@pytest.mark.parametrize(
    ("value", "expected"),
    [("false", False), ("0", False), ("No", False), (" off ", False), ("true", True), ("1", True), ("on", True)],
)
def test_string_arguments_parse_like_environment_variables(clean_env, value, expected):
    cfg = resolve(capture_content=value, enabled=value, redact_defaults=value)
    assert (cfg.capture_content, cfg.enabled, cfg.redact_defaults) == (expected, expected, expected)


def test_unknown_string_argument_warns_and_uses_the_default(clean_env, caplog):
    cfg = resolve(capture_content="sometimes", enabled="perhaps")
    assert cfg.capture_content is False and cfg.enabled is True
    assert "capture_content='sometimes' is not a boolean" in caplog.text


def test_auto_instrument_string_argument_is_split_like_the_variable(clean_env):
    assert resolve(auto_instrument="openai, Threading").auto_instrument == frozenset({"openai", "threading"})
    assert resolve(auto_instrument="false").auto_instrument is False
    assert resolve(auto_instrument="true").auto_instrument is True
