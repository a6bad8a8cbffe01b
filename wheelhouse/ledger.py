"""The build ledger: what the build system remembers between runs, beside the store.

Failed builds (with their logs) so they are not retried until their inputs change, the locks
that make concurrent runs take turns on one build, and caches of earlier plans and locks.
None of it is published: the index never reads the ledger (the web page shows its failures
and logs to people). Layout under the store root::

    ledger.sqlite3                failures and caches
    logs/<project>/<version>/...  build logs
    locks/                        one lock file per build in progress

With a catalogue in PostgreSQL (a shared store) the failures and caches are tables there and
the build locks are advisory locks, so runners on other machines take turns too; with a
bucket, each finished log is also kept there under ``logs/`` (``keep_log``), where every
replica's web page reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from wheelhouse.errors import StoreError
from wheelhouse.store.db import Database, Db
from wheelhouse.util import file_lock

if TYPE_CHECKING:
    from wheelhouse.store.pg import PgDatabase
    from wheelhouse.store.s3 import S3Blobs

FILENAME = "ledger.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS failures (
    key      TEXT PRIMARY KEY,
    project  TEXT NOT NULL,
    version  TEXT NOT NULL,
    target   TEXT NOT NULL,
    message  TEXT NOT NULL,
    log      TEXT,
    time     TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, kw_only=True)
class Failure:
    """A build that failed, keyed by everything its result depends on."""

    key: str
    project: str
    version: str
    target: str
    message: str
    #: the log, relative to the store root.
    log: str | None
    time: str
    #: the cause lines read from the log and a hint, when one was found.
    cause: tuple[str, ...] = ()
    hint: str | None = None


@dataclass(frozen=True, kw_only=True)
class LogFile:
    path: Path
    #: relative to the store root, as recorded in provenance and failures.
    relative: str


class Ledger:
    """The ledger of the store at ``root``. Read-only when the store is (``list``, dry runs)."""

    def __init__(self, root: Path, *, readonly: bool = False, shared: PgDatabase | None = None,
                 blobs: S3Blobs | None = None) -> None:
        self.root = Path(os.path.abspath(root))
        self.blobs = blobs
        self.readonly = readonly
        self._shared = shared
        self._db: Db = shared if shared is not None else Database(
            self.root / FILENAME, schema=_SCHEMA, readonly=readonly, what="build ledger")
        self._exists = not readonly or (self.root / FILENAME).is_file()
        if shared is not None:
            self._exists = True
            if not readonly:
                shared.create()
        elif not readonly:
            (self.root / "locks").mkdir(parents=True, exist_ok=True)
            with file_lock(self.root / "locks" / "ledger.lock"):
                self._db.create()

    # -- failures --------------------------------------------------------------------------
    def failure(self, key: str) -> Failure | None:
        if not self._exists:
            return None
        row = self._db.one("SELECT * FROM failures WHERE key=?", (key,))
        return _failure(row) if row else None

    def failures(self) -> list[Failure]:
        if not self._exists:
            return []
        rows = self._db.query("SELECT * FROM failures ORDER BY project, version, target")
        return [_failure(r) for r in rows]

    def record_failure(self, failure: Failure) -> None:
        detail = json.dumps({"cause": list(failure.cause), "hint": failure.hint})
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO failures VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (key) DO UPDATE "
                "SET project=excluded.project, version=excluded.version, "
                "target=excluded.target, message=excluded.message, log=excluded.log, "
                "time=excluded.time, detail=excluded.detail",
                (failure.key, failure.project, failure.version, failure.target,
                 failure.message, failure.log, failure.time, detail),
            )

    def clear_failure(self, key: str) -> None:
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM failures WHERE key=?", (key,))

    # -- caches ----------------------------------------------------------------------------
    def cache_get(self, key: str) -> Any:
        if not self._exists:
            return None
        row = self._db.one("SELECT value FROM cache WHERE key=?", (key,))
        return json.loads(row[0]) if row else None

    def cache_put(self, key: str, value: Any) -> None:
        if self.readonly:
            return  # dry runs remember nothing
        with self._db.transaction() as tx:
            tx.execute("INSERT INTO cache VALUES (?,?) ON CONFLICT (key) DO UPDATE SET "
                       "value = excluded.value", (key, json.dumps(value)))

    # -- logs and locks --------------------------------------------------------------------
    def new_log(self, project: str, version: str, target: str) -> LogFile:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.root / "logs" / canonicalize_name(project) / version / f"{target}-{stamp}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return LogFile(path=path, relative=str(path.relative_to(self.root)))

    def keep_log(self, log: LogFile) -> None:
        """Copy a finished log into the bucket, for replicas on other machines (a shared
        store); a log that cannot be kept there stays only here, which a build survives."""
        if self.blobs is None or not log.path.is_file():
            return
        with contextlib.suppress(StoreError, OSError):
            data = log.path.read_bytes()
            self.blobs.put_new(log.relative, data, hashlib.sha256(data).hexdigest())

    def log_path(self, relative: str) -> Path:
        return self.root / relative

    @contextlib.contextmanager
    def build_lock(self, project: str, version: str, target: str) -> Iterator[None]:
        """Held while one (pin, target) builds, so concurrent runs build it once."""
        key = f"build:{canonicalize_name(project)}:{version}:{target}"
        if self._shared is not None:
            with self._shared.advisory_lock(key):
                yield
            return
        name = hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock"
        with file_lock(self.root / "locks" / name):
            yield


def open_ledger(root: Path, *, catalogue: str | None = None, readonly: bool = False,
                blobs: S3Blobs | None = None) -> Ledger:
    """The ledger beside the store at ``root``, or in the shared ``catalogue``'s database
    (and its logs also in the store's bucket)."""
    if catalogue is None:
        return Ledger(root, readonly=readonly)
    from wheelhouse.store.pg import PgDatabase

    db = PgDatabase(catalogue, component="ledger", readonly=readonly, max_size=8)
    return Ledger(root, readonly=readonly, shared=db, blobs=blobs)



def failure_json(failure: Failure) -> dict[str, Any]:
    data = asdict(failure)
    data["cause"] = list(failure.cause)
    return data


def _failure(row: Any) -> Failure:
    detail = json.loads(row["detail"] or "{}")
    return Failure(
        key=row["key"], project=row["project"], version=row["version"], target=row["target"],
        message=row["message"], log=row["log"], time=row["time"],
        cause=tuple(detail.get("cause") or ()), hint=detail.get("hint"),
    )
