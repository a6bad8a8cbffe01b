"""The change marker ``catalogue.changed``: eight bytes the store rewrites after every commit,
so that readers in other processes (granian's workers) learn of a publish with one ``pread``
per request, cheaper than any SQLite query, instead of polling the catalogue.

The marker is only a hint: its value is the catalogue generation the writer committed, and a
reader re-reads the catalogue whenever the value differs from the last one it saw. Writers
that race may leave an older value behind; that costs a reader one extra check, never a
missed change, because every commit is followed by a write.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

FILENAME = "catalogue.changed"
_SIZE = 8


class ChangeMarker:
    def __init__(self, root: Path) -> None:
        self.path = root / FILENAME
        self._guard = threading.Lock()
        self._reader: int | None = None
        self._writer: int | None = None

    def bump(self, generation: int) -> None:
        """Announce that ``generation`` is committed. Never raises: readers still poll."""
        with contextlib.suppress(OSError):
            with self._guard:
                if self._writer is None:
                    self._writer = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC,
                                           0o644)
                fd = self._writer
            os.pwrite(fd, generation.to_bytes(_SIZE, "little"), 0)

    def read(self) -> int | None:
        """The last announced generation; None if nobody announced one yet (an older store)."""
        fd = self._reader
        if fd is None:
            with self._guard:
                if self._reader is None:
                    try:
                        self._reader = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
                    except OSError:
                        return None
                fd = self._reader
        try:
            data = os.pread(fd, _SIZE, 0)
        except OSError:
            return None
        return int.from_bytes(data, "little") if len(data) == _SIZE else None

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        with self._guard:
            for fd in (self._reader, self._writer):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._reader = self._writer = None
