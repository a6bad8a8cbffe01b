"""Carrying out a plan: keep, fetch, build and publish each step, and hand every outcome's
dependencies back to the resolver. Build requirements are a sub-resolve for the target.

The executor owns the side effects (downloads, builds, the store, the ledger); the decisions
are the resolver's. ``drive`` is the loop between the two, used for a target's closure and for
a build's requirements alike.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from packaging.requirements import Requirement
from packaging.utils import NormalizedName

from wheelhouse import __version__
from wheelhouse.build import Builder, Builders, BuildFailed
from wheelhouse.build.sdist import build_requirements
from wheelhouse.config import Settings
from wheelhouse.errors import EngineError, InvalidDistribution, PublishConflict, UpstreamError
from wheelhouse.ledger import Failure, Ledger, utc_stamp
from wheelhouse.plan import (
    Action,
    Pin,
    Resolver,
    Step,
    TargetPlan,
    Views,
    best_stored,
    requirement_set,
    requires_dist,
)
from wheelhouse.store import Origin, PublishStatus, StoredFile, StoreWriter
from wheelhouse.targets import Target

if TYPE_CHECKING:
    from wheelhouse.upstream import Candidate, Upstream


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


class Progress(Protocol):
    """Who is told what happens, as it happens (the CLI prints it)."""

    def started(self, step: Step, how: str) -> None: ...

    def finished(self, outcome: Outcome) -> None: ...


def drive(resolver: Resolver, run: Callable[[Step], Outcome], *, jobs: int
          ) -> tuple[TargetPlan, list[Outcome]]:
    """Walk the resolver's closure, running each level's steps up to ``jobs`` at a time."""
    outcomes: list[Outcome] = []
    batch = resolver.first()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while batch:
            done = list(pool.map(run, batch))
            outcomes += done
            batch = resolver.next({o.step.pin.project: o.dependencies for o in done})
    return resolver.plan(), outcomes


class Executor:
    def __init__(
        self, *, settings: Settings, store: StoreWriter, ledger: Ledger,
        upstream: Callable[[], Upstream], builders: Builders, progress: Progress,
        retry_failed: bool,
    ) -> None:
        self.settings = settings
        self.store = store
        self.ledger = ledger
        self._upstream_factory = upstream
        self._upstream: Upstream | None = None
        self._upstream_guard = threading.Lock()
        self.builders = builders
        self.progress = progress
        self.retry_failed = retry_failed

    @property
    def upstream(self) -> Upstream:
        """Created on first use, so a run answered from the store opens no connection."""
        with self._upstream_guard:
            if self._upstream is None:
                self._upstream = self._upstream_factory()
            return self._upstream

    # -- what the resolver may read ----------------------------------------------------------
    def views(self, preferred: dict[NormalizedName, str] | None = None) -> Views:
        return Views(
            stored=lambda name, version, target: best_stored(self.store, name, version, target),
            candidates=lambda name: self.upstream.candidates(name),
            failed_before=self.failed_before,
            build_from_source=lambda name: self.settings.package(name).build_from_source,
            preferred=preferred or {},
        )

    def failed_before(self, step: Step) -> Failure | None:
        """The recorded failure of the build ``step`` would run, when its inputs are known
        without downloading (the listed sdist hash, a local sdist, the builder's identity)."""
        if self.retry_failed or step.candidate is None:
            return None
        sha = step.candidate.sha256 or _local_sha256(step.candidate)
        if sha is None:
            return None
        try:
            builder = self.builders(step.target)
            key = self.failure_key(step, builder, sha)
        except EngineError:
            return None  # no engine: the build itself will say so
        return self.ledger.failure(key)

    def failure_key(self, step: Step, builder: Builder, sdist_sha256: str) -> str:
        pin, target = step.pin, step.target
        package = self.settings.package(pin.project)
        return hashlib.sha256("|".join((
            pin.project, pin.version, target.identifier, sdist_sha256,
            builder.identity(target), repr(package),
        )).encode()).hexdigest()

    # -- one step ----------------------------------------------------------------------------
    def run(self, step: Step) -> Outcome:
        try:
            outcome = self._run(step)
        except (UpstreamError, InvalidDistribution) as e:
            outcome = Outcome(step=step, status=Status.FAILED, message=str(e))
        self.progress.finished(outcome)
        return outcome

    def _run(self, step: Step) -> Outcome:
        if step.action is Action.KEEP:
            assert step.stored is not None
            return self._kept(step, step.stored)
        if step.action is Action.FETCH:
            return self._fetch(step)
        if step.action is Action.BUILD:
            return self._build(step)
        if step.action is Action.FAILED:
            failure = step.failure
            assert failure is not None
            return Outcome(step=step, status=Status.FAILED, log=failure.log,
                           message=f"failed before with the same inputs: {failure.message}")
        return Outcome(step=step, status=Status.MISSING, message=step.reason)

    def _kept(self, step: Step, f: StoredFile, status: Status = Status.PRESENT, *,
              message: str = "", log: str | None = None, seconds: float = 0.0) -> Outcome:
        metadata = self.store.read_metadata(f)
        deps = tuple(requires_dist(metadata)) if metadata is not None else None
        return Outcome(step=step, status=status, filename=f.filename, dependencies=deps,
                       message=message, log=log, seconds=seconds)

    def _download(self, cand: Candidate, pin: Pin, dest: Path) -> str:
        digest = self.upstream.download(cand, dest)
        allowed = {h.removeprefix("sha256:") for h in pin.hashes if h.startswith("sha256:")}
        if pin.hashes and digest not in allowed:
            raise UpstreamError(
                f"{cand.filename} has sha256 {digest}, which is not among the --hash values "
                f"for {pin.project} ({pin.requested_by})",
                hint="update the hashes in the requirements file (pip-compile "
                "--generate-hashes) or check the index",
            )
        return digest

    def _fetch(self, step: Step) -> Outcome:
        cand = step.candidate
        assert cand is not None
        staged = self.store.staging_file(suffix=".part")
        try:
            digest = self._download(cand, step.pin, staged)
            published = self.store.publish(
                staged, filename=cand.filename, origin=Origin.UPSTREAM, consume=True,
                expected_sha256=digest, requires_python=cand.requires_python,
                provenance={"index": cand.source, "url": cand.url},
            )
        finally:
            staged.unlink(missing_ok=True)
        fresh = published.status is PublishStatus.PUBLISHED
        return self._kept(step, published.file, Status.FETCHED if fresh else Status.PRESENT)

    # -- building ----------------------------------------------------------------------------
    def _build(self, step: Step) -> Outcome:
        builder = self.builders(step.target)
        try:
            return self._build_with(step, builder)
        except EngineError as e:
            # The machine's fault, not the sdist's: reported, never recorded as a failure.
            msg = f"{e.message} (hint: {e.hint})" if e.hint else e.message
            return Outcome(step=step, status=Status.FAILED, message=msg)

    def _build_with(self, step: Step, builder: Builder) -> Outcome:
        cand, pin, target = step.candidate, step.pin, step.target
        assert cand is not None
        with tempfile.TemporaryDirectory(dir=self.store.tmp_dir(), prefix="build-") as tmp:
            work = Path(tmp)
            sdist = work / cand.filename
            sdist_sha = self._download(cand, pin, sdist)
            key = self.failure_key(step, builder, sdist_sha)
            failure = None if self.retry_failed else self.ledger.failure(key)
            if failure is not None:
                return Outcome(step=step, status=Status.FAILED, log=failure.log,
                               message=f"failed before with the same inputs: {failure.message}")
            with self.ledger.build_lock(pin.project, pin.version, target.identifier):
                # Another process may have built it while we waited for the lock.
                stored = best_stored(self.store, pin.project, pin.version, target)
                if stored is not None and not self.settings.package(pin.project).build_from_source:
                    return self._kept(step, stored)
                return self._build_locked(step, builder, sdist, sdist_sha, key, work)

    def _build_locked(self, step: Step, builder: Builder, sdist: Path, sdist_sha: str,
                      key: str, work: Path) -> Outcome:
        pin, target = step.pin, step.target
        log_file = self.ledger.new_log(pin.project, pin.version, target.identifier)
        self.progress.started(step, builder.describe(target))
        with log_file.path.open("w", encoding="utf-8") as log:
            log.write(f"# wheelhouse {__version__}: {sdist.name} for {target} with "
                      f"{builder.identity(target)}\n")
            try:
                deps = (self._build_requirements(sdist, target, work)
                        if builder.hermetic else None)
                built = builder.build(
                    sdist, target=target, settings=self.settings.package(pin.project),
                    work_dir=work, log=log, timeout=self.settings.build_timeout,
                    build_deps=deps,
                )
            except BuildFailed as e:
                log.write(f"\n# wheelhouse: the build failed: {e}\n")
                self.ledger.record_failure(Failure(
                    key=key, project=pin.project, version=pin.version,
                    target=target.identifier, message=str(e), log=log_file.relative,
                    time=utc_stamp()))
                return Outcome(step=step, status=Status.FAILED, message=str(e),
                               log=log_file.relative)
        provenance = {
            "sdist": sdist.name, "sdist_sha256": sdist_sha,
            "sdist_url": step.candidate.url if step.candidate else None,
            "builder": builder.identity(target), "target": target.identifier,
            "auditwheel": dict(built.report), "grafted": list(built.grafted),
            "seconds": round(built.seconds, 1), "log": log_file.relative,
        }
        try:
            published = self.store.publish(built.wheel, origin=Origin.BUILT, consume=True,
                                           provenance=provenance)
        except PublishConflict:
            # A concurrent builder published the same filename first: its wheel serves.
            existing = self.store.get(built.wheel.name)
            assert existing is not None
            return self._kept(step, existing, message="published by another build")
        self.ledger.clear_failure(key)
        return self._kept(step, published.file, Status.BUILT, log=log_file.relative,
                          seconds=built.seconds,
                          message=f"grafted {len(built.grafted)} libraries"
                          if built.grafted else "")

    def _build_requirements(self, sdist: Path, target: Target, work: Path) -> Path:
        """Wheels for the sdist's build requirements on ``target``, from our own store.

        A sub-resolve for the target that may only keep or fetch: the wheels land in the
        store like any pin, so a builder with no network installs them from a directory and
        the store keeps what every build used.
        """
        reqs = requirement_set(build_requirements(sdist), f"{sdist.name} build-system")
        plan, outcomes = drive(Resolver(reqs, target, self.views(), build=False), self.run,
                               jobs=self.settings.jobs)
        bad = [o.message for o in outcomes if o.status in (Status.FAILED, Status.MISSING)]
        if plan.problems or bad:
            why = "; ".join([*plan.problems, *bad])
            raise BuildFailed(f"the build requirements of {sdist.name} cannot be met: {why}")
        deps = work / "build-deps"
        deps.mkdir(exist_ok=True)
        for outcome in outcomes:
            f = self.store.get(outcome.filename) if outcome.filename else None
            if f is not None:
                os.link(self.store.file_path(f), deps / f.filename)
        return deps


def _local_sha256(cand: Candidate) -> str | None:
    """The sha256 of a candidate that is a file on this machine (find-links directories)."""
    from wheelhouse.upstream import local_path

    path = local_path(cand.url)
    if path is None:
        return None
    try:
        h = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None
