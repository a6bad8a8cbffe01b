"""What a run is asked for: requirements files and lockfiles, given as one ``BuildInput`` that
yields each target's ``RequirementSet``.

A requirements file means the same on every target (the resolver evaluates its markers). A
lockfile already is a closure: each target gets its selection as exact pins with the lock's
hashes, and the lock's files are offered as that release's only candidates, so the resolver
(still the one that decides) keeps, fetches or builds exactly what the lock names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName

from wheelhouse.errors import UsageError
from wheelhouse.requirements import RequirementSet, files_digest, parse_requirements

if TYPE_CHECKING:
    from wheelhouse.lockfiles.model import Lockfile
    from wheelhouse.simple.pages import Candidate
    from wheelhouse.targets import Target


@dataclass(frozen=True, kw_only=True)
class BuildInput:
    #: every requirements file named, parsed into one set (as pip reads several ``-r``).
    requirements: RequirementSet
    lockfiles: tuple[Lockfile, ...] = ()

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file read, requirements files first: what the plan cache key covers."""
        extra = [p for lock in self.lockfiles for p in lock.inputs]
        return (*self.requirements.files, *extra)

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(n for lock in self.lockfiles for n in lock.notes)

    def assumptions(self, targets: Sequence[Target]) -> list[str]:
        """What was assumed of targets whose full Python version no image told: a lock's
        Requires-Python that ``X.Y.0`` fails is taken as met by the oldest patch that meets
        it. One note per (lock, target), said once per run."""
        notes = []
        for lock in self.lockfiles:
            rp = lock.requires_python
            for target in targets:
                seen = target.with_python_for(rp)
                if seen is not target:
                    notes.append(
                        f"{target}: no image was asked for its Python's patch release; "
                        f"{lock.inputs[0]} requires Python {rp}, taken as met by "
                        f"{seen.full_version}")
        return notes

    def digest(self) -> str:
        """A stable digest of the input: the path and bytes of every file read (the same
        digest as ``RequirementSet.digest`` when there are only requirements files)."""
        return files_digest(self.files)

    @property
    def size(self) -> int:
        """How many requirements and locked releases were named (for messages)."""
        locked = {(p.name, p.version) for lock in self.lockfiles for p in lock.packages()}
        return len(self.requirements.requirements) + len(locked)

    def for_target(self, target: Target) -> RequirementSet:
        """The requirements of ``target``: the files' lines, then each lockfile's selection
        for the target as exact pins with their hashes."""
        if not self.lockfiles:
            return self.requirements
        lines = [p.line() for lock in self.lockfiles for p in lock.select(target)]
        return replace(self.requirements,
                       requirements=(*self.requirements.requirements, *lines),
                       files=self.files)

    def locked_files(self) -> Mapping[NormalizedName, Sequence[Candidate]]:
        """Every file the lockfiles list, per project: the candidates of locked releases."""
        out: dict[NormalizedName, list[Candidate]] = {}
        for lock in self.lockfiles:
            for package in lock.packages():
                have = out.setdefault(package.name, [])
                seen = {c.url for c in have}
                have += [c for c in package.files if c.url not in seen]
        return out


def read_inputs(paths: Sequence[Path]) -> BuildInput:
    """Requirements files and lockfiles (told apart by name, see ``is_lockfile``), read and
    checked. Raises UsageError (RequirementsError) naming the file."""
    from wheelhouse.lockfiles.read import is_lockfile, read_lockfile

    if not paths:
        raise UsageError(
            "no requirements: name requirements files or lockfiles, or set `requirements` "
            "in [tool.wheelhouse]",
            hint="e.g. wheelhouse build requirements.txt, or requirements = "
            "[\"pylock.toml\"] in wheelhouse.toml or pyproject.toml")
    locks = tuple(read_lockfile(p) for p in paths if is_lockfile(p))
    reqs = parse_requirements(*(p for p in paths if not is_lockfile(p)))
    return BuildInput(requirements=reqs, lockfiles=locks)
