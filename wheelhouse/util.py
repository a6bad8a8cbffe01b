"""Small helpers on files and time that the store, the ledger, export and execution share:
hashing a file, syncing a directory entry to disk, and the one timestamp format."""

from __future__ import annotations

import contextlib
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def utc_now() -> str:
    """Now in UTC as ISO 8601 with microseconds and a Z (the catalogue's and ledger's form)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable; best effort (some filesystems refuse)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
