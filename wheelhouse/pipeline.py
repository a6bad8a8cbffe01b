"""``wheelhouse build``: requirements → plan → build → repair → store, for every target.

For each target the closure is walked breadth-first with the target's own markers: each level's
pins are planned (``wheelhouse.plan.choose``), then fetched or built in parallel, and the
dependencies read from the resulting wheels' METADATA form the next level. A run whose inputs
are unchanged and whose files are all still in the store is answered from a cached result
without touching the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from wheelhouse import __version__
from wheelhouse.build import Builder, BuildFailed
from wheelhouse.config import Settings
from wheelhouse.errors import (
    EngineError,
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
    build_requirements,
    choose,
    dependencies_for,
    newest_version,
    requires_dist,
    sdist_static_metadata,
)
from wheelhouse.requirements import RequirementLine, RequirementSet
from wheelhouse.store import (
    Failure,
    Origin,
    PublishStatus,
    Store,
    file_lock,
    read_wheel_metadata,
    utc_now,
)
from wheelhouse.targets import Target

if TYPE_CHECKING:  # requests is imported only when the upstream is actually needed
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
        upstream: Callable[[], Upstream],
        sources: Sources,
        builders: Callable[[Target], Builder | None],
        options: BuildOptions,
        report: Report,
    ) -> None:
        self.settings = settings
        self.store = store
        self._upstream_factory = upstream
        self._upstream: Upstream | None = None
        self.sources = sources
        self.builders = builders
        self.options = options
        self.report = report
        self._lock_pins: dict[NormalizedName, str] | None = None
        self._lock_guard = threading.Lock()
        self._upstream_guard = threading.Lock()
        self._scratch = tempfile.TemporaryDirectory(prefix="wheelhouse-")

    @property
    def upstream(self) -> Upstream:
        """Created on first use, so a run answered from the store opens no connection."""
        with self._upstream_guard:
            if self._upstream is None:
                self._upstream = self._upstream_factory()
            return self._upstream

    def close(self) -> None:
        self._scratch.cleanup()
        closer = getattr(self.builders, "close", None)
        if closer is not None:
            closer()

    # -- the whole run ---------------------------------------------------------------------
    def run(self, reqs: RequirementSet, targets: Sequence[Target]) -> BuildSummary:
        summary = BuildSummary()
        if not reqs.fully_pinned:
            self._lock_pins = self._locked(reqs)
        # Targets run side by side (each in its own container, where they need one).
        with ThreadPoolExecutor(max_workers=max(1, min(self.settings.jobs, len(targets)))) as pool:
            summary.results.extend(pool.map(lambda t: self._run_target(reqs, t), targets))
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
    def _walk(self, reqs: RequirementSet, target: Target, *, build_deps_of: str | None = None
              ) -> TargetResult:
        """Walk and realise the closure of ``reqs`` on ``target``.

        With ``build_deps_of`` the requirements are an sdist's build requirements: versions
        are chosen greedily (no pip-compile), and nothing is built, only fetched.
        """
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
                                            constraints, reqs, result,
                                            lock_missing=build_deps_of is None)
                if version is None:
                    continue
                line = pins.get(name)
                pin = Pin(project=name, version=version, extras=extras,
                          hashes=line.hashes if line else hashes, requested_by=by)
                chosen[name] = pin
                new.append(pin)
            outcomes = self._execute(new, target, allow_build=build_deps_of is None)
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
        result: TargetResult, *, lock_missing: bool = True,
    ) -> str | None:
        line = pins.get(name)
        if line is not None:
            return line.pinned_version
        if constraint_pins.get(name):
            return constraint_pins[name]
        locked = self._locked_version(name, reqs) if lock_missing else None
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
        if lock_missing:
            self.report(f"  note: {name} is not pinned by the input for {target}; "
                        f"using {version}")
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
    def _execute(self, pins: list[Pin], target: Target, *, allow_build: bool = True
                 ) -> list[Outcome]:
        if not pins:
            return []
        with ThreadPoolExecutor(max_workers=max(1, self.settings.jobs)) as pool:
            return list(pool.map(lambda p: self._one(p, target, allow_build), pins))

    def _one(self, pin: Pin, target: Target, allow_build: bool = True) -> Outcome:
        try:
            step = self._plan(pin, target)
            if self.options.dry_run:
                return self._dry(step)
            if step.action is Action.PRESENT:
                return self._present(step)
            if step.action is Action.FETCH:
                return self._fetch(step)
            if step.action is Action.BUILD and allow_build:
                return self._build(step)
            if step.action is Action.BUILD:
                msg = (f"build dependency {step.label} has no wheel for {target}; build "
                       "dependencies are not built from source")
                self.report(f"  failed   {msg}")
                return Outcome(step=step, status="failed", message=msg)
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
        if word == "fetched":  # an identical file another target fetched first says nothing
            self.report(f"  {word:<8} {cand.filename}")
        return Outcome(step=step, status=word, filename=cand.filename,
                       dependencies=self._deps_of_stored(cand.filename))

    def _build(self, step: Step) -> Outcome:
        cand, target = step.candidate, step.target
        assert cand is not None
        builder = self.builders(target)
        if builder is None:
            msg = (f"{cand.filename} must be built for {target}, and no builder for that "
                   "target is available on this machine")
            self.report(f"  failed   {step.label} for {target}: {msg}")
            return Outcome(step=step, status="failed", message=msg)
        try:
            return self._build_with(step, builder)
        except EngineError as e:
            # The machine's fault, not the sdist's: reported, never recorded as a failure.
            msg = f"{e.message} (hint: {e.hint})" if e.hint else e.message
            self.report(f"  failed   {step.label} for {target}: {msg}")
            return Outcome(step=step, status="failed", message=msg)

    def _build_with(self, step: Step, builder: Builder) -> Outcome:
        cand, pin, target = step.candidate, step.pin, step.target
        assert cand is not None
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
            with file_lock(self.store.lock_path(
                    f"build:{pin.project}:{pin.version}:{target.identifier}")):
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
                    f"({step.reason}; {builder.describe(target)})")
        with log_path.open("w", encoding="utf-8") as log:
            log.write(f"# wheelhouse {__version__}: {sdist.name} for {target} with "
                      f"{builder.identity(target)}\n")
            try:
                deps = self._build_dependencies(sdist, target, work) if builder.hermetic else None
                built = builder.build(
                    sdist, target=target, settings=self.settings.package(pin.project),
                    work_dir=work, log=log, timeout=self.settings.build_timeout,
                    build_deps=deps,
                )
            except BuildFailed as e:
                log.write(f"\n# wheelhouse: the build failed: {e}\n")
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

    def _build_dependencies(self, sdist: Path, target: Target, work: Path) -> Path:
        """Wheels for the sdist's build requirements on ``target``, from our own store.

        They are fetched into the store like any pin, so a builder with no network can
        install them from a directory, and the store keeps what every build used.
        """
        requires = build_requirements(sdist)
        lines = tuple(
            RequirementLine(requirement=Requirement(r), source=f"{sdist.name} build-system")
            for r in requires
        )
        result = self._walk(RequirementSet(requirements=lines), target,
                            build_deps_of=sdist.name)
        if not result.ok:
            why = "; ".join(result.problems + [o.message for o in result.outcomes
                                               if o.status in ("failed", "missing")])
            raise BuildFailed(f"the build requirements of {sdist.name} cannot be met: {why}")
        deps = work / "build-deps"
        deps.mkdir(exist_ok=True)
        for outcome in result.outcomes:
            f = self.store.get(outcome.filename) if outcome.filename else None
            if f is not None:
                os.link(self.store.file_path(f), deps / f.filename)
        return deps

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

    def upstream() -> Upstream:
        from wheelhouse.upstream import Upstream

        return Upstream(index_urls=sources.index_urls, find_links=sources.find_links)

    if builders is None:
        builders = Builders(settings, sources)
    return Pipeline(settings=settings, store=store, upstream=upstream, sources=sources,
                    builders=builders, options=options, report=report)


class Builders:
    """Which builder serves a target: an image configured for its platform → that container;
    else this machine when it is the target's platform; else the family's default image."""

    def __init__(self, settings: Settings, sources: Sources) -> None:
        from wheelhouse.build.local import LocalBuilder, host_build_environment

        env = source_environment(sources.index_url, sources.extra_index_urls,
                                 sources.find_links, base=host_build_environment())
        self.local = LocalBuilder(build_env=env)
        self.settings = settings
        self.sources = sources
        self._container: Builder | None = None

    def container(self) -> Builder:
        if self._container is None:
            from wheelhouse.build.container import (
                ContainerBuilder,
                ContainerOptions,
                passthrough_environment,
            )

            s = self.settings
            options = ContainerOptions(
                engine=s.engine, network=s.builder_network, memory=s.builder_memory,
                cpus=s.builder_cpus, ca_bundle=s.ca_bundle,
                index_url=self.sources.index_url if s.builder_network == "host" else None,
                passthrough_env=passthrough_environment(),
            )
            self._container = ContainerBuilder(images=self.images(), options=options)
        return self._container

    def images(self) -> dict[str, str]:
        from wheelhouse.targets import ARCHS, FAMILIES

        defaults = {f"{fam}_{arch}": info.default_image.format(arch=arch)
                    for fam, info in FAMILIES.items() for arch in ARCHS}
        return defaults | dict(self.settings.images)

    def __call__(self, target: Target) -> Builder | None:
        from wheelhouse.build.local import LocalBuilder

        if target.platform not in self.settings.images and LocalBuilder.can_build(target):
            return self.local
        return self.container()

    def describe(self, target: Target) -> str:
        builder = self(target)
        return builder.describe(target) if builder is not None else "no builder"

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
