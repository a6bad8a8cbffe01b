"""Small helpers on files and time that the store, the ledger, export and execution share:
hashing a file, syncing a file or a directory entry to disk, a lock file across processes,
telling a full disk from other write failures, and the one timestamp format."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from wheelhouse.errors import StoreFull

_CHUNK = 1 << 20
_FULL = (errno.ENOSPC, errno.EDQUOT)
#: Below this many free bytes, a write error that carries no errno (SQLite says "disk I/O
#: error" when it cannot grow its WAL) is taken for a full disk.
_NEARLY_FULL = 1 << 20


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


def disk_full(error: BaseException, path: Path, *, needed: int | None = None
              ) -> StoreFull | None:
    """A StoreFull naming the filesystem if ``error``, met writing ``path``, came of a full
    disk (its errno, SQLite's "disk is full", or for SQLite's errors, which carry no errno,
    next to nothing free); else None."""
    mount, free = _filesystem(path)
    if isinstance(error, OSError):
        if error.errno not in _FULL:
            return None
    elif "disk is full" not in str(error) and (
            free is None or free >= max(needed or 0, _NEARLY_FULL)):
        return None
    wanted = f", {needed} needed" if needed is not None else ""
    left = f"{free} bytes free" if free is not None else "no space left"
    return StoreFull(
        f"the disk holding {path} is full (the filesystem at {mount}: {left}{wanted}); "
        "nothing partial was kept",
        hint=f"free space on the filesystem at {mount}, or move the store (--store, "
        "WHEELHOUSE_STORE) to a larger one, then run again",
        path=str(path), needed=needed, free=free)


def _filesystem(path: Path) -> tuple[Path, int | None]:
    """The mount point holding ``path`` (or its nearest existing parent) and its free bytes."""
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    mount = existing
    while not mount.is_mount() and mount != mount.parent:
        mount = mount.parent
    try:
        return mount, shutil.disk_usage(existing).free
    except OSError:
        return mount, None


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing), across processes."""
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
