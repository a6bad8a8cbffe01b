"""One SQLite database file used by many threads and processes: a connection per thread, WAL,
``BEGIN IMMEDIATE`` write transactions, and every ``sqlite3`` error turned into ``StoreError``.

Shared by the catalogue and the build ledger; nothing else in wheelhouse imports ``sqlite3``.
``Db`` and ``Tx`` are what both use, so ``pg`` (PostgreSQL) can stand in for this one.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from wheelhouse.errors import StoreError
from wheelhouse.util import disk_full

Row = sqlite3.Row


class Tx(Protocol):
    """Statements inside one write transaction (``?`` placeholders, portable SQL)."""

    committed: bool

    def commit(self) -> None: ...

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int: ...

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]: ...

    def one(self, sql: str, args: Sequence[Any] = ()) -> Any: ...


class Db(Protocol):
    """A database the catalogue or the ledger lives in: SQLite here, or ``pg.PgDatabase``.
    Rows answer both ``row[0]`` and ``row["column"]``; writers take turns (``transaction``)."""

    readonly: bool

    def create(self) -> None: ...

    def has_table(self, name: str) -> bool: ...

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]: ...

    def one(self, sql: str, args: Sequence[Any] = ()) -> Any: ...

    def transaction(self) -> contextlib.AbstractContextManager[Tx]: ...


class Database:
    """A database file with its schema. Opening read-only never creates or changes it."""

    def __init__(self, path: Path, *, schema: str, readonly: bool, what: str) -> None:
        self.path = path
        self.readonly = readonly
        self._what = what
        self._schema = schema
        self._local = threading.local()

    def _fail(self, e: BaseException, doing: str) -> StoreError:
        full = disk_full(e, self.path)
        if full is not None:
            return full
        return StoreError(
            f"cannot {doing} the {self._what} at {self.path}: {e}",
            hint="check that the store directory is a wheelhouse store, readable and writable "
            "by this user, and on a local filesystem (SQLite needs working file locks)",
        )

    def create(self) -> None:
        """Create or complete the schema (idempotent: repairs a file left half-created)."""
        try:
            db = self._connection()
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(self._schema)
        except sqlite3.Error as e:
            raise self._fail(e, "create") from None

    def has_table(self, name: str) -> bool:
        row = self.one("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,))
        return row is not None

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            if self.readonly:
                db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30,
                                     check_same_thread=False, isolation_level=None)
            else:
                db = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                                     check_same_thread=False)
                # Durable at commit in WAL mode with NORMAL only up to the last checkpoint;
                # FULL makes a 200 to an uploader mean the row survives a power cut.
                db.execute("PRAGMA synchronous=FULL")
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        try:
            return list(self._connection().execute(sql, args))
        except sqlite3.Error as e:
            raise self._fail(e, "read") from None

    def one(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        rows = self.query(sql, args)
        return rows[0] if rows else None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One write transaction; BEGIN IMMEDIATE serialises writers across processes."""
        if self.readonly:
            raise StoreError(f"the {self._what} at {self.path} was opened read-only")
        db = self._connection()
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise self._fail(e, "write") from None
        tx = Transaction(db, self)
        try:
            yield tx
        except BaseException:
            if not tx.committed:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise
        if not tx.committed:
            tx.commit()


class Transaction:
    """Statements inside one write transaction."""

    def __init__(self, db: sqlite3.Connection, owner: Database) -> None:
        self._db = db
        self._owner = owner
        self.committed = False

    def commit(self) -> None:
        """Commit now, inside the block (for work that must follow the commit while still
        in it); the block then ends without committing again."""
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise self._owner._fail(e, "write") from None
        self.committed = True

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run a statement; returns the number of rows it changed."""
        try:
            return self._db.execute(sql, args).rowcount
        except sqlite3.Error as e:
            raise self._owner._fail(e, "write") from None

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        try:
            return list(self._db.execute(sql, args))
        except sqlite3.Error as e:
            raise self._owner._fail(e, "read") from None

    def one(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        try:
            row: Row | None = self._db.execute(sql, args).fetchone()
        except sqlite3.Error as e:
            raise self._owner._fail(e, "read") from None
        return row
