"""What a lockfile says, whichever tool wrote it: the releases it locks, each with every file
it lists, and which of them one target installs."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from packaging.requirements import Requirement
from packaging.utils import NormalizedName

from wheelhouse.requirements import RequirementLine
from wheelhouse.simple.pages import Candidate, candidate_from
from wheelhouse.targets import Target


@dataclass(frozen=True, kw_only=True)
class LockedPackage:
    """One locked release and every file the lock lists for it (wheels for all platforms,
    the sdist): the candidates the resolver chooses among for a target."""

    name: NormalizedName
    version: str
    files: tuple[Candidate, ...]
    #: the lockfile, for messages ("pinned by ...").
    source: str

    @property
    def label(self) -> str:
        return f"{self.name}=={self.version}"

    def line(self) -> RequirementLine:
        """The pin as a requirements line would give it: ``==`` with every listed hash, so
        only the lock's own files (or the store's, which are ours) can satisfy it."""
        hashes = frozenset(f"sha256:{c.sha256}" for c in self.files if c.sha256)
        return RequirementLine(requirement=Requirement(self.label), hashes=hashes,
                               source=self.source)


class Lockfile(Protocol):
    """A lockfile read and checked once; selected per target."""

    @property
    def path(self) -> Path: ...

    #: every file whose bytes the selection depends on (the lockfile, maybe its project).
    @property
    def inputs(self) -> tuple[Path, ...]: ...

    #: remarks about the whole lockfile (what it holds that no wheel can be made of).
    @property
    def notes(self) -> tuple[str, ...]: ...

    def packages(self) -> tuple[LockedPackage, ...]:
        """Every release the lock names, whichever targets install it."""
        ...

    @property
    def requires_python(self) -> str | None:
        """The whole lock's Requires-Python, if it states one."""
        ...

    def select(self, target: Target) -> tuple[LockedPackage, ...]:
        """What an installer of this lock installs on ``target``. Raises RequirementsError
        when the lock cannot be installed there at all (its Python or environments)."""
        ...


def file_candidate(
    *, filename: str | None, url: str | None, path: str | None, base: Path,
    hashes: Mapping[str, Any], size: int | None, upload_time: datetime | str | None,
    requires_python: str | None, source: str,
) -> Candidate | None:
    """A lock's file entry as a candidate: ``url`` as it is, ``path`` relative to ``base``."""
    if url is None and path is not None:
        url = (base / urllib.parse.unquote(path)).resolve().as_uri()
    if url is None:
        return None
    sha = hashes.get("sha256")
    when = upload_time.isoformat() if isinstance(upload_time, datetime) else upload_time
    sha256 = sha.lower() if isinstance(sha, str) else None

    def candidate(name: str) -> Candidate | None:
        return candidate_from(name, url, sha256=sha256, requires_python=requires_python,
                              yanked=None, source=source, size=size, upload_time=when)

    at_url = candidate(urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]))
    named = candidate(filename) if filename else at_url
    # The same file under the name its index gives it (uv writes `MarkupSafe-2.1.5-...` as
    # `markupsafe-2.1.5-...`): one file, one name in the store, however it was asked for.
    if at_url is not None and named is not None and (
            at_url.project, at_url.version, at_url.tags, at_url.kind) == (
            named.project, named.version, named.tags, named.kind):
        return at_url
    return named
