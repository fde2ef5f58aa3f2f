"""Throttling for POST /login: password checks are expensive on purpose, so they are rationed.

argon2id costs ~110 ms of CPU and 64 MiB per check. Unthrottled, a few dozen concurrent
logins would occupy every worker thread (AnyIO's pool is shared with all pages and API
calls) and a large amount of memory. Two independent limits:

- Concurrency: at most `max_concurrent` checks run at once, across the process. A login
  arriving while all slots are busy is answered 429 at once (it never waits, so it never
  holds a thread).
- Failures, counted three ways so that guessing is throttled but nobody can lock an owner out:
  per (email, client address) pair and per client address, a sliding window (past the limit,
  429 without any password check until the oldest failure expires); per email from any
  address, only a growing delay between attempts (1 s, 2 s, 4 s ... capped at 30 s) once a few
  have failed — an attacker elsewhere slows guessing on an account, but its owner, from their
  own address, waits seconds, never the 15 minutes a per-email lockout would hand out.
  A successful login clears its email's failures (not the address's: one good account must
  not reset a guessing spree).

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


class GrowingDelay:
    """After `free` failures of a key within `window_s`, each attempt waits 2^(n - free) seconds
    (at most `max_delay_s`) after the last failure."""

    def __init__(self, free: int, window_s: float, max_delay_s: float, *, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.free, self.max_delay_s = free, max_delay_s
        self._window = FailureWindow(10_000, window_s, max_keys=max_keys, clock=clock)
        self._last: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._clock, self.window_s, self.max_keys = clock, window_s, max_keys
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int:
        with self._lock:
            entry = self._last.get(key)
            if entry is None:
                return 0
            count, last = entry
            now = self._clock()
            if now - last > self.window_s:
                del self._last[key]
                return 0
            if count < self.free:
                return 0
            delay = min(2 ** (count - self.free), self.max_delay_s)
            return max(0, math.ceil(last + delay - now))

    def fail(self, key: str) -> None:
        with self._lock:
            count, last = self._last.pop(key, (0, 0.0))
            now = self._clock()
            count = 1 if now - last > self.window_s else count + 1
            self._last[key] = (count, now)
            while len(self._last) > self.max_keys:
                self._last.popitem(last=False)

    def reset(self, key: str) -> None:
        with self._lock:
            self._last.pop(key, None)


@dataclass(frozen=True)
class Refusal:
    retry_after: int
    message: str


class LoginGuard:
    def __init__(self, *, max_concurrent: int = 2, busy_retry_after: int = 1,
                 pair_failures: int = 10, ip_failures: int = 50, email_free_failures: int = 5,
                 email_max_delay_s: float = 30, window_s: float = 15 * 60,
                 max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self.busy_retry_after = busy_retry_after
        self.by_pair = FailureWindow(pair_failures, window_s, max_keys=max_keys, clock=clock)
        self.by_ip = FailureWindow(ip_failures, window_s, max_keys=max_keys, clock=clock)
        self.by_email = GrowingDelay(email_free_failures, window_s, email_max_delay_s, max_keys=max_keys, clock=clock)

    def refuse(self, ip: str, email: str) -> Refusal | None:
        """Why this attempt may not even be checked (too many recent failures), or None."""
        wait = max(self.by_ip.retry_after(ip), self.by_pair.retry_after(f"{email}|{ip}") if email else 0)
        if wait:
            return Refusal(wait, f"Too many failed logins. Try again in {_minutes(wait)}.")
        delay = self.by_email.retry_after(email) if email else 0
        if delay:
            return Refusal(delay, f"Several failed logins for this account: wait {delay} s before the next try.")
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
            self.by_pair.fail(f"{email}|{ip}")
            self.by_email.fail(email)

    def succeeded(self, email: str, ip: str = "") -> None:
        self.by_email.reset(email)
        self.by_pair.reset(f"{email}|{ip}")


def _minutes(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    return "a minute" if minutes <= 1 else f"{minutes} minutes"
