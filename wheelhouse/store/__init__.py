"""The store: immutable distribution files and the catalogue of what is published.

Readers (the server, export, planning) see it through ``StoreReader``; whoever adds files (a
fetch, a build, an upload) through ``StoreWriter``. ``Store`` is both. The build system's own
records (failures, logs, locks, caches) are not here: see ``wheelhouse.ledger``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from packaging.utils import NormalizedName

from wheelhouse.store.model import Kind, Origin, PublishResult, PublishStatus, StoredFile
from wheelhouse.store.store import Store, file_lock, sha256_file, utc_now


class StoreReader(Protocol):
    """What may be read: the catalogue and the published bytes."""

    @property
    def root(self) -> Path: ...

    def generation(self) -> int: ...

    def change_token(self) -> int | None: ...

    def read_protected(self) -> bool: ...

    def projects(self) -> list[NormalizedName]: ...

    def files(self, project: str | None = None) -> list[StoredFile]: ...

    def get(self, filename: str) -> StoredFile | None: ...

    def releases(self, project: str, version: str) -> list[StoredFile]: ...

    def file_path(self, f: StoredFile) -> Path: ...

    def metadata_path(self, f: StoredFile) -> Path: ...

    def read_metadata(self, f: StoredFile) -> bytes | None: ...


class StoreWriter(StoreReader, Protocol):
    """What may be added: files, published atomically and never replaced."""

    def tmp_dir(self) -> Path: ...

    def staging_file(self, suffix: str = "") -> Path: ...

    def publish(
        self, source: Path, *, filename: str | None = None, origin: Origin,
        provenance: Mapping[str, Any] | None = None, expected_sha256: str | None = None,
        consume: bool = False, requires_python: str | None = None,
    ) -> PublishResult: ...


__all__ = [
    "Kind",
    "Origin",
    "PublishResult",
    "PublishStatus",
    "Store",
    "StoreReader",
    "StoreWriter",
    "StoredFile",
    "file_lock",
    "sha256_file",
    "utc_now",
]
