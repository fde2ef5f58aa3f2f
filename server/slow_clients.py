"""Deadlines for slow clients, at the connection.

uvicorn closes a connection that idles after a response (timeout_keep_alive), but nothing
bounds a request still arriving: a client that opens a connection and sends nothing, or
trickles its headers a byte at a time, holds the connection (and a slot of
limit_concurrency) for as long as it likes. This is uvicorn's httptools protocol (the one
"auto" picks) plus two deadlines, through the parser callbacks the protocol already has:

- the head: from the connection opening, or from a later request's first byte, to the end of
  its headers: CAUSELINE_HEADER_TIMEOUT_S;
- the body, as a backstop: from the end of the headers to the end of the body,
  CAUSELINE_BODY_TIMEOUT_S plus a grace, so the collector's own deadline (which answers 408,
  collector/body.py) speaks first; other routes' bodies are small forms.

When a deadline passes, the connection is closed. Time spent by the application is never
counted: no deadline runs between a request's end and its response.

A refused request's unread body is dropped as soon as its answer is sent (not kept until the
connection's next request).

It also caps the connections one client address holds open on the listener
(CAUSELINE_MAX_CONNECTIONS_PER_ADDRESS): one address cannot take all of limit_concurrency.
A connection beyond the cap is answered 503 and closed before anything is read; trusted
proxies, which carry many clients, are exempt.

The callbacks overridden here are uvicorn's protocol internals, not a documented API: that is
why pyproject.toml pins uvicorn to the minor version this was tested with.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

BODY_GRACE_S = 5.0


_REFUSED_BODY = b"too many open connections from this address\r\n"


def refused(retry_after_s: int) -> bytes:
    """The answer to a connection beyond the cap: 503 with Retry-After, as every refusal that a
    client may retry (an OTLP exporter retries a 503 only after the Retry-After it names, or soon)."""
    return (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
            b"retry-after: %d\r\ncontent-length: %d\r\n\r\n%s" % (retry_after_s, len(_REFUSED_BODY), _REFUSED_BODY))


class AddressCap:
    """Open connections per client address on one listener (its event loop only: no lock)."""

    def __init__(self, limit: int, exempt: str = "", retry_after_s: int = 2) -> None:
        self.limit = limit
        self.refusal = refused(retry_after_s)
        self._open: Counter[str] = Counter()
        entries = [e.strip() for e in exempt.split(",") if e.strip()]
        self._exempt_all = "*" in entries
        self._exempt = [ipaddress.ip_network(e, strict=False) for e in entries if _is_network(e)]

    def exempt(self, host: str) -> bool:
        if self._exempt_all:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._exempt)

    def acquire(self, host: str) -> bool:
        """Counts a connection from `host`; False (nothing counted) when it has `limit` open."""
        if self._open[host] >= self.limit and not self.exempt(host):
            return False
        self._open[host] += 1
        return True

    def release(self, host: str) -> None:
        self._open[host] -= 1
        if self._open[host] <= 0:
            del self._open[host]

    def open(self, host: str) -> int:
        return self._open[host]


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
        return True
    except ValueError:
        return False


def _peer_host(transport) -> str | None:
    peer = transport.get_extra_info("peername")
    return peer[0] if isinstance(peer, tuple) and peer else None  # None: a Unix socket, not capped


def deadline_protocol(header_timeout_s: float, body_timeout_s: float,
                      cap: AddressCap | None = None) -> type[HttpToolsProtocol]:
    """The protocol class to pass as uvicorn.Config(http=...); `cap` is the listener's own."""

    class DeadlineProtocol(HttpToolsProtocol):
        def connection_made(self, transport) -> None:  # type: ignore[override]
            self._deadline_transport = transport
            self._deadline: asyncio.TimerHandle | None = None
            self._capped_host = _peer_host(transport) if cap is not None else None
            self._refused = self._capped_host is not None and not cap.acquire(self._capped_host)
            if self._refused:  # never handed to uvicorn: nothing to shut down or release later
                transport.write(cap.refusal)  # type: ignore[union-attr]
                transport.close()
                return
            super().connection_made(transport)
            self._arm(header_timeout_s)

        def data_received(self, data: bytes) -> None:
            if not self._refused:
                super().data_received(data)

        def eof_received(self) -> None:
            if not self._refused:
                super().eof_received()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._deadline is None:  # the first request keeps the deadline from the connection's start
                self._arm(header_timeout_s)

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()
            self._arm(body_timeout_s + BODY_GRACE_S)  # disarmed at once when there is no body

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def on_response_complete(self) -> None:
            # A request answered before its body was read (refused on its key, its size or the
            # in-flight budget) leaves what had arrived of that body, up to 64 KiB plus one
            # read, in its cycle until the connection's next request: 256 clients retrying
            # refused requests held ~80 MB so. Nothing reads it any more.
            if self.cycle is not None and self.cycle.response_complete:
                self.cycle.body = bytearray()
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._refused:
                return
            if self._capped_host is not None:
                cap.release(self._capped_host)  # type: ignore[union-attr]
            self._disarm()
            super().connection_lost(exc)

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._deadline = asyncio.get_running_loop().call_later(seconds, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if not self._deadline_transport.is_closing():
                self._deadline_transport.close()

    return DeadlineProtocol
