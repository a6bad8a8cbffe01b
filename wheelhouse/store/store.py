"""The store: immutable distribution files plus the catalogue of what is published.

Layout under the store root::

    catalogue.sqlite3             what is published (the index reads only this)
    catalogue.changed             the last committed generation, for readers (``changes``)
    files/<project>/<filename>    the bytes, never replaced once published
    files/<project>/<filename>.metadata   the wheel's METADATA (PEP 658)
    tmp/                          staging, per writer (``staging``); never shown
    locks/writer-<id>.lock        held by each live writer, so its staging is not debris

(The build ledger keeps ``ledger.sqlite3``, ``logs/`` and more ``locks/`` beside these.)

Publishing writes the file into ``tmp/``, then under the catalogue's write lock checks that no
file with the same identity is published with other bytes (the filename, or the same project,
version and tags under another spelling or build tag), renames the file into place and
commits its row. A crash at any point leaves at most an unlisted file, which the index never
shows and the next writer removes. Readers look only at the catalogue; the change marker and
a generation counter tell them when to re-read it.

A shared store (``backends.open_store``) keeps the same catalogue in PostgreSQL and, with an
``s3://`` URL, the bytes in a bucket under the same keys: there publishing puts the objects
with a conditional put under the catalogue's write lock, then commits the row; a crash leaves
at most an unlisted object, which the next publisher of that name replaces. ``root`` is then
only this machine's staging area.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import NormalizedName
from packaging.version import Version

from wheelhouse.errors import InvalidDistribution, StoreError
from wheelhouse.store import catalogue, identity
from wheelhouse.store.changes import ChangeMarker
from wheelhouse.store.model import Origin, PublishResult, PublishStatus, StoredFile
from wheelhouse.store.staging import LOOSE_MAX_AGE, Intent, Staging
from wheelhouse.util import disk_full, fsync_dir, fsync_file, sha256_file, utc_now
from wheelhouse.util import file_lock as file_lock  # re-exported: builds lock with it

if TYPE_CHECKING:
    from wheelhouse.store.pg import PgDatabase, PolledGeneration
    from wheelhouse.store.s3 import S3Blobs

_CHUNK = 1 << 20
_READ_PROTECTED = "read-protected"


@dataclass(frozen=True, kw_only=True)
class Shared:
    """Where a shared store keeps what a local one keeps under its root."""

    location: str  # what messages call it: its s3:// URL, or its directory
    db: PgDatabase
    changes: PolledGeneration
    blobs: S3Blobs | None = None  # None: the bytes stay in the local directory
    check_bucket: bool = True  # False: a run that may never touch it skips boto3's import


class Store:
    """A directory of published files with a catalogue. Safe for many processes at once.

    Implements both ``StoreReader`` (the server, export, planning) and ``StoreWriter``
    (builds, fetches, uploads). Every failure of the catalogue is a ``StoreError``.
    """

    @staticmethod
    def exists(root: Path) -> bool:
        """Whether ``root`` holds a store (its catalogue), without opening or creating one."""
        return (root / catalogue.FILENAME).is_file()

    def __init__(self, root: Path, *, readonly: bool = False, shared: Shared | None = None
                 ) -> None:
        # Absolute, so paths handed to builders and subprocesses do not depend on their cwd.
        self.root = Path(os.path.abspath(root))
        self.readonly = readonly
        self.shared = shared
        self.blobs = shared.blobs if shared is not None else None
        self.location = shared.location if shared is not None else str(self.root)
        self._catalogue = catalogue.Catalogue(
            self.root, readonly=readonly, db=shared.db if shared is not None else None)
        self._staging = Staging(self.root)
        self._changes: ChangeMarker | PolledGeneration = (
            shared.changes if shared is not None else ChangeMarker(self.root))
        if shared is not None:
            self._open_shared(shared)
        elif readonly:
            if not Store.exists(self.root):
                raise StoreError(
                    f"no wheelhouse store at {self.root}",
                    hint="run `wheelhouse build` first, or point --store at an existing store",
                )
            self._catalogue.check_complete(self.root)
        else:
            self._create()

    def _open_shared(self, shared: Shared) -> None:
        if self.readonly:
            shared.db.check()
        else:
            self._create_local(("tmp", "locks"))
            shared.db.create()
        if shared.blobs is not None and shared.check_bucket:
            shared.blobs.check()
        self.clean_staging()

    def _create(self) -> None:
        self._create_local(("files", "tmp", "locks"))
        # Processes opening a new store at once would race to switch it to WAL (which takes
        # an exclusive lock and does not wait); one at a time, under a file lock.
        with file_lock(self.root / "locks" / "catalogue.lock"):
            self._catalogue.create()
        self._changes.bump(self._catalogue.generation())
        self.clean_staging()

    def _create_local(self, subs: tuple[str, ...]) -> None:
        try:
            for sub in subs:
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            # Fail now, with the store named, rather than halfway through a build; this also
            # takes this writer's lock, so nobody mistakes its staging for debris.
            self._staging.new_file().unlink()
        except OSError as e:
            raise disk_full(e, self.root) or StoreError(
                f"cannot write the store at {self.root}: {e}",
                hint="choose a writable directory with --store or WHEELHOUSE_STORE",
            ) from None

    # -- paths -----------------------------------------------------------------------------
    def file_path(self, f: StoredFile) -> Path:
        if self.blobs is not None:  # a local store only: see ``local_file``
            raise StoreError(f"{f.filename} is in {self.location}, not on this machine")
        return self.root / "files" / f.project / f.filename

    def local_file(self, f: StoredFile) -> Path:
        """A path to ``f``'s bytes on this machine: the published file itself in a local
        store, a checked copy in this writer's scratch directory for a bucket."""
        if self.blobs is None:
            return self.file_path(f)
        path = self._staging.scratch() / "objects" / f.filename
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            self.blobs.fetch(f"files/{f.relpath}", self.staging_file(".part"), path, f.sha256)
        return path

    def file_url(self, f: StoredFile) -> str:  # file:// locally, s3:// in a bucket
        rel = f"files/{f.relpath}"
        return self.file_path(f).as_uri() if self.blobs is None else self.blobs.url_of(rel)

    def metadata_path(self, f: StoredFile) -> Path:
        return self.root / "files" / f.project / (f.filename + ".metadata")

    def tmp_dir(self) -> Path:
        """Scratch space on the store's filesystem (build work directories), this writer's
        own: whatever a crashed process leaves here is removed by the next writer."""
        return self._staging.scratch()

    # -- reading ---------------------------------------------------------------------------
    def generation(self) -> int:
        return self._catalogue.generation()

    def read_protected(self) -> bool:
        """Whether a server has served this store with a read token: its contents are not
        for everyone, and an export of it must ask for the token too."""
        return self._catalogue.meta(_READ_PROTECTED) == "1"

    def mark_read_protected(self) -> None:
        """Remember that reading this store needs a token (for ``read_protected``)."""
        if self._catalogue.meta(_READ_PROTECTED) != "1":
            self._catalogue.set_meta(_READ_PROTECTED, "1")

    def change_token(self) -> int | None:
        """What the change marker says (one read, no SQLite): it differs from the last value
        seen after every commit. None when the store has no marker yet."""
        return self._changes.read()

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
        if self.blobs is not None:
            return self.blobs.read(f"files/{f.relpath}.metadata")
        try:
            return self.metadata_path(f).read_bytes()
        except OSError as e:
            raise StoreError(f"{f.relpath}.metadata is listed but unreadable: {e}") from None

    # -- publishing ------------------------------------------------------------------------
    def staging_file(self, suffix: str = "") -> Path:
        """A fresh path in the store's staging area, on the same filesystem as ``files/``."""
        try:
            return self._staging.new_file(suffix)
        except OSError as e:
            raise disk_full(e, self.root / "tmp") or StoreError(
                f"cannot write to the store's staging area {self.root / 'tmp'}: {e}") from None

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

        A file's identity is its project, version (PEP 440 equality) and tag set (and kind):
        the same bytes again under the same identity are a no-op (IDENTICAL, the file already
        published); other bytes raise PublishConflict and leave the published file untouched,
        whether they come under the same filename or another spelling or build tag of it.
        With ``consume`` the source file is moved (it must be on the store's filesystem),
        otherwise copied.
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
        if self.blobs is not None:
            return self._commit_remote(staged, stored, metadata)
        final = self.file_path(stored)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            # The data is on disk before the rename makes it reachable and before the row
            # says it exists: a crash can lose the upload, never publish a torn file.
            fsync_file(staged)
        except OSError as e:
            raise disk_full(e, final) or StoreError(f"cannot write {final}: {e}") from None
        meta_path = self.metadata_path(stored)
        with self._catalogue.db.transaction() as tx:
            same = identity.check(tx, stored)
            if same is not None:
                return same
            try:
                # If this process dies before the commit, the next writer removes what the
                # intent names (no row will list it), so files and catalogue stay equal.
                with self._staging.intent(stored.filename, (final, meta_path)):
                    try:
                        if metadata is not None:
                            self._write_atomic(meta_path, metadata)
                        # No row means nothing under this name was ever shown, so replacing
                        # debris left by a crashed publisher is safe.
                        os.replace(staged, final)
                        fsync_dir(final.parent)
                        catalogue.insert(tx, stored)
                        generation = catalogue.committed_generation(tx)
                        tx.commit()
                    except BaseException:
                        # A live failure (a full disk): what this name's intent covers goes
                        # now, not at the next writer's cleanup; no row lists it.
                        for path in (final, meta_path):
                            with contextlib.suppress(OSError):
                                path.unlink()
                        raise
            except OSError as e:
                raise disk_full(e, final, needed=stored.size) or StoreError(
                    f"cannot write {final}: {e}") from None
        self._changes.bump(generation)
        return PublishResult(status=PublishStatus.PUBLISHED, file=stored)

    def _commit_remote(self, staged: Path, stored: StoredFile, metadata: bytes | None
                       ) -> PublishResult:
        assert self.blobs is not None
        rel = f"files/{stored.relpath}"
        with self._catalogue.db.transaction() as tx:
            same = identity.check(tx, stored)
            if same is not None:
                return same
            # Under the write lock, and before the row: an object no row lists is debris of a
            # publisher that died here, never a published file, so it may be replaced.
            if metadata is not None:
                assert stored.metadata_sha256 is not None
                self.blobs.put_unlisted(rel + ".metadata", metadata, stored.metadata_sha256)
            self.blobs.put_unlisted(rel, staged, stored.sha256)
            catalogue.insert(tx, stored)
            generation = catalogue.committed_generation(tx)
            tx.commit()
        self._changes.bump(generation)
        return PublishResult(status=PublishStatus.PUBLISHED, file=stored)

    def health(self) -> dict[str, bool]:
        """Whether the shared catalogue and the bucket answer (for /health)."""
        checks: dict[str, Callable[[], object]] = (
            {"database": self._catalogue.generation} if self.shared else {})
        if self.blobs is not None:
            checks["bucket"] = self.blobs.check
        return {name: _answers(check) for name, check in checks.items()}

    def _stage_copy(self, source: Path) -> Path:
        staged = self.staging_file(suffix=".part")
        try:
            with source.open("rb") as src, staged.open("wb") as dst:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
        except OSError as e:
            staged.unlink(missing_ok=True)
            size = source.stat().st_size if source.is_file() else None
            raise disk_full(e, staged, needed=size) or StoreError(
                f"cannot copy {source} into the store: {e}") from None
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
            generation = catalogue.committed_generation(tx)
        self._changes.bump(generation)

    def clean_staging(self, older_than: float = LOOSE_MAX_AGE) -> int:
        """Remove what crashed writers left in staging (at once: their locks are free) and
        entries of unknown owners older than ``older_than`` seconds; and the files that a
        writer killed mid-publish renamed into ``files/`` without a catalogue row."""
        if self.readonly:
            return 0
        return self._staging.clean(self._settle, loose_max_age=older_than)

    def _settle(self, intents: list[Intent]) -> None:
        # Under the write lock: a live publisher renames only inside its own transaction.
        with self._catalogue.db.transaction() as tx:
            for intent in intents:
                if catalogue.existing(tx, intent.filename) is not None:
                    continue
                for rel in intent.paths:
                    path = self.root / rel
                    if path.parent.parent == self.root / "files":
                        with contextlib.suppress(FileNotFoundError):
                            path.unlink()


def _answers(check: Callable[[], object]) -> bool:
    try:
        check()
    except StoreError:
        return False
    return True
