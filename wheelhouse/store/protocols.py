"""How the store is seen: readers (the server, export, planning) through ``StoreReader``;
whoever adds files (a fetch, a build, an upload) through ``StoreWriter``. ``Store`` is both.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from packaging.utils import NormalizedName

from wheelhouse.store.model import Origin, PublishResult, StoredFile

if TYPE_CHECKING:
    from wheelhouse.store.s3 import S3Blobs


class StoreReader(Protocol):
    """What may be read: the catalogue and the published bytes."""

    @property
    def root(self) -> Path: ...

    #: where the bytes are when they are in a bucket; None: under ``root`` (``file_path``).
    blobs: S3Blobs | None

    #: what the store is called in messages (its directory, or its s3:// URL).
    location: str

    def generation(self) -> int: ...

    def change_token(self) -> int | None: ...

    def read_protected(self) -> bool: ...

    def projects(self) -> list[NormalizedName]: ...

    def files(self, project: str | None = None) -> list[StoredFile]: ...

    def get(self, filename: str) -> StoredFile | None: ...

    def releases(self, project: str, version: str) -> list[StoredFile]: ...

    def file_path(self, f: StoredFile) -> Path: ...

    def local_file(self, f: StoredFile) -> Path: ...

    def file_url(self, f: StoredFile) -> str: ...

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
