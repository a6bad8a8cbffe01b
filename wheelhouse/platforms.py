"""Platform facts as data: ``resources/platforms.toml`` loaded into frozen records, validated
at load. The only module that knows platform families, policies and architectures by name.
"""

from __future__ import annotations

import functools
import re
import shlex
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from wheelhouse.datafile import Node
from wheelhouse.errors import ConfigError

#: a libc policy as ``(major, minor)``: ``(2, 28)`` is glibc 2.28, written ``2_28`` in tags.
Policy = tuple[int, int]

RESOURCE = "resources/platforms.toml"

_NAME = re.compile(r"[a-z][a-z0-9]*")
_ARCH = re.compile(r"[a-z][a-z0-9_]*")
_ALIAS = re.compile(r"[a-z0-9][a-z0-9_]*")
_POLICY = re.compile(r"(\d+)_(\d+)")
_PYTHON = re.compile(r"(\d+)\.(\d+)")
_COMMAND = re.compile(r"[A-Za-z0-9._+-]+")
#: before this the zip format cannot store a timestamp.
_ZIP_EPOCH = 315532800
_HINT = "platform data is checked when first used; fix the file and key named"


@dataclass(frozen=True, kw_only=True)
class ArchInfo:
    name: str
    #: other names engines, image manifests and distributions use (``amd64``, ``arm64``).
    aliases: tuple[str, ...]
    #: the binfmt_misc entry that runs its binaries elsewhere (``qemu-aarch64``).
    binfmt: str


@dataclass(frozen=True, kw_only=True)
class ArchPolicy:
    """What one family says about one architecture it targets."""

    arch: str
    #: nothing older exists for this arch; a target's tags run down to it.
    oldest_policy: Policy
    #: the policy a target gets when its identifier names none.
    default_policy: Policy
    #: the builder image (already filled in for this arch).
    default_image: str
    #: an image with CPython and no compiler; ``{python}`` is ``3.11``.
    consumer_image_template: str

    def default_consumer_image(self, python: tuple[int, int]) -> str:
        return self.consumer_image_template.format(python=f"{python[0]}.{python[1]}")


@dataclass(frozen=True, kw_only=True)
class LegacyAlias:
    """A pre-PEP 600 name (``manylinux2014``) for a policy, on the arches it existed for."""

    name: str
    policy: Policy
    archs: frozenset[str]


@dataclass(frozen=True, kw_only=True)
class FamilyInfo:
    name: str
    libc: str
    default_policy: Policy
    #: the newest policy an index takes as plausible; newer ones are typos or forgeries.
    newest_policy: Policy
    #: the builder image for an arch without its own entry; ``{arch}`` is filled in.
    default_image: str
    consumer_image_template: str
    #: the architectures targets of this family may name.
    archs: Mapping[str, ArchPolicy]
    legacy_aliases: tuple[LegacyAlias, ...]

    @property
    def oldest_policy(self) -> Policy:
        """The oldest policy that exists for any architecture."""
        return min(a.oldest_policy for a in self.archs.values())

    def plausible(self, policy: Policy) -> bool:
        return self.oldest_policy <= policy <= self.newest_policy

    def default_policy_for(self, arch: str) -> Policy:
        known = self.archs.get(arch)
        return known.default_policy if known else self.default_policy

    def default_image_for(self, arch: str) -> str:
        known = self.archs.get(arch)
        return known.default_image if known else self.default_image.format(arch=arch)

    def default_consumer_image_for(self, arch: str, python: tuple[int, int]) -> str:
        known = self.archs.get(arch)
        if known is not None:
            return known.default_consumer_image(python)
        return self.consumer_image_template.format(arch=arch, python=f"{python[0]}.{python[1]}")

    def alias(self, policy: Policy, arch: str) -> str | None:
        """The legacy name of ``policy`` on ``arch``, where one exists."""
        return next((a.name for a in self.legacy_aliases
                     if a.policy == policy and arch in a.archs), None)

    def tag(self, policy: Policy, arch: str) -> str:
        return f"{self.name}_{policy[0]}_{policy[1]}_{arch}"


@dataclass(frozen=True, kw_only=True)
class PackageManager:
    command: str
    #: the install command line; ``{packages}`` is the shell-quoted, space-separated list.
    install: str

    def install_command(self, packages: Sequence[str]) -> str:
        return self.install.format(packages=" ".join(shlex.quote(p) for p in packages))


class PlatformTag(NamedTuple):
    family: str
    policy: Policy
    arch: str


@dataclass(frozen=True, kw_only=True, eq=False)
class Platforms:
    """Everything ``platforms.toml`` says, checked. Compared and hashed by identity."""

    #: the CPython versions targets may name, oldest first.
    pythons: tuple[tuple[int, int], ...]
    #: the versions whose free-threaded build (ABI ``cpXYt``) targets may name.
    free_threaded: tuple[tuple[int, int], ...]
    #: where images keep CPython, in the order to try; ``{major}``, ``{minor}``, ``{t}``.
    python_candidates: tuple[str, ...]
    source_date_epoch: int
    #: the architectures ``wheelhouse targets`` lists by default.
    listed_archs: tuple[str, ...]
    #: in probe order.
    package_managers: tuple[PackageManager, ...]
    #: every architecture a platform tag may name.
    archs: Mapping[str, ArchInfo]
    families: Mapping[str, FamilyInfo]
    #: platform tags of other systems an upload may carry, as patterns matched whole.
    other_platforms: tuple[re.Pattern[str], ...] = ()

    def other_platform(self, tag: str) -> bool:
        return any(p.fullmatch(tag) for p in self.other_platforms)

    def family(self, name: str) -> FamilyInfo:
        try:
            return self.families[name]
        except KeyError:
            raise KeyError(f"unknown platform family {name!r}; known: "
                           + ", ".join(self.families)) from None

    def arch(self, name: str) -> ArchInfo:
        try:
            return self.archs[name]
        except KeyError:
            raise KeyError(f"unknown architecture {name!r}; known: "
                           + ", ".join(self.archs)) from None

    def normalize_arch(self, machine: str) -> str:
        """The canonical name for what ``uname -m`` or an engine reports (``arm64`` →
        ``aarch64``); a name nobody knows comes back as it was."""
        return self._arch_names.get(machine.lower(), machine)

    def python_paths(self, python: tuple[int, int], *, free_threaded: bool = False
                     ) -> tuple[str, ...]:
        """Where an image may keep this CPython build, in the order to try."""
        t = "t" if free_threaded else ""
        return tuple(c.format(major=python[0], minor=python[1], t=t)
                     for c in self.python_candidates)

    def parse_platform_tag(self, tag: str) -> PlatformTag | None:
        """``manylinux_2_17_x86_64``, a legacy alias or a musllinux tag as (family, policy,
        arch); None for any other platform (``linux_x86_64``, ``win_amd64``, ...)."""
        m = self._tag_re.fullmatch(tag)
        if m is not None:
            return PlatformTag(m["family"], (int(m["major"]), int(m["minor"])), m["arch"])
        m = self._alias_re.fullmatch(tag) if self._aliases else None
        if m is not None:
            family, policy = self._aliases[m["alias"]]
            return PlatformTag(family, policy, m["arch"])
        return None

    @functools.cached_property
    def _arch_names(self) -> dict[str, str]:
        names = {a.name: a.name for a in self.archs.values()}
        return names | {alias: a.name for a in self.archs.values() for alias in a.aliases}

    @functools.cached_property
    def _aliases(self) -> dict[str, tuple[str, Policy]]:
        return {a.name: (f.name, a.policy)
                for f in self.families.values() for a in f.legacy_aliases}

    @functools.cached_property
    def _tag_re(self) -> re.Pattern[str]:
        families = "|".join(re.escape(f) for f in self.families)
        return re.compile(rf"(?P<family>{families})_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>.+)")

    @functools.cached_property
    def _alias_re(self) -> re.Pattern[str]:
        aliases = "|".join(re.escape(a) for a in self._aliases)
        return re.compile(rf"(?P<alias>{aliases})_(?P<arch>.+)")


@functools.cache
def platforms() -> Platforms:
    """The shipped platform data, read and checked once per process."""
    return load(resource_text(), source=f"wheelhouse/{RESOURCE}")


def resource_text() -> str:
    """The text of the shipped ``platforms.toml``."""
    # A path beside this module, not importlib.resources: wheelhouse is always installed
    # unpacked, and that machinery alone costs a no-op build a few milliseconds.
    return (Path(__file__).parent / RESOURCE).read_text(encoding="utf-8")


def load(text: str, *, source: str = "platforms.toml") -> Platforms:
    """Parse and validate platform data; ConfigError names the file and the key at fault."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source} is not valid TOML: {e}", hint=_HINT) from None
    top = Node(source=source, path="", value=raw, hint=_HINT).table(
        required=("python", "builds", "targets", "package-managers", "archs", "families"),
        optional=("other-platforms",))
    archs = _read_archs(top["archs"])
    python = top["python"].table(required=("versions", "free-threaded", "builder-candidates"))
    pythons = tuple(_python(v) for v in python["versions"].items(unique=True, nonempty=True))
    free_threaded = []
    for node in python["free-threaded"].items(unique=True):
        version = _python(node)
        if version not in pythons:
            raise node.fail(f"{node.value!r} is not one of python.versions")
        free_threaded.append(version)
    candidates = tuple(c.template(("major", "minor", "t"))
                       for c in python["builder-candidates"].items(unique=True, nonempty=True))
    epoch = top["builds"].table(required=("source-date-epoch",))["source-date-epoch"]
    families = {name: _read_family(node, name, archs)
                for name, node in top["families"].entries(_NAME, "a family name").items()}
    if not families:
        raise top["families"].fail("names no family")
    _check_aliases(top["families"], families)
    listed = top["targets"].table(required=("listed-archs",))["listed-archs"]
    for node in listed.items(unique=True, nonempty=True):
        arch = node.string()
        missing = [f for f in families.values() if arch not in f.archs]
        if missing:
            raise node.fail(f"{arch!r} is not an architecture of families."
                            f"{missing[0].name}.archs")
    managers = []
    for node in top["package-managers"].items(unique=False):
        entry = node.table(required=("command", "install"))
        managers.append(PackageManager(
            command=entry["command"].matching(_COMMAND, "a command name"),
            install=entry["install"].template(("packages",), required=("packages",)),
        ))
    others = []
    for node in top["other-platforms"].items(unique=True) if "other-platforms" in top else ():
        try:
            others.append(re.compile(node.string()))
        except re.error as e:
            raise node.fail(f"is not a regular expression: {e}") from None
    return Platforms(
        other_platforms=tuple(others),
        pythons=pythons,
        free_threaded=tuple(free_threaded),
        python_candidates=candidates,
        source_date_epoch=epoch.integer(minimum=_ZIP_EPOCH),
        listed_archs=tuple(n.string() for n in listed.items(unique=True)),
        package_managers=tuple(managers),
        archs=MappingProxyType(archs),
        families=MappingProxyType(families),
    )


def _read_archs(node: Node) -> dict[str, ArchInfo]:
    archs: dict[str, ArchInfo] = {}
    seen: dict[str, str] = {}
    for name, entry in node.entries(_ARCH, "an architecture name").items():
        fields = entry.table(required=("aliases", "binfmt"))
        aliases = []
        for alias_node in fields["aliases"].items(unique=True):
            alias = alias_node.matching(_ALIAS, "an architecture name")
            if alias in seen or alias == name:
                raise alias_node.fail(f"{alias!r} already names {seen.get(alias, name)}")
            seen[alias] = name
            aliases.append(alias)
        archs[name] = ArchInfo(name=name, aliases=tuple(aliases),
                               binfmt=fields["binfmt"].matching(_COMMAND, "an entry name"))
    clash = sorted(set(seen) & set(archs))
    if clash:
        raise node.child(clash[0]).fail(f"is also an alias of {seen[clash[0]]}")
    if not archs:
        raise node.fail("names no architecture")
    return archs


def _read_family(node: Node, name: str, archs: Mapping[str, ArchInfo]) -> FamilyInfo:
    fields = node.table(
        required=("libc", "default-policy", "newest-policy", "default-image",
                  "default-consumer-image", "archs"),
        optional=("legacy-aliases",))
    default = _policy(fields["default-policy"])
    newest = _policy(fields["newest-policy"])
    if default > newest:
        raise fields["default-policy"].fail("is newer than newest-policy")
    image = fields["default-image"].template(("arch",))
    consumer = fields["default-consumer-image"].template(("python", "arch"))
    support: dict[str, ArchPolicy] = {}
    for arch, entry in fields["archs"].entries(_ARCH, "an architecture name").items():
        if arch not in archs:
            raise entry.fail(f"{arch!r} is not one of the architectures under [archs]")
        a = entry.table(required=("oldest-policy",),
                        optional=("default-policy", "default-image", "default-consumer-image"))
        oldest = _policy(a["oldest-policy"])
        arch_default = _policy(a["default-policy"]) if "default-policy" in a else default
        at = a.get("default-policy", fields["default-policy"])
        if oldest > arch_default:
            raise a["oldest-policy"].fail(
                f"{_tag(oldest)} is newer than the default policy {_tag(arch_default)}")
        if oldest[0] != arch_default[0]:
            raise a["oldest-policy"].fail(
                f"{_tag(oldest)} and the default {_tag(arch_default)} differ in major version")
        if arch_default > newest:
            raise at.fail(f"{_tag(arch_default)} is newer than newest-policy {_tag(newest)}")
        arch_image = (a["default-image"].template(("arch",)) if "default-image" in a
                      else image)
        arch_consumer = (a["default-consumer-image"].template(("python", "arch"))
                         if "default-consumer-image" in a else consumer)
        support[arch] = ArchPolicy(
            arch=arch, oldest_policy=oldest, default_policy=arch_default,
            default_image=arch_image.format(arch=arch),
            consumer_image_template=arch_consumer.replace("{arch}", arch),
        )
    if not support:
        raise fields["archs"].fail("names no architecture")
    aliases = []
    if "legacy-aliases" in fields:
        for alias, entry in fields["legacy-aliases"].entries(_NAME, "an alias name").items():
            a = entry.table(required=("policy", "archs"))
            policy = _policy(a["policy"])
            if not min(s.oldest_policy for s in support.values()) <= policy <= newest:
                raise a["policy"].fail(f"{_tag(policy)} is outside the family's policies")
            alias_archs = frozenset(n.string() for n in a["archs"].items(unique=True))
            unknown = sorted(alias_archs - set(archs))
            if unknown:
                raise a["archs"].fail(f"{unknown[0]!r} is not one of the architectures under "
                                      "[archs]")
            aliases.append(LegacyAlias(name=alias, policy=policy, archs=alias_archs))
    return FamilyInfo(
        name=name, libc=fields["libc"].matching(_NAME, "a libc name"),
        default_policy=default, newest_policy=newest, default_image=image,
        consumer_image_template=consumer, archs=MappingProxyType(support),
        legacy_aliases=tuple(aliases),
    )


def _check_aliases(node: Node, families: Mapping[str, FamilyInfo]) -> None:
    owner: dict[str, str] = {}
    for family in families.values():
        for alias in family.legacy_aliases:
            other = owner.get(alias.name) or (alias.name if alias.name in families else None)
            if other is not None:
                raise node.child(family.name).child("legacy-aliases").child(alias.name).fail(
                    f"already names {other}")
            owner[alias.name] = family.name


def _tag(policy: Policy) -> str:
    return f"{policy[0]}_{policy[1]}"


def _policy(node: Node) -> Policy:
    m = _POLICY.fullmatch(node.string())
    if m is None:
        raise node.fail(f"{node.value!r} is not a MAJOR_MINOR policy such as 2_28")
    return int(m[1]), int(m[2])


def _python(node: Node) -> tuple[int, int]:
    m = _PYTHON.fullmatch(node.string())
    if m is None:
        raise node.fail(f"{node.value!r} is not a MAJOR.MINOR Python version")
    return int(m[1]), int(m[2])
