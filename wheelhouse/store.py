"""The store: immutable distribution files plus a SQLite catalogue of what is published.

Layout under the store root::

    catalogue.sqlite3             what is published (the index reads only this), failures, caches
    files/<project>/<filename>    the bytes, never replaced once published
    files/<project>/<filename>.metadata   the wheel's METADATA (PEP 658)
    logs/<project>/...            build logs
    tmp/                          staging; anything here is debris, never shown

Publishing writes the file into ``tmp/``, then under the catalogue's write lock checks that the
filename is new (or holds the same bytes), renames the file into place and commits its row. A
crash at any point leaves at most an unlisted file, which the index never shows. Readers look
only at the catalogue, and a generation counter tells them when to re-read it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from packaging.tags import Tag
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from wheelhouse import distributions
from wheelhouse.distributions import DistInfo as DistInfo
from wheelhouse.distributions import read_wheel_metadata as read_wheel_metadata
from wheelhouse.errors import InvalidDistribution, PublishConflict, StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    filename        TEXT PRIMARY KEY,
    project         TEXT NOT NULL,
    version         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    tags            TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    size            INTEGER NOT NULL,
    upload_time     TEXT NOT NULL,
    requires_python TEXT,
    metadata_sha256 TEXT,
    yanked          TEXT,
    origin          TEXT NOT NULL,
    provenance      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS files_project ON files (project, version);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS failures (
    key      TEXT PRIMARY KEY,
    project  TEXT NOT NULL,
    version  TEXT NOT NULL,
    target   TEXT NOT NULL,
    message  TEXT NOT NULL,
    log      TEXT,
    time     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0');
"""

_CHUNK = 1 << 20


class Origin(StrEnum):
    UPSTREAM = "upstream"
    BUILT = "built"
    UPLOADED = "uploaded"


class Kind(StrEnum):
    WHEEL = "wheel"
    SDIST = "sdist"


@dataclass(frozen=True, kw_only=True)
class StoredFile:
    """One published distribution file and what the index says about it."""

    filename: str
    project: NormalizedName
    version: str
    kind: Kind
    tags: frozenset[Tag]
    sha256: str
    size: int
    upload_time: str
    requires_python: str | None
    metadata_sha256: str | None
    yanked: str | None
    origin: Origin
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @property
    def relpath(self) -> str:
        return f"{self.project}/{self.filename}"


class PublishStatus(StrEnum):
    PUBLISHED = "published"
    #: the filename was already published with the same bytes; nothing changed.
    IDENTICAL = "identical"


@dataclass(frozen=True, kw_only=True)
class PublishResult:
    status: PublishStatus
    file: StoredFile


@dataclass(frozen=True, kw_only=True)
class Failure:
    key: str
    project: str
    version: str
    target: str
    message: str
    log: str | None
    time: str


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def inspect_distribution(path: Path, filename: str | None = None) -> DistInfo:
    """The lenient check of ``distributions.inspect``; kept for existing callers."""
    return distributions.inspect(path, filename, strict=False)


class Store:
    """A directory of published files with a catalogue. Safe for many processes at once."""

    def __init__(self, root: Path, *, readonly: bool = False) -> None:
        self.root = Path(root)
        self.readonly = readonly
        self._local = threading.local()
        if readonly:
            if not (self.root / "catalogue.sqlite3").is_file():
                raise StoreError(
                    f"no wheelhouse store at {self.root}",
                    hint="run `wheelhouse build` first, or point --store at an existing store",
                )
        else:
            self._create()

    # -- opening ---------------------------------------------------------------------------
    def _create(self) -> None:
        try:
            for sub in ("files", "logs", "tmp", "locks"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            # Fail now, with the store named, rather than halfway through a build.
            with tempfile.NamedTemporaryFile(dir=self.root / "tmp"):
                pass
            # Processes opening a new store at once would race to switch it to WAL (which
            # takes an exclusive lock and does not wait); one at a time, under a file lock.
            with file_lock(self.root / "locks" / "catalogue.lock"):
                db = self._db
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(
                f"cannot write the store at {self.root}: {e}",
                hint="choose a writable directory with --store or WHEELHOUSE_STORE",
            ) from None

    def _connect(self) -> sqlite3.Connection:
        path = self.root / "catalogue.sqlite3"
        if self.readonly:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30,
                                 check_same_thread=False, isolation_level=None)
        else:
            db = sqlite3.connect(path, timeout=60, isolation_level=None,
                                 check_same_thread=False)
            # WAL is a property of the database file, set once in _create.
            db.execute("PRAGMA synchronous=NORMAL")
        db.row_factory = sqlite3.Row
        return db

    @property
    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._connect()
            self._local.db = db
        return db

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE serialises writers across processes."""
        if self.readonly:
            raise StoreError(f"the store at {self.root} was opened read-only")
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        else:
            db.execute("COMMIT")

    # -- paths -----------------------------------------------------------------------------
    def file_path(self, f: StoredFile) -> Path:
        return self.root / "files" / f.project / f.filename

    def metadata_path(self, f: StoredFile) -> Path:
        return self.root / "files" / f.project / (f.filename + ".metadata")

    def log_dir(self, project: str) -> Path:
        return self.root / "logs" / canonicalize_name(project)

    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    def lock_path(self, key: str) -> Path:
        return self.root / "locks" / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock")

    # -- reading ---------------------------------------------------------------------------
    def generation(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    def projects(self) -> list[NormalizedName]:
        rows = self._db.execute("SELECT DISTINCT project FROM files ORDER BY project")
        return [NormalizedName(r[0]) for r in rows]

    def files(self, project: str | None = None) -> list[StoredFile]:
        if project is None:
            rows = self._db.execute("SELECT * FROM files ORDER BY project, filename")
        else:
            rows = self._db.execute(
                "SELECT * FROM files WHERE project=? ORDER BY filename",
                (canonicalize_name(project),),
            )
        return [_row_to_file(r) for r in rows]

    def get(self, filename: str) -> StoredFile | None:
        row = self._db.execute("SELECT * FROM files WHERE filename=?", (filename,)).fetchone()
        return _row_to_file(row) if row else None

    def releases(self, project: str, version: str) -> list[StoredFile]:
        return [
            f for f in self.files(project)
            if Version(f.version) == Version(version)
        ]

    # -- publishing ------------------------------------------------------------------------
    def staging_file(self, suffix: str = "") -> Path:
        """A fresh path in the store's staging area, on the same filesystem as ``files/``."""
        fd, name = tempfile.mkstemp(dir=self.tmp_dir(), suffix=suffix)
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
            size = staged.stat().st_size
            meta_sha = hashlib.sha256(info.metadata).hexdigest() if info.metadata else None
            stored = StoredFile(
                filename=name,
                project=info.project,
                version=info.version,
                kind=info.kind,
                tags=info.tags,
                sha256=digest,
                size=size,
                upload_time=utc_now(),
                requires_python=info.requires_python or requires_python,
                metadata_sha256=meta_sha,
                yanked=None,
                origin=origin,
                provenance=dict(provenance or {}),
            )
            final = self.file_path(stored)
            final.parent.mkdir(parents=True, exist_ok=True)
            with self._write() as db:
                row = db.execute("SELECT * FROM files WHERE filename=?", (name,)).fetchone()
                if row is not None:
                    existing = _row_to_file(row)
                    if existing.sha256 == digest:
                        return PublishResult(status=PublishStatus.IDENTICAL, file=existing)
                    raise PublishConflict(
                        f"{name} is already published with different bytes "
                        f"(sha256 {existing.sha256[:12]}…, offered {digest[:12]}…)",
                        hint="published files never change; publish a new version or a new "
                        "build tag instead",
                    )
                if info.metadata is not None:
                    self._write_atomic(self.metadata_path(stored), info.metadata)
                # No row means nothing under this name was ever shown, so replacing debris
                # left by a crashed publisher is safe.
                os.replace(staged, final)
                _fsync_dir(final.parent)
                db.execute(
                    "INSERT INTO files VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    _file_to_row(stored),
                )
                db.execute(
                    "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'"
                )
            return PublishResult(status=PublishStatus.PUBLISHED, file=stored)
        finally:
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()

    def _stage_copy(self, source: Path) -> Path:
        staged = self.staging_file(suffix=".part")
        try:
            with source.open("rb") as src, staged.open("wb") as dst:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
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
        with self._write() as db:
            cur = db.execute("UPDATE files SET yanked=? WHERE filename=?", (reason, filename))
            if cur.rowcount == 0:
                raise StoreError(f"{filename} is not in the store at {self.root}")
            db.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'"
            )

    # -- failures and caches ---------------------------------------------------------------
    def record_failure(self, failure: Failure) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?,?,?,?,?,?,?)",
                (failure.key, failure.project, failure.version, failure.target,
                 failure.message, failure.log, failure.time),
            )

    def failure(self, key: str) -> Failure | None:
        row = self._db.execute("SELECT * FROM failures WHERE key=?", (key,)).fetchone()
        return Failure(**dict(row)) if row else None

    def failures(self) -> list[Failure]:
        rows = self._db.execute("SELECT * FROM failures ORDER BY project, version, target")
        return [Failure(**dict(r)) for r in rows]

    def clear_failure(self, key: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM failures WHERE key=?", (key,))

    def cache_get(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM cache WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def cache_put(self, key: str, value: Any) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO cache VALUES (?,?)", (key, json.dumps(value)))

    def clean_staging(self, older_than: float = 24 * 3600) -> int:
        """Remove staging debris older than ``older_than`` seconds (crashed publishers)."""
        removed = 0
        cutoff = time.time() - older_than
        for p in self.tmp_dir().iterdir():
            with contextlib.suppress(OSError):
                if p.stat().st_mtime < cutoff:
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


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _row_to_file(row: sqlite3.Row) -> StoredFile:
    tags = frozenset(Tag(*t.split("-")) for t in row["tags"].split(",") if t)
    return StoredFile(
        filename=row["filename"],
        project=NormalizedName(row["project"]),
        version=row["version"],
        kind=Kind(row["kind"]),
        tags=tags,
        sha256=row["sha256"],
        size=row["size"],
        upload_time=row["upload_time"],
        requires_python=row["requires_python"],
        metadata_sha256=row["metadata_sha256"],
        yanked=row["yanked"],
        origin=Origin(row["origin"]),
        provenance=json.loads(row["provenance"]),
    )


def _file_to_row(f: StoredFile) -> tuple[Any, ...]:
    return (
        f.filename, f.project, f.version, f.kind.value,
        ",".join(sorted(str(t) for t in f.tags)),
        f.sha256, f.size, f.upload_time, f.requires_python, f.metadata_sha256, f.yanked,
        f.origin.value, json.dumps(dict(f.provenance), sort_keys=True),
    )
