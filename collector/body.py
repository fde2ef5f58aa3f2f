"""Request bodies: media types, size caps and decompression (before and after inflating)."""

from __future__ import annotations

import zlib

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES = {PROTOBUF: PROTOBUF, "application/protobuf": PROTOBUF, JSON: JSON}
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
    """Decompress with a hard cap on the output, so a small bomb cannot exhaust memory."""
    if encoding == "identity":
        return body
    if encoding == "gzip":
        return _inflate(body, zlib.decompressobj(16 + zlib.MAX_WBITS), limit, "gzip")
    try:  # HTTP "deflate" is zlib-wrapped, but raw deflate is common in the wild.
        return _inflate(body, zlib.decompressobj(zlib.MAX_WBITS), limit, "deflate")
    except BodyError as exc:
        if exc.status == 413:
            raise
        return _inflate(body, zlib.decompressobj(-zlib.MAX_WBITS), limit, "deflate")


def _inflate(body: bytes, decompressor, limit: int, name: str) -> bytes:
    try:
        out = decompressor.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BodyError(400, f"body is not valid {name} data: {exc}") from None
    if len(out) > limit or decompressor.unconsumed_tail:
        raise BodyError(413, f"decompressed body exceeds the {limit}-byte limit")
    if not decompressor.eof:
        raise BodyError(400, f"{name} body is truncated")
    return out
