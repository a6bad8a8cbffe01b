"""Which store a location names: a directory with its SQLite catalogue (the default), or a
shared store whose catalogue is in PostgreSQL (``--catalogue postgresql://…``) and whose
bytes are in that directory or in a bucket (``--store s3://BUCKET/PREFIX``).

The clients (boto3, psycopg) are imported only for a shared store, so a local one starts as
fast as before.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from wheelhouse.errors import SchemaTooNew, StoreError, UsageError
from wheelhouse.store.store import Shared, Store


def is_s3(location: str | Path | None) -> bool:
    return isinstance(location, str) and location.startswith("s3://")


def is_postgres(location: str | None) -> bool:
    return bool(location) and str(location).startswith(("postgresql://", "postgres://"))


def staging_root(url: str) -> Path:
    """This machine's staging area for the bucket ``url``: uploads and downloads pass
    through it on their way, nothing stays (dead writers' debris is removed as locally)."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"wheelhouse-{os.getuid()}" / f"s3-{digest}"


def check_locations(store: str | Path, catalogue: str | None) -> None:
    """Refuse combinations that cannot work, before anything is opened."""
    if catalogue is not None and not is_postgres(catalogue):
        raise UsageError(f"--catalogue {catalogue} is not a postgresql:// URL",
                         hint="write it as postgresql://USER:PASSWORD@HOST:PORT/DATABASE, or "
                         "leave it out to keep the catalogue in SQLite beside a local store")
    if is_s3(store) and catalogue is None:
        raise UsageError(f"the store {store} is in a bucket but has no catalogue",
                         hint="add --catalogue postgresql://… (or WHEELHOUSE_CATALOGUE): "
                         "SQLite needs a local disk")


def open_store(store: str | Path, *, catalogue: str | None = None, readonly: bool = False,
               check_bucket: bool = True) -> Store:
    """The store at ``store`` (a directory or an ``s3://`` URL) with its catalogue.
    ``check_bucket=False`` defers the bucket's check to its first use (a no-op build never
    uses it, and importing boto3 alone costs it 0.4 s)."""
    check_locations(store, catalogue)
    if catalogue is None:
        return Store(Path(store), readonly=readonly)
    from wheelhouse.store.pg import PgDatabase, PolledGeneration

    db = PgDatabase(catalogue, component="catalogue", readonly=readonly)
    if is_s3(store):
        from wheelhouse.store.s3 import S3Blobs

        url = str(store)
        blobs = S3Blobs(url)
        shared = Shared(location=blobs.url, db=db, changes=PolledGeneration(db), blobs=blobs,
                        check_bucket=check_bucket)
        return Store(staging_root(blobs.url), readonly=readonly, shared=shared)
    shared = Shared(location=str(store), db=db, changes=PolledGeneration(db))
    return Store(Path(store), readonly=readonly, shared=shared)


def exists(store: str | Path, catalogue: str | None = None) -> bool:
    """Whether a store is there: for a shared one, whether its catalogue has its tables
    (an unreachable database says no; opening it then says why)."""
    if catalogue is None:
        return Store.exists(Path(store))
    from wheelhouse.store.pg import PgDatabase

    try:
        PgDatabase(catalogue, component="catalogue", readonly=True).check()
    except SchemaTooNew:
        raise
    except StoreError:
        return False
    return True
