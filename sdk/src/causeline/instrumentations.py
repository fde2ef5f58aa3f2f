"""Turn on the GenAI instrumentations that are installed.

``init(auto_instrument=True)`` enables every entry of ``REGISTRY`` whose client
library (and instrumentation, where one is needed) is importable, plus thread
context propagation. Pass a list (``auto_instrument=["openai", "anthropic"]``)
to choose, or ``False`` for none. One source of spans per client, so a model
call is never recorded twice:

* ``openai``, ``google_genai``: the official OpenTelemetry instrumentations
  (``opentelemetry-instrumentation-openai-v2``, ``-google-genai``);
* ``anthropic``: the spans the ``anthropic`` client emits itself (1.14 and
  later); there is no official instrumentation, and a third-party one is never
  enabled on top of them;
* ``litellm``: litellm's own OpenTelemetry callback, asked for a span of its
  own per call (``USE_OTEL_LITELLM_REQUEST_SPAN``) instead of writing onto the
  caller's span. When litellm calls through the OpenAI client, the OpenAI
  instrumentation's span of the same response is kept and litellm's is not
  sent (see ``export.Duplicates``).

The outcome per name is in ``causeline.stats()["instrumentations"]``:
``enabled``, ``missing`` (not installed), ``not imported`` (litellm, see
below) or ``failed: <error>``; failures are logged, never raised.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import _internal

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ANTHROPIC_TRACES_ENV = "ANTHROPIC_OPEN_TELEMETRY"
ANTHROPIC_CONTENT_ENV = "ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE"
LITELLM_OWN_SPAN_ENV = "USE_OTEL_LITELLM_REQUEST_SPAN"


@dataclass(frozen=True)
class Instrumentation:
    client: str  # the client's import name
    extra: str  # pip extra that pins versions known to work
    module: str | None = None  # official OpenTelemetry instrumentation: module and class
    cls: str | None = None
    hook: str | None = None  # or a function of this module: (tracer_provider, capture_content) -> status


REGISTRY: dict[str, Instrumentation] = {
    "openai": Instrumentation(
        "openai", "causeline[openai]", "opentelemetry.instrumentation.openai_v2", "OpenAIInstrumentor"
    ),
    "google_genai": Instrumentation(
        "google.genai",
        "causeline[google-genai]",
        "opentelemetry.instrumentation.google_genai",
        "GoogleGenAiSdkInstrumentor",
    ),
    "anthropic": Instrumentation("anthropic", "causeline[anthropic]", hook="_enable_anthropic"),
    "litellm": Instrumentation("litellm", "causeline[litellm]", hook="_enable_litellm"),
}
ALIASES = {"google-genai": "google_genai", "gemini": "google_genai"}

_instrumentors: dict[str, Any] = {}
_undo: dict[str, Callable[[], None]] = {}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _configure_content_capture(capture_content: bool) -> None:
    """The instrumentations read their content switch from the environment.

    With capture on we ask for content on spans (where our exporter redacts it);
    an explicit user setting is respected either way, and content from other
    instrumentations is stripped at export time when capture is off.
    """
    if capture_content:
        if not os.environ.get(CAPTURE_ENV):
            os.environ[CAPTURE_ENV] = "SPAN_ONLY"
        if not os.environ.get(ANTHROPIC_CONTENT_ENV):
            os.environ[ANTHROPIC_CONTENT_ENV] = "content"


# -- clients that record themselves ---------------------------------------------------


def _enable_anthropic(tracer_provider: Any, capture_content: bool) -> str:
    """The anthropic client's own spans (``anthropic.messages.create``, GenAI attributes).

    They go to the global tracer provider (or the one given to the client as
    ``open_telemetry={"tracer_provider": ...}``); nothing to patch, only to check.
    """
    # Checked by version, not by importing anthropic: init stays fast.
    version = importlib.metadata.version("anthropic")
    if _version_tuple(version) < (1, 14):
        raise RuntimeError(f"anthropic {version} emits no OpenTelemetry spans; anthropic>=1.14 does")
    if os.environ.get(ANTHROPIC_TRACES_ENV, "").strip().lower() == "false":
        return f"disabled by {ANTHROPIC_TRACES_ENV}=false"
    return "enabled"


def _version_tuple(version: str) -> tuple[int, ...]:
    """The leading numbers of a version: "1.14.0rc1" -> (1, 14, 0)."""
    match = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", version)
    return tuple(int(part) for part in match.groups() if part is not None) if match else ()


def _enable_litellm(tracer_provider: Any, capture_content: bool) -> str:
    """litellm's OpenTelemetry callback, recording onto ``tracer_provider``."""
    import litellm
    from litellm.integrations.opentelemetry import OpenTelemetry

    # One litellm_request span per call, a child of the caller's span; without
    # it litellm writes the call's attributes onto the caller's own span.
    os.environ.setdefault(LITELLM_OWN_SPAN_ENV, "true")
    callbacks = list(litellm.callbacks or [])
    if not any(cb == "otel" or isinstance(cb, OpenTelemetry) for cb in callbacks):
        callback = OpenTelemetry(tracer_provider=tracer_provider)
        litellm.callbacks = [*callbacks, callback]

        def undo() -> None:
            litellm.callbacks = [cb for cb in (litellm.callbacks or []) if cb is not callback]

        _undo["litellm"] = undo
    return "enabled"


# -- enable / disable ------------------------------------------------------------------


def enable(names: frozenset[str] | bool, tracer_provider: Any, capture_content: bool) -> dict[str, str]:
    """Enable the selected instrumentations; never raises (except in debug-raise mode)."""
    results: dict[str, str] = {}
    if names is False:
        return results
    auto = names is True
    wanted = set(REGISTRY) | {"threading"} if auto else {ALIASES.get(n, n) for n in names}  # type: ignore[union-attr]

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
        if not _installed(spec.client.split(".")[0]) or not _installed(spec.client):
            results[name] = "missing"
            continue
        if name in _instrumentors or name in _undo:
            results[name] = "enabled"
            continue
        if auto and name == "litellm" and "litellm" not in sys.modules:
            # Importing litellm can take many seconds (it fetches its price list);
            # init never pays for that unless asked by name.
            results[name] = "not imported"
            continue
        try:
            if spec.hook is not None:
                results[name] = globals()[spec.hook](tracer_provider, capture_content)
                continue
            assert spec.module is not None and spec.cls is not None
            if not _installed(spec.module.rsplit(".", 1)[0]) or not _installed(spec.module):
                results[name] = "missing"
                if not auto:
                    _internal.warn_once(
                        f"instr-missing:{name}",
                        "causeline: %s is installed but its instrumentation is not; pip install '%s'",
                        spec.client,
                        spec.extra,
                    )
                continue
            instrumentor = getattr(importlib.import_module(spec.module), spec.cls)()
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(tracer_provider=tracer_provider)
            if not instrumentor.is_instrumented_by_opentelemetry:
                # BaseInstrumentor refuses (and logs) on a dependency version conflict.
                raise RuntimeError(f"{spec.cls}.instrument() refused; check the versions of {spec.client}")
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
                spec.client,
                spec.extra,
            )
    return results


def disable_all() -> None:
    """Undo everything :func:`enable` turned on (used by tests)."""
    from .threads import uninstrument_threads

    for name, instrumentor in list(_instrumentors.items()):
        try:
            instrumentor.uninstrument()
        except Exception as exc:
            _internal.record(exc, f"uninstrument {name}")
        _instrumentors.pop(name, None)
    for name, undo in list(_undo.items()):
        try:
            undo()
        except Exception as exc:
            _internal.record(exc, f"uninstrument {name}")
        _undo.pop(name, None)
    uninstrument_threads()
