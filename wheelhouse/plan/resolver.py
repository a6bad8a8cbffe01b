"""The resolver: the closure one target needs, walked with that target's markers.

It only decides. It reads the store, the upstream's candidates and the ledger through
read-only ``Views``, hands out frozen ``Step``s a level at a time, and takes back only each
step's dependencies (from the wheel that was kept, fetched or built, or from metadata alone in
a dry run). Whoever drives it does the fetching and building. Build requirements are resolved
by the same class with ``build=False``: a sub-resolve for the target whose steps only fetch.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from email.parser import BytesParser
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from wheelhouse.errors import UpstreamError
from wheelhouse.ledger import Failure
from wheelhouse.plan.choose import choose, newest_version
from wheelhouse.plan.model import Action, Pin, Step, TargetPlan
from wheelhouse.requirements import RequirementLine, RequirementSet
from wheelhouse.store.model import StoredFile
from wheelhouse.targets import Target

if TYPE_CHECKING:
    from wheelhouse.simple.pages import Candidate

#: dependencies of a step's distribution; None when they cannot be known (nothing to read).
Dependencies = Sequence[Requirement] | None


def _no_failure(step: Step) -> Failure | None:
    return None


def _no_source(name: str) -> bool:
    return False


@dataclass(frozen=True, kw_only=True)
class Views:
    """What the resolver may read, all of it read-only."""

    #: the store's best wheel for (project, version) on a target.
    stored: Callable[[NormalizedName, str, Target], StoredFile | None]
    #: every file the upstream offers for a project (may raise UpstreamError).
    candidates: Callable[[NormalizedName], Sequence[Candidate]]
    #: the recorded failure of the build a BUILD step would run, if any.
    failed_before: Callable[[Step], Failure | None] = _no_failure
    #: whether a project must be built even where an upstream wheel fits.
    build_from_source: Callable[[str], bool] = _no_source
    #: versions from a lock of the whole input, used wherever they satisfy the requirement.
    preferred: Mapping[NormalizedName, str] = field(default_factory=dict)


_Wanted = tuple[Requirement, str, frozenset[str]]


class Resolver:
    """Walks one target's closure level by level::

        batch = resolver.first()
        while batch:
            batch = resolver.next({s.pin.project: dependencies_of(s) for s in batch})
        plan = resolver.plan()
    """

    def __init__(self, reqs: RequirementSet, target: Target, views: Views, *,
                 build: bool = True) -> None:
        self.reqs = reqs
        self.target = target
        self.views = views
        self.build = build
        self._env = target.marker_environment()
        self._pinned: dict[NormalizedName, RequirementLine] = {
            r.name: r for r in reqs.requirements if r.pinned_version}
        self._constraint_pins = {c.name: c.pinned_version for c in reqs.constraints
                                 if c.pinned_version}
        self._constraints: dict[NormalizedName, SpecifierSet] = {}
        for c in reqs.constraints:  # several constraints on one name all apply
            self._constraints[c.name] = (self._constraints.get(c.name, SpecifierSet())
                                         & c.requirement.specifier)
        self._chosen: dict[NormalizedName, Pin] = {}
        self._steps: list[Step] = []
        self._batch: tuple[Step, ...] = ()
        self._known: dict[NormalizedName, Sequence[Requirement]] = {}
        self._carry: list[_Wanted] = []
        self._problems: list[str] = []
        self._upstream_failed = False
        self._notes: list[str] = []
        self._unexpanded: list[str] = []

    def first(self) -> tuple[Step, ...]:
        wanted = [(top.requirement, top.source, top.hashes) for top in self.reqs.requirements
                  if top.applies_to(self._env)]
        return self._expand(wanted)

    def next(self, dependencies: Mapping[NormalizedName, Dependencies]) -> tuple[Step, ...]:
        """Take the dependencies of the last batch's steps; return the next batch."""
        wanted: list[_Wanted] = []
        for step in self._batch:
            name = step.pin.project
            deps = dependencies.get(name)
            if deps is None:
                if step.action in (Action.BUILD, Action.FETCH):
                    self._unexpanded.append(step.label)
                continue
            self._known[name] = deps
            label = step.pin.label
            for dep in dependencies_for(deps, self.target, self._chosen[name].extras):
                wanted.append((dep, label, frozenset()))
        wanted += self._carry
        self._carry = []
        return self._expand(wanted)

    def plan(self) -> TargetPlan:
        return TargetPlan(target=self.target, steps=tuple(self._steps),
                          problems=tuple(self._problems), notes=tuple(self._notes),
                          unexpanded=tuple(self._unexpanded),
                          upstream_failed=self._upstream_failed
                          or any(s.upstream_failed for s in self._steps))

    # -- one level -------------------------------------------------------------------------
    def _expand(self, wanted: Iterable[_Wanted]) -> tuple[Step, ...]:
        batch: list[Step] = []
        for req, by, hashes in wanted:
            name = canonicalize_name(req.name)
            extras = frozenset(canonicalize_name(e) for e in req.extras)
            pin = self._chosen.get(name)
            if pin is not None:
                self._check_again(pin, req, by)
                if extras - pin.extras:
                    self._add_extras(pin, extras)
                continue
            version = self._version_for(name, req)
            if version is None:
                continue
            line = self._pinned.get(name)
            if line is not None and not req.specifier.contains(version, prereleases=True):
                # Two pins of one name: the input contradicts itself.
                self._problems.append(
                    f"{name}=={version} (from {line.source}) does not satisfy {req} "
                    f"(from {by}) on {self.target}")
            pin = Pin(project=name, version=version, extras=extras,
                      hashes=line.hashes if line else hashes, requested_by=by)
            self._chosen[name] = pin
            step = self._decide(pin)
            self._steps.append(step)
            batch.append(step)
        self._batch = tuple(batch)
        return self._batch

    def _check_again(self, pin: Pin, req: Requirement, by: str) -> None:
        if not req.specifier.contains(pin.version, prereleases=True):
            self._problems.append(
                f"{pin.project}=={pin.version} (from {pin.requested_by}) does not satisfy "
                f"{req} (from {by}) on {self.target}")

    def _add_extras(self, pin: Pin, extras: frozenset[str]) -> None:
        more = extras - pin.extras
        self._chosen[pin.project] = replace(pin, extras=pin.extras | extras)
        known = self._known.get(pin.project)
        if known is not None:  # already expanded: walk what the new extras add
            label = f"{pin.project}[{','.join(sorted(more))}]=={pin.version}"
            self._carry += [(d, label, frozenset())
                            for d in dependencies_for(known, self.target, more)]

    def _decide(self, pin: Pin) -> Step:
        try:
            step = choose(
                pin, self.target,
                stored=self.views.stored(pin.project, pin.version, self.target),
                candidates=lambda: self.views.candidates(pin.project),
                build_from_source=self.views.build_from_source(pin.project),
            )
        except UpstreamError as e:
            return Step(pin=pin, target=self.target, action=Action.MISSING, reason=str(e),
                        upstream_failed=True)
        if step.action is not Action.BUILD:
            return step
        if not self.build:
            return replace(step, action=Action.MISSING, reason=(
                f"build dependency {pin.label} has no wheel for {self.target}; build "
                "dependencies are not built from source"))
        failure = self.views.failed_before(step)
        if failure is not None:
            return replace(step, action=Action.FAILED, failure=failure)
        return step

    def _version_for(self, name: NormalizedName, req: Requirement) -> str | None:
        line = self._pinned.get(name)
        if line is not None:
            return line.pinned_version
        if self._constraint_pins.get(name):
            return self._constraint_pins[name]
        spec: SpecifierSet = req.specifier
        if name in self._constraints:
            spec = spec & self._constraints[name]
        preferred = self.views.preferred.get(name)
        if preferred is not None and spec.contains(preferred, prereleases=True):
            return preferred
        # Not in the lock: a marker that is false on the host, or an incomplete lockfile.
        try:
            candidates = self.views.candidates(name)
        except UpstreamError as e:
            self._problems.append(str(e))
            self._upstream_failed = True
            return None
        version = newest_version(candidates, spec, self.target, prereleases=self.reqs.pre)
        if version is None:
            self._problems.append(f"no version of {name} satisfies {req} on {self.target}")
            return None
        if self.build:
            self._notes.append(f"{name} is not pinned by the input for {self.target}; "
                               f"using {version}")
        return version


# -- dependencies from metadata --------------------------------------------------------------

def requires_dist(metadata: bytes) -> list[Requirement]:
    headers = BytesParser().parsebytes(metadata, headersonly=True)
    out = []
    for value in headers.get_all("Requires-Dist") or []:
        try:
            out.append(Requirement(value))
        except InvalidRequirement:
            continue  # installers skip what they cannot parse; so do we
    return out


def dependencies_for(
    requirements: Iterable[Requirement], target: Target, extras: Collection[str]
) -> list[Requirement]:
    """The requirements that apply on ``target`` when ``extras`` of the project are wanted."""
    env = target.marker_environment()
    wanted = {""} | {canonicalize_name(e) for e in extras}
    out = []
    for req in requirements:
        if req.marker is None or any(req.marker.evaluate(env | {"extra": e}) for e in wanted):
            out.append(req)
    return out


def requirement_set(requires: Iterable[str], source: str, *,
                    constraints: Iterable[str] = ()) -> RequirementSet:
    """Build requirements (``[build-system] requires``) as a RequirementSet to resolve,
    bounded by ``constraints`` (the package's ``build-constraints``)."""
    return RequirementSet(
        requirements=tuple(RequirementLine(requirement=Requirement(r), source=source)
                           for r in requires),
        constraints=tuple(RequirementLine(requirement=Requirement(c), source="build-constraints")
                          for c in constraints))
