"""A period report's manifest entries on disk, packed (core/report_manifest.py: 56 bytes a
span record), in manifest order.

A month of a busy project is millions of records; their entries go to a temporary file as
they are digested and are read back, in order, by each rendering that embeds them (the PDF
attaches the file as it is). Memory stays at one read buffer whatever the window.
"""

from __future__ import annotations

import os
import tempfile
from typing import BinaryIO, Iterator

from core.report_manifest import PACKED, Entry, unpack

READ_BYTES = PACKED * 8192


class EntrySpool:
    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix="causeline-manifest-", suffix=".bin")
        self._file = os.fdopen(fd, "wb", buffering=1 << 20)
        self._bytes = 0

    def write(self, packed: bytes) -> None:
        self._file.write(packed)
        self._bytes += len(packed)

    def __len__(self) -> int:
        return self._bytes // PACKED

    def open(self) -> BinaryIO:
        """The packed entries written so far, for reading."""
        self._file.flush()
        return open(self.path, "rb")

    def chunks(self, size: int) -> Iterator[bytes]:
        """The packed entries, `size` at a time (what core/report_manifest.py's packed_chunks
        takes as they are)."""
        with self.open() as packed:
            while chunk := packed.read(size * PACKED):
                yield chunk

    def complete(self) -> bool:
        return self._bytes % PACKED == 0

    def __iter__(self) -> Iterator[Entry]:
        with self.open() as packed:
            while chunk := packed.read(READ_BYTES):
                yield from unpack(chunk)

    def close(self) -> None:
        self._file.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> EntrySpool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
