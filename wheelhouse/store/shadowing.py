"""Whether a new wheel would change what installers pick among a release's published wheels.

A release's files are immutable, and so must be what ``==1.0`` installs. A new wheel
*shadows* a published wheel of the same release when some environment (an interpreter and a
platform) can install both and ranks the new one at least as high: pip and uv take, among
the installable wheels of a version, the one whose best tag comes first in the environment's
supported-tag list (the most specific one), so from then on that environment would install
other bytes. ``demo-1.0-cp311-none-any`` or ``demo-1.0-py2.py3-none-any`` beside a published
``demo-1.0-py3-none-any`` shadow it on CPython 3.11; a ``cp312-cp312-manylinux_2_28_x86_64``
beside a ``cp311-cp311-manylinux_2_28_x86_64`` does not (no interpreter installs both), nor
does a ``musllinux`` wheel beside ``manylinux`` ones (no platform installs both).

Equal rank counts as shadowing: which of two equally good wheels an installer takes is up to
its tie-breaking (a build tag, the file order), not the index. Hence a build tag never
makes a wheel acceptable beside one of the same tags. abi3 is a tag like any other: a
``cp312-abi3`` wheel beside a published ``cp311-abi3`` one, or a ``cp312-cp312`` one beside
it, would change what CPython 3.12+ installs and is refused; the other order (the older
abi3 or the version-specific wheels first) only adds Pythons the release did not cover.
Sdists are outside the rule: installers prefer any fitting wheel over an sdist, and a wheel
is built from its sdist, so adding wheels beside an sdist changes how, not what, is installed.

Only uploads are held to this (``Store.publish`` checks ``Origin.UPLOADED`` files). What
the build pipeline builds or fetches is published even where it ranks above a published
wheel: a builder producing ``cp312-abi3`` for a 3.12 target beside the ``cp311-abi3`` a 3.11
target built must not fail, and an upstream file is what the upstream index holds. Both come
from the release's own source or its index, not from a token holder, so they cannot make
``==1.0`` mean other code; refusing them would only turn a build red.

Environments are enumerated from the wheels themselves: every CPython from 2.7 to the
newest the platform data names (and their free-threaded builds), each other interpreter a
tag names with the ABIs named for it, on each platform a tag names (a manylinux or musllinux
policy with every older policy of its arch below it and ``linux_<arch>`` last, a macOS
version with what ``packaging`` lists for it, any other platform alone), and on no platform
at all (pure wheels only).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from packaging import tags as pt

from wheelhouse import platforms as pf
from wheelhouse.store.model import Kind, StoredFile

_MACOS = re.compile(r"macosx_(\d+)_(\d+)_(.+)")
_INTERPRETER = re.compile(r"([a-z]+)(\d)(\d+)")


@dataclass(frozen=True)
class Shadow:
    """``existing`` would no longer be what ``environment`` installs."""

    existing: StoredFile
    environment: str


def shadowed(new: StoredFile, published: Iterable[StoredFile]) -> Shadow | None:
    """The first published wheel of ``new``'s release that ``new`` would shadow, or None.
    ``published`` are the release's files (other kinds and ``new`` itself are skipped)."""
    if new.kind is not Kind.WHEEL:
        return None
    others = sorted((f for f in published if f.kind is Kind.WHEEL and f.filename != new.filename),
                    key=lambda f: f.filename)
    if not others:
        return None
    every_tag = [t for f in (new, *others) for t in f.tags]
    for description, supported in _environments(every_tag):
        ranks = {tag: i for i, tag in enumerate(supported)}
        mine = _rank(new, ranks)
        if mine is None:
            continue
        for old in others:
            theirs = _rank(old, ranks)
            if theirs is not None and mine <= theirs:
                return Shadow(existing=old, environment=description)
    return None


def _rank(f: StoredFile, ranks: dict[pt.Tag, int]) -> int | None:
    found = [ranks[t] for t in f.tags if t in ranks]
    return min(found) if found else None


def _environments(tags: Sequence[pt.Tag]) -> Iterator[tuple[str, list[pt.Tag]]]:
    platform_lists: list[tuple[str, list[str]]] = [("any platform", [])]
    for plat in sorted({t.platform for t in tags} - {"any"}):
        platform_lists.append((plat, _platforms(plat)))
    data = pf.platforms()
    newest = max(data.pythons)
    cpythons = [(2, 7), *((3, minor) for minor in range(newest[1] + 1))]
    for where, plats in platform_lists:
        for version in cpythons:
            name = f"{version[0]}.{version[1]}"
            abi = f"cp{version[0]}{version[1]}"
            yield f"CPython {name} on {where}", _cpython(version, abi, plats)
            if version in data.free_threaded:
                yield (f"free-threaded CPython {name} on {where}",
                       _cpython(version, abi + "t", plats))
        for interpreter, abis in _other_interpreters(tags).items():
            yield f"{interpreter} on {where}", _generic(interpreter, sorted(abis), plats)


def _cpython(version: tuple[int, int], abi: str, platforms: list[str]) -> list[pt.Tag]:
    interpreter = f"cp{version[0]}{version[1]}"
    return [*pt.cpython_tags(version, abis=[abi], platforms=platforms),
            *pt.compatible_tags(version, interpreter=interpreter, platforms=platforms)]


def _other_interpreters(tags: Sequence[pt.Tag]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for t in tags:
        if not t.interpreter.startswith(("cp", "py")):
            found.setdefault(t.interpreter, set()).add(t.abi)
    return found


def _generic(interpreter: str, abis: list[str], platforms: list[str]) -> list[pt.Tag]:
    supported = list(pt.generic_tags(interpreter, abis, platforms))
    m = _INTERPRETER.fullmatch(interpreter)
    if m is not None:
        version = (int(m[2]), int(m[3]))
        supported += pt.compatible_tags(version, interpreter=interpreter, platforms=platforms)
    return supported


def _platforms(plat: str) -> list[str]:
    """What an environment whose best platform is ``plat`` installs, best first."""
    data = pf.platforms()
    parsed = data.parse_platform_tag(plat)
    if parsed is not None and parsed.family in data.families:
        family = data.family(parsed.family)
        known = family.archs.get(parsed.arch)
        oldest = known.oldest_policy if known else (parsed.policy[0], 0)
        out = []
        for minor in range(parsed.policy[1], oldest[1] - 1, -1):
            out.append(family.tag((parsed.policy[0], minor), parsed.arch))
            alias = family.alias((parsed.policy[0], minor), parsed.arch)
            if alias:
                out.append(f"{alias}_{parsed.arch}")
        return [*out, f"linux_{parsed.arch}"]
    m = _MACOS.fullmatch(plat)
    if m is not None:
        return list(pt.mac_platforms((int(m[1]), int(m[2])), m[3]))
    return [plat]
