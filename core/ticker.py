"""The one loop of the server's background jobs (attributor, evaluator, storage maintenance,
alerts): a daemon thread that calls a function every `interval` seconds until stopped.

No I/O of its own: the jobs bring theirs. A failing call is logged and the next tick retries,
so one bad round never ends the job."""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)


class Ticker:
    def __init__(self, name: str, interval: float, tick: Callable[[], object], *,
                 first: Callable[[], object] | None = None, what: str = "") -> None:
        """`tick` runs every `interval` seconds, the first time one interval after start();
        `first`, when given, runs at start. `what` names the job in the log ("failure attribution")."""
        self.name, self.interval, self._tick, self._first = name, interval, tick, first
        self._what = what or name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stopping(self) -> bool:
        """For a tick that works in a loop: stop between steps once stop() was called."""
        return self._stop.is_set()

    def pause(self, seconds: float) -> bool:
        """Wait inside a tick, cut short by stop(); True when stopping."""
        return self._stop.wait(seconds)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        if self._first is not None:
            self._call(self._first)
        while not self._stop.wait(self.interval):
            self._call(self._tick)

    def _call(self, function: Callable[[], object]) -> None:
        try:
            function()
        except Exception:  # noqa: BLE001 - keep the job alive; the next tick retries
            log.exception("%s failed; retrying on the next tick", self._what)
