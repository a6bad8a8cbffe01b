"""The store: immutable distribution files plus the catalogue of what is published.

Layout under the store root::

    catalogue.sqlite3             what is published (the index reads only this)
    files/<project>/<filename>    the bytes, never replaced once published
    files/<project>/<filename>.metadata   the wheel's METADATA (PEP 658)
    tmp/                          staging; anything here is debris, never shown

(The build ledger keeps ``ledger.sqlite3``, ``logs/`` and ``locks/`` beside these.)

Publishing writes the file into ``tmp/``, then under the catalogue's write lock checks that the
filename is new (or holds the same bytes), renames the file into place and commits its row. A
crash at any point leaves at most an unlisted file, which the index never shows. Readers look
only at the catalogue, and a generation counter tells them when to re-read it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName
from packaging.version import Version

from wheelhouse.errors import InvalidDistribution, PublishConflict, StoreError
from wheelhouse.store import catalogue
from wheelhouse.store.model import Origin, PublishResult, PublishStatus, StoredFile

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Store:
    """A directory of published files with a catalogue. Safe for many processes at once.

    Implements both ``StoreReader`` (the server, export, planning) and ``StoreWriter``
    (builds, fetches, uploads). Every failure of the catalogue is a ``StoreError``.
    """

    def __init__(self, root: Path, *, readonly: bool = False) -> None:
        # Absolute, so paths handed to builders and subprocesses do not depend on their cwd.
        self.root = Path(os.path.abspath(root))
        self.readonly = readonly
        self._catalogue = catalogue.Catalogue(self.root, readonly=readonly)
        if readonly:
            if not (self.root / catalogue.FILENAME).is_file():
                raise StoreError(
                    f"no wheelhouse store at {self.root}",
                    hint="run `wheelhouse build` first, or point --store at an existing store",
                )
            self._catalogue.check_complete(self.root)
        else:
            self._create()

    def _create(self) -> None:
        try:
            for sub in ("files", "tmp", "locks"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            # Fail now, with the store named, rather than halfway through a build.
            with tempfile.NamedTemporaryFile(dir=self.root / "tmp"):
                pass
        except OSError as e:
            raise StoreError(
                f"cannot write the store at {self.root}: {e}",
                hint="choose a writable directory with --store or WHEELHOUSE_STORE",
            ) from None
        # Processes opening a new store at once would race to switch it to WAL (which takes
        # an exclusive lock and does not wait); one at a time, under a file lock.
        with file_lock(self.root / "locks" / "catalogue.lock"):
            self._catalogue.create()

    # -- paths -----------------------------------------------------------------------------
    def file_path(self, f: StoredFile) -> Path:
        return self.root / "files" / f.project / f.filename

    def metadata_path(self, f: StoredFile) -> Path:
        return self.root / "files" / f.project / (f.filename + ".metadata")

    def tmp_dir(self) -> Path:
        """Scratch space on the store's filesystem (staging, build work directories)."""
        return self.root / "tmp"

    # -- reading ---------------------------------------------------------------------------
    def generation(self) -> int:
        return self._catalogue.generation()

    def projects(self) -> list[NormalizedName]:
        return self._catalogue.projects()

    def files(self, project: str | None = None) -> list[StoredFile]:
        return self._catalogue.files(project)

    def get(self, filename: str) -> StoredFile | None:
        return self._catalogue.get(filename)

    def releases(self, project: str, version: str) -> list[StoredFile]:
        wanted = Version(version)
        return [f for f in self.files(project) if Version(f.version) == wanted]

    def read_metadata(self, f: StoredFile) -> bytes | None:
        """The wheel's METADATA as published beside it, or None for sdists."""
        if f.metadata_sha256 is None:
            return None
        try:
            return self.metadata_path(f).read_bytes()
        except OSError as e:
            raise StoreError(f"{f.relpath}.metadata is listed but unreadable: {e}") from None

    # -- publishing ------------------------------------------------------------------------
    def staging_file(self, suffix: str = "") -> Path:
        """A fresh path in the store's staging area, on the same filesystem as ``files/``."""
        try:
            fd, name = tempfile.mkstemp(dir=self.tmp_dir(), suffix=suffix)
        except OSError as e:
            raise StoreError(f"cannot write to the store's staging area {self.tmp_dir()}: "
                             f"{e}") from None
        # Published files are public: servers running as another user (nginx, the index
        # image) must read them, and exports can hard-link them. mkstemp makes them 0600.
        os.fchmod(fd, 0o644)
        os.close(fd)
        return Path(name)

    def publish(
        self,
        source: Path,
        *,
        filename: str | None = None,
        origin: Origin,
        provenance: Mapping[str, Any] | None = None,
        expected_sha256: str | None = None,
        consume: bool = False,
        requires_python: str | None = None,
    ) -> PublishResult:
        """Publish ``source`` under ``filename`` (default: its own name). Atomic and immutable.

        Same bytes under an existing name are a no-op (IDENTICAL); different bytes raise
        PublishConflict and leave the published file untouched. With ``consume`` the source
        file is moved (it must be in this store's staging area), otherwise copied.
        """
        # Imported here: reading archives needs gzip, lzma and tarfile, which a run that only
        # reads the catalogue (a no-op build, the server) never loads.
        from wheelhouse import distributions

        name = filename or source.name
        staged = source if consume else self._stage_copy(source)
        try:
            # Inspect the staged copy, so what is validated is exactly what gets published.
            # Uploads meet the index's own rules; fetched and built files what indexes hold.
            info = distributions.inspect(staged, name, strict=origin is Origin.UPLOADED)
            digest = sha256_file(staged)
            if expected_sha256 is not None and digest != expected_sha256.lower():
                raise InvalidDistribution(
                    f"{name}: sha256 is {digest}, expected {expected_sha256}",
                    hint="the download or upload was corrupted or tampered with; try again",
                )
            stored = StoredFile(
                filename=name, project=info.project, version=info.version, kind=info.kind,
                tags=info.tags, sha256=digest, size=staged.stat().st_size,
                upload_time=utc_now(),
                requires_python=info.requires_python or requires_python,
                metadata_sha256=(hashlib.sha256(info.metadata).hexdigest()
                                 if info.metadata else None),
                yanked=None, origin=origin, provenance=dict(provenance or {}),
            )
            return self._commit(staged, stored, info.metadata)
        finally:
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()

    def _commit(self, staged: Path, stored: StoredFile, metadata: bytes | None) -> PublishResult:
        final = self.file_path(stored)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            # The data is on disk before the rename makes it reachable and before the row
            # says it exists: a crash can lose the upload, never publish a torn file.
            _fsync_file(staged)
        except OSError as e:
            raise StoreError(f"cannot write {final}: {e}") from None
        with self._catalogue.db.transaction() as tx:
            existing = catalogue.existing(tx, stored.filename)
            if existing is not None:
                if existing.sha256 == stored.sha256:
                    return PublishResult(status=PublishStatus.IDENTICAL, file=existing)
                raise PublishConflict(
                    f"{stored.filename} is already published with different bytes "
                    f"(sha256 {existing.sha256[:12]}…, offered {stored.sha256[:12]}…)",
                    hint="published files never change; publish a new version or a new "
                    "build tag instead",
                )
            try:
                if metadata is not None:
                    self._write_atomic(self.metadata_path(stored), metadata)
                # No row means nothing under this name was ever shown, so replacing debris
                # left by a crashed publisher is safe.
                os.replace(staged, final)
                _fsync_dir(final.parent)
            except OSError as e:
                raise StoreError(f"cannot write {final}: {e}") from None
            catalogue.insert(tx, stored)
        return PublishResult(status=PublishStatus.PUBLISHED, file=stored)

    def _stage_copy(self, source: Path) -> Path:
        staged = self.staging_file(suffix=".part")
        try:
            with source.open("rb") as src, staged.open("wb") as dst:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
        except OSError as e:
            staged.unlink(missing_ok=True)
            raise StoreError(f"cannot copy {source} into the store: {e}") from None
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        return staged

    def _write_atomic(self, path: Path, data: bytes) -> None:
        tmp = self.staging_file(suffix=".part")
        try:
            with tmp.open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def set_yanked(self, filename: str, reason: str | None) -> None:
        """Yank (reason may be "") or un-yank (None) a published file. Bytes are untouched."""
        with self._catalogue.db.transaction() as tx:
            if not catalogue.set_yanked(tx, filename, reason):
                raise StoreError(f"{filename} is not in the store at {self.root}")

    def clean_staging(self, older_than: float = 24 * 3600) -> int:
        """Remove staging debris older than ``older_than`` seconds (crashed publishers)."""
        removed = 0
        cutoff = time.time() - older_than
        for p in self.tmp_dir().iterdir():
            with contextlib.suppress(OSError):
                if p.is_file() and p.stat().st_mtime < cutoff:
                    p.unlink()
                    removed += 1
        return removed


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing), across processes."""
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
