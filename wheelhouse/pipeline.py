"""``wheelhouse build`` as glue: requirements → plan (``wheelhouse.plan``) → fetch, build and
publish (``wheelhouse.execute``), for every target side by side. It owns the plan cache, the
pip-compile lock of unpinned input, and which resolver meets which executor; every step is
``execute``'s (a dry run's too: ``execute.dryrun``), and so are the results it returns.

A target whose inputs are unchanged and whose files are all still in the store is answered
from the ledger's plan cache without touching the network. A dry run walks the same resolver
with dependencies read from metadata only, and changes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName

from wheelhouse import __version__
from wheelhouse.errors import EngineError
from wheelhouse.execute.outcome import Outcome, Progress, Status, drive
from wheelhouse.execute.results import RunResult, TargetResult
from wheelhouse.inputs import BuildInput
from wheelhouse.ledger import Ledger
from wheelhouse.options import BuildOptions
from wheelhouse.plan.model import Action, Pin, Step
from wheelhouse.plan.resolver import Resolver
from wheelhouse.requirements import RequirementSet
from wheelhouse.store.protocols import StoreWriter
from wheelhouse.targets import Target
from wheelhouse.util import utc_now

if TYPE_CHECKING:
    from wheelhouse.builder.builders import Builders
    from wheelhouse.execute.executor import Executor
    from wheelhouse.upstream import Upstream


@dataclass(frozen=True, kw_only=True)
class Sources:
    index_url: str | None
    extra_index_urls: tuple[str, ...]
    find_links: tuple[str, ...]

    @classmethod
    def resolve(cls, options: BuildOptions, reqs: RequirementSet) -> Sources:
        """A requirements file's own index options win over the configured ones, as in pip."""
        s = options.settings
        index = None if reqs.no_index else (reqs.index_url or s.index_url)
        return cls(
            index_url=index,
            extra_index_urls=tuple(dict.fromkeys(
                (*s.extra_index_urls, *reqs.extra_index_urls))) if index else (),
            find_links=tuple(dict.fromkeys((*s.find_links, *reqs.find_links))),
        )

    @property
    def index_urls(self) -> list[str]:
        return [u for u in (self.index_url, *self.extra_index_urls) if u]


class Pipeline:
    def __init__(self, *, options: BuildOptions, store: StoreWriter, ledger: Ledger,
                 inputs: BuildInput, progress: Progress,
                 builders: Builders | None = None) -> None:
        self.options = options
        self.store = store
        self.ledger = ledger
        self.inputs = inputs
        #: the requirements files' part, the same on every target (pip-compile locks it).
        self.reqs = inputs.requirements
        self.sources = Sources.resolve(options, self.reqs)
        self._per_target: dict[Target, RequirementSet] = {}
        self.progress = progress
        self._builders = builders
        self._executor: Executor | None = None
        self._executor_guard = threading.Lock()
        self._preferred: dict[NormalizedName, str] | None = None
        #: remarks about the whole run (not one target), for the summary.
        self.notes: list[str] = list(inputs.notes)
        self._lock_guard = threading.Lock()

    @property
    def executor(self) -> Executor:
        """Made on first use: a run answered from the plan cache never loads the builders."""
        with self._executor_guard:
            if self._executor is None:
                from wheelhouse.builder.builders import Builders
                from wheelhouse.execute.executor import Executor

                settings = self.options.settings
                self._builders = self._builders or Builders(
                    settings, index_url=self.sources.index_url,
                    build_env=_local_build_env(self.sources))
                self._executor = Executor(
                    settings=settings, store=self.store, ledger=self.ledger,
                    upstream=self._make_upstream, builders=self._builders,
                    progress=self.progress, retry_failed=self.options.retry_failed)
            return self._executor

    def _make_upstream(self) -> Upstream:
        from wheelhouse.upstream import Upstream

        return Upstream(index_urls=self.sources.index_urls, find_links=self.sources.find_links)

    def close(self) -> None:
        if self._builders is not None:
            self._builders.close()

    def run(self) -> RunResult:
        targets = self.options.targets
        if self.inputs.lockfiles:
            # Selected before any work, so a lock that cannot serve a target says so first.
            self._per_target = {t: self.inputs.for_target(t) for t in targets}
        jobs = max(1, min(self.options.settings.jobs, len(targets)))
        # Targets run side by side (each in its own container, where they need one).
        pool = ThreadPoolExecutor(max_workers=jobs)
        try:
            results = list(pool.map(self._run_target, targets))
        except BaseException:
            # Ctrl-C or SIGTERM: stop what runs (builds would otherwise go on to their time
            # limit while we wait for them) and leave no container behind.
            self.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        notes = [*self.notes, *self.inputs.assumptions([r.target for r in results])]
        if self._builders is not None:
            notes += self._builders.notes()  # images loaded into engines, the compile cache
        return RunResult(results=tuple(results), notes=tuple(notes))

    def cancel(self) -> None:
        """Start no new step, kill running local builds, remove this run's containers."""
        from wheelhouse.builder.runner import terminate_all

        if self._executor is not None:
            self._executor.cancelled = True
        terminate_all()
        self.close()

    # -- one target ------------------------------------------------------------------------
    def _run_target(self, target: Target) -> TargetResult:
        key = self._plan_key(target)
        if not self.options.upgrade and not self.options.dry_run:
            cached = self._from_cache(target, key)
            if cached is not None:
                return cached
        reqs = self._per_target.get(target, self.reqs)
        target = self._with_full_version(target)
        views = self.executor.views(self._lock_pins(), locked=self.inputs.locked_files())
        resolver = Resolver(reqs, target, views)
        # Twice --jobs steps at a time: --jobs builds compile at once (the executor's slots),
        # while the others download, resolve build requirements, repair or check. (More
        # steps gained nothing on two cores: that work is then CPU-bound.)
        plan, outcomes = drive(resolver, self._step(), jobs=2 * self.options.settings.jobs,
                               queued=None if self.options.dry_run else self.progress.queued)
        result = TargetResult(target=target, outcomes=tuple(outcomes), plan=plan)
        if result.ok and not self.options.dry_run:
            self.ledger.cache_put(key, {"files": self._files(outcomes), "time": utc_now()})
        return result

    def _with_full_version(self, target: Target) -> Target:
        """The target with its builder's full Python version (markers, Requires-Python),
        asked once per builder image and remembered under the image's id; unchanged for a
        dry run or where nothing can be asked (no engine, no image: see ``Target.admits``)."""
        if target.full_version is not None or self.options.dry_run:
            return target
        builder = self.executor.builders(target)
        try:
            key = "python-version:" + builder.identity(target)
        except EngineError:
            return target
        version = self.ledger.cache_get(key)
        if not isinstance(version, str):
            version = builder.python_version(target)
            if version is None:
                return target
            self.ledger.cache_put(key, version)
        return dataclasses.replace(target, full_version=version)

    def _step(self) -> Callable[[Step], Outcome]:
        """How each step runs: for real, or a dry run's reading of metadata alone."""
        if not self.options.dry_run:
            return self.executor.run
        from wheelhouse.execute.dryrun import DryRun

        return DryRun(store=self.store, upstream=lambda: self.executor.upstream)

    def _files(self, outcomes: Sequence[Outcome]) -> list[str]:
        return sorted({o.filename for o in outcomes if o.filename})

    def _plan_key(self, target: Target) -> str:
        h = hashlib.sha256()
        for part in (
            __version__, self.inputs.digest(), target.identifier,
            json.dumps(self.sources.index_urls), json.dumps(self.sources.find_links),
            repr(sorted((k, repr(v)) for k, v in self.options.settings.packages.items())),
        ):
            h.update(part.encode() + b"\0")
        return "plan:" + h.hexdigest()

    def _from_cache(self, target: Target, key: str) -> TargetResult | None:
        cached = self.ledger.cache_get(key)
        if not cached:
            return None
        stored = [self.store.get(name) for name in cached["files"]]
        if not all(stored):
            return None
        outcomes: list[Outcome] = []
        for f in stored:
            assert f is not None
            pin = Pin(project=f.project, version=f.version, extras=frozenset(),
                      hashes=frozenset(), requested_by="(cached plan)")
            step = Step(pin=pin, target=target, action=Action.KEEP, stored=f)
            outcomes.append(Outcome(step=step, status=Status.PRESENT, filename=f.filename))
        return TargetResult(target=target, outcomes=tuple(outcomes), cached=True)

    # -- unpinned input --------------------------------------------------------------------
    def _lock_pins(self) -> dict[NormalizedName, str]:
        if self.reqs.fully_pinned:
            return {}
        with self._lock_guard:
            if self._preferred is None:
                self._preferred = self._locked()
        return self._preferred

    def _locked(self) -> dict[NormalizedName, str]:
        key = "lock:" + hashlib.sha256(
            (self.reqs.digest() + json.dumps(self.sources.index_urls)
             + json.dumps(self.sources.find_links)).encode()).hexdigest()
        if not self.options.upgrade:
            cached = self.ledger.cache_get(key)
            if cached is not None:
                return {NormalizedName(k): v for k, v in cached.items()}
        from wheelhouse.builder.causes import explain
        from wheelhouse.errors import LockFailed
        from wheelhouse.lock import lock

        try:
            pins = lock(self.reqs, index_url=self.sources.index_url,
                        extra_index_urls=self.sources.extra_index_urls,
                        find_links=self.sources.find_links)
        except LockFailed as e:
            # One sdist that cannot give its metadata must not stop every other pin: each
            # target's closure is then resolved by our own resolver, which fails only the
            # pins that cannot be had, each with its cause.
            why = explain(e.output, project="", target="")
            cause = f": {why.lines[0]}" if why.lines else ""
            self.notes.append("locking the requirements with pip-compile failed"
                              f"{cause}; versions are chosen per target instead")
            return {}
        self.ledger.cache_put(key, pins)
        return pins


def _local_build_env(sources: Sources) -> dict[str, str]:
    from wheelhouse.builder.local import host_build_environment
    from wheelhouse.lock import source_environment

    return source_environment(sources.index_url, sources.extra_index_urls,
                              sources.find_links, base=host_build_environment())
