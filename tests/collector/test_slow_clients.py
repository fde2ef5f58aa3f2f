"""Slow clients are cut off: real sockets against the server as `causeline serve` configures
it, with small deadlines. No timing is asserted: each test only needs the server to act
within a socket timeout that is many times the configured deadline."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest

from server.slow_clients import AddressCap
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


PER_ADDRESS = 3


@pytest.fixture
def capped(database_url, engine, sessionmaker, project):
    # A header deadline far beyond the test, so idle connections stay open until closed here.
    settings = make_settings(database_url, header_timeout_s=PATIENCE_S * 4, max_connections_per_address=PER_ADDRESS)
    service, app = start_collector(database_url, engine, sessionmaker, project, settings=settings)
    with live_server(app, as_served=True) as url:
        parts = urlsplit(url)
        yield (parts.hostname, parts.port), project[1]
    service.stop()


def _from(source: str, address) -> socket.socket:
    sock = socket.create_connection(address, timeout=PATIENCE_S, source_address=(source, 0))
    sock.settimeout(PATIENCE_S)
    return sock


def _served(sock: socket.socket, key: str) -> bytes:
    try:
        sock.sendall(f"GET /api/traces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n".encode())
        return sock.recv(65536)
    except (BrokenPipeError, ConnectionResetError):  # refused and closed before the request went out
        return b""


def _refused(sock: socket.socket) -> bool:
    """Whether the server answered 503 and closed without being sent anything."""
    answer = _read_until_closed(sock)
    return (answer.startswith(b"HTTP/1.1 503") and b"too many open connections" in answer
            and b"\r\nretry-after: " in answer)  # a refusal the client may retry says when


def test_connections_beyond_the_per_address_cap_are_refused_and_other_addresses_served(capped):
    address, key = capped
    held = [_from("127.0.0.1", address) for _ in range(PER_ADDRESS)]
    try:
        assert _served(held[0], key).startswith(b"HTTP/1.1 200")  # within the cap: served
        with _from("127.0.0.1", address) as extra:
            assert _refused(extra)
        with _from("127.0.0.2", address) as other:  # another address has its own count
            assert _served(other, key).startswith(b"HTTP/1.1 200")
        held.pop().close()
        # Once the server has seen the close, the address has a free slot again. Refusals before
        # that are the cap working, not a failure; only a slot that never frees fails.
        for _ in range(300):
            with _from("127.0.0.1", address) as again:
                if _served(again, key).startswith(b"HTTP/1.1 200"):
                    break
            time.sleep(0.1)
        else:
            pytest.fail("the address never got its slot back after closing a connection")
    finally:
        for sock in held:
            sock.close()


@pytest.mark.parametrize("exempt, host, expected", [
    ("", "10.0.0.1", [True, True, False]),
    ("10.0.0.1", "10.0.0.1", [True, True, True]),  # a trusted proxy carries many clients
    ("10.0.0.0/24, 192.168.1.1", "10.0.0.7", [True, True, True]),
    ("10.0.0.0/24", "10.0.1.7", [True, True, False]),
    ("*", "203.0.113.9", [True, True, True]),
    ("not-an-address", "203.0.113.9", [True, True, False]),
])
def test_address_cap_table(exempt, host, expected):
    cap = AddressCap(2, exempt)
    assert [cap.acquire(host) for _ in expected] == expected


def test_address_cap_frees_a_slot_on_release():
    cap = AddressCap(1)
    assert cap.acquire("::1") and not cap.acquire("::1") and cap.acquire("127.0.0.1")
    cap.release("::1")
    assert cap.open("::1") == 0 and cap.acquire("::1")
