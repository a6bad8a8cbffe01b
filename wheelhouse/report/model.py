"""A finished run as one value for every renderer (the terminal table, JSON, Markdown, JUnit):
each pin on each target with its status, file, origin, duration and, for failures, the cause."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wheelhouse import __version__
from wheelhouse.execute.outcome import Outcome, Status
from wheelhouse.execute.results import RunResult, TargetResult
from wheelhouse.store.model import StoredFile

#: The words reports use. "cached": the store already had it (``Status.PRESENT``).
STATUS_WORD = {Status.PRESENT: "cached", Status.FETCHED: "fetched", Status.BUILT: "built",
               Status.FAILED: "failed", Status.MISSING: "missing", Status.PLANNED: "planned"}
#: The table's columns; a missing pin counts as failed there.
COLUMNS = ("cached", "fetched", "built", "failed")

Lookup = Callable[[str], StoredFile | None]


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One pin on one target."""

    project: str
    version: str
    target: str
    status: str
    #: what the plan decided: keep, fetch, build, failed, missing.
    action: str
    requested_by: str
    file: str | None = None
    sha256: str | None = None
    #: where the stored file came from: upstream, built, uploaded.
    origin: str | None = None
    seconds: float = 0.0
    message: str = ""
    #: the known fix a build succeeded with (``cython<3``), if it needed one.
    fix: str | None = None
    #: for builds: seconds per phase (download, wait, requirements, setup, build, repair,
    #: check, publish).
    phases: Mapping[str, float] = field(default_factory=dict)
    cause: tuple[str, ...] = ()
    hint: str | None = None
    #: the build log, an absolute path.
    log: str | None = None
    #: the failure is this machine's (no engine, image or emulation), not the package's.
    environment: bool = False
    #: for a built file: the container engine that built it (``default`` or the one the
    #: settings name for its target), from its provenance; None: built without one.
    engine: str | None = None

    @property
    def pin(self) -> str:
        return f"{self.project}=={self.version}"

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "missing")


@dataclass(frozen=True, kw_only=True)
class TargetReport:
    target: str
    entries: tuple[Entry, ...]
    #: answered from the plan cache: nothing was resolved, fetched or built.
    from_cache: bool
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def count(self, column: str) -> int:
        if column == "failed":
            return sum(1 for e in self.entries if e.failed)
        return sum(1 for e in self.entries if e.status == column)

    @property
    def ok(self) -> bool:
        return not self.problems and not any(e.failed for e in self.entries)


@dataclass(frozen=True, kw_only=True)
class BuildReport:
    targets: tuple[TargetReport, ...]
    store: str
    seconds: float
    dry_run: bool = False
    notes: tuple[str, ...] = ()
    version: str = __version__

    @classmethod
    def of(cls, result: RunResult, *, lookup: Lookup, root: Path, seconds: float,
           dry_run: bool = False, store: str | None = None) -> BuildReport:
        """``store``: what to call the store when it is not ``root`` (a bucket's URL)."""
        return cls(
            targets=tuple(_target(t, lookup, root) for t in result.results),
            store=store or str(root), seconds=seconds, dry_run=dry_run,
            notes=tuple(result.notes))

    @property
    def entries(self) -> list[Entry]:
        return [e for t in self.targets for e in t.entries]

    @property
    def failures(self) -> list[Entry]:
        return [e for e in self.entries if e.failed]

    def phases(self) -> dict[str, float]:
        """Where the builds' time went, over every pin built in the run (seconds, summed
        over builds that ran side by side, so they may add up to more than the wall time)."""
        totals: dict[str, float] = {}
        for e in self.entries:
            for phase, seconds in e.phases.items():
                totals[phase] = totals.get(phase, 0.0) + seconds
        return {k: round(v, 3) for k, v in totals.items()}

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.targets)

    def count(self, column: str) -> int:
        return sum(t.count(column) for t in self.targets)


def _target(result: TargetResult, lookup: Lookup, root: Path) -> TargetReport:
    plan = result.plan
    return TargetReport(
        target=result.target.identifier,
        entries=tuple(_entry(o, lookup, root) for o in result.outcomes),
        from_cache=result.cached, problems=result.problems,
        notes=plan.notes if plan is not None else ())


def _entry(outcome: Outcome, lookup: Lookup, root: Path) -> Entry:
    step = outcome.step
    name = outcome.filename or (step.filename if outcome.status is Status.PLANNED else None)
    stored = step.stored if step.stored is not None and step.stored.filename == name else None
    if stored is None and name is not None and outcome.status is not Status.PLANNED:
        stored = lookup(name)
    return Entry(
        project=step.pin.project, version=step.pin.version, target=step.target.identifier,
        status=STATUS_WORD[outcome.status], action=step.action.value,
        requested_by=step.pin.requested_by, file=name,
        sha256=stored.sha256 if stored is not None else None,
        origin=stored.origin.value if stored is not None else None,
        seconds=round(outcome.seconds, 3), message=outcome.message, cause=outcome.cause,
        hint=outcome.hint, log=str(root / outcome.log) if outcome.log else None,
        environment=outcome.environment, fix=outcome.fix or None,
        phases=dict(outcome.phases),
        engine=str(stored.provenance["engine"]) if stored is not None
        and stored.provenance.get("engine") else None)
