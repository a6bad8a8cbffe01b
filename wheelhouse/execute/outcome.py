"""What carrying out a step came to (``Outcome``, and ``kept`` for a file in the store), who
hears about it, and the loop that feeds outcomes back to the resolver."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from packaging.requirements import Requirement

from wheelhouse.plan.model import Step, TargetPlan
from wheelhouse.plan.resolver import Resolver, requires_dist
from wheelhouse.store.model import StoredFile
from wheelhouse.store.protocols import StoreReader


class Status(StrEnum):
    PRESENT = "present"
    FETCHED = "fetched"
    BUILT = "built"
    FAILED = "failed"
    MISSING = "missing"
    #: a dry run: nothing was done.
    PLANNED = "planned"


@dataclass(frozen=True, kw_only=True)
class Outcome:
    step: Step
    status: Status
    filename: str | None = None
    message: str = ""
    #: the build log, relative to the store root.
    log: str | None = None
    dependencies: tuple[Requirement, ...] | None = None
    seconds: float = 0.0
    #: for failures: the log lines that say why, and the setting that fixes it.
    cause: tuple[str, ...] = ()
    hint: str | None = None
    #: the failure is this machine's (no engine, no image), not the package's.
    environment: bool = False
    #: the known fix a build was retried with and succeeded (``cython<3``).
    fix: str = ""
    #: stopped by a signal or the run's end, not failed: retried by the next run.
    interrupted: bool = False
    #: for builds: seconds per phase (download, wait, requirements, setup, build, repair,
    #: check, publish), so a report can say where a cold build's time went.
    phases: Mapping[str, float] = field(default_factory=dict)


def kept(store: StoreReader, step: Step, f: StoredFile, status: Status = Status.PRESENT, *,
         message: str = "", log: str | None = None, seconds: float = 0.0,
         fix: str = "", phases: Mapping[str, float] | None = None) -> Outcome:
    """The outcome of a step whose file is in the store, its dependencies read from the
    file's metadata there."""
    metadata = store.read_metadata(f)
    deps = tuple(requires_dist(metadata)) if metadata is not None else None
    return Outcome(step=step, status=status, filename=f.filename, dependencies=deps,
                   message=message, log=log, seconds=seconds, fix=fix,
                   phases=dict(phases or {}))


class Progress(Protocol):
    """Who is told what happens, as it happens (the CLI prints it)."""

    def queued(self, steps: Sequence[Step]) -> None:
        """The resolver handed these steps of a target's closure out to run. The closure is
        walked level by level, so the total grows as dependencies become known."""
        ...

    def started(self, step: Step, how: str) -> None:
        """A build began (``how``: the builder, e.g. "native"). Keeps and fetches are quick
        and only finish."""
        ...

    def finished(self, outcome: Outcome) -> None: ...


def drive(resolver: Resolver, run: Callable[[Step], Outcome], *, jobs: int,
          queued: Callable[[Sequence[Step]], None] | None = None,
          ) -> tuple[TargetPlan, list[Outcome]]:
    """Walk the resolver's closure, running each level's steps up to ``jobs`` at a time;
    ``queued`` hears of each level before it runs."""
    outcomes: list[Outcome] = []
    batch = resolver.first()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while batch:
            if queued is not None:
                queued(batch)
            done = list(pool.map(run, batch))
            outcomes += done
            batch = resolver.next({o.step.pin.project: o.dependencies for o in done})
    return resolver.plan(), outcomes
