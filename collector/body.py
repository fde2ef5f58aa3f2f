"""Request bodies: media types, size caps and decompression (before and after inflating)."""

from __future__ import annotations

import zlib

from anyio import fail_after, to_thread
from starlette.requests import Request

from collector.media import JSON, MEDIA_TYPES, PROTOBUF  # noqa: F401 (re-exported)

ENCODINGS = ("gzip", "deflate", "identity")


class BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def media_type(content_type: str | None) -> str:
    base = (content_type or "").split(";", 1)[0].strip().lower()
    if base not in MEDIA_TYPES:
        shown = content_type or "none"
        raise BodyError(415, f"Content-Type must be {PROTOBUF} or {JSON}, got {shown!r}")
    return MEDIA_TYPES[base]


def content_encoding(header: str | None) -> str:
    value = (header or "identity").strip().lower() or "identity"
    if value not in ENCODINGS:
        raise BodyError(415, f"Content-Encoding must be gzip, deflate or identity, got {header!r}")
    return value


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """Decompress with a hard cap on the output, so a small bomb cannot exhaust memory.

    gzip bodies may hold several members (concatenated gzip streams, RFC 1952): all are read,
    and their total output counts against the cap. Bytes after the last stream that are not
    another stream are refused (400), never ignored: they could be lost spans."""
    if encoding == "identity":
        return body
    if encoding == "gzip":
        return _inflate_gzip(body, limit)
    try:  # HTTP "deflate" is zlib-wrapped, but raw deflate is common in the wild.
        return _inflate(body, zlib.decompressobj(zlib.MAX_WBITS), limit, "deflate")
    except BodyError as exc:
        if exc.status == 413 or not exc.message.startswith("body is not valid"):
            raise  # zlib data it was, but too large, truncated or followed by garbage
        return _inflate(body, zlib.decompressobj(-zlib.MAX_WBITS), limit, "deflate")


def _inflate_gzip(body: bytes, limit: int) -> bytes:
    parts: list[bytes] = []
    size, data, members = 0, body, 0
    while True:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = _decompress(decompressor, data, limit - size, limit, "gzip" if not members else f"gzip member {members + 1}")
        parts.append(out)
        size += len(out)
        members += 1
        data = decompressor.unused_data
        # Trailing NUL padding is tolerated, like gzip(1) and Python's gzip module do.
        if not data or not data.strip(b"\x00"):
            return b"".join(parts) if members > 1 else out
        if data[:2] != b"\x1f\x8b":
            raise BodyError(400, f"gzip body has {len(data)} bytes of trailing garbage after member {members}")


def _inflate(body: bytes, decompressor, limit: int, name: str) -> bytes:
    out = _decompress(decompressor, body, limit, limit, name)
    if decompressor.unused_data:
        raise BodyError(400, f"{name} body has {len(decompressor.unused_data)} bytes of trailing garbage")
    return out


def _decompress(decompressor, data: bytes, remaining: int, limit: int, name: str) -> bytes:
    """One stream, at most `remaining` bytes of output (413 beyond), complete (400 if truncated)."""
    try:
        out = decompressor.decompress(data, max(remaining, 0) + 1)  # max_length 0 would mean unlimited
    except zlib.error as exc:
        raise BodyError(400, f"body is not valid {name} data: {exc}") from None
    if len(out) > remaining or decompressor.unconsumed_tail:
        raise BodyError(413, f"decompressed body exceeds the {limit}-byte limit")
    if not decompressor.eof:
        raise BodyError(400, f"{name} body is truncated")
    return out


def answer_media(request: Request) -> str:
    """The encoding to answer in: the request's, or JSON when it named none we speak."""
    try:
        return media_type(request.headers.get("content-type"))
    except BodyError:
        return JSON


def envelope(request: Request, limit: int) -> tuple[str, str, int | None]:
    """(media type, content encoding, declared length) of an OTLP export; BodyError (415, 413)."""
    media = media_type(request.headers.get("content-type"))
    encoding = content_encoding(request.headers.get("content-encoding"))
    declared = request.headers.get("content-length")
    size = int(declared) if declared and declared.isdigit() else None
    if size is not None and size > limit:
        raise BodyError(413, f"body of {size} bytes exceeds the {limit}-byte limit")
    return media, encoding, size


async def read_inflated(request: Request, encoding: str, limit: int, timeout_s: float | None = None) -> bytes:
    """The body, read with a cap and inflated off the event loop; BodyError (413, 400).
    The whole body must arrive within `timeout_s` (408 otherwise): a client trickling bytes
    cannot hold the request, its budget and its connection open forever."""
    chunks, size = [], 0
    try:
        with fail_after(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyError(413, f"body exceeds the {limit}-byte limit")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyError(408, f"the request body did not arrive within {timeout_s:g} s") from None
    body = b"".join(chunks)
    del chunks  # the body's memory once, not twice, while it waits for a decoder
    if encoding == "identity":  # nothing to inflate: no thread hop
        return body
    return await to_thread.run_sync(inflate, body, encoding, limit)
