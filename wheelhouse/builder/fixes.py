"""Known fixes as data: what settings make a build that failed for a known cause succeed (a
build constraint such as ``cython<3``, system packages per package manager, environment
variables), optionally only for some projects and versions. They live beside the causes in
``resources/causes.toml`` (a ``[cause.fix]`` table) and are applied by ``execute.building``,
which retries such a build with the fix and says so. The user's own package settings win: a
fix only fills in what they leave unset."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from wheelhouse.settings import PackageSettings

_KEYS = {"build-constraints", "system-packages", "environment", "projects", "versions"}


@dataclass(frozen=True, kw_only=True)
class Fix:
    """The settings that fix one known cause."""

    #: the cause it fixes (``cython3``).
    name: str
    build_constraints: tuple[str, ...] = ()
    #: per package manager, sorted: (manager, packages).
    system_packages: tuple[tuple[str, tuple[str, ...]], ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    #: only for these projects (empty: any project).
    projects: frozenset[NormalizedName] = frozenset()
    #: only for these versions of them (None: any).
    versions: SpecifierSet | None = None

    def for_project(self, project: str) -> bool:
        """Whether it is known for ``project`` at all ("" in messages of no project: yes)."""
        return not self.projects or not project or canonicalize_name(project) in self.projects

    def applies(self, project: str, version: str) -> bool:
        if self.projects and canonicalize_name(project) not in self.projects:
            return False
        return self.versions is None or self.versions.contains(version, prereleases=True)

    def apply(self, package: PackageSettings) -> tuple[PackageSettings, str] | None:
        """``package`` with this fix filled in where the user set nothing, and what was
        added (``cython<3``); None when the user's settings already decide all of it."""
        own_constraints = {_name(c) for c in package.build_constraints}
        constraints = tuple(c for c in self.build_constraints
                            if _name(c) not in own_constraints)
        packages = self.system_packages if not package.system_packages else ()
        env = {k: v for k, v in self.environment.items() if k not in package.environment}
        if not (constraints or packages or env):
            return None
        said = [*constraints]
        if packages:
            names = dict.fromkeys(n for _manager, ns in packages for n in ns)
            said.append("system packages " + " / ".join(names))
        said += [f"{k}={v}" for k, v in env.items()]
        fixed = replace(
            package, build_constraints=(*package.build_constraints, *constraints),
            system_packages=packages or package.system_packages,
            environment={**package.environment, **env})
        return fixed, ", ".join(said)


def _name(requirement: str) -> str:
    try:
        return canonicalize_name(Requirement(requirement).name)
    except InvalidRequirement:
        return requirement


def parse_fix(name: str, raw: Any, where: str) -> Fix:
    """A ``[cause.fix]`` table, checked; ValueError names the entry and the key."""
    if not isinstance(raw, dict) or set(raw) - _KEYS or not raw:
        raise ValueError(f"{where}: fix must be a table of {', '.join(sorted(_KEYS))}")

    def strings(key: str) -> tuple[str, ...]:
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"{where}: fix.{key} must be a list of strings")
        return tuple(value)

    managers = raw.get("system-packages", {})
    if not isinstance(managers, dict) or not all(
            isinstance(v, list) and v and all(isinstance(n, str) for n in v)
            for v in managers.values()):
        raise ValueError(f"{where}: fix.system-packages must map package managers to lists")
    env = raw.get("environment", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise ValueError(f"{where}: fix.environment must map names to strings")
    versions = raw.get("versions")
    try:
        spec = SpecifierSet(versions) if isinstance(versions, str) else None
    except InvalidSpecifier:
        raise ValueError(f"{where}: fix.versions is not a version specifier") from None
    for c in strings("build-constraints"):
        try:
            Requirement(c)
        except InvalidRequirement:
            raise ValueError(f"{where}: fix.build-constraints: {c!r} is not a "
                             "requirement") from None
    return Fix(name=name, build_constraints=strings("build-constraints"),
               system_packages=tuple(sorted((m, tuple(ns)) for m, ns in managers.items())),
               environment=dict(env),
               projects=frozenset(canonicalize_name(p) for p in strings("projects")),
               versions=spec)
