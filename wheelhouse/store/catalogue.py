"""The catalogue: one row per published file in ``catalogue.sqlite3``, and the generation
counter readers poll to learn that something changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from packaging.tags import Tag
from packaging.utils import NormalizedName, canonicalize_name, canonicalize_version
from packaging.version import InvalidVersion, Version

from wheelhouse.errors import StoreError
from wheelhouse.store.db import Database, Db, Row
from wheelhouse.store.db import Tx as Transaction
from wheelhouse.store.model import Kind, Origin, StoredFile

FILENAME = "catalogue.sqlite3"

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
INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0');
"""


class Catalogue:
    """Reads and writes the rows; knows nothing about the files on disk."""

    def __init__(self, root: Path, *, readonly: bool, db: Db | None = None) -> None:
        self.db: Db = db if db is not None else Database(
            root / FILENAME, schema=_SCHEMA, readonly=readonly, what="catalogue")

    def create(self) -> None:
        self.db.create()

    def check_complete(self, root: Path | str) -> None:
        """A catalogue whose creator was killed before the schema was written is refused
        with a message, never a traceback at the first query."""
        if not self.db.has_table("files") or not self.db.has_table("meta"):
            raise StoreError(
                f"the store at {root} was left half-created (its catalogue has no tables)",
                hint="run `wheelhouse build` (or any command that writes to the store) once to "
                "complete it, or delete the directory if it holds nothing",
            )

    def generation(self) -> int:
        row = self.db.one("SELECT value FROM meta WHERE key='generation'")
        return int(row[0]) if row else 0

    def meta(self, key: str) -> str | None:
        row = self.db.one("SELECT value FROM meta WHERE key=?", (key,))
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.db.transaction() as tx:
            tx.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                       "DO UPDATE SET value = excluded.value", (key, value))

    def projects(self) -> list[NormalizedName]:
        rows = self.db.query("SELECT DISTINCT project FROM files ORDER BY project")
        return [NormalizedName(r[0]) for r in rows]

    def files(self, project: str | None = None) -> list[StoredFile]:
        if project is None:
            rows = self.db.query("SELECT * FROM files ORDER BY project, filename")
        else:
            rows = self.db.query("SELECT * FROM files WHERE project=? ORDER BY filename",
                                 (canonicalize_name(project),))
        return [_row_to_file(r) for r in rows]

    def get(self, filename: str) -> StoredFile | None:
        row = self.db.one("SELECT * FROM files WHERE filename=?", (filename,))
        return _row_to_file(row) if row else None


def existing(tx: Transaction, filename: str) -> StoredFile | None:
    row = tx.one("SELECT * FROM files WHERE filename=?", (filename,))
    return _row_to_file(row) if row else None


def release_key(version: str) -> str:
    """The version as a release identity: ``8.1.7``, ``8.1.7.0`` and ``v8.1.7`` are one
    release (PEP 440 equality, which is what ``==8.1.7`` matches); a local label is kept."""
    try:
        return canonicalize_version(Version(version), strip_trailing_zero=True)
    except InvalidVersion:
        return version


def same_release(tx: Transaction, f: StoredFile) -> StoredFile | None:
    """A published file with ``f``'s identity under another filename: the same project,
    kind and tag set, and an equal version (build tags and spelling do not count)."""
    rows = tx.query("SELECT * FROM files WHERE project=? AND kind=? AND tags=?",
                    (f.project, f.kind.value, _tags(f.tags)))
    key = release_key(f.version)
    for row in rows:
        if row["filename"] != f.filename and release_key(row["version"]) == key:
            return _row_to_file(row)
    return None


def release_files(tx: Transaction, f: StoredFile) -> list[StoredFile]:
    """The published files of ``f``'s release: its project, with an equal version."""
    key = release_key(f.version)
    rows = tx.query("SELECT * FROM files WHERE project=?", (f.project,))
    return [_row_to_file(r) for r in rows if release_key(r["version"]) == key]


def committed_generation(tx: Transaction) -> int:
    row = tx.one("SELECT value FROM meta WHERE key='generation'")
    return int(row[0]) if row else 0


def insert(tx: Transaction, f: StoredFile) -> None:
    tx.execute("INSERT INTO files VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", _file_to_row(f))
    bump_generation(tx)


def bump_generation(tx: Transaction) -> None:
    tx.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")


def set_yanked(tx: Transaction, filename: str, reason: str | None) -> bool:
    changed = tx.execute("UPDATE files SET yanked=? WHERE filename=?", (reason, filename))
    if changed:
        bump_generation(tx)
    return changed > 0


def _row_to_file(row: Row) -> StoredFile:
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
        f.filename, f.project, f.version, f.kind.value, _tags(f.tags),
        f.sha256, f.size, f.upload_time, f.requires_python, f.metadata_sha256, f.yanked,
        f.origin.value, json.dumps(dict(f.provenance), sort_keys=True),
    )


def _tags(tags: frozenset[Tag]) -> str:
    return ",".join(sorted(str(t) for t in tags))
