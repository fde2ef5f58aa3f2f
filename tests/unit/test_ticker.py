"""core/ticker.py: the loop every background job runs in."""

from __future__ import annotations

import threading

from core.ticker import Ticker


def test_first_runs_at_start_then_ticks_and_a_failing_tick_never_ends_the_job():
    calls: list[str] = []
    ticked = threading.Event()

    def tick():
        calls.append("tick")
        if calls.count("tick") == 1:
            raise RuntimeError("one bad round")  # logged; the next tick still comes
        ticked.set()

    ticker = Ticker("test-ticker", 0.01, tick, first=lambda: calls.append("first"), what="test job")
    ticker.start()
    assert ticked.wait(30)
    assert ticker.running
    ticker.stop()
    assert not ticker.running
    assert calls[0] == "first" and calls.count("tick") >= 2


def test_stop_is_seen_by_a_draining_tick_and_the_job_can_start_again():
    seen = threading.Event()
    box: dict[str, Ticker] = {}

    def drain():
        while not box["t"].stopping():
            seen.set()
            threading.Event().wait(0.005)

    box["t"] = ticker = Ticker("test-drain", 0.01, drain)
    ticker.start()
    assert seen.wait(30)
    ticker.stop()  # returns: the drain loop saw stopping()
    assert not ticker.running
    seen.clear()
    ticker.start()
    assert seen.wait(30)
    ticker.stop()
