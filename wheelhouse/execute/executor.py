"""The executor: runs one step at a time (keep, fetch; builds are handed to the ``Building`` it
makes), and resolves a build's requirements as a fetch-only sub-resolve for the target.

It owns the side effects (downloads, builds, the store, the ledger); the decisions are the
resolver's, and it reads for the resolver through ``views``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName

from wheelhouse.builder.builders import Builders
from wheelhouse.errors import BuildFailed, EngineError, InvalidDistribution, UpstreamError
from wheelhouse.execute.building import Building, failed_before, failure_key
from wheelhouse.execute.outcome import Outcome, Progress, Status, drive, kept
from wheelhouse.ledger import Failure, Ledger
from wheelhouse.plan.choose import best_stored
from wheelhouse.plan.model import Action, Pin, Step
from wheelhouse.plan.resolver import Resolver, Views, requirement_set
from wheelhouse.settings import PackageSettings, Settings
from wheelhouse.simple.client import local_path
from wheelhouse.store.model import Origin, PublishStatus
from wheelhouse.store.protocols import StoreWriter
from wheelhouse.targets import Target
from wheelhouse.util import sha256_file

if TYPE_CHECKING:
    from wheelhouse.simple.pages import Candidate
    from wheelhouse.upstream import Upstream


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
        #: set when the run is interrupted: no new step starts.
        self.cancelled = False
        self._seen: dict[str, set[str]] = {}
        self._seen_guard = threading.Lock()
        self._fetching: dict[str, threading.Lock] = {}
        self._fetching_guard = threading.Lock()
        self.building = Building(
            store=store, ledger=ledger, builders=builders, package=settings.package,
            timeout=settings.build_timeout, retry_failed=retry_failed, progress=progress,
            download=self.download, resolve_requirements=self.resolve_requirements,
            available_wheels=self.available_wheels, auto_fix=settings.auto_fix,
            cancelled=lambda: self.cancelled, compiling_at_once=settings.jobs)

    @property
    def upstream(self) -> Upstream:
        """Created on first use, so a run answered from the store opens no connection."""
        with self._upstream_guard:
            if self._upstream is None:
                self._upstream = self._upstream_factory()
            return self._upstream

    # -- what the resolver may read ----------------------------------------------------------
    def views(self, preferred: dict[NormalizedName, str] | None = None, *,
              locked: Mapping[NormalizedName, Sequence[Candidate]] | None = None) -> Views:
        """``locked``: a lockfile's files, the only candidates of the projects it names (no
        index is asked for them). Build requirements are resolved without it, from the index,
        as an installer's build isolation would."""
        pinned = locked or {}
        return Views(
            stored=lambda name, version, target: best_stored(self.store, name, version, target),
            candidates=lambda name: pinned.get(name) or self.upstream.candidates(name),
            failed_before=self.failed_before,
            build_from_source=lambda name: self.settings.package(name).build_from_source,
            preferred=preferred or {},
        )

    def failed_before(self, step: Step) -> Failure | None:
        """The recorded failure of the build ``step`` would run, when its inputs are known
        without downloading (the listed sdist hash, a local sdist, the builder's identity)."""
        if self.retry_failed or step.candidate is None:
            return None
        sha = step.candidate.sha256 or _local_sha256(step.candidate.url)
        if sha is None:
            return None
        try:
            builder = self.builders(step.target)
            key = failure_key(step, builder, sha, self.settings.package(step.pin.project))
        except EngineError:
            return None  # no engine: the build itself will say so
        return self.ledger.failure(key)

    # -- one step ----------------------------------------------------------------------------
    def run(self, step: Step) -> Outcome:
        if self.cancelled:
            raise KeyboardInterrupt
        began = time.monotonic()
        try:
            outcome = self._run(step)
        except (UpstreamError, InvalidDistribution) as e:
            outcome = Outcome(step=step, status=Status.FAILED, message=str(e))
        if not outcome.seconds:
            # A build times itself (the build proper); everything else, here, for reports.
            outcome = replace(outcome, seconds=time.monotonic() - began)
        if outcome.filename and outcome.status in (Status.PRESENT, Status.FETCHED,
                                                   Status.BUILT):
            with self._seen_guard:
                self._seen.setdefault(step.target.identifier, set()).add(outcome.filename)
        self.progress.finished(outcome)
        return outcome

    def available_wheels(self, target: Target) -> list[Path]:
        """The store's files of this target's pins met so far in this run: what a new
        wheel's check may install its dependencies from."""
        with self._seen_guard:
            names = sorted(self._seen.get(target.identifier, ()))
        files = [self.store.get(name) for name in names]
        return [self.store.local_file(f) for f in files
                if f is not None and f.filename.endswith(".whl")]

    def _run(self, step: Step) -> Outcome:
        if step.action is Action.KEEP:
            assert step.stored is not None
            return kept(self.store, step, step.stored)
        if step.action is Action.FETCH:
            return self._fetch(step)
        if step.action is Action.BUILD:
            return self.building(step)
        if step.action is Action.FAILED:
            assert step.failure is not None
            return failed_before(step, step.failure)
        return Outcome(step=step, status=Status.MISSING, message=step.reason)

    def download(self, cand: Candidate, pin: Pin, dest: Path) -> str:
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
        # Targets side by side may want one file (an abi3 or pure wheel): one downloads it,
        # the others find it stored.
        with self._fetching_guard:
            lock = self._fetching.setdefault(cand.filename, threading.Lock())
        with lock:
            stored = self.store.get(cand.filename)
            if stored is not None and (cand.sha256 is None or stored.sha256 == cand.sha256):
                return kept(self.store, step, stored)
            return self._download_and_publish(step, cand)

    def _download_and_publish(self, step: Step, cand: Candidate) -> Outcome:
        staged = self.store.staging_file(suffix=".part")
        try:
            digest = self.download(cand, step.pin, staged)
            published = self.store.publish(
                staged, filename=cand.filename, origin=Origin.UPSTREAM, consume=True,
                expected_sha256=digest, requires_python=cand.requires_python,
                provenance={"index": cand.source, "url": cand.url},
            )
        finally:
            staged.unlink(missing_ok=True)
        fresh = published.status is PublishStatus.PUBLISHED
        return kept(self.store, step, published.file,
                    Status.FETCHED if fresh else Status.PRESENT)

    def resolve_requirements(self, requires: Sequence[str], source: str, target: Target,
                             work: Path, package: PackageSettings) -> Path:
        """A fetch-only sub-resolve for the target, bounded by the package's build
        constraints: the wheels land in the store like any pin (so a builder with no network
        installs them from a directory, and the store keeps what every build used) and are
        linked into ``work/build-deps``, which is returned."""
        reqs = requirement_set(requires, source, constraints=package.build_constraints)
        plan, outcomes = drive(Resolver(reqs, target, self.views(), build=False), self.run,
                               jobs=self.settings.jobs)
        bad = [o.message for o in outcomes if o.status in (Status.FAILED, Status.MISSING)]
        if plan.problems or bad:
            why = "; ".join([*plan.problems, *bad])
            raise BuildFailed(f"the build requirements of {source.split()[0]} cannot be met: "
                              f"{why}")
        deps = work / "build-deps"
        deps.mkdir(exist_ok=True)
        for outcome in outcomes:
            f = self.store.get(outcome.filename) if outcome.filename else None
            if f is not None and not (deps / f.filename).exists():
                os.link(self.store.local_file(f), deps / f.filename)
        return deps


def _local_sha256(url: str) -> str | None:
    """The sha256 of a candidate that is a file on this machine (find-links directories)."""
    path = local_path(url)
    if path is None:
        return None
    try:
        return sha256_file(path)
    except OSError:
        return None
