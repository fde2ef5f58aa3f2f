"""Throttling for POST /login: password checks are expensive on purpose, so they are rationed.

argon2id costs ~110 ms of CPU and 64 MiB per check. Unthrottled, a few dozen concurrent
logins would occupy every worker thread (AnyIO's pool is shared with all pages and API
calls) and a large amount of memory. Two independent limits:

- Concurrency: at most `max_concurrent` checks run at once, across the process. A login
  arriving while all slots are busy is answered 429 at once (it never waits, so it never
  holds a thread).
- Failures: a sliding window of failed logins per email and per client address. Past the
  limit, logins for that email / from that address get 429 without any password check
  until the oldest failure in the window expires. A successful login clears its email's
  failures (not the address's: one good account must not reset a guessing spree).

State is in memory, per process (so N processes allow N times the rate), and bounded:
each limiter keeps at most `max_keys` keys, evicting the least recently failed ones.
One instance lives on `app.state.login_guard` (server.app.create_app).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Callable


class FailureWindow:
    """At most `limit` failures per key in any `window_s` seconds."""

    def __init__(self, limit: int, window_s: float, *, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self.max_keys, self._clock = limit, window_s, max_keys, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again; 0 when it may now."""
        with self._lock:
            times = self._failures.get(key)
            if times is None:
                return 0
            now = self._clock()
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if not times:
                del self._failures[key]
                return 0
            if len(times) < self.limit:
                return 0
            return max(1, math.ceil(times[0] + self.window_s - now))

    def fail(self, key: str) -> None:
        with self._lock:
            times = self._failures.pop(key, None) or deque(maxlen=self.limit)
            times.append(self._clock())
            self._failures[key] = times  # most recent last
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def reset(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)


@dataclass(frozen=True)
class Refusal:
    retry_after: int
    message: str


class LoginGuard:
    def __init__(self, *, max_concurrent: int = 2, busy_retry_after: int = 1,
                 email_failures: int = 10, ip_failures: int = 50, window_s: float = 15 * 60,
                 max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self.busy_retry_after = busy_retry_after
        self.by_email = FailureWindow(email_failures, window_s, max_keys=max_keys, clock=clock)
        self.by_ip = FailureWindow(ip_failures, window_s, max_keys=max_keys, clock=clock)

    def refuse(self, ip: str, email: str) -> Refusal | None:
        """Why this attempt may not even be checked (too many recent failures), or None."""
        wait = max(self.by_ip.retry_after(ip), self.by_email.retry_after(email) if email else 0)
        if wait:
            return Refusal(wait, f"Too many failed logins. Try again in {_minutes(wait)}.")
        return None

    def try_acquire(self) -> bool:
        """A password-check slot, without waiting; release() it afterwards."""
        return self._slots.acquire(blocking=False)

    def release(self) -> None:
        self._slots.release()

    def busy(self) -> Refusal:
        return Refusal(self.busy_retry_after, "Too many logins at once. Try again in a moment.")

    def failed(self, ip: str, email: str) -> None:
        self.by_ip.fail(ip)
        if email:
            self.by_email.fail(email)

    def succeeded(self, email: str) -> None:
        self.by_email.reset(email)


def _minutes(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    return "a minute" if minutes <= 1 else f"{minutes} minutes"
