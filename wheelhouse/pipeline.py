"""``wheelhouse build``: requirements → plan → build → repair → store, for every target.

For each target the closure is walked breadth-first with the target's own markers: each level's
pins are planned (``wheelhouse.plan.choose``), then fetched or built in parallel, and the
dependencies read from the resulting wheels' METADATA form the next level. A run whose inputs
are unchanged and whose files are all still in the store is answered from a cached result
without touching the network.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from wheelhouse import __version__
from wheelhouse.build import Builder, BuildFailed
from wheelhouse.config import Settings
from wheelhouse.errors import (
    InvalidDistribution,
    PublishConflict,
    UpstreamError,
)
from wheelhouse.lock import lock, source_environment
from wheelhouse.plan import (
    Action,
    Pin,
    Step,
    best_stored,
    choose,
    dependencies_for,
    newest_version,
    requires_dist,
    sdist_static_metadata,
)
from wheelhouse.requirements import RequirementLine, RequirementSet
from wheelhouse.store import Failure, Origin, PublishStatus, Store, read_wheel_metadata, utc_now
from wheelhouse.targets import Target
from wheelhouse.upstream import Candidate, Upstream

Report = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class Sources:
    index_url: str | None
    extra_index_urls: tuple[str, ...]
    find_links: tuple[str, ...]

    @classmethod
    def resolve(cls, settings: Settings, reqs: RequirementSet) -> Sources:
        """A requirements file's own index options win over the configured ones, as in pip."""
        index = None if reqs.no_index else (reqs.index_url or settings.index_url)
        return cls(
            index_url=index,
            extra_index_urls=tuple(dict.fromkeys(
                (*settings.extra_index_urls, *reqs.extra_index_urls))) if index else (),
            find_links=tuple(dict.fromkeys((*settings.find_links, *reqs.find_links))),
        )

    @property
    def index_urls(self) -> list[str]:
        return [u for u in (self.index_url, *self.extra_index_urls) if u]


@dataclass(kw_only=True)
class Outcome:
    step: Step
    status: str  # present | fetched | built | failed | missing | planned
    filename: str | None = None
    message: str = ""
    log: str | None = None
    dependencies: list[Requirement] | None = None


@dataclass(kw_only=True)
class TargetResult:
    target: Target
    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    cached: bool = False

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        return not self.problems and not any(
            o.status in ("failed", "missing") for o in self.outcomes)


@dataclass(kw_only=True)
class BuildSummary:
    results: list[TargetResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def count(self, status: str) -> int:
        return sum(r.count(status) for r in self.results)


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    dry_run: bool = False
    retry_failed: bool = False
    upgrade: bool = False


class Pipeline:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        upstream: Upstream,
        sources: Sources,
        builders: Callable[[Target], Builder | None],
        options: BuildOptions,
        report: Report,
    ) -> None:
        self.settings = settings
        self.store = store
        self.upstream = upstream
        self.sources = sources
        self.builders = builders
        self.options = options
        self.report = report
        self._lock_pins: dict[NormalizedName, str] | None = None
        self._lock_guard = threading.Lock()
        self._scratch = tempfile.TemporaryDirectory(prefix="wheelhouse-")

    def close(self) -> None:
        self._scratch.cleanup()

    # -- the whole run ---------------------------------------------------------------------
    def run(self, reqs: RequirementSet, targets: Sequence[Target]) -> BuildSummary:
        summary = BuildSummary()
        if not reqs.fully_pinned:
            self._lock_pins = self._locked(reqs)
        for target in targets:
            summary.results.append(self._run_target(reqs, target))
        return summary

    def _cache_key(self, reqs: RequirementSet, target: Target) -> str:
        h = hashlib.sha256()
        for part in (
            __version__, reqs.digest(), target.identifier, json.dumps(self.sources.index_urls),
            json.dumps(self.sources.find_links),
            repr(sorted((k, repr(v)) for k, v in self.settings.packages.items())),
        ):
            h.update(part.encode() + b"\0")
        return "plan:" + h.hexdigest()

    def _run_target(self, reqs: RequirementSet, target: Target) -> TargetResult:
        key = self._cache_key(reqs, target)
        cached = self.store.cache_get(key)
        if cached and not self.options.upgrade:
            stored = [self.store.get(name) for name in cached["files"]]
            if all(stored):
                result = TargetResult(target=target, cached=True)
                for f in stored:
                    assert f is not None
                    pin = Pin(project=f.project, version=f.version, extras=frozenset(),
                              hashes=frozenset(), requested_by="(cached plan)")
                    step = Step(pin=pin, target=target, action=Action.PRESENT, stored=f)
                    result.outcomes.append(Outcome(step=step, status="present",
                                                   filename=f.filename))
                return result
        result = self._walk(reqs, target)
        if result.ok and not self.options.dry_run:
            files = sorted({o.filename for o in result.outcomes if o.filename})
            self.store.cache_put(key, {"files": files, "time": utc_now()})
        return result

    # -- the closure -----------------------------------------------------------------------
    def _walk(self, reqs: RequirementSet, target: Target) -> TargetResult:
        result = TargetResult(target=target)
        env = target.marker_environment()
        pins = {r.name: r for r in reqs.requirements if r.pinned_version}
        constraint_pins = {c.name: c.pinned_version for c in reqs.constraints if c.pinned_version}
        constraints = {c.name: c.requirement.specifier for c in reqs.constraints}
        chosen: dict[NormalizedName, Pin] = {}
        frontier: list[tuple[Requirement, str, frozenset[str]]] = []
        for top in reqs.requirements:
            if top.applies_to(env):
                frontier.append((top.requirement, top.source, top.hashes))
        while frontier:
            new: list[Pin] = []
            expanded: list[tuple[Pin, frozenset[str]]] = []
            for req, by, hashes in frontier:
                name = canonicalize_name(req.name)
                extras = frozenset(canonicalize_name(e) for e in req.extras)
                if name in chosen:
                    pin = chosen[name]
                    if not req.specifier.contains(pin.version, prereleases=True):
                        result.problems.append(
                            f"{name}=={pin.version} (from {pin.requested_by}) does not satisfy "
                            f"{req} (from {by}) on {target}"
                        )
                    if extras - pin.extras:
                        expanded.append((pin, extras - pin.extras))
                        chosen[name] = Pin(project=name, version=pin.version,
                                           extras=pin.extras | extras, hashes=pin.hashes,
                                           requested_by=pin.requested_by)
                    continue
                version = self._version_for(name, req, target, pins, constraint_pins,
                                            constraints, reqs, result)
                if version is None:
                    continue
                line = pins.get(name)
                pin = Pin(project=name, version=version, extras=extras,
                          hashes=line.hashes if line else hashes, requested_by=by)
                chosen[name] = pin
                new.append(pin)
            outcomes = self._execute(new, target)
            result.outcomes.extend(outcomes)
            frontier = []
            for outcome in outcomes:
                pin = outcome.step.pin
                if outcome.dependencies is None:
                    continue
                label = f"{pin.project}=={pin.version}"
                wanted = chosen[pin.project].extras
                for dep in dependencies_for(outcome.dependencies, target, wanted):
                    frontier.append((dep, label, frozenset()))
            for pin, more in expanded:
                earlier = next(
                    (o for o in result.outcomes if o.step.pin.project == pin.project), None)
                if earlier is not None and earlier.dependencies is not None:
                    deps = dependencies_for(earlier.dependencies, target, more)
                    label = f"{pin.project}[{','.join(sorted(more))}]=={pin.version}"
                    frontier.extend((d, label, frozenset()) for d in deps)
        return result

    def _version_for(
        self, name: NormalizedName, req: Requirement, target: Target,
        pins: Mapping[NormalizedName, RequirementLine],
        constraint_pins: Mapping[NormalizedName, str | None],
        constraints: Mapping[NormalizedName, SpecifierSet], reqs: RequirementSet,
        result: TargetResult,
    ) -> str | None:
        line = pins.get(name)
        if line is not None:
            return line.pinned_version
        if constraint_pins.get(name):
            return constraint_pins[name]
        locked = self._locked_version(name, reqs)
        if locked is not None and req.specifier.contains(locked, prereleases=True):
            return locked
        # Not in the lock: a marker that is false on the host, or an incomplete lockfile.
        spec = req.specifier & constraints[name] if name in constraints else req.specifier
        try:
            candidates = self.upstream.candidates(name)
        except UpstreamError as e:
            result.problems.append(str(e))
            return None
        version = newest_version(candidates, spec, target, prereleases=reqs.pre)
        if version is None:
            result.problems.append(f"no version of {name} satisfies {req} on {target}")
            return None
        self.report(f"  note: {name} is not pinned by the input for {target}; using {version}")
        return version

    def _locked_version(self, name: NormalizedName, reqs: RequirementSet) -> str | None:
        with self._lock_guard:
            if self._lock_pins is None:
                self._lock_pins = self._locked(reqs)
        return self._lock_pins.get(name)

    def _locked(self, reqs: RequirementSet) -> dict[NormalizedName, str]:
        key = "lock:" + hashlib.sha256(
            (reqs.digest() + json.dumps(self.sources.index_urls)
             + json.dumps(self.sources.find_links)).encode()).hexdigest()
        if not self.options.upgrade:
            cached = self.store.cache_get(key)
            if cached is not None:
                return {NormalizedName(k): v for k, v in cached.items()}
        self.report("  the requirements do not pin every dependency; locking them with "
                    "pip-compile")
        pins = lock(reqs, index_url=self.sources.index_url,
                    extra_index_urls=self.sources.extra_index_urls,
                    find_links=self.sources.find_links)
        if not self.options.dry_run:
            self.store.cache_put(key, pins)
        return pins

    # -- one level of steps ----------------------------------------------------------------
    def _execute(self, pins: list[Pin], target: Target) -> list[Outcome]:
        if not pins:
            return []
        with ThreadPoolExecutor(max_workers=max(1, self.settings.jobs)) as pool:
            return list(pool.map(lambda p: self._one(p, target), pins))

    def _one(self, pin: Pin, target: Target) -> Outcome:
        try:
            step = self._plan(pin, target)
            if self.options.dry_run:
                return self._dry(step)
            if step.action is Action.PRESENT:
                return self._present(step)
            if step.action is Action.FETCH:
                return self._fetch(step)
            if step.action is Action.BUILD:
                return self._build(step)
            self.report(f"  missing  {step.label} ({pin.requested_by}) for {target}: "
                        f"{step.reason}")
            return Outcome(step=step, status="missing", message=step.reason)
        except (UpstreamError, InvalidDistribution) as e:
            step = Step(pin=pin, target=target, action=Action.MISSING, reason=str(e))
            self.report(f"  error    {pin.project}=={pin.version} for {target}: {e}")
            return Outcome(step=step, status="failed", message=str(e))

    def _plan(self, pin: Pin, target: Target) -> Step:
        return choose(
            pin, target,
            stored=best_stored(self.store, pin.project, pin.version, target),
            candidates=lambda: self.upstream.candidates(pin.project),
            build_from_source=self.settings.package(pin.project).build_from_source,
        )

    def _deps_of_stored(self, filename: str) -> list[Requirement] | None:
        f = self.store.get(filename)
        if f is None or f.metadata_sha256 is None:
            return None
        return requires_dist(self.store.metadata_path(f).read_bytes())

    def _present(self, step: Step) -> Outcome:
        assert step.stored is not None
        return Outcome(step=step, status="present", filename=step.stored.filename,
                       dependencies=self._deps_of_stored(step.stored.filename))

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
        word = "fetched" if published.status is PublishStatus.PUBLISHED else "present"
        self.report(f"  {word:<8} {cand.filename}")
        return Outcome(step=step, status=word, filename=cand.filename,
                       dependencies=self._deps_of_stored(cand.filename))

    def _build(self, step: Step) -> Outcome:
        cand, pin, target = step.candidate, step.pin, step.target
        assert cand is not None
        builder = self.builders(target)
        if builder is None:
            msg = (f"{cand.filename} must be built for {target}, and no builder for that "
                   "target is available on this machine")
            self.report(f"  failed   {step.label} for {target}: {msg}")
            return Outcome(step=step, status="failed", message=msg)
        with tempfile.TemporaryDirectory(dir=self.store.tmp_dir(), prefix="build-") as tmp:
            work = Path(tmp)
            sdist = work / cand.filename
            sdist_sha = self._download(cand, pin, sdist)
            pkg = self.settings.package(pin.project)
            key = hashlib.sha256("|".join((
                pin.project, pin.version, target.identifier, sdist_sha, builder.identity(target),
                repr(pkg),
            )).encode()).hexdigest()
            failure = self.store.failure(key)
            if failure is not None and not self.options.retry_failed:
                msg = f"failed before with the same inputs: {failure.message}"
                self.report(f"  failed   {step.label} for {target} (not retried; "
                            f"--retry-failed to try again). Log: {failure.log}")
                return Outcome(step=step, status="failed", message=msg, log=failure.log)
            with self._exclusive(f"build:{pin.project}:{pin.version}:{target.identifier}"):
                # Another process may have built it while we waited for the lock.
                stored = best_stored(self.store, pin.project, pin.version, target)
                if stored is not None and not pkg.build_from_source:
                    return Outcome(step=step, status="present", filename=stored.filename,
                                   dependencies=self._deps_of_stored(stored.filename))
                return self._build_locked(step, builder, sdist, sdist_sha, key, work)

    def _build_locked(
        self, step: Step, builder: Builder, sdist: Path, sdist_sha: str, key: str, work: Path
    ) -> Outcome:
        pin, target = step.pin, step.target
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        log_name = f"{target.identifier}-{stamp}.log"
        log_path = self.store.log_dir(pin.project) / pin.version / log_name
        log_path.parent.mkdir(parents=True, exist_ok=True)
        rel_log = str(log_path.relative_to(self.store.root))
        self.report(f"  building {step.label} for {target} from {sdist.name} "
                    f"({step.reason}; {builder.name})")
        with log_path.open("w", encoding="utf-8") as log:
            log.write(f"# wheelhouse {__version__}: {sdist.name} for {target} with "
                      f"{builder.identity(target)}\n")
            try:
                built = builder.build(
                    sdist, target=target, settings=self.settings.package(pin.project),
                    work_dir=work, log=log, timeout=self.settings.build_timeout,
                )
            except BuildFailed as e:
                self.store.record_failure(Failure(
                    key=key, project=pin.project, version=pin.version,
                    target=target.identifier, message=str(e), log=rel_log, time=utc_now()))
                self.report(f"  failed   {step.label} for {target}: {e}. Log: {log_path}")
                return Outcome(step=step, status="failed", message=str(e), log=rel_log)
        provenance = {
            "sdist": sdist.name, "sdist_sha256": sdist_sha, "sdist_url": step.candidate.url
            if step.candidate else None, "builder": builder.identity(target),
            "target": target.identifier, "auditwheel": dict(built.report),
            "grafted": list(built.grafted), "seconds": round(built.seconds, 1), "log": rel_log,
        }
        try:
            published = self.store.publish(built.wheel, origin=Origin.BUILT, consume=True,
                                           provenance=provenance)
        except PublishConflict:
            # A concurrent builder published the same filename first: its wheel serves.
            self.report(f"  present  {built.wheel.name} (published by another build)")
            return Outcome(step=step, status="present", filename=built.wheel.name,
                           dependencies=self._deps_of_stored(built.wheel.name))
        self.store.clear_failure(key)
        grafted = f", grafted {len(built.grafted)} libraries" if built.grafted else ""
        self.report(f"  built    {published.file.filename} in {built.seconds:.0f} s{grafted}")
        return Outcome(step=step, status="built", filename=published.file.filename, log=rel_log,
                       dependencies=self._deps_of_stored(published.file.filename))

    @contextlib.contextmanager
    def _exclusive(self, key: str) -> Iterator[None]:
        with self.store.lock_path(key).open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- dry run ---------------------------------------------------------------------------
    def _dry(self, step: Step) -> Outcome:
        """Report the step; read dependencies without touching the store."""
        deps: list[Requirement] | None = None
        detail = ""
        if step.action is Action.PRESENT:
            assert step.stored is not None
            deps = self._deps_of_stored(step.stored.filename)
            detail = step.stored.filename
        elif step.action in (Action.FETCH, Action.BUILD):
            cand = step.candidate
            assert cand is not None
            scratch = Path(self._scratch.name) / cand.filename
            if not scratch.exists():
                self._download(cand, step.pin, scratch)
            if step.action is Action.FETCH:
                deps = requires_dist(read_wheel_metadata(scratch))
                detail = cand.filename
            else:
                static = sdist_static_metadata(scratch)
                deps = requires_dist(static) if static else None
                detail = f"{cand.filename} ({step.reason})"
                if deps is None:
                    detail += "; its dependencies are known only after the build"
        else:
            detail = step.reason
        self.report(f"  {step.action.value:<8} {step.label:<40} {detail}")
        return Outcome(step=step, status="planned", message=detail, dependencies=deps)


def make_pipeline(
    *, settings: Settings, store: Store, reqs: RequirementSet, options: BuildOptions,
    report: Report, builders: Callable[[Target], Builder | None] | None = None,
) -> Pipeline:
    sources = Sources.resolve(settings, reqs)
    upstream = Upstream(index_urls=sources.index_urls, find_links=sources.find_links)
    if builders is None:
        builders = default_builders(sources)
    return Pipeline(settings=settings, store=store, upstream=upstream, sources=sources,
                    builders=builders, options=options, report=report)


def default_builders(sources: Sources) -> Callable[[Target], Builder | None]:
    from wheelhouse.build.local import LocalBuilder, host_build_environment

    env = source_environment(sources.index_url, sources.extra_index_urls, sources.find_links,
                             base=host_build_environment())
    local = LocalBuilder(build_env=env)

    def pick(target: Target) -> Builder | None:
        return local if LocalBuilder.can_build(target) else None

    return pick

