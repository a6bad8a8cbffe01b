"""The store's staging area (``tmp/``) and the clean-up of what crashed writers leave there.

Every writing ``Store`` is a *writer* with an id and a lock file ``locks/writer-<id>.lock``
that it holds (``flock``) for as long as it lives. Whatever it stages is named after it:
``tmp/<id>.<random><suffix>`` for files, ``tmp/<id>/`` for scratch directories (build work).
The kernel drops the lock when the process dies, however it dies, so a later writer can tell
debris from work in progress exactly, across processes and containers sharing the store, and
remove it at once instead of after a day. Entries not named after a writer (older versions)
are removed by age only.

A publish also leaves an *intent* (``tmp/<id>.intent.<random>``) naming the file it is about
to rename into ``files/``, removed once the catalogue row is committed. A writer killed in
between leaves a file no row lists; the clean-up removes it, so the files match the catalogue.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

_ID = re.compile(r"^(w[0-9a-f]{16})(?:$|\.)")
_INTENT = ".intent."
#: Entries not named after a writer (left by older versions) are removed after this long.
LOOSE_MAX_AGE = 24 * 3600.0


@dataclass(frozen=True, kw_only=True)
class Intent:
    """A file a dead writer was about to publish: remove it unless the catalogue lists it."""

    filename: str
    #: paths relative to the store root
    paths: tuple[str, ...]


class Staging:
    """One writer's staging area in ``tmp``, and the clean-up of dead writers' debris."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.locks = root / "locks"
        self._guard = threading.Lock()
        self._pid = -1
        self._id = ""
        self._lock_file: IO[bytes] | None = None

    # -- this writer --------------------------------------------------------------------------
    @property
    def writer_id(self) -> str:
        """This process's writer id, taking its lock on first use (and again after a fork:
        a child must not stage under its parent's name)."""
        with self._guard:
            if self._pid != os.getpid() or self._lock_file is None:
                self._id, self._lock_file = _new_writer(self.locks)
                self._pid = os.getpid()
                # When this writer goes (its Store is dropped, or the process exits), it
                # removes its own lock and empty scratch directory rather than leave them
                # for the next writer.
                weakref.finalize(self, _retire, self._pid, self.tmp / self._id,
                                 self.locks / f"writer-{self._id}.lock", self._lock_file)
            return self._id

    def new_file(self, suffix: str = "") -> Path:
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix=f"{self.writer_id}.", suffix=suffix)
        # Published files are public: servers running as another user (nginx, the index
        # image) must read them, and exports can hard-link them. mkstemp makes them 0600.
        os.fchmod(fd, 0o644)
        os.close(fd)
        return Path(name)

    def scratch(self) -> Path:
        """A directory for this writer's work (build work directories), under ``tmp``."""
        path = self.tmp / self.writer_id
        path.mkdir(exist_ok=True)
        return path

    @contextlib.contextmanager
    def intent(self, filename: str, paths: tuple[Path, ...]) -> Iterator[None]:
        """Record, for the length of the block, that ``paths`` may appear for ``filename``."""
        record = json.dumps({"filename": filename,
                             "paths": [str(p.relative_to(self.root)) for p in paths]})
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix=f"{self.writer_id}{_INTENT}")
        try:
            os.write(fd, record.encode())
        except BaseException:
            os.unlink(name)  # a full disk must not leave an empty intent behind
            raise
        finally:
            os.close(fd)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(name)

    # -- everyone else's debris ---------------------------------------------------------------
    def clean(self, settle: Callable[[list[Intent]], None], *,
              loose_max_age: float = LOOSE_MAX_AGE) -> int:
        """Remove what dead writers left in ``tmp`` and their lock files, and loose entries
        older than ``loose_max_age``; ``settle`` gets the dead writers' intents first (it
        removes the files the catalogue does not list). Returns how many entries went."""
        own = self._id if self._pid == os.getpid() else ""
        judged = _Judged(self.locks, own)
        removed = 0
        try:
            entries = sorted(self.tmp.iterdir())
        except OSError:
            return 0
        intents: list[Intent] = []
        doomed: list[Path] = []
        cutoff = time.time() - loose_max_age
        for entry in entries:
            match = _ID.match(entry.name)
            if match is None:
                with contextlib.suppress(OSError):
                    if entry.lstat().st_mtime < cutoff:
                        doomed.append(entry)
                continue
            if not judged.dead(match.group(1)):
                continue
            if _INTENT in entry.name:
                intent = _read_intent(entry)
                if intent is not None:
                    intents.append(intent)
            doomed.append(entry)
        try:
            if intents:
                settle(intents)
            for entry in doomed:
                removed += _remove(entry)
            self._clean_locks(judged)
        finally:
            judged.release()
        if removed:
            log.info("removed %d staging entries left by crashed writers in %s", removed,
                     self.tmp)
        return removed

    def debris(self, *, loose_max_age: float = LOOSE_MAX_AGE) -> list[Path]:
        """What ``clean`` would remove now, removing nothing (``wheelhouse gc --dry-run``):
        dead writers' entries, and loose ones older than ``loose_max_age``."""
        own = self._id if self._pid == os.getpid() else ""
        judged = _Judged(self.locks, own)
        cutoff = time.time() - loose_max_age
        found: list[Path] = []
        try:
            for entry in sorted(self.tmp.iterdir()):
                match = _ID.match(entry.name)
                if match is None:
                    with contextlib.suppress(OSError):
                        if entry.lstat().st_mtime < cutoff:
                            found.append(entry)
                elif judged.dead(match.group(1)):
                    found.append(entry)
        except OSError:
            pass
        finally:
            judged.release()
        return found

    def _clean_locks(self, judged: _Judged) -> None:
        """Lock files of dead writers, once their entries are gone (unlinked while we hold
        them, so a cleaner that opened one too finds it dead as well, which is true)."""
        with contextlib.suppress(OSError):
            for path in self.locks.glob("writer-w*.lock"):
                if judged.dead(path.name[len("writer-"):-len(".lock")]):
                    with contextlib.suppress(OSError):
                        path.unlink()
            # A writer killed while making its lock leaves it under the temporary name.
            cutoff = time.time() - 60
            for path in self.locks.glob(".writer-*"):
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime < cutoff:
                        path.unlink()


class _Judged:
    """Which writers are dead, each asked once; the locks of dead ones are held until
    ``release``, so no two cleaners handle one writer's debris at the same moment."""

    def __init__(self, locks: Path, own: str) -> None:
        self.locks = locks
        self.own = own
        self._alive: set[str] = set()
        self._dead: dict[str, IO[bytes] | None] = {}

    def dead(self, writer: str) -> bool:
        if writer == self.own or writer in self._alive:
            return False
        if writer in self._dead:
            return True
        try:
            handle = (self.locks / f"writer-{writer}.lock").open("rb")
        except FileNotFoundError:
            # Writers make their lock before staging anything: no lock, no owner.
            self._dead[writer] = None
            return True
        except OSError:
            self._alive.add(writer)  # cannot tell: leave it alone
            return False
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            self._alive.add(writer)
            return False
        self._dead[writer] = handle
        return True

    def release(self) -> None:
        for handle in self._dead.values():
            if handle is not None:
                handle.close()


def _retire(pid: int, scratch: Path, lock: Path, handle: IO[bytes]) -> None:
    if os.getpid() != pid:
        return  # a forked child's copy: the lock is its parent's
    with contextlib.suppress(OSError):
        scratch.rmdir()  # only if empty: a leftover build directory waits for a cleaner
    with contextlib.suppress(OSError):
        lock.unlink()
    handle.close()


def _new_writer(locks: Path) -> tuple[str, IO[bytes]]:
    """A fresh writer id and its lock, held. The lock file is created locked under a
    temporary name and then renamed into place, so nobody ever sees it unlocked."""
    writer = "w" + secrets.token_hex(8)
    fd, tmp_name = tempfile.mkstemp(dir=locks, prefix=".writer-")
    handle = os.fdopen(fd, "wb")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(tmp_name, locks / f"writer-{writer}.lock")
    except BaseException:
        handle.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return writer, handle


def _read_intent(path: Path) -> Intent | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Intent(filename=str(data["filename"]),
                      paths=tuple(str(p) for p in data["paths"]))
    except (OSError, ValueError, KeyError, TypeError):
        # Killed while writing the intent: nothing was renamed yet.
        return None


def _remove(entry: Path) -> int:
    try:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink()
    except FileNotFoundError:
        return 0
    except OSError as e:
        log.warning("cannot remove staging debris %s: %s", entry, e)
        return 0
    return 1
