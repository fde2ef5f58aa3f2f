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
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

BODY_GRACE_S = 5.0


def deadline_protocol(header_timeout_s: float, body_timeout_s: float) -> type[HttpToolsProtocol]:
    """The protocol class to pass as uvicorn.Config(http=...)."""

    class DeadlineProtocol(HttpToolsProtocol):
        def connection_made(self, transport) -> None:  # type: ignore[override]
            self._deadline_transport = transport
            self._deadline: asyncio.TimerHandle | None = None
            super().connection_made(transport)
            self._arm(header_timeout_s)

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

        def connection_lost(self, exc: Exception | None) -> None:
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
