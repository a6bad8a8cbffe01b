"""How the store is seen: readers (the server, export, planning) through ``StoreReader``;
whoever adds files (a fetch, a build, an upload) through ``StoreWriter``. ``Store`` is both.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from packaging.utils import NormalizedName

from wheelhouse.store.model import Origin, PublishResult, StoredFile


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
