"""PEP 751 ``pylock.toml`` as input: read and validated with ``packaging.pylock``, selected per
target with ``Pylock.select`` and the target's markers and tags."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from packaging.markers import Environment
from packaging.pylock import (
    Package,
    PackageSdist,
    PackageWheel,
    Pylock,
    PylockSelectError,
    PylockValidationError,
)

from wheelhouse.errors import RequirementsError
from wheelhouse.lockfiles.model import LockedPackage, file_candidate
from wheelhouse.simple.pages import Candidate
from wheelhouse.targets import Target


def read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise RequirementsError(f"{what} {path} does not exist",
                                hint="check the path (relative paths in the config are "
                                "relative to the config file)") from None
    except tomllib.TOMLDecodeError as e:
        raise RequirementsError(f"{path} is not valid TOML: {e}") from None
    except OSError as e:
        raise RequirementsError(f"cannot read {path}: {e}") from None


@dataclass(frozen=True, kw_only=True)
class PylockFile:
    path: Path
    lock: Pylock
    #: the lock's packages that name files (index, in ``lock.packages``) → what they lock.
    locked: dict[int, LockedPackage]
    notes: tuple[str, ...] = ()

    @property
    def inputs(self) -> tuple[Path, ...]:
        return (self.path,)

    def packages(self) -> tuple[LockedPackage, ...]:
        return tuple(self.locked.values())

    @property
    def requires_python(self) -> str | None:
        rp = self.lock.requires_python
        return str(rp) if rp is not None else None

    def select(self, target: Target) -> tuple[LockedPackage, ...]:
        target = target.with_python_for(self.requires_python)
        env = cast(Environment, target.marker_environment())
        tags = target.tags()
        try:  # the whole lock's requires-python and environments, with no package
            list(dataclasses.replace(self.lock, packages=[]).select(environment=env, tags=tags))
        except PylockSelectError as e:
            raise RequirementsError(f"{self.path} cannot be installed on {target}: {e}",
                                    hint="drop the target, or lock for it too") from None
        chosen: dict[str, LockedPackage] = {}
        for i, package in enumerate(self.lock.packages):
            # One package at a time: a package no file of which fits this target must not
            # hide the others; the resolver says what exists instead.
            one = dataclasses.replace(self.lock, packages=[package])
            try:
                if not list(one.select(environment=env, tags=tags)):
                    continue  # its marker is false here
            except PylockSelectError:
                pass  # no fitting file, or another Python: still wanted here
            if i not in self.locked:
                continue  # a local directory: noted when read
            if package.name in chosen:
                raise RequirementsError(
                    f"{self.path}: {package.name} is locked twice for {target} "
                    f"({chosen[package.name].version} and {self.locked[i].version})",
                    hint="the markers of the two entries must not both hold on one target")
            chosen[package.name] = self.locked[i]
        return tuple(chosen.values())


def read_pylock(path: Path) -> PylockFile:
    """Read and validate ``path``. Raises RequirementsError naming the file and the entry."""
    try:
        lock = Pylock.from_dict(read_toml(path, "lockfile"))
    except PylockValidationError as e:
        raise RequirementsError(f"{path} is not a valid pylock.toml: {e}",
                                hint="regenerate it with the tool that wrote it") from None
    locked: dict[int, LockedPackage] = {}
    notes: list[str] = []
    for i, package in enumerate(lock.packages):
        where = f"{path}: packages[{i}] ({package.name})"
        if package.vcs is not None or package.archive is not None:
            raise RequirementsError(
                f"{where} comes from a {'VCS' if package.vcs else 'direct archive URL'}, "
                "which wheelhouse cannot pin to one release",
                hint="publish a release of it and lock NAME==VERSION from an index")
        if package.directory is not None:
            # The project being locked, as `uv export` writes it: an application, not a
            # wheel to share.
            notes.append(f"{where} is the local directory {package.directory.path}; "
                         "it is not built")
            continue
        files = _files(package, path)
        version = str(package.version) if package.version is not None else (
            str(files[0].version) if files else None)
        if version is None:
            raise RequirementsError(f"{where} has neither a version nor a usable file")
        locked[i] = LockedPackage(name=package.name, version=version, files=files,
                                  source=str(path))
    return PylockFile(path=path, lock=lock, locked=locked, notes=tuple(notes))


def _files(package: Package, path: Path) -> tuple[Candidate, ...]:
    requires_python = str(package.requires_python) if package.requires_python else None
    entries: list[PackageWheel | PackageSdist] = [*(package.wheels or ())]
    if package.sdist is not None:
        entries.append(package.sdist)
    out = []
    for entry in entries:
        cand = file_candidate(
            filename=entry.filename, url=entry.url, path=entry.path, base=path.parent,
            hashes=entry.hashes, size=entry.size, upload_time=entry.upload_time,
            requires_python=requires_python, source=str(path))
        if cand is not None:
            out.append(cand)
    return tuple(out)
