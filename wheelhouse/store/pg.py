"""The catalogue and the build ledger in PostgreSQL (``--catalogue postgresql://…``): a
connection pool per process (psycopg 3 + psycopg_pool), versioned SQL migrations applied at
start, write transactions that take turns on an advisory lock (as SQLite's ``BEGIN
IMMEDIATE`` does), advisory locks for builds, and the generation readers poll.

The same SQL runs here and on SQLite (``?`` placeholders become ``%s``); rows answer both
``row[0]`` and ``row["column"]``. Every database error becomes a ``StoreError`` naming the
database (without its password) and what to check.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg_pool

from wheelhouse.errors import SchemaTooNew, StoreError

#: Each component's migrations, in order; a database records how many it has applied.
#: Append, never edit: a migration that shipped is history.
MIGRATIONS: dict[str, tuple[str, ...]] = {
    "catalogue": ("""
CREATE TABLE IF NOT EXISTS files (
    filename        TEXT PRIMARY KEY,
    project         TEXT NOT NULL,
    version         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    tags            TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    size            BIGINT NOT NULL,
    upload_time     TEXT NOT NULL,
    requires_python TEXT,
    metadata_sha256 TEXT,
    yanked          TEXT,
    origin          TEXT NOT NULL,
    provenance      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS files_project ON files (project, version);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('generation', '0') ON CONFLICT DO NOTHING;
""",),
    "ledger": ("""
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
""",),
}

_VERSIONS = """CREATE TABLE IF NOT EXISTS wheelhouse_schema (
    component TEXT PRIMARY KEY, version INTEGER NOT NULL)"""


def redacted(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def lock_key(name: str) -> int:
    """A 64-bit advisory lock key for ``name``, the same in every process."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class PgRow:
    """A row addressed by position or by column name, as ``sqlite3.Row`` is."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: dict[str, int], values: Sequence[Any]) -> None:
        self._names = names
        self._values = values

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return self._values[self._names[key]]
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)


def _row_factory(cursor: Any) -> Any:
    names = {d.name: i for i, d in enumerate(cursor.description or ())}
    return lambda values: PgRow(names, values)


#: one pool per database and process, kept for the process's life: pools are not dropped
#: with the stores that use them (one dropped inside its own worker thread cannot stop).
_POOLS: dict[tuple[str, int], psycopg_pool.ConnectionPool] = {}
_POOLS_GUARD = threading.Lock()


def _close_pools() -> None:
    with _POOLS_GUARD:
        mine = [key for key in _POOLS if key[1] == os.getpid()]
        pools = [_POOLS.pop(key) for key in mine]
    for pool in pools:
        with contextlib.suppress(Exception):
            pool.close(timeout=1)


def _sql(sql: str) -> str:
    return sql.replace("?", "%s")


class PgDatabase:
    """One component's tables (``catalogue`` or ``ledger``) in the database at ``url``."""

    def __init__(self, url: str, *, component: str, readonly: bool, max_size: int = 16) -> None:
        self.url = url
        self.component = component
        self.readonly = readonly
        self.where = redacted(url)
        self._max_size = max_size
        self._write_lock = lock_key(f"wheelhouse:{component}:write")

    def _fail(self, e: BaseException, doing: str) -> StoreError:
        return StoreError(
            f"cannot {doing} the {self.component} in PostgreSQL at {self.where}: "
            f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}",
            hint="check --catalogue (or WHEELHOUSE_CATALOGUE / `catalogue` in the config): "
            "that PostgreSQL runs there, answers on that port and accepts this user and "
            "password for that database",
        )

    def pool(self) -> psycopg_pool.ConnectionPool:
        """This process's pool for the database (shared by every store and ledger on it; a
        new one after a fork, since connections must never cross one)."""
        key = (self.url, os.getpid())
        with _POOLS_GUARD:
            pool = _POOLS.get(key)
            if pool is None:
                pool = psycopg_pool.ConnectionPool(
                    self.url, min_size=1, max_size=self._max_size, open=False,
                    kwargs={"row_factory": _row_factory, "connect_timeout": 5},
                    timeout=30, name="wheelhouse",
                    check=psycopg_pool.ConnectionPool.check_connection)
                pool.open(wait=False)
                if not _POOLS:
                    atexit.register(_close_pools)
                _POOLS[key] = pool
            return pool

    def close(self) -> None:
        """Close this process's pool for the database (before forking workers)."""
        with _POOLS_GUARD:
            pool = _POOLS.pop((self.url, os.getpid()), None)
        if pool is not None:
            pool.close()

    def ping(self) -> None:
        """Connect once, outside the pool, so an unreachable server fails now with a
        clear message rather than after the pool's timeout."""
        try:
            with psycopg.connect(self.url, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as e:
            raise self._fail(e, "reach") from None

    @contextlib.contextmanager
    def _connection(self, doing: str) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self.pool().connection() as conn:
                yield conn
        except (psycopg.Error, psycopg_pool.PoolTimeout) as e:
            raise self._fail(e, doing) from None

    # -- schema ------------------------------------------------------------------------------
    def create(self) -> None:
        """Apply the migrations this database lacks, one process at a time. Refuses a
        database whose schema is newer than this code knows."""
        self.ping()
        known = MIGRATIONS[self.component]
        with self._connection("create") as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)",
                         (lock_key("wheelhouse:migrate"),))
            conn.execute(_VERSIONS)
            applied = self._applied(conn)
            self._refuse_newer(applied, len(known))
            for number in range(applied, len(known)):
                conn.execute(known[number])
            conn.execute("INSERT INTO wheelhouse_schema VALUES (%s, %s) ON CONFLICT "
                         "(component) DO UPDATE SET version = excluded.version",
                         (self.component, len(known)))

    def check(self) -> None:
        """For readers: the schema is there and not newer than this code."""
        self.ping()
        with self._connection("read") as conn:
            exists = conn.execute("SELECT to_regclass('wheelhouse_schema')").fetchone()
            applied = self._applied(conn) if exists and exists[0] else 0
        self._refuse_newer(applied, len(MIGRATIONS[self.component]))
        if applied == 0:
            raise StoreError(
                f"there is no wheelhouse {self.component} in PostgreSQL at {self.where}",
                hint="start `wheelhouse serve` with an upload token or run `wheelhouse build` "
                "once with this --catalogue to create it",
            )

    def _applied(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT version FROM wheelhouse_schema WHERE component = %s",
                           (self.component,)).fetchone()
        return int(row[0]) if row else 0

    def _refuse_newer(self, applied: int, known: int) -> None:
        if applied > known:
            raise SchemaTooNew(
                f"the {self.component} in PostgreSQL at {self.where} has schema version "
                f"{applied}; this wheelhouse knows versions up to {known}",
                hint="upgrade wheelhouse on this machine to the version the other machines "
                "sharing this catalogue run",
            )

    def has_table(self, name: str) -> bool:
        row = self.one("SELECT to_regclass(?)", (name,))
        return row is not None and row[0] is not None

    # -- statements --------------------------------------------------------------------------
    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._connection("read") as conn:
            return conn.execute(_sql(sql), args).fetchall()

    def one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        rows = self.query(sql, args)
        return rows[0] if rows else None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[PgTransaction]:
        """One write transaction; writers to this component take turns on an advisory lock,
        released by the commit, or by PostgreSQL when a writer's connection dies."""
        if self.readonly:
            raise StoreError(f"the {self.component} at {self.where} was opened read-only")
        with self._connection("write") as conn:
            tx = PgTransaction(conn, self)
            tx.execute("SELECT pg_advisory_xact_lock(?)", (self._write_lock,))
            try:
                yield tx
            except BaseException:
                if not tx.committed:
                    with contextlib.suppress(psycopg.Error):
                        conn.rollback()
                raise
            if not tx.committed:
                tx.commit()

    @contextlib.contextmanager
    def advisory_lock(self, name: str) -> Iterator[None]:
        """Hold the session lock ``name`` for the block, across processes and machines;
        PostgreSQL drops it if this process dies."""
        with self._connection("lock") as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (lock_key(name),))
            conn.commit()
            try:
                yield
            finally:
                with contextlib.suppress(psycopg.Error):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(name),))
                    conn.commit()


class PgTransaction:
    """Statements inside one write transaction."""

    def __init__(self, conn: psycopg.Connection[Any], owner: PgDatabase) -> None:
        self._conn = conn
        self._owner = owner
        self.committed = False

    def commit(self) -> None:
        try:
            self._conn.commit()
        except psycopg.Error as e:
            with contextlib.suppress(psycopg.Error):
                self._conn.rollback()
            raise self._owner._fail(e, "write") from None
        self.committed = True

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        try:
            return self._conn.execute(_sql(sql), args).rowcount
        except psycopg.Error as e:
            raise self._owner._fail(e, "write") from None

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn.execute(_sql(sql), args).fetchall()
        except psycopg.Error as e:
            raise self._owner._fail(e, "read") from None

    def one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        rows = self.query(sql, args)
        return rows[0] if rows else None


class PolledGeneration:
    """The change token of a catalogue in PostgreSQL: its generation, read at most every
    ``interval`` seconds however many requests ask, so a commit by any replica on any
    machine is seen within that interval (and at once by this process's own commits)."""

    def __init__(self, db: PgDatabase, interval: float = 0.1) -> None:
        self._db = db
        self._interval = interval
        self._value: int | None = None
        self._next = 0.0
        self._guard = threading.Lock()

    def bump(self, generation: int) -> None:
        self._value = generation
        self._next = time.monotonic() + self._interval

    def read(self) -> int | None:
        now = time.monotonic()
        if now < self._next or not self._guard.acquire(blocking=False):
            return self._value
        try:
            row = self._db.one("SELECT value FROM meta WHERE key='generation'")
            self._value = int(row[0]) if row else None
        except StoreError:
            pass  # keep the last value: the server's own refresh reports the failure
        finally:
            self._next = time.monotonic() + self._interval
            self._guard.release()
        return self._value

    def close(self) -> None:
        pass
