"""A request answered before its body was read does not leave that body in the server's memory
while its connection stays open (server/slow_clients.py): 256 clients retrying refused exports
held ~80 MB so. Real sockets against the protocol `causeline serve` runs; the memory is
what tracemalloc counts in this process, where the server runs."""

from __future__ import annotations

import socket
import tracemalloc
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from core.settings import Settings
from tests.live import live_server

CONNECTIONS = 40
BODY = 1 << 20
HELD_BEFORE_PAUSING = 64 * 1024  # uvicorn buffers at least this much of a body before it stops reading
# Measured: 137 KB per connection while the body was kept, 13 KB (the connection's own state) after.


async def refuse_unread(request):
    return Response(b"busy", status_code=503, headers={"retry-after": "2"})  # the body is never read


def refusing_app() -> Starlette:
    app = Starlette(routes=[Route("/v1/traces", refuse_unread, methods=["POST"])])
    app.state.settings = Settings(database_url="postgresql://unused/unused", max_connections_per_address=CONNECTIONS + 10)
    return app


def send_refused(address) -> socket.socket:
    """Headers and as much of a 1 MiB body as the socket takes; the answer read; the connection
    kept open, as by a client about to retry."""
    sock = socket.create_connection(address, timeout=30)
    head = (f"POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\n"
            f"content-length: {BODY}\r\n\r\n").encode()
    sock.sendall(head)
    sock.setblocking(False)
    try:
        sock.send(b"\x00" * BODY)
    except BlockingIOError:
        pass
    sock.settimeout(30)
    answer = b""
    while b"\r\n\r\nbusy" not in answer:
        answer += sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 503")
    return sock


def test_a_refused_requests_unread_body_is_not_held_while_its_connection_stays_open():
    with live_server(refusing_app(), as_served=True) as url:
        address = (urlsplit(url).hostname, urlsplit(url).port)
        send_refused(address).close()  # the first request's one-time allocations, before counting
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            held = [send_refused(address) for _ in range(CONNECTIONS)]
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        for sock in held:
            sock.close()
    per_connection = (after - before) / CONNECTIONS
    assert per_connection < HELD_BEFORE_PAUSING * 3 / 4, f"{per_connection:.0f} bytes held per open connection"
