"""Deciding, for each (pin, target), what has to happen.

Already in the store with a fitting tag → nothing; a fitting wheel upstream → fetch it into the
store (so the store alone can serve the lockfile); only an sdist → build it; nothing usable →
say what exists instead. The closure a target needs is walked with that target's markers.
"""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from email.parser import BytesParser
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelhouse.store import Kind, Origin, Store, StoredFile
from wheelhouse.targets import Target

if TYPE_CHECKING:  # the upstream client pulls in requests; a warm no-op run needs neither
    from wheelhouse.upstream import Candidate


class Action(StrEnum):
    PRESENT = "present"
    FETCH = "fetch"
    BUILD = "build"
    #: a build that failed before with the same inputs; not retried without --retry-failed.
    FAILED = "failed"
    #: no file fits and there is nothing to build from.
    MISSING = "missing"


@dataclass(frozen=True, kw_only=True)
class Pin:
    project: NormalizedName
    version: str
    extras: frozenset[str]
    #: allowed hashes from the requirements file (``sha256:<hex>``); empty = any.
    hashes: frozenset[str]
    #: where this pin came from: a requirements line or "X==1 (dependency)".
    requested_by: str


@dataclass(frozen=True, kw_only=True)
class Step:
    pin: Pin
    target: Target
    action: Action
    stored: StoredFile | None = None
    candidate: Candidate | None = None
    reason: str = ""

    @property
    def label(self) -> str:
        return f"{self.pin.project}=={self.pin.version}"


def best_stored(store: Store, project: str, version: str, target: Target) -> StoredFile | None:
    """The store's most preferred wheel for this release on this target, if any."""
    ranked = []
    for f in store.releases(project, version):
        if f.kind is not Kind.WHEEL or not target.admits(f.requires_python):
            continue
        rank = target.tag_rank(f.tags)
        if rank is not None:
            ranked.append((rank, f.filename, f))
    return min(ranked, key=lambda r: (r[0], r[1]))[2] if ranked else None


def _hash_ok(candidate: Candidate, hashes: Collection[str]) -> bool:
    """A candidate whose listed sha256 is not among the pinned hashes cannot be used.

    Candidates without a listed hash are checked after download instead.
    """
    sha = {h.removeprefix("sha256:") for h in hashes if h.startswith("sha256:")}
    return not sha or candidate.sha256 is None or candidate.sha256 in sha


def choose(
    pin: Pin,
    target: Target,
    *,
    stored: StoredFile | None,
    candidates: Callable[[], Iterable[Candidate]],
    build_from_source: bool = False,
) -> Step:
    """The step for one pin on one target, given the store's best file for it (if any).

    ``candidates`` is called only when the store cannot serve the pin, so a warm store needs
    no network.
    """
    if stored is not None and not (build_from_source and stored.origin is Origin.UPSTREAM):
        return Step(pin=pin, target=target, action=Action.PRESENT, stored=stored)
    version = Version(pin.version)
    release = [c for c in candidates() if c.version == version]
    usable = [
        c for c in release
        if _hash_ok(c, pin.hashes) and target.admits(c.requires_python)
    ]
    wheels = []
    for c in usable:
        if c.kind is Kind.WHEEL:
            rank = target.tag_rank(c.tags)
            if rank is not None:
                wheels.append((rank, c.filename, c))
    sdists = [c for c in usable if c.kind is Kind.SDIST]
    sdists.sort(key=lambda c: (not c.filename.endswith(".tar.gz"), c.filename))
    if wheels and not build_from_source:
        best = min(wheels, key=lambda w: (w[0], w[1]))[2]
        return Step(pin=pin, target=target, action=Action.FETCH, candidate=best)
    if sdists:
        why = "build-from-source is set" if build_from_source and wheels else \
            "no wheel fits this target"
        return Step(pin=pin, target=target, action=Action.BUILD, candidate=sdists[0], reason=why)
    return Step(pin=pin, target=target, action=Action.MISSING,
                reason=_missing_reason(pin, target, release, usable))


def _missing_reason(
    pin: Pin, target: Target, release: list[Candidate], usable: list[Candidate]
) -> str:
    if not release:
        return f"no files for {pin.project}=={pin.version} on the index"
    if not usable:
        if any(not _hash_ok(c, pin.hashes) for c in release):
            return "no file matches the --hash values in the requirements file"
        return f"every file requires a Python other than {target.version_string}"
    platforms = sorted({t.platform for c in usable for t in c.tags})[:6]
    return ("no sdist, and no wheel fits this target; wheels exist for: "
            + ", ".join(platforms))


# -- versions for names the input does not pin --------------------------------------------

def newest_version(
    candidates: Iterable[Candidate], specifier: SpecifierSet, target: Target, *,
    prereleases: bool,
) -> str | None:
    """The newest version that satisfies ``specifier`` and has a file usable on ``target``."""
    usable: set[Version] = set()
    for c in candidates:
        if c.yanked is not None or not target.admits(c.requires_python):
            continue
        if c.kind is Kind.WHEEL and target.tag_rank(c.tags) is None:
            continue
        usable.add(c.version)
    allowed = list(specifier.filter(usable, prereleases=prereleases or None))
    return str(max(allowed)) if allowed else None


# -- dependencies from metadata --------------------------------------------------------------

def requires_dist(metadata: bytes) -> list[Requirement]:
    headers = BytesParser().parsebytes(metadata, headersonly=True)
    out = []
    for value in headers.get_all("Requires-Dist") or []:
        try:
            out.append(Requirement(value))
        except InvalidRequirement:
            continue  # installers skip what they cannot parse; so do we
    return out


def dependencies_for(
    requirements: Iterable[Requirement], target: Target, extras: Collection[str]
) -> list[Requirement]:
    """The requirements that apply on ``target`` when ``extras`` of the project are wanted."""
    env = target.marker_environment()
    wanted = {""} | {canonicalize_name(e) for e in extras}
    out = []
    for req in requirements:
        if req.marker is None or any(req.marker.evaluate(env | {"extra": e}) for e in wanted):
            out.append(req)
    return out


def sdist_static_metadata(sdist: Path) -> bytes | None:
    """PKG-INFO of an sdist when it is reliable for dependencies (PEP 643), else None."""
    try:
        data = _read_pkg_info(sdist)
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError):
        return None
    if data is None:
        return None
    headers = BytesParser().parsebytes(data, headersonly=True)
    try:
        meta_version = Version(headers.get("Metadata-Version", "1.0"))
    except InvalidVersion:
        return None
    dynamic = {d.lower() for d in headers.get_all("Dynamic") or []}
    if meta_version < Version("2.2") or "requires-dist" in dynamic:
        return None
    return data


def _read_pkg_info(sdist: Path) -> bytes | None:
    return _read_member(sdist, "PKG-INFO")


def _read_member(sdist: Path, name: str) -> bytes | None:
    """A file at the top of the sdist's single root directory, or None."""
    if sdist.name.endswith(".zip"):
        with zipfile.ZipFile(sdist) as zf:
            names = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith("/" + name)]
            return zf.read(names[0]) if names else None
    with tarfile.open(sdist) as tf:
        for member in tf:
            if member.name.count("/") == 1 and member.name.endswith("/" + name):
                f = tf.extractfile(member)
                return f.read() if f else None
    return None


#: what PEP 517 front ends assume when an sdist declares no build system.
DEFAULT_BUILD_REQUIRES = ("setuptools>=40.8.0", "wheel")


def build_requirements(sdist: Path) -> list[str]:
    """``[build-system] requires`` of an sdist, plus ``wheel`` for setuptools backends
    (older setuptools asks for it at build time, when no index can be reached)."""
    import tomllib

    try:
        data = _read_member(sdist, "pyproject.toml")
        table = tomllib.loads(data.decode()) if data else {}
    except (OSError, tarfile.TarError, zipfile.BadZipFile, ValueError, UnicodeDecodeError):
        table = {}
    system = table.get("build-system", {})
    requires = list(system.get("requires", DEFAULT_BUILD_REQUIRES))
    backend = system.get("build-backend", "setuptools.build_meta:__legacy__")
    names = {canonicalize_name(Requirement(r).name) for r in requires}
    if backend.startswith("setuptools") and "wheel" not in names:
        requires.append("wheel")
    return requires
