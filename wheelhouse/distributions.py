"""What a distribution file says about itself: its name, version and tags from the filename,
METADATA from inside a wheel, checked to agree before anything enters the store."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from email.parser import BytesParser
from pathlib import Path

from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from wheelhouse.errors import InvalidDistribution
from wheelhouse.store.model import Kind


@dataclass(frozen=True, kw_only=True)
class DistInfo:
    """What a distribution file says about itself, read once before publishing."""

    project: NormalizedName
    version: str
    kind: Kind
    tags: frozenset[Tag]
    metadata: bytes | None
    requires_python: str | None


def inspect_distribution(path: Path, filename: str | None = None) -> DistInfo:
    """Validate a wheel or sdist by its filename and (for wheels) its METADATA.

    Raises InvalidDistribution naming the file and what is wrong with it.
    """
    name = filename or path.name
    if "/" in name or "\\" in name or name.startswith("."):
        raise InvalidDistribution(f"{name!r} is not a plain distribution filename")
    if name.endswith(".whl"):
        try:
            project, version, _build, tags = parse_wheel_filename(name)
        except InvalidWheelFilename as e:
            raise InvalidDistribution(f"{name}: {e}") from None
        metadata = read_wheel_metadata(path, name)
        headers = BytesParser().parsebytes(metadata, headersonly=True)
        meta_name, meta_version = headers.get("Name"), headers.get("Version")
        if not meta_name or canonicalize_name(meta_name) != project:
            raise InvalidDistribution(
                f"{name}: METADATA names project {meta_name!r}, the filename {project!r}"
            )
        try:
            same_version = meta_version is not None and Version(meta_version) == version
        except ValueError:
            same_version = False
        if not same_version:
            raise InvalidDistribution(
                f"{name}: METADATA has version {meta_version!r}, the filename {version}"
            )
        return DistInfo(
            project=project,
            version=str(version),
            kind=Kind.WHEEL,
            tags=frozenset(tags),
            metadata=metadata,
            requires_python=headers.get("Requires-Python"),
        )
    try:
        project, version = parse_sdist_filename(name)
    except InvalidSdistFilename as e:
        raise InvalidDistribution(f"{name}: {e}") from None
    return DistInfo(
        project=project,
        version=str(version),
        kind=Kind.SDIST,
        tags=frozenset(),
        metadata=None,
        requires_python=None,
    )


def read_wheel_metadata(path: Path, filename: str | None = None) -> bytes:
    """The bytes of ``<name>-<version>.dist-info/METADATA`` inside a wheel."""
    name = filename or path.name
    try:
        with zipfile.ZipFile(path) as zf:
            candidates = [
                n for n in zf.namelist()
                if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
            ]
            if len(candidates) != 1:
                raise InvalidDistribution(
                    f"{name}: expected one top-level *.dist-info/METADATA, found "
                    f"{len(candidates)}"
                )
            return zf.read(candidates[0])
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise InvalidDistribution(f"{name} is not a readable zip archive: {e}") from None
