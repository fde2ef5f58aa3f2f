"""A period report's manifest entries on disk: one line per span record, in manifest order.

A month of a busy project is millions of records; their entries go to a temporary file as
they are digested and are read back, in order, by each rendering that embeds them. Memory
stays at one read buffer whatever the window.
"""

from __future__ import annotations

import os
import tempfile
from typing import Iterator

from core.report_manifest import Entry


class EntrySpool:
    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix="causeline-manifest-", suffix=".txt")
        self._file = os.fdopen(fd, "w", encoding="ascii", buffering=1 << 20)
        self._count = 0

    def append(self, entry: Entry) -> None:
        self._file.write("%s %s %s\n" % entry)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Entry]:
        self._file.flush()
        with open(self.path, encoding="ascii", buffering=1 << 20) as lines:
            make = Entry._make
            for line in lines:
                yield make(line.split())

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
