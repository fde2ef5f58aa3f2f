"""``init``, ``flush`` and ``shutdown``."""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import trace

from . import _internal
from ._state import SCOPE_NAME, STATE
from ._version import __version__
from .config import Config, resolve
from .export import Reachability, make_otlp_exporter
from .pipeline import CauselineSpanProcessor, Pipeline
from .redaction import ContentPolicy


def _resource(config: Config) -> Any:
    from opentelemetry.sdk.resources import Resource

    attrs: dict[str, Any] = {"service.name": config.service_name}
    if config.environment:
        attrs["deployment.environment.name"] = config.environment
    # Resource.create also merges OTEL_RESOURCE_ATTRIBUTES and the SDK's telemetry.* attributes.
    return Resource.create(attrs)


def _provider_for(config: Config, tracer_provider: Any) -> tuple[Any, bool]:
    """The SDK tracer provider to attach to, and whether we created it."""
    from opentelemetry.sdk.trace import TracerProvider

    if tracer_provider is not None:
        return tracer_provider, False
    current = trace.get_tracer_provider()
    if hasattr(current, "add_span_processor"):
        # The application's own provider (or ours from an earlier init): add to it, never replace it.
        return current, bool(STATE.owns_provider and current is STATE.provider)
    if STATE.owns_provider and STATE.provider is not None:
        return STATE.provider, True
    if not isinstance(current, trace.ProxyTracerProvider):
        # A non-SDK provider is installed (e.g. a vendor's): keep ours private.
        _internal.warn_once(
            "foreign-provider",
            "causeline: the global tracer provider %s cannot take span processors; Causeline "
            "spans use a private provider and spans of other instrumentations are not exported",
            type(current).__name__,
        )
        return TracerProvider(resource=_resource(config)), True
    provider = TracerProvider(resource=_resource(config))
    trace.set_tracer_provider(provider)
    return provider, True


# The processor we added to each provider (a provider cannot remove a processor,
# so it is added once and its pipeline swapped on re-init).
_slots: weakref.WeakKeyDictionary[Any, CauselineSpanProcessor] = weakref.WeakKeyDictionary()


def _attach(provider: Any) -> CauselineSpanProcessor:
    """Our single processor on ``provider`` (added once, however often init runs)."""
    slot = _slots.get(provider)
    if slot is None:
        slot = CauselineSpanProcessor()
        provider.add_span_processor(slot)
        _slots[provider] = slot
    return slot


def init(
    service_name: str | None = None,
    endpoint: str | None = None,
    api_key: str | None = None,
    capture_content: bool | None = None,
    auto_instrument: bool | Iterable[str] | None = None,
    *,
    environment: str | None = None,
    enabled: bool | None = None,
    headers: Mapping[str, str] | None = None,
    redact: Iterable[Callable[[str], str]] | None = None,
    redact_defaults: bool | None = None,
    max_content_length: int | None = None,
    max_queue_size: int | None = None,
    max_export_batch_size: int | None = None,
    schedule_delay_millis: int | None = None,
    export_timeout: float | None = None,
    shutdown_timeout: float | None = None,
    shutdown_timeout_unreachable: float | None = None,
    compression: str | None = None,
    exporter: Any = None,
    tracer_provider: Any = None,
) -> bool:
    """Start sending this process's agent telemetry to Causeline.

    Every argument left as ``None`` comes from the environment (see
    docs/sdk.md), then from defaults: ``capture_content`` False,
    ``auto_instrument`` True, endpoint ``http://127.0.0.1:4318``.
    ``exporter`` replaces the OTLP exporter (tests, other backends);
    ``tracer_provider`` picks the provider to attach to (default: the global
    one if the application set it, else a new one that becomes global).

    Safe to call again: the new settings replace the old ones, spans queued
    under the old settings are flushed, and no processor is added twice.
    Returns True when Causeline is active; never raises into the application.
    """
    try:
        config = resolve(
            service_name=service_name,
            endpoint=endpoint,
            api_key=api_key,
            capture_content=capture_content,
            auto_instrument=auto_instrument,
            environment=environment,
            enabled=enabled,
            headers=headers,
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay_millis=schedule_delay_millis,
            export_timeout=export_timeout,
            shutdown_timeout=shutdown_timeout,
            shutdown_timeout_unreachable=shutdown_timeout_unreachable,
            max_content_length=max_content_length,
            redact=redact,
            redact_defaults=redact_defaults,
            compression=compression,
        )
        with STATE.lock:
            policy = ContentPolicy(
                enabled=config.capture_content,
                max_length=config.max_content_length,
                redactors=config.redact,
                builtin=config.redact_defaults,
            )
            if not config.enabled:
                _detach_pipeline()
                STATE.config = config
                STATE.policy = policy
                STATE.initialized = False
                return False

            provider, owns = _provider_for(config, tracer_provider)
            if STATE.slot is not None and STATE.provider is not provider:
                _detach_pipeline()  # re-init onto another provider: retire the old pipeline
            slot = _attach(provider)
            reachability = Reachability()
            pipeline = Pipeline(
                exporter or make_otlp_exporter(config, reachability), config, STATE.stats, policy, reachability
            )
            old = slot.swap(pipeline)

            STATE.config = config
            STATE.policy = policy
            STATE.provider = provider
            STATE.owns_provider = owns
            STATE.slot = slot
            STATE.tracer = provider.get_tracer(SCOPE_NAME, __version__)
            STATE.initialized = True
            if not STATE.atexit_registered:
                atexit.register(_at_exit)
                STATE.atexit_registered = True
        if old is not None:
            _retire(old, config.shutdown_timeout)

        from .instrumentations import enable

        STATE.instrumentations.update(enable(config.auto_instrument, provider, config.capture_content))
        return True
    except Exception as exc:
        _internal.handle(exc, "init")
        _internal.warn_once("init-failed", "causeline: init failed (%r); the application runs uninstrumented", exc)
        return False


def _retire(pipeline: Pipeline, timeout: float) -> None:
    """Flush and stop a replaced pipeline in the background (init never waits on the network)."""
    threading.Thread(target=pipeline.shutdown, args=(timeout,), name="causeline-retire", daemon=True).start()


def _detach_pipeline() -> None:
    slot = STATE.slot
    if slot is not None:
        old = slot.swap(None)
        if old is not None:
            _retire(old, STATE.config.shutdown_timeout if STATE.config else 5.0)
    STATE.slot = None


def flush(timeout: float = 5.0) -> bool:
    """Export everything queued so far; wait at most ``timeout`` seconds.

    Returns True when the queue was drained in time. Never raises.
    """
    try:
        slot = STATE.slot
        if slot is None or slot.pipeline is None:
            return True
        return slot.pipeline.force_flush(timeout)
    except Exception as exc:
        _internal.handle(exc, "flush")
        return False


def shutdown(timeout: float | None = None) -> None:
    """Flush and stop exporting (waits at most ``timeout`` seconds, default
    ``shutdown_timeout``). Spans ended afterwards are not exported until
    ``init`` is called again. Never raises."""
    try:
        with STATE.lock:
            slot = STATE.slot
            pipeline = slot.swap(None) if slot is not None else None
            STATE.initialized = False
        if pipeline is not None:
            pipeline.shutdown(timeout)
    except Exception as exc:
        _internal.handle(exc, "shutdown")


def _at_exit() -> None:
    try:
        shutdown()
    except BaseException:  # pragma: no cover - never disturb interpreter exit
        pass
