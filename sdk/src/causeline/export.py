"""The exporter side of the pipeline: the OTLP exporter, what it tells us about
the collector, its log lines, and a guard that never raises.

* ``make_otlp_exporter`` builds the OpenTelemetry OTLP/HTTP exporter with a
  ``requests.Session`` of ours (its public ``session`` argument) that reports
  every HTTP attempt to a :class:`Reachability`: the pipeline cuts the exit
  wait short once the collector is known to be unreachable.
* ``ExporterLogFilter`` sits on the exporter's loggers (their public names, the
  modules' ``__name__``) and turns the records emitted while Causeline exports
  into DEBUG records on ``causeline.export``: the host sees our own summary
  warning, at most once a minute, instead of OpenTelemetry's retry lines.
  Records of the application's own exporters pass untouched.
* ``GuardedExporter`` filters content of third-party spans, counts calls and
  failures, and never raises.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from . import _internal
from ._state import SCOPE_NAME
from .config import Config
from .foreign import filter_foreign_span
from .redaction import ContentPolicy
from .stats import Stats

export_logger = logging.getLogger("causeline.export")


class _RateLimitFilter(logging.Filter):
    """Let each message template through at most once a minute."""

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[Any, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        key = (record.levelno, record.msg)
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        self._last[key] = now
        return True


if not any(isinstance(f, _RateLimitFilter) for f in export_logger.filters):
    export_logger.addFilter(_RateLimitFilter())


# -- the exporter's log lines ----------------------------------------------------------

_exporting = threading.local()

# Where the OTLP/HTTP span exporter logs while exporting: the loggers of its public
# modules (``logging.getLogger(__name__)``); the trace exporter hands its own logger
# to its HTTP client, older versions log from the trace exporter module itself.
# tests/sdk/test_sdk_delivery.py fails if one of its lines gets through.
EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.exporter.otlp.common.http",
)


@contextmanager
def exporting() -> Iterator[None]:
    """Mark this thread as running Causeline's exporter (see ExporterLogFilter)."""
    previous = getattr(_exporting, "active", False)
    _exporting.active = True
    try:
        yield
    finally:
        _exporting.active = previous


class ExporterLogFilter(logging.Filter):
    """Reroute the exporter's records emitted inside ``exporting()`` to ``causeline.export`` at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(_exporting, "active", False):
            return True  # the application's own exporter: not ours to touch
        if export_logger.isEnabledFor(logging.DEBUG):
            try:
                export_logger.debug("%s: %s", record.name, record.getMessage())
            except Exception:  # pragma: no cover - a broken record must not break export
                pass
        return False


def install_log_filter() -> None:
    """Put the filter on every exporter logger (idempotent)."""
    for name in EXPORTER_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, ExporterLogFilter) for f in target.filters):
            target.addFilter(ExporterLogFilter())


# -- whether the collector answers -------------------------------------------------------


class Reachability:
    """Whether the last attempt to reach the collector failed.

    Fed by every HTTP attempt of the OTLP exporter (through our session) and by
    every export result; read by the pipeline when it decides how long to wait at exit.
    """

    __slots__ = ("down", "attempts")

    def __init__(self) -> None:
        self.down = False
        self.attempts = 0

    def report(self, ok: bool) -> None:
        self.attempts += 1
        self.down = not ok


def _observed_session(reachability: Reachability) -> Any:
    """A ``requests.Session`` that reports each request's outcome (requests is the exporter's own dependency)."""
    import requests

    class ObservedSession(requests.Session):
        def request(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            try:
                response = super().request(*args, **kwargs)
            except BaseException:
                reachability.report(False)
                raise
            reachability.report(200 <= response.status_code < 300)
            return response

    return ObservedSession()


def make_otlp_exporter(config: Config, reachability: Reachability | None = None) -> SpanExporter:
    """OTLP/HTTP protobuf exporter to ``config.traces_endpoint``."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    compression = {"gzip": Compression.Gzip, "deflate": Compression.Deflate}.get(
        config.compression, Compression.NoCompression
    )
    install_log_filter()
    return OTLPSpanExporter(
        endpoint=config.traces_endpoint,
        headers=dict(config.headers),
        timeout=config.export_timeout,
        compression=compression,
        session=_observed_session(reachability) if reachability is not None else None,
    )


# -- one call, one span -------------------------------------------------------------------

LITELLM_SCOPE = "litellm"
RESPONSE_ID = "gen_ai.response.id"


class Duplicates:
    """litellm's span of a call that an instrumented client underneath recorded too.

    litellm calls OpenAI models through the openai client, so with both
    instrumentations on, one call gives two model-call spans with the same
    response id in the same trace; the client's span ends first (litellm
    reports after the call returns) and is kept. Bounded: model names and ids
    come from the outside.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._seen: dict[tuple[int, str], None] = {}

    def is_duplicate(self, span: ReadableSpan) -> bool:
        attrs = span.attributes
        response_id = attrs.get(RESPONSE_ID) if attrs else None
        if not isinstance(response_id, str) or span.context is None:
            return False
        key = (span.context.trace_id, response_id)
        scope = span.instrumentation_scope
        if scope is not None and scope.name == LITELLM_SCOPE:
            return key in self._seen
        if len(self._seen) >= self.max_entries:
            self._seen.clear()
        self._seen[key] = None
        return False


# -- the guard -----------------------------------------------------------------------------


class GuardedExporter:
    """Filters foreign content, counts calls and failures, and never raises.

    Span counts (exported/failed) are kept by the pipeline, which moves spans
    out of the queued state under the stats lock.
    """

    def __init__(
        self, inner: SpanExporter, stats: Stats, policy: ContentPolicy, reachability: Reachability
    ) -> None:
        self.inner = inner
        self.stats = stats
        self.policy = policy
        self.reachability = reachability
        self.duplicates = Duplicates()

    def _filter(self, spans: Sequence[ReadableSpan]) -> Sequence[ReadableSpan]:
        out: list[ReadableSpan | None] | None = None
        for i, span in enumerate(spans):
            scope = span.instrumentation_scope
            if scope is not None and scope.name == SCOPE_NAME:
                continue
            if self.duplicates.is_duplicate(span):
                replaced: ReadableSpan | None = None
                self.stats.add("spans_deduplicated")
            else:
                replaced = filter_foreign_span(span, self.policy)
                if replaced is None:
                    continue
                self.stats.add("spans_filtered")
            if out is None:
                out = list(spans)
            out[i] = replaced
        return spans if out is None else [s for s in out if s is not None]

    def export(self, spans: Sequence[ReadableSpan]) -> bool:
        """True when the collector accepted the batch."""
        try:
            spans = self._filter(spans)
        except Exception as exc:  # never ship unfiltered content: drop the batch
            _internal.record(exc, "export filter")
            return False
        if not spans:
            return True  # nothing left to send (duplicates only)
        self.stats.add("export_calls")
        error: str | None = None
        try:
            with exporting():
                result = self.inner.export(spans)
        except Exception as exc:  # exporter bug or transport error: count it, never raise
            result = SpanExportResult.FAILURE
            error = repr(exc)
        ok = result is SpanExportResult.SUCCESS
        self.reachability.report(ok)
        if not ok:
            with self.stats.lock:
                self.stats.export_failures += 1
                self.stats.last_export_error = (
                    error or "exporter returned FAILURE (collector unreachable or refused)"
                )
            _internal.warn_once(
                "export-failed",
                "causeline: could not export %d spans (collector down or slow?); see causeline.stats()",
                len(spans),
            )
        return ok

    def shutdown(self) -> None:
        try:
            with exporting():
                self.inner.shutdown()
        except Exception as exc:
            _internal.record(exc, "exporter shutdown")
