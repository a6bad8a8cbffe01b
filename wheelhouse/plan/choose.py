"""Deciding what one pin needs on one target, from what the store and the upstream offer.

Already in the store with a fitting tag → keep; a fitting wheel upstream → fetch it into the
store (so the store alone can serve the lockfile); only an sdist → build it; nothing usable →
say what exists instead. Also: which version an unpinned requirement gets.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from wheelhouse.plan.model import Action, Pin, Step
from wheelhouse.store.model import Kind, Origin, StoredFile
from wheelhouse.store.protocols import StoreReader
from wheelhouse.targets import Target

if TYPE_CHECKING:  # the upstream client pulls in requests; a warm no-op run needs neither
    from wheelhouse.simple.pages import Candidate


def best_stored(
    store: StoreReader, project: str, version: str, target: Target
) -> StoredFile | None:
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
        return Step(pin=pin, target=target, action=Action.KEEP, stored=stored)
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
