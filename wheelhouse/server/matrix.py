"""What the web page shows, as values: for each project and version, which wheel serves each
target and where it came from (upstream, built, uploaded), or that its build failed.

A wheel serves a target when the target's installer accepts its tags and Requires-Python; a
built wheel also serves the target its provenance names. The targets shown are those the store
was evidently filled for: named by a build or a failure, or matched by a wheel made for one
CPython (a ``cp311-cp311-…`` tag); wheels for any Python say nothing about which ones matter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelhouse.errors import TargetError
from wheelhouse.ledger import Failure
from wheelhouse.store.model import Kind, StoredFile
from wheelhouse.targets import Target, known_targets, parse_target


class State(StrEnum):
    BUILT = "built"
    UPSTREAM = "upstream"
    UPLOADED = "uploaded"
    FAILED = "failed"
    NONE = "none"


@dataclass(frozen=True, kw_only=True)
class Cell:
    state: State
    file: StoredFile | None = None
    failure: Failure | None = None


@dataclass(frozen=True, kw_only=True)
class VersionRow:
    version: str
    #: one per column of the matrix, in its order.
    cells: tuple[Cell, ...]
    files: tuple[StoredFile, ...]
    failures: tuple[Failure, ...]


@dataclass(frozen=True, kw_only=True)
class ProjectView:
    name: NormalizedName
    #: newest first.
    versions: tuple[VersionRow, ...]

    @property
    def failures(self) -> list[Failure]:
        return [f for v in self.versions for f in v.failures]


@dataclass(frozen=True, kw_only=True)
class PinRow:
    """One pin (project == version) of the landing matrix."""

    project: NormalizedName
    row: VersionRow

    @property
    def failed(self) -> bool:
        return any(c.state is State.FAILED for c in self.row.cells) or bool(self.row.failures)


@dataclass(frozen=True, kw_only=True)
class Matrix:
    targets: tuple[str, ...]
    projects: tuple[ProjectView, ...]

    def pins(self, projects: Iterable[ProjectView] | None = None) -> list[PinRow]:
        """Every pin of ``projects`` (default: all) as one list: the failed ones first, then
        by project and newest version, so what needs attention is at the top."""
        rows = [PinRow(project=p.name, row=v)
                for p in (self.projects if projects is None else projects) for v in p.versions]
        return sorted(rows, key=lambda r: not r.failed)  # stable: keeps name, version order

    def search(self, query: str) -> list[ProjectView]:
        """Projects whose name contains the query, ignoring case and separators (so
        "markup safe" finds MarkupSafe)."""
        needle = _squash(query)
        return [p for p in self.projects if needle in _squash(p.name)]

    def project(self, name: str) -> ProjectView | None:
        wanted = canonicalize_name(name)
        return next((p for p in self.projects if p.name == wanted), None)

    @property
    def file_count(self) -> int:
        return sum(len(v.files) for p in self.projects for v in p.versions)

    @property
    def failure_count(self) -> int:
        return sum(len(p.failures) for p in self.projects)


def _squash(name: str) -> str:
    return re.sub(r"[-_.\s]+", "", name.lower())


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return 1, Version(version)
    except InvalidVersion:
        return 0, version


def _parse(identifier: str) -> Target | None:
    try:
        return parse_target(identifier)
    except TargetError:
        return None


def _python_specific(f: StoredFile) -> bool:
    return any(t.interpreter == t.abi and t.abi.startswith("cp") for t in f.tags)


def columns(files: Sequence[StoredFile], failures: Sequence[Failure]) -> list[Target]:
    named = {str(f.provenance.get("target")) for f in files if f.provenance.get("target")}
    named |= {f.target for f in failures}
    found = {t.identifier: t for t in map(_parse, sorted(named)) if t is not None}
    specific = [f for f in files if f.kind is Kind.WHEEL and _python_specific(f)]
    # A target the builds name under another policy (cp311-manylinux_2_28_x86_64) already is
    # this Python on this platform: inferring cp311-manylinux_x86_64 too would add a column
    # nobody asked for.
    named_kinds = {_kind(t) for t in found.values()}
    for t in known_targets():
        if t.identifier not in found and _kind(t) not in named_kinds and any(
                t.tag_rank(f.tags) is not None and any(
                    tag.interpreter == t.python_tag for tag in f.tags) for f in specific):
            found[t.identifier] = t
    return sorted(found.values(),
                  key=lambda t: (t.family, t.arch, t.python, t.policy, t.identifier))


def _kind(t: Target) -> tuple[str, str, str, str]:
    return t.python_tag, t.abi_tag, t.family, t.arch


def _serves(f: StoredFile, target: Target) -> int | None:
    """How well ``f`` fits ``target`` (lower is better), or None when it does not."""
    if f.kind is not Kind.WHEEL:
        return None
    if f.provenance.get("target") == target.identifier:
        return -1
    rank = target.tag_rank(f.tags)
    return rank if rank is not None and target.admits(f.requires_python) else None


def _cell(files: Sequence[StoredFile], failures: Sequence[Failure], target: Target) -> Cell:
    fitting = [(rank, f.filename, f) for f in files
               if (rank := _serves(f, target)) is not None]
    if fitting:
        best = min(fitting, key=lambda x: (x[0], x[1]))[2]
        return Cell(state=State(best.origin.value), file=best)
    failed = [f for f in failures if f.target == target.identifier]
    if failed:
        return Cell(state=State.FAILED, failure=max(failed, key=lambda f: f.time))
    return Cell(state=State.NONE)


def build_matrix(files: Iterable[StoredFile], failures: Iterable[Failure]) -> Matrix:
    all_files = list(files)
    all_failures = list(failures)
    # A column in which no wheel serves and no build failed says nothing but dashes (a
    # target named once by a wheel that serves it no longer, say): it is left out.
    targets = [t for t in columns(all_files, all_failures)
               if _cell(all_files, all_failures, t).state is not State.NONE]
    by_release: dict[NormalizedName, dict[str, tuple[list[StoredFile], list[Failure]]]] = {}
    for f in all_files:
        by_release.setdefault(f.project, {}).setdefault(f.version, ([], []))[0].append(f)
    for fail in all_failures:
        name = canonicalize_name(fail.project)
        by_release.setdefault(name, {}).setdefault(fail.version, ([], []))[1].append(fail)
    projects = []
    for name in sorted(by_release):
        rows = []
        for version in sorted(by_release[name], key=_version_key, reverse=True):
            vfiles, vfails = by_release[name][version]
            vfiles.sort(key=lambda f: f.filename)
            rows.append(VersionRow(
                version=version, cells=tuple(_cell(vfiles, vfails, t) for t in targets),
                files=tuple(vfiles), failures=tuple(vfails)))
        projects.append(ProjectView(name=name, versions=tuple(rows)))
    return Matrix(targets=tuple(t.identifier for t in targets), projects=tuple(projects))
