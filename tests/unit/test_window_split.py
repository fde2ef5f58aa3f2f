from datetime import datetime, timezone

import pytest

from core.window import split_hours


def t(h: int, m: int = 0, s: int = 0) -> datetime:
    return datetime(2026, 1, 5, h, m, s, tzinfo=timezone.utc)


@pytest.mark.parametrize("since,until,whole,edges", [
    (t(10), t(16), (t(10), t(16)), []),                              # aligned: rollups only
    (t(10, 30), t(16), (t(11), t(16)), [(t(10, 30), t(11))]),        # partial first hour
    (t(10), t(15, 59, 59), (t(10), t(15)), [(t(15), t(15, 59, 59))]),  # partial last hour
    (t(10, 30), t(12, 15), (t(11), t(12)), [(t(10, 30), t(11)), (t(12), t(12, 15))]),
    (t(10, 30), t(11, 15), None, [(t(10, 30), t(11, 15))]),          # across one boundary, no whole hour
    (t(10, 5), t(10, 20), None, [(t(10, 5), t(10, 20))]),            # inside one hour
    (t(10, 30), t(11), None, [(t(10, 30), t(11))]),
])
def test_split_hours_covers_the_window_exactly_once(since, until, whole, edges):
    got_whole, got_edges = split_hours(since, until)
    assert (got_whole, got_edges) == (whole, edges)
    pieces = sorted(([got_whole] if got_whole else []) + got_edges)
    assert pieces[0][0] == since and pieces[-1][1] == until
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))  # contiguous, no overlap
