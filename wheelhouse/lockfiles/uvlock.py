"""``uv.lock`` as input, read as TOML (uv need not be installed): per target, the dependency
graph is walked from the project's own packages with the markers on its edges; each locked
release offers the wheels and the sdist the lock lists.

uv documents the format as its own (``version``/``revision`` at the top); what is read here is
what ``uv export`` reads too: ``[[package]]`` entries with ``source``, ``dependencies``,
``optional-dependencies``, ``dev-dependencies``, ``sdist`` and ``wheels``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.markers import InvalidMarker, Marker, UndefinedEnvironmentName
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from wheelhouse.errors import RequirementsError
from wheelhouse.lockfiles.model import LockedPackage, file_candidate
from wheelhouse.lockfiles.pylock import read_toml
from wheelhouse.simple.pages import Candidate
from wheelhouse.targets import Target

#: sources that are the project itself (and its workspace members): walked, never built.
_LOCAL = ("editable", "virtual")
#: sources wheelhouse cannot pin to one release from an index.
_REFUSED = ("git", "url", "path", "directory")
#: the groups ``uv sync`` and ``uv export`` include unless told otherwise.
_DEFAULT_GROUPS = ("dev",)

_Key = tuple[NormalizedName, str, str]


@dataclass(frozen=True, kw_only=True)
class _Edge:
    name: NormalizedName
    version: str | None
    source: str | None
    marker: Marker | None
    extras: tuple[NormalizedName, ...]


@dataclass(frozen=True, kw_only=True)
class _Node:
    key: _Key
    dependencies: tuple[_Edge, ...]
    optional: Mapping[NormalizedName, tuple[_Edge, ...]]
    groups: Mapping[NormalizedName, tuple[_Edge, ...]]
    #: None for the project's own packages.
    locked: LockedPackage | None


@dataclass(frozen=True, kw_only=True)
class UvLockFile:
    path: Path
    nodes: Mapping[_Key, _Node]
    roots: tuple[_Key, ...]
    groups: tuple[NormalizedName, ...] | None  # None: every group
    python_requirement: SpecifierSet | None
    inputs: tuple[Path, ...]
    notes: tuple[str, ...] = ()
    #: name → the keys of its entries (several when uv forked the resolution).
    by_name: Mapping[NormalizedName, tuple[_Key, ...]] = field(default_factory=dict)

    def packages(self) -> tuple[LockedPackage, ...]:
        return tuple(n.locked for n in self.nodes.values() if n.locked is not None)

    @property
    def requires_python(self) -> str | None:
        return str(self.python_requirement) if self.python_requirement is not None else None

    def select(self, target: Target) -> tuple[LockedPackage, ...]:
        target = target.with_python_for(self.requires_python)
        python = target.marker_environment()["python_full_version"]
        if self.python_requirement is not None and not self.python_requirement.contains(
                python, prereleases=True):
            raise RequirementsError(
                f"{self.path} locks for Python {self.python_requirement}, not {target}",
                hint="drop the target, or widen requires-python and lock again")
        env = target.marker_environment() | {"extra": ""}
        seen: set[tuple[_Key, NormalizedName | None]] = set()
        todo: list[tuple[_Key, NormalizedName | None]] = [(k, None) for k in self.roots]
        chosen: dict[_Key, LockedPackage] = {}
        while todo:
            key, extra = todo.pop()
            if (key, extra) in seen:
                continue
            seen.add((key, extra))
            node = self.nodes[key]
            if node.locked is not None:
                chosen[key] = node.locked
            for edge in self._edges(node, extra, root=key in self.roots):
                if edge.marker is not None and not _holds(edge.marker, env):
                    continue
                dep = self._resolve(edge, node.key)
                todo.append((dep, None))
                todo += [(dep, e) for e in edge.extras]
        by_name: dict[str, LockedPackage] = {}
        for locked in chosen.values():
            other = by_name.setdefault(locked.name, locked)
            if other is not locked:
                raise RequirementsError(
                    f"{self.path}: {locked.name} is reached in two versions on {target} "
                    f"({other.version} and {locked.version})",
                    hint="this lock's forks overlap on this target; lock again with uv")
        return tuple(sorted(by_name.values(), key=lambda p: p.name))

    def _edges(self, node: _Node, extra: NormalizedName | None, *, root: bool
               ) -> Iterable[_Edge]:
        if extra is not None:
            return node.optional.get(extra, ())
        edges = list(node.dependencies)
        if root:
            for group, group_edges in node.groups.items():
                if self.groups is None or group in self.groups:
                    edges += group_edges
        return edges

    def _resolve(self, edge: _Edge, parent: _Key) -> _Key:
        found = [k for k in self.by_name.get(edge.name, ())
                 if (edge.version is None or k[1] == edge.version)
                 and (edge.source is None or k[2] == edge.source)]
        if len(found) != 1:
            raise RequirementsError(
                f"{self.path}: {parent[0]} depends on {edge.name}, which the lock lists "
                f"{len(found)} times for that edge",
                hint="the lockfile is damaged or from a newer uv; run `uv lock` again")
        return found[0]


def _holds(marker: Marker, env: dict[str, str]) -> bool:
    try:
        return marker.evaluate(env)
    except UndefinedEnvironmentName:
        return True  # a uv-internal variable (conflict markers): keep it, the resolver checks


def read_uv_lock(path: Path) -> UvLockFile:
    """Read ``path`` (and the ``pyproject.toml`` beside it, for ``default-groups``)."""
    data = read_toml(path, "lockfile")
    if not isinstance(data.get("package"), list):
        raise RequirementsError(f"{path} has no [[package]] entries; is it a uv.lock?")
    nodes: dict[_Key, _Node] = {}
    by_name: dict[NormalizedName, tuple[_Key, ...]] = {}
    for i, entry in enumerate(data["package"]):
        where = f"{path}: package[{i}]"
        node = _node(entry, where, path)
        if node.key in nodes:
            raise RequirementsError(f"{where} repeats {node.key[0]} {node.key[1]}")
        nodes[node.key] = node
        by_name[node.key[0]] = (*by_name.get(node.key[0], ()), node.key)
    roots = tuple(k for k, n in nodes.items() if n.locked is None)
    if not roots:
        raise RequirementsError(f"{path} names no project (no editable or virtual package)",
                                hint="give wheelhouse the uv.lock of a uv project")
    groups, inputs = _default_groups(path)
    try:
        requires_python = (SpecifierSet(data["requires-python"])
                           if "requires-python" in data else None)
    except InvalidSpecifier as e:
        raise RequirementsError(f"{path}: requires-python: {e}") from None
    return UvLockFile(path=path, nodes=nodes, roots=roots, groups=groups,
                      python_requirement=requires_python, inputs=(path, *inputs),
                      by_name=by_name)


def _node(entry: Mapping[str, Any], where: str, path: Path) -> _Node:
    try:
        name = canonicalize_name(entry["name"])
        version = str(entry.get("version", ""))
        source = entry.get("source", {})
    except (KeyError, TypeError):
        raise RequirementsError(f"{where} has no name") from None
    key: _Key = (name, version, _source_key(source))
    kind = next(iter(source), None) if isinstance(source, dict) else None
    locked = None
    if kind not in _LOCAL:
        if kind in _REFUSED:
            raise RequirementsError(
                f"{where} ({name}) comes from a {kind} source, which wheelhouse cannot pin "
                "to one release",
                hint="publish a release of it and lock NAME==VERSION from an index")
        locked = LockedPackage(name=name, version=version, source=str(path),
                               files=_files(entry, where, path, source))
    return _Node(
        key=key, dependencies=_edge_list(entry.get("dependencies", ()), where),
        optional={canonicalize_name(k): _edge_list(v, where)
                  for k, v in entry.get("optional-dependencies", {}).items()},
        groups={canonicalize_name(k): _edge_list(v, where)
                for k, v in entry.get("dev-dependencies", {}).items()},
        locked=locked)


def _source_key(source: Any) -> str:
    return json.dumps(source, sort_keys=True)


def _edge_list(raw: Any, where: str) -> tuple[_Edge, ...]:
    if not isinstance(raw, list | tuple):
        raise RequirementsError(f"{where}: dependencies must be a list")
    out = []
    for dep in raw:
        try:
            marker = Marker(dep["marker"]) if dep.get("marker") else None
        except InvalidMarker as e:
            raise RequirementsError(f"{where}: marker {dep.get('marker')!r}: {e}") from None
        except (KeyError, TypeError, AttributeError):
            raise RequirementsError(f"{where}: a dependency without a name") from None
        out.append(_Edge(
            name=canonicalize_name(dep["name"]), version=dep.get("version"),
            source=_source_key(dep["source"]) if "source" in dep else None, marker=marker,
            extras=tuple(canonicalize_name(e) for e in dep.get("extra", ()))))
    return tuple(out)


def _files(entry: Mapping[str, Any], where: str, path: Path, source: Any
           ) -> tuple[Candidate, ...]:
    # A registry that is a local directory (find-links) lists paths relative to it.
    registry = source.get("registry", "") if isinstance(source, dict) else ""
    base = path.parent / registry if "://" not in registry else path.parent
    raw: Sequence[Any] = [*entry.get("wheels", ()), *(
        [entry["sdist"]] if "sdist" in entry else [])]
    out = []
    for f in raw:
        algo, _, digest = str(f.get("hash", "")).partition(":")
        cand = file_candidate(
            filename=f.get("filename"), url=f.get("url"), path=f.get("path"), base=base,
            hashes={algo: digest} if digest else {}, size=f.get("size"),
            upload_time=f.get("upload-time"), requires_python=None, source=str(path))
        if cand is None:
            raise RequirementsError(f"{where}: cannot tell the file of {f!r}")
        out.append(cand)
    return tuple(out)


def _default_groups(path: Path) -> tuple[tuple[NormalizedName, ...] | None, tuple[Path, ...]]:
    """``[tool.uv] default-groups`` of the project beside the lock (``dev`` when unset, as
    uv does); the pyproject.toml, when read, is an input too."""
    pyproject = path.parent / "pyproject.toml"
    if not pyproject.is_file():
        return tuple(NormalizedName(g) for g in _DEFAULT_GROUPS), ()
    value = read_toml(pyproject, "project file").get("tool", {}).get("uv", {}).get(
        "default-groups", list(_DEFAULT_GROUPS))
    if value == "all":
        return None, (pyproject,)
    return tuple(canonicalize_name(g) for g in value), (pyproject,)
