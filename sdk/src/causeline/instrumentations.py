"""Turn on the official OpenTelemetry GenAI instrumentations that are installed.

``init(auto_instrument=True)`` enables every entry below whose client library
and instrumentation package are both importable, plus thread context
propagation. Pass a list (``auto_instrument=["openai"]``) to choose, or
``False`` for none. The outcome per name is in ``causeline.stats()["instrumentations"]``:
``enabled``, ``missing`` (not installed) or ``failed: <error>`` (installed but
broken, e.g. an incompatible ``opentelemetry-util-genai``); failures are
logged, never raised.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

from . import _internal

# name -> (client module, instrumentation module, instrumentor class, pip extra)
REGISTRY: dict[str, tuple[str, str, str, str]] = {
    "openai": ("openai", "opentelemetry.instrumentation.openai_v2", "OpenAIInstrumentor", "causeline[openai]"),
}

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

_instrumentors: dict[str, Any] = {}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _configure_content_capture(capture_content: bool) -> None:
    """The GenAI instrumentations read their content switch from the environment.

    With capture on we ask for content on spans (where our exporter redacts it);
    an explicit user setting is respected either way, and content from other
    instrumentations is stripped at export time when capture is off.
    """
    if capture_content and not os.environ.get(CAPTURE_ENV):
        os.environ[CAPTURE_ENV] = "SPAN_ONLY"


def enable(names: frozenset[str] | bool, tracer_provider: Any, capture_content: bool) -> dict[str, str]:
    """Enable the selected instrumentations; never raises (except in debug-raise mode)."""
    results: dict[str, str] = {}
    if names is False:
        return results
    wanted = set(REGISTRY) | {"threading"} if names is True else set(names)  # type: ignore[arg-type]

    if "threading" in wanted:
        from .threads import instrument_threads

        try:
            instrument_threads()
            results["threading"] = "enabled"
        except Exception as exc:
            results["threading"] = f"failed: {exc!r}"
            _internal.handle(exc, "instrument threading")

    _configure_content_capture(capture_content)
    for name in sorted(wanted - {"threading"}):
        spec = REGISTRY.get(name)
        if spec is None:
            results[name] = "unknown"
            _internal.warn_once(f"instr-unknown:{name}", "causeline: unknown instrumentation %r", name)
            continue
        client, module, cls_name, extra = spec
        if not _installed(client):
            results[name] = "missing"
            continue
        if name in _instrumentors:
            results[name] = "enabled"
            continue
        if not _installed(module.rsplit(".", 1)[0]) or not _installed(module):
            results[name] = "missing"
            if names is not True:
                _internal.warn_once(
                    f"instr-missing:{name}",
                    "causeline: %s is installed but its instrumentation is not; pip install '%s'",
                    client,
                    extra,
                )
            continue
        try:
            instrumentor = getattr(importlib.import_module(module), cls_name)()
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(tracer_provider=tracer_provider)
            if not instrumentor.is_instrumented_by_opentelemetry:
                # BaseInstrumentor refuses (and logs) on a dependency version conflict.
                raise RuntimeError(f"{cls_name}.instrument() refused; check the versions of {client}")
            _instrumentors[name] = instrumentor
            results[name] = "enabled"
        except Exception as exc:  # e.g. incompatible opentelemetry-util-genai
            results[name] = f"failed: {type(exc).__name__}: {exc}"
            _internal.warn_once(
                f"instr-failed:{name}",
                "causeline: could not enable the %s instrumentation (%r); model calls through %s "
                "are not recorded automatically. The pinned versions in '%s' are known to work.",
                name,
                exc,
                client,
                extra,
            )
    return results


def disable_all() -> None:
    """Uninstrument everything :func:`enable` turned on (used by tests)."""
    from .threads import uninstrument_threads

    for name, instrumentor in list(_instrumentors.items()):
        try:
            instrumentor.uninstrument()
        except Exception as exc:
            _internal.record(exc, f"uninstrument {name}")
        _instrumentors.pop(name, None)
    uninstrument_threads()
