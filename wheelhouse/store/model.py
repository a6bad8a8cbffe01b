"""What the store records about a published file, and the outcome of publishing one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from packaging.tags import Tag
from packaging.utils import NormalizedName


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
