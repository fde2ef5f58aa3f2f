"""Configuration: explicit arguments first, then ``CAUSELINE_*``, then the
standard ``OTEL_*`` variables, then defaults."""

from __future__ import annotations

import math
import os
import sys
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ._internal import warn_once

DEFAULT_ENDPOINT = "http://127.0.0.1:4318"
TRACES_PATH = "/v1/traces"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True)
class Config:
    """The resolved settings of one :func:`causeline.init` call."""

    service_name: str
    traces_endpoint: str
    headers: Mapping[str, str] = field(repr=False)
    capture_content: bool = False
    auto_instrument: frozenset[str] | bool = True
    environment: str | None = None
    enabled: bool = True
    max_queue_size: int = 2048
    max_export_batch_size: int = 512
    schedule_delay_millis: int = 1000
    export_timeout: float = 10.0
    shutdown_timeout: float = 5.0
    shutdown_timeout_unreachable: float = 0.5
    max_content_length: int = 4096
    redact: tuple[Callable[[str], str], ...] = ()
    redact_defaults: bool = True
    compression: str = "gzip"

    @property
    def has_api_key(self) -> bool:
        return any(k.lower() == "authorization" for k in self.headers)


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value is not None and value.strip() != "":
            return value.strip()
    return None


def _parse_bool(raw: str, name: str, default: bool) -> bool:
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    warn_once(f"cfg:{name}", "causeline: %s=%r is not a boolean; using %s", name, raw, default)
    return default


def _arg_name(env_name: str) -> str:
    return env_name.removeprefix("CAUSELINE_").lower()  # CAUSELINE_CAPTURE_CONTENT -> capture_content


def _bool(value: object, env_names: tuple[str, ...], default: bool) -> bool:
    """An explicit argument (a string is parsed like the variable: "false" is False), else the environment."""
    arg_name = _arg_name(env_names[0])
    if value is None:
        raw = _env(*env_names)
        return default if raw is None else _parse_bool(raw, env_names[0], default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _parse_bool(value, arg_name, default)
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    warn_once(f"cfg:{arg_name}", "causeline: %s=%r is not a boolean; using %s", arg_name, value, default)
    return default


def _number(value: object, env_name: str, default: float, cast: type, minimum: float, maximum: float) -> float:
    """An explicit argument, else the environment; a value that is not a finite
    number within [minimum, maximum] is rejected with a warning (the default is used)."""
    name = _arg_name(env_name)
    if value is None:
        raw = _env(env_name)
        if raw is None:
            return default
        value, name = raw, env_name
    if isinstance(value, str):
        try:
            value = cast(value.strip())
        except ValueError:
            warn_once(f"cfg:{name}", "causeline: %s=%r is not a number; using %s", name, value, default)
            return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        warn_once(f"cfg:{name}", "causeline: %s=%r is not a number; using %s", name, value, default)
        return default
    if not math.isfinite(value) or not minimum <= value <= maximum:
        warn_once(
            f"cfg:{name}:range",
            "causeline: %s=%r is not between %s and %s; using %s",
            name,
            value,
            minimum,
            maximum,
            default,
        )
        return default
    return cast(value)


def parse_otel_headers(raw: str | None) -> dict[str, str]:
    """Parse the ``OTEL_EXPORTER_OTLP_HEADERS`` format: ``k1=v1,k2=v2`` (URL-encoded)."""
    headers: dict[str, str] = {}
    if not raw:
        return headers
    for item in raw.split(","):
        if "=" not in item:
            continue
        key, _, value = item.partition("=")
        key = urllib.parse.unquote(key).strip()
        if key:
            headers[key] = urllib.parse.unquote(value).strip()
    return headers


def traces_url(base: str) -> str:
    """``http://host:4318`` -> ``http://host:4318/v1/traces`` (kept if already there)."""
    base = base.strip()
    if base.rstrip("/").endswith(TRACES_PATH):
        return base.rstrip("/")
    return base.rstrip("/") + TRACES_PATH


def _service_name(value: str | None) -> str:
    if value:
        return value
    env = _env("CAUSELINE_SERVICE_NAME", "OTEL_SERVICE_NAME")
    if env:
        return env
    for item in (os.environ.get("OTEL_RESOURCE_ATTRIBUTES") or "").split(","):
        key, _, val = item.partition("=")
        if key.strip() == "service.name" and val.strip():
            return urllib.parse.unquote(val.strip())
    argv0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if argv0 and argv0 not in ("-c", "-m", "python", "pytest"):
        return "unknown_service:" + argv0.removesuffix(".py")
    return "unknown_service:python"


def _auto_instrument(value: bool | str | Iterable[str] | None) -> frozenset[str] | bool:
    """True/False, or the names to enable; a string (argument or
    ``CAUSELINE_AUTO_INSTRUMENT``) is a boolean or a comma-separated list."""
    if value is None:
        value = _env("CAUSELINE_AUTO_INSTRUMENT")
        if value is None:
            return True
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        return frozenset(p.strip() for p in low.split(",") if p.strip())
    return frozenset(str(v).strip().lower() for v in value)


def resolve(
    *,
    service_name: str | None = None,
    endpoint: str | None = None,
    api_key: str | None = None,
    capture_content: bool | None = None,
    auto_instrument: bool | Iterable[str] | None = None,
    environment: str | None = None,
    enabled: bool | None = None,
    headers: Mapping[str, str] | None = None,
    max_queue_size: int | None = None,
    max_export_batch_size: int | None = None,
    schedule_delay_millis: int | None = None,
    export_timeout: float | None = None,
    shutdown_timeout: float | None = None,
    shutdown_timeout_unreachable: float | None = None,
    max_content_length: int | None = None,
    redact: Iterable[Callable[[str], str]] | None = None,
    redact_defaults: bool | None = None,
    compression: str | None = None,
) -> Config:
    """Resolve every setting; never raises for bad environment values (warns, uses the default)."""
    # Endpoint: explicit > CAUSELINE_ENDPOINT > OTEL traces endpoint (full URL) > OTEL base > default.
    if endpoint:
        url = traces_url(endpoint)
    elif (raw := _env("CAUSELINE_ENDPOINT")) is not None:
        url = traces_url(raw)
    elif (raw := _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) is not None:
        url = raw
    elif (raw := _env("OTEL_EXPORTER_OTLP_ENDPOINT")) is not None:
        url = traces_url(raw)
    else:
        url = traces_url(DEFAULT_ENDPOINT)

    # Headers: OTEL_* headers, then explicit headers, then the API key as a bearer token.
    merged = parse_otel_headers(_env("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"))
    if headers:
        merged.update({str(k): str(v) for k, v in headers.items()})
    key = api_key or _env("CAUSELINE_API_KEY")
    if key:
        merged = {k: v for k, v in merged.items() if k.lower() != "authorization"}
        merged["Authorization"] = f"Bearer {key}"

    comp = (
        compression
        or _env("CAUSELINE_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION")
        or "gzip"
    ).lower()
    if comp not in ("gzip", "deflate", "none"):
        warn_once("cfg:compression", "causeline: unknown compression %r; using gzip", comp)
        comp = "gzip"

    return Config(
        service_name=_service_name(service_name),
        traces_endpoint=url,
        headers=merged,
        capture_content=_bool(capture_content, ("CAUSELINE_CAPTURE_CONTENT",), False),
        auto_instrument=_auto_instrument(auto_instrument),
        environment=environment or _env("CAUSELINE_ENVIRONMENT"),
        enabled=_bool(enabled, ("CAUSELINE_ENABLED",), True),
        max_queue_size=int(_number(max_queue_size, "CAUSELINE_MAX_QUEUE_SIZE", 2048, int, 1, 10**6)),
        max_export_batch_size=int(
            _number(max_export_batch_size, "CAUSELINE_MAX_EXPORT_BATCH_SIZE", 512, int, 1, 10**6)
        ),
        schedule_delay_millis=int(
            _number(schedule_delay_millis, "CAUSELINE_SCHEDULE_DELAY_MILLIS", 1000, int, 1, 3_600_000)
        ),
        export_timeout=float(_number(export_timeout, "CAUSELINE_EXPORT_TIMEOUT", 10.0, float, 0.001, 3600)),
        shutdown_timeout=float(_number(shutdown_timeout, "CAUSELINE_SHUTDOWN_TIMEOUT", 5.0, float, 0.0, 3600)),
        shutdown_timeout_unreachable=float(
            _number(shutdown_timeout_unreachable, "CAUSELINE_SHUTDOWN_TIMEOUT_UNREACHABLE", 0.5, float, 0.0, 3600)
        ),
        max_content_length=int(_number(max_content_length, "CAUSELINE_MAX_CONTENT_LENGTH", 4096, int, 16, 10**7)),
        redact=tuple(redact or ()),
        redact_defaults=_bool(redact_defaults, ("CAUSELINE_REDACT_DEFAULTS",), True),
        compression=comp,
    )
