"""Process-wide SDK state (one instance, ``STATE``)."""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry import trace

from ._version import __version__
from .config import Config
from .redaction import ContentPolicy
from .stats import Stats

SCOPE_NAME = "causeline"


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.initialized = False
        self.config: Config | None = None
        self.provider: Any = None
        self.owns_provider = False
        self.slot: Any = None  # export.CauselineSpanProcessor
        # Until init() runs, spans go to whatever global provider exists (a proxy).
        self.tracer: trace.Tracer = trace.get_tracer(SCOPE_NAME, __version__)
        # Error messages are redacted with the built-in patterns even before init.
        self.policy = ContentPolicy(enabled=False)
        self.stats = Stats()
        self.instrumentations: dict[str, str] = {}
        self.atexit_registered = False


STATE = _State()
