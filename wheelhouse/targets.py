"""Build targets: a CPython version on a Linux platform family and architecture.

A target is identified like cibuildwheel's build identifiers (``cp311-manylinux_x86_64``), with an
optional libc policy ceiling (``cp311-manylinux_2_36_x86_64``, ``cp312-musllinux_1_1_aarch64``).
The wheel tags a target accepts are computed from the target alone with ``packaging.tags``,
never from the running host, so foreign targets are planned by the same code as the host's.
"""

from __future__ import annotations

import functools
import platform
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

from packaging import tags as pt
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from wheelhouse.errors import TargetError


class Family(StrEnum):
    MANYLINUX = "manylinux"
    MUSLLINUX = "musllinux"


@dataclass(frozen=True, kw_only=True)
class FamilyInfo:
    """Platform facts for one family, kept as data rather than ``if`` chains."""

    libc: str
    #: the policy ceiling when an identifier names none: what the default builder image makes.
    default_policy: tuple[int, int]
    #: the oldest policy per architecture; anything older does not exist for that arch.
    oldest_policy: Mapping[str, tuple[int, int]]
    legacy_aliases: Mapping[tuple[int, int], str]
    #: the builder image users already trust, per architecture (``{arch}`` is filled in).
    default_image: str


FAMILIES: Mapping[Family, FamilyInfo] = {
    Family.MANYLINUX: FamilyInfo(
        libc="glibc",
        default_policy=(2, 28),
        oldest_policy={"x86_64": (2, 5), "i686": (2, 5), "aarch64": (2, 17),
                       "ppc64le": (2, 17), "s390x": (2, 17), "armv7l": (2, 17)},
        # PEP 600: the pre-600 names are aliases of these glibc versions.
        legacy_aliases={(2, 5): "manylinux1", (2, 12): "manylinux2010", (2, 17): "manylinux2014"},
        default_image="quay.io/pypa/manylinux_2_28_{arch}",
    ),
    Family.MUSLLINUX: FamilyInfo(
        libc="musl",
        default_policy=(1, 2),
        oldest_policy={"x86_64": (1, 0), "i686": (1, 0), "aarch64": (1, 0),
                       "ppc64le": (1, 0), "s390x": (1, 0), "armv7l": (1, 0)},
        legacy_aliases={},
        default_image="quay.io/pypa/musllinux_1_2_{arch}",
    ),
}

#: the legacy aliases only exist for these architectures (PEP 599 / PEP 571 / PEP 513).
_ALIAS_ARCHS = {
    "manylinux1": {"x86_64", "i686"},
    "manylinux2010": {"x86_64", "i686"},
    "manylinux2014": {"x86_64", "i686", "aarch64", "armv7l", "ppc64", "ppc64le", "s390x"},
}

PYTHONS: tuple[tuple[int, int], ...] = tuple((3, minor) for minor in range(8, 15))
ARCHS: tuple[str, ...] = ("x86_64", "aarch64")

_ID_RE = re.compile(
    r"^cp(?P<major>3)(?P<minor>\d{1,2})-(?P<family>manylinux|musllinux)"
    r"(?:_(?P<lmaj>\d+)_(?P<lmin>\d+))?_(?P<arch>[a-z0-9_]+)$"
)


@dataclass(frozen=True, kw_only=True)
class Target:
    python: tuple[int, int]
    family: Family
    arch: str
    #: the newest libc policy a consumer of this target has (e.g. glibc 2.28).
    policy: tuple[int, int]

    @property
    def platform(self) -> str:
        """``manylinux_x86_64``: the key images and per-platform settings are looked up by."""
        return f"{self.family}_{self.arch}"

    @property
    def python_tag(self) -> str:
        return f"cp{self.python[0]}{self.python[1]}"

    @property
    def policy_tag(self) -> str:
        """``manylinux_2_28_x86_64``: the newest platform tag this target accepts."""
        return f"{self.family}_{self.policy[0]}_{self.policy[1]}_{self.arch}"

    @property
    def identifier(self) -> str:
        if self.policy == FAMILIES[self.family].default_policy:
            return f"{self.python_tag}-{self.platform}"
        return f"{self.python_tag}-{self.policy_tag}"

    def __str__(self) -> str:
        return self.identifier

    @property
    def default_image(self) -> str:
        return FAMILIES[self.family].default_image.format(arch=self.arch)

    def platform_tags(self) -> list[str]:
        return list(_platform_tags(self.family, self.arch, self.policy))

    def tags(self) -> tuple[pt.Tag, ...]:
        """Every tag this target's installer accepts, most preferred first (as pip orders them)."""
        return _tags(self)

    def tag_rank(self, wheel_tags: frozenset[pt.Tag]) -> int | None:
        """The rank (0 = best) of the best tag in ``wheel_tags``, or None if nothing fits."""
        ranks = _ranks(self)
        best = min((ranks[t] for t in wheel_tags if t in ranks), default=None)
        return best

    def marker_environment(self) -> dict[str, str]:
        """PEP 508 marker values as an interpreter of this target would report them."""
        version = f"{self.python[0]}.{self.python[1]}"
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{version}.0",
            "os_name": "posix",
            "platform_machine": self.arch,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": f"{version}.0",
            "python_version": version,
            "sys_platform": "linux",
        }

    def admits(self, requires_python: str | None) -> bool:
        """Whether a file's Requires-Python lets this target's interpreter install it.

        Unparseable values are ignored, as pip ignores them.
        """
        if not requires_python:
            return True
        try:
            return SpecifierSet(requires_python).contains(self.version_string, prereleases=True)
        except InvalidSpecifier:
            return True

    @property
    def version_string(self) -> str:
        return f"{self.python[0]}.{self.python[1]}"


def _platform_tags(family: Family, arch: str, policy: tuple[int, int]) -> Iterator[str]:
    info = FAMILIES[family]
    oldest = info.oldest_policy.get(arch, (policy[0], 0))
    major = policy[0]
    for minor in range(policy[1], oldest[1] - 1, -1):
        yield f"{family}_{major}_{minor}_{arch}"
        alias = info.legacy_aliases.get((major, minor))
        if alias and arch in _ALIAS_ARCHS.get(alias, set()):
            yield f"{alias}_{arch}"


@functools.cache
def _tags(target: Target) -> tuple[pt.Tag, ...]:
    platforms = target.platform_tags()
    interpreter = target.python_tag
    ordered = [
        *pt.cpython_tags(target.python, abis=[interpreter], platforms=platforms),
        *pt.compatible_tags(target.python, interpreter=interpreter, platforms=platforms),
    ]
    return tuple(dict.fromkeys(ordered))


@functools.cache
def _ranks(target: Target) -> dict[pt.Tag, int]:
    return {tag: rank for rank, tag in enumerate(_tags(target))}


def parse_target(identifier: str) -> Target:
    """Parse ``cp311-manylinux_x86_64`` (or with an explicit policy) into a Target."""
    m = _ID_RE.match(identifier.strip())
    if not m:
        raise TargetError(
            f"unknown target {identifier!r}",
            hint="valid targets are cpXY-FAMILY_ARCH with XY in "
            + ", ".join(f"{a}{b}" for a, b in PYTHONS) + "; FAMILY in "
            + ", ".join(f.value for f in Family) + "; ARCH in " + ", ".join(ARCHS)
            + " (e.g. cp311-manylinux_x86_64; a libc policy may be named: "
            "cp311-manylinux_2_36_x86_64). `wheelhouse targets` lists them",
        )
    family = Family(m["family"])
    python = (int(m["major"]), int(m["minor"]))
    arch = m["arch"]
    info = FAMILIES[family]
    if arch not in info.oldest_policy:
        raise TargetError(
            f"unknown architecture {arch!r} in target {identifier!r}",
            hint="supported architectures: " + ", ".join(sorted(info.oldest_policy)),
        )
    if python not in PYTHONS:
        raise TargetError(
            f"unsupported Python {python[0]}.{python[1]} in target {identifier!r}",
            hint="supported: " + ", ".join(f"cp{a}{b}" for a, b in PYTHONS),
        )
    policy = info.default_policy
    if m["lmaj"] is not None:
        policy = (int(m["lmaj"]), int(m["lmin"]))
        oldest = info.oldest_policy[arch]
        if policy[0] != oldest[0] or policy < oldest:
            raise TargetError(
                f"{family}_{policy[0]}_{policy[1]} does not exist for {arch} "
                f"(target {identifier!r})",
                hint=f"the oldest {family} policy for {arch} is "
                f"{family}_{oldest[0]}_{oldest[1]}",
            )
    return Target(python=python, family=family, arch=arch, policy=policy)


def known_targets() -> list[Target]:
    """The default-policy targets for every supported Python, family and common arch."""
    return [
        Target(python=py, family=fam, arch=arch, policy=FAMILIES[fam].default_policy)
        for py in PYTHONS
        for fam in Family
        for arch in ARCHS
    ]


@dataclass(frozen=True, kw_only=True)
class HostPlatform:
    family: Family
    arch: str
    policy: tuple[int, int]


def host_platform() -> HostPlatform | None:
    """The running machine's platform, or None where it is not a Linux we can target."""
    for tag in pt.platform_tags():
        m = re.match(r"^(manylinux|musllinux)_(\d+)_(\d+)_(.+)$", tag)
        if m:
            return HostPlatform(family=Family(m[1]), arch=m[4], policy=(int(m[2]), int(m[3])))
    return None


def host_target() -> Target:
    """The default target: this interpreter's Python on this machine's exact platform."""
    host = host_platform()
    if host is None:
        raise TargetError(
            f"this machine ({platform.system()} {platform.machine()}) is not a manylinux or "
            "musllinux platform, so it has no default target",
            hint="name a target with --target, e.g. --target cp311-manylinux_x86_64 "
            "(foreign targets build in containers)",
        )
    return Target(
        python=(sys.version_info.major, sys.version_info.minor),
        family=host.family,
        arch=host.arch,
        policy=host.policy,
    )
