"""Build targets: a CPython build on a Linux platform family and architecture.

A target is identified like cibuildwheel's build identifiers (``cp311-manylinux_x86_64``,
``cp314t-musllinux_aarch64`` for a free-threaded build), with an optional libc policy ceiling
(``cp311-manylinux_2_36_x86_64``, ``cp312-musllinux_1_1_aarch64``). The wheel tags a target
accepts are computed from the target alone with ``packaging.tags``, never from the running
host, so foreign targets are planned by the same code as the host's. Selectors over the
known targets (``cp31*-musllinux_*``) are in ``wheelhouse.selectors``.

A target's full Python version (``3.11.7``) is what its builder image's interpreter reports,
when one was asked (``full_version``); without one, a ``Requires-Python`` is satisfied when
some patch release of the target's X.Y satisfies it (``admits``, ``assumed_patch``).
"""

from __future__ import annotations

import functools
import platform
import re
import sys
import sysconfig
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import NewType

from packaging import tags as pt
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from wheelhouse import platforms as pf
from wheelhouse.errors import TargetError
from wheelhouse.platforms import FamilyInfo, PackageManager, Platforms, Policy

#: a platform family named in ``platforms.toml`` (``manylinux``, ``musllinux``).
Family = NewType("Family", str)


@dataclass(frozen=True, kw_only=True)
class Target:
    python: tuple[int, int]
    family: Family
    arch: str
    #: the newest libc policy a consumer of this target has (e.g. glibc 2.28).
    policy: Policy
    #: the policy the short identifier (no policy named) stands for in this run: the
    #: platform's configured builder image's, else the data's default.
    default_policy: Policy | None = None
    #: a free-threaded build (``--disable-gil``, ABI ``cpXYt``).
    free_threaded: bool = False
    #: the interpreter's own ``X.Y.Z`` where an image was asked; None: not known. Not part of
    #: the target's identity (a rebuilt image with a newer patch release is the same target).
    full_version: str | None = field(default=None, compare=False)

    @property
    def platform(self) -> str:
        """``manylinux_x86_64``: the key images and per-platform settings are looked up by."""
        return f"{self.family}_{self.arch}"

    @property
    def python_tag(self) -> str:
        """The interpreter tag (``cp314``), the same for both builds of a version."""
        return f"cp{self.python[0]}{self.python[1]}"

    @property
    def abi_tag(self) -> str:
        """The ABI tag of the interpreter's own extensions: ``cp314``, or ``cp314t``."""
        return self.python_tag + ("t" if self.free_threaded else "")

    @property
    def python_dir(self) -> str:
        """The directory name pypa images keep this build under (``cp314-cp314t``)."""
        return f"{self.python_tag}-{self.abi_tag}"

    @property
    def policy_tag(self) -> str:
        """``manylinux_2_28_x86_64``: the newest platform tag this target accepts."""
        return self._family.tag(self.policy, self.arch)

    @property
    def identifier(self) -> str:
        default = self.default_policy or self._family.default_policy_for(self.arch)
        if self.policy == default:
            return f"{self.abi_tag}-{self.platform}"
        return f"{self.abi_tag}-{self.policy_tag}"

    def __str__(self) -> str:
        return self.identifier

    @property
    def default_image(self) -> str:
        """The builder image users already trust for this platform."""
        return self._family.default_image_for(self.arch)

    @property
    def default_consumer_image(self) -> str:
        """An image of this platform with this CPython and no compiler."""
        return self._family.default_consumer_image_for(self.arch, self.python)

    @property
    def libc(self) -> str:
        return self._family.libc

    @property
    def python_candidates(self) -> tuple[str, ...]:
        """Where an image may keep this target's CPython build, in the order to try."""
        return pf.platforms().python_paths(self.python, free_threaded=self.free_threaded)

    @property
    def python_description(self) -> str:
        """``CPython 3.14 (free-threaded)`` for messages."""
        return f"CPython {self.version_string}" + (" (free-threaded)" if self.free_threaded
                                                     else "")

    @property
    def package_managers(self) -> tuple[PackageManager, ...]:
        """The package managers a builder image may have, in the order to probe them."""
        return pf.platforms().package_managers

    @property
    def binfmt_entry(self) -> str | None:
        """The binfmt_misc entry (``qemu-aarch64``) that runs this arch on another machine."""
        known = pf.platforms().archs.get(self.arch)
        return known.binfmt if known else None

    @property
    def _family(self) -> FamilyInfo:
        return pf.platforms().family(self.family)

    def platform_tags(self) -> list[str]:
        return list(_platform_tags(self._family, self.arch, self.policy))

    def tags(self) -> tuple[pt.Tag, ...]:
        """Every tag this target's installer accepts, most preferred first (as pip orders them)."""
        return _tags(self, pf.platforms())

    def tag_rank(self, wheel_tags: frozenset[pt.Tag]) -> int | None:
        """The rank (0 = best) of the best tag in ``wheel_tags``, or None if nothing fits."""
        ranks = _ranks(self, pf.platforms())
        best = min((ranks[t] for t in wheel_tags if t in ranks), default=None)
        return best

    def marker_environment(self) -> dict[str, str]:
        """PEP 508 marker values as an interpreter of this target would report them (the
        image's full version where known, else X.Y.0)."""
        version = f"{self.python[0]}.{self.python[1]}"
        full = self.full_version or f"{version}.0"
        return {
            "implementation_name": "cpython",
            "implementation_version": full,
            "os_name": "posix",
            "platform_machine": self.arch,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": full,
            "python_version": version,
            "sys_platform": "linux",
        }

    def admits(self, requires_python: str | None) -> bool:
        """Whether a file's Requires-Python lets this target's interpreter install it.

        Unparseable values are ignored, as pip ignores them.
        """
        if not requires_python:
            return True
        if self.full_version is not None:
            return _satisfies(requires_python, self.full_version)
        return self.assumed_patch(requires_python) is not None

    def with_python_for(self, requires_python: str | None) -> Target:
        """This target as a lock with ``requires_python`` sees it: where the full version is
        not known and ``X.Y.0`` does not satisfy it, the oldest patch release that does
        (``python_full_version`` in markers); otherwise unchanged."""
        if self.full_version is not None or not requires_python:
            return self
        patch = self.assumed_patch(requires_python)
        if patch is None or patch.endswith(".0"):
            return self
        return replace(self, full_version=patch)

    def assumed_patch(self, requires_python: str) -> str | None:
        """Without a known full version: the oldest ``X.Y.Z`` of this target's X.Y that
        satisfies ``requires_python`` (``X.Y.0`` when that does), or None if none does."""
        return _oldest_patch(requires_python, self.python)

    @property
    def version_string(self) -> str:
        return f"{self.python[0]}.{self.python[1]}"


#: patch releases looked at when a target's full version is not known (3.9 reached 3.9.25).
_PATCHES = 100


@functools.cache
def _satisfies(requires_python: str, version: str) -> bool:
    try:
        return SpecifierSet(requires_python).contains(version, prereleases=True)
    except InvalidSpecifier:
        return True  # as pip ignores a value it cannot parse


@functools.cache
def _oldest_patch(requires_python: str, python: tuple[int, int]) -> str | None:
    for patch in range(_PATCHES):
        version = f"{python[0]}.{python[1]}.{patch}"
        if _satisfies(requires_python, version):
            return version
    return None


def _platform_tags(family: FamilyInfo, arch: str, policy: Policy) -> Iterator[str]:
    known = family.archs.get(arch)
    # An arch the data does not know for this family (a host's own, say) gets every minor.
    oldest = known.oldest_policy if known else (policy[0], 0)
    major = policy[0]
    for minor in range(policy[1], oldest[1] - 1, -1):
        yield family.tag((major, minor), arch)
        alias = family.alias((major, minor), arch)
        if alias:
            yield f"{alias}_{arch}"


# Keyed by the data too, so tags computed from other data (tests load their own) never leak.
@functools.cache
def _tags(target: Target, data: Platforms) -> tuple[pt.Tag, ...]:
    platforms = list(_platform_tags(data.family(target.family), target.arch, target.policy))
    interpreter = target.python_tag
    # packaging derives the rest from the ABI: a free-threaded cpXYt never takes abi3, and
    # takes abi3t (PEP 803) where a GIL build takes abi3.
    ordered = [
        *pt.cpython_tags(target.python, abis=[target.abi_tag], platforms=platforms),
        *pt.compatible_tags(target.python, interpreter=interpreter, platforms=platforms),
    ]
    return tuple(dict.fromkeys(ordered))


@functools.cache
def _ranks(target: Target, data: Platforms) -> dict[pt.Tag, int]:
    return {tag: rank for rank, tag in enumerate(_tags(target, data))}


@functools.cache
def _identifier_re(data: Platforms) -> re.Pattern[str]:
    majors = "|".join(sorted({str(major) for major, _ in data.pythons}))
    families = "|".join(re.escape(f) for f in data.families)
    return re.compile(
        rf"^cp(?P<major>{majors})(?P<minor>\d{{1,2}})(?P<t>t?)-(?P<family>{families})"
        r"(?:_(?P<lmaj>\d+)_(?P<lmin>\d+))?_(?P<arch>[a-z0-9_]+)$"
    )


def _example(data: Platforms, *, policy: bool = False) -> str:
    """An identifier to show in hints, made from the data so it always parses."""
    family = next(iter(data.families.values()))
    arch = data.listed_archs[0]
    python = (3, 11) if (3, 11) in data.pythons else data.pythons[-1]
    platform = (family.tag(family.default_policy_for(arch), arch) if policy
                else f"{family.name}_{arch}")
    return f"cp{python[0]}{python[1]}-{platform}"


def _python_ids(data: Platforms) -> list[str]:
    """Every interpreter a target may name, as in identifiers: ``cp39``, ..., ``cp314t``."""
    ids = [f"cp{a}{b}" for a, b in data.pythons]
    return ids + [f"cp{a}{b}t" for a, b in data.free_threaded]


def parse_target(identifier: str, *, defaults: Mapping[str, Policy] | None = None) -> Target:
    """Parse ``cp311-manylinux_x86_64`` (or ``cp314t-...``, or with an explicit policy) into a
    Target.

    ``defaults`` maps platforms (``manylinux_x86_64``) to the policy their builder image makes
    (see ``wheelhouse.builder.builders.default_policies``); a target that names no policy gets it.
    """
    data = pf.platforms()
    m = _identifier_re(data).match(identifier.strip())
    if not m:
        raise TargetError(
            f"unknown target {identifier!r}",
            hint="valid targets are cpXY-FAMILY_ARCH with cpXY in "
            + ", ".join(_python_ids(data)) + "; FAMILY in "
            + ", ".join(data.families) + "; ARCH in "
            + ", ".join(dict.fromkeys(a for f in data.families.values() for a in f.archs))
            + f" (e.g. {_example(data)}; a libc policy may be named: "
            f"{_example(data, policy=True)}). `wheelhouse targets` lists them",
        )
    family = data.family(m["family"])
    python = (int(m["major"]), int(m["minor"]))
    free_threaded = bool(m["t"])
    arch = m["arch"]
    support = family.archs.get(arch)
    if support is None:
        raise TargetError(
            f"unknown architecture {arch!r} in target {identifier!r}",
            hint="supported architectures: " + ", ".join(sorted(family.archs)),
        )
    if python not in data.pythons:
        raise TargetError(
            f"unsupported Python {python[0]}.{python[1]} in target {identifier!r}",
            hint="supported: " + ", ".join(_python_ids(data)),
        )
    if free_threaded and python not in data.free_threaded:
        raise TargetError(
            f"no free-threaded CPython {python[0]}.{python[1]} target ({identifier!r})",
            hint="free-threaded targets: "
            + ", ".join(f"cp{a}{b}t" for a, b in data.free_threaded)
            + f"; cp{python[0]}{python[1]} is the same version with the GIL",
        )
    platform = f"{family.name}_{arch}"
    default = (defaults or {}).get(platform, support.default_policy)
    if default[0] != support.oldest_policy[0] or default < support.oldest_policy:
        default = support.default_policy  # an image's label that makes no sense here
    policy = default
    if m["lmaj"] is not None:
        policy = (int(m["lmaj"]), int(m["lmin"]))
        oldest = support.oldest_policy
        if policy[0] != oldest[0] or policy < oldest:
            raise TargetError(
                f"{family.name}_{policy[0]}_{policy[1]} does not exist for {arch} "
                f"(target {identifier!r})",
                hint=f"the oldest {family.name} policy for {arch} is "
                f"{family.name}_{oldest[0]}_{oldest[1]}",
            )
    return Target(python=python, family=Family(family.name), arch=arch, policy=policy,
                  default_policy=default, free_threaded=free_threaded)


def known_targets() -> list[Target]:
    """The default-policy targets for every supported CPython build, family and listed arch,
    in cibuildwheel's order (version, then free-threaded, then platform)."""
    data = pf.platforms()
    builds = sorted([(py, False) for py in data.pythons]
                    + [(py, True) for py in data.free_threaded])
    return [
        Target(python=py, family=Family(fam.name), arch=arch,
               policy=fam.default_policy_for(arch), free_threaded=ft)
        for py, ft in builds
        for fam in data.families.values()
        for arch in data.listed_archs
    ]


def default_images() -> dict[str, str]:
    """The default builder image for every platform (``manylinux_aarch64``) a target may name."""
    return {f"{fam.name}_{arch}": support.default_image
            for fam in pf.platforms().families.values()
            for arch, support in fam.archs.items()}


def host_arch() -> str:
    """This machine's architecture under its canonical name (``arm64`` is ``aarch64``)."""
    return pf.platforms().normalize_arch(platform.machine())


@dataclass(frozen=True, kw_only=True)
class HostPlatform:
    family: Family
    arch: str
    policy: Policy


def host_platform() -> HostPlatform | None:
    """The running machine's platform, or None where it is not a Linux we can target."""
    data = pf.platforms()
    for tag in pt.platform_tags():
        parsed = data.parse_platform_tag(tag)
        # packaging lists the host's own policy first; legacy aliases are older ones.
        if parsed is not None and tag == data.family(parsed.family).tag(parsed.policy,
                                                                         parsed.arch):
            return HostPlatform(family=Family(parsed.family), arch=parsed.arch,
                                policy=parsed.policy)
    return None


def host_target() -> Target:
    """The default target: this interpreter's Python on this machine's exact platform."""
    host = host_platform()
    if host is None:
        data = pf.platforms()
        raise TargetError(
            f"this machine ({platform.system()} {platform.machine()}) is not a "
            + " or ".join(data.families) + " platform, so it has no default target",
            hint=f"name a target with --target, e.g. --target {_example(data)} "
            "(foreign targets build in containers)",
        )
    return Target(
        python=(sys.version_info.major, sys.version_info.minor),
        family=host.family,
        arch=host.arch,
        policy=host.policy,
        free_threaded=bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        full_version=platform.python_version(),
    )
