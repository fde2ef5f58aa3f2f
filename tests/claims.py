"""Two background passes (attributor, evaluator) at once, as two collector processes run them."""

from __future__ import annotations

from typing import Callable

from sqlalchemy import text


def two_passes_at_once(sessionmaker, run_pass: Callable, first_limit: int, second_limit: int) -> tuple[int, int]:
    """`run_pass(session, limit)` in two transactions at once: the first holds its claims while the
    second runs; waiting on the first's locks would fail the second at once (lock_timeout) rather
    than be timed. Both commit; returns what each pass did."""
    first, second = sessionmaker(), sessionmaker()
    try:
        done_first = run_pass(first, first_limit)
        second.execute(text("SET LOCAL lock_timeout = '50ms'"))
        done_second = run_pass(second, second_limit)
        first.commit()
        second.commit()
    finally:
        first.close()
        second.close()
    return done_first, done_second
