"""Just enough of the protobuf wire format to split a message into its fields.

Used only when a whole-message parse fails, to find which embedded messages are bad.
"""

from __future__ import annotations

from typing import Iterator


class WireError(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 64:
            raise WireError("varint too long")


def iter_fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value): bytes for length-delimited fields, int otherwise."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        if wire_type == 0:
            value, pos = _varint(data, pos)
        elif wire_type == 1:
            value, pos = int.from_bytes(data[pos:pos + 8], "little"), pos + 8
        elif wire_type == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise WireError(f"field {number} claims {length} bytes, only {len(data) - pos} remain")
            value, pos = data[pos:pos + length], pos + length
        elif wire_type == 5:
            value, pos = int.from_bytes(data[pos:pos + 4], "little"), pos + 4
        else:
            raise WireError(f"unsupported wire type {wire_type} in field {number}")
        if pos > len(data):
            raise WireError("truncated fixed-width field")
        yield number, wire_type, value


def fields(data: bytes, number: int) -> Iterator[bytes]:
    """Every length-delimited occurrence of field `number`."""
    for n, wire_type, value in iter_fields(data):
        if n == number and wire_type == 2:
            yield value  # type: ignore[misc]


def merged(data: bytes, number: int) -> bytes:
    """All occurrences of embedded-message field `number`, as one message: protobuf merges a
    message field given several times (scalars: last wins; repeated fields: concatenated),
    and parsing the concatenation of the occurrences is exactly that merge."""
    return b"".join(fields(data, number))
