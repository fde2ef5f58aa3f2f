"""Slow clients are cut off: real sockets against the server as `causeline serve` configures
it, with small deadlines. No timing is asserted: each test only needs the server to act
within a socket timeout that is many times the configured deadline."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest

from tests.collector.conftest import make_settings, start_collector
from tests.live import live_server

HEADER_S, BODY_S = 0.5, 1.0
PATIENCE_S = 30  # far beyond either deadline: only a server that never acts fails


@pytest.fixture
def served(database_url, engine, sessionmaker, project):
    settings = make_settings(database_url, header_timeout_s=HEADER_S, body_timeout_s=BODY_S)
    service, app = start_collector(database_url, engine, sessionmaker, project, settings=settings)
    with live_server(app, as_served=True) as url:
        parts = urlsplit(url)
        yield (parts.hostname, parts.port), project[1]
    service.stop()


def _connect(address) -> socket.socket:
    sock = socket.create_connection(address, timeout=PATIENCE_S)
    sock.settimeout(PATIENCE_S)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; socket.timeout if it never does."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _closed_while_trickling(sock: socket.socket, piece: bytes) -> bool:
    """Sends `piece` every 0.1 s until the server closes the connection (True) or 30 s pass."""
    sock.settimeout(0.1)
    for _ in range(300):
        try:
            sock.sendall(piece)
            if sock.recv(65536) == b"":
                return True
        except socket.timeout:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return True
    return False


def test_a_connection_that_sends_nothing_is_closed(served):
    address, _ = served
    with _connect(address) as sock:
        assert _read_until_closed(sock) == b""


def test_headers_trickled_byte_by_byte_are_cut_off(served):
    address, _ = served
    with _connect(address) as sock:
        sock.sendall(b"GET /api/traces HTTP/1.1\r\nHost: x\r\n")
        assert _closed_while_trickling(sock, b"X")


def test_the_next_request_on_a_kept_alive_connection_has_its_own_deadline(served):
    address, key = served
    with _connect(address) as sock:
        sock.sendall(f"GET /api/traces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n".encode())
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        time.sleep(0.1)
        sock.sendall(b"GET /api/traces HTTP/1.1\r\n")
        assert _closed_while_trickling(sock, b"X")


def test_an_otlp_body_that_never_completes_is_answered_408(served):
    address, key = served
    with _connect(address) as sock:
        sock.sendall(f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"resourceSpans\": ".encode())
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"did not arrive within" in answer


def test_a_prompt_client_is_served(served):
    address, key = served
    body = b'{"resourceSpans": []}'
    with _connect(address) as sock:
        sock.sendall(f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
