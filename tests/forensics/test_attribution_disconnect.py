"""GET /api/traces/{id}/attribution stops working when its client has gone (real server,
real PostgreSQL, a 20,000-span trace; the client hangs up long before the answer)."""

from __future__ import annotations

import logging
import socket
import time
from urllib.parse import urlsplit

import psycopg
import pytest

from core.normalize import normalize
from core.span import RawSpan
from db.engine import libpq_url
from db.ingest import edge_rows, prepare_connection, span_row, write_batch
from tests.collector.conftest import collector  # noqa: F401 - the fixture

TRACE = bytes.fromhex("d15c" * 8)
MS = 1_000_000


def hostile_chain(n: int):
    """A parent chain n deep, every other span failed."""
    base = time.time_ns() - 60_000 * MS
    raws = [RawSpan(TRACE, (i + 1).to_bytes(8, "big"), i.to_bytes(8, "big") if i else None, f"step {i}", 1,
                    base + i * MS, base + (2 * n - i) * MS, 2 if i % 2 == 0 else 0, "failed" if i % 2 == 0 else "",
                    {}, (), (), {"service.name": "hostile"}) for i in range(n)]
    return [normalize(raw) for raw in raws]


def get_then_hang_up(url: str, path: str, key: str, wait: float) -> None:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {key}\r\n\r\n".encode())
        time.sleep(wait)


@pytest.mark.parametrize("hang_up", [True, False])
def test_attribution_stops_when_the_client_goes(collector, database_url, caplog, hang_up):  # noqa: F811
    spans = hostile_chain(20_000)
    with psycopg.connect(libpq_url(database_url)) as conn:
        prepare_connection(conn)
        write_batch(conn, [span_row(collector.project_id, s) for s in spans],
                    [e for s in spans for e in edge_rows(collector.project_id, s)])
    path = f"/api/traces/{TRACE.hex()}/attribution"
    with caplog.at_level(logging.INFO, logger="causeline.api"):
        if hang_up:
            get_then_hang_up(collector.url, path, collector.key, 0.2)
            deadline = time.monotonic() + 120
            while "stopped: the client went away" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
            assert f"attribution of trace {TRACE.hex()} stopped: the client went away" in caplog.text
        else:  # the control: a client that waits gets the whole answer
            import httpx
            response = httpx.get(collector.url + path, headers=collector.auth(), timeout=300)
            assert response.status_code == 200
            assert len(response.json()["failures"]) == 10_000
            assert "stopped" not in caplog.text
