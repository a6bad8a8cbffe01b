"""What the store alone can install: each target's closure walked by the resolver with views
of the store only (no index, no builds), for ``wheelhouse check`` and ``wheelhouse lock``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from packaging.utils import NormalizedName, canonicalize_name

from wheelhouse.execute.outcome import Outcome, Status, drive
from wheelhouse.ledger import Failure
from wheelhouse.plan.choose import best_stored
from wheelhouse.plan.model import Action, Step
from wheelhouse.plan.resolver import Resolver, Views, requires_dist
from wheelhouse.requirements import RequirementSet
from wheelhouse.settings import Settings
from wheelhouse.simple.pages import Candidate, candidate_from
from wheelhouse.store.model import Kind, StoredFile
from wheelhouse.store.protocols import StoreReader
from wheelhouse.targets import Target


@dataclass(frozen=True, kw_only=True)
class Missing:
    """A pin of the closure that the store cannot install on a target, and why."""

    label: str
    requested_by: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Installable:
    """One target's closure as the store alone serves it."""

    target: Target
    #: the store's file for each pin it can install, in the order the closure was walked.
    files: tuple[StoredFile, ...]
    missing: tuple[Missing, ...]
    #: conflicts and unresolvable requirements (no version in the store satisfies ...).
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.problems


def store_views(store: StoreReader, settings: Settings) -> Views:
    """The resolver's views of the store alone: its wheels are kept; its files stand in for
    the index, so unpinned names get the newest stored version and a missing wheel is told
    apart from a missing release."""

    def candidates(name: NormalizedName) -> Sequence[Candidate]:
        out = []
        for f in store.files(name):
            cand = candidate_from(f.filename, store.file_url(f), sha256=f.sha256,
                                  requires_python=f.requires_python, yanked=f.yanked,
                                  source=store.location)
            if cand is not None:
                out.append(cand)
        return out

    return Views(
        stored=lambda name, version, target: best_stored(store, name, version, target),
        candidates=candidates,
        build_from_source=lambda name: settings.package(name).build_from_source,
    )


def installable(reqs: RequirementSet, target: Target, store: StoreReader,
                settings: Settings, failures: Sequence[Failure] = ()) -> Installable:
    """Walk ``target``'s closure of ``reqs`` with the store's views; dependencies are read
    from the stored wheels' METADATA. ``failures``: the ledger's, so a pin whose build failed
    is said to be that, not merely absent."""
    failed = {(canonicalize_name(f.project), f.version, f.target): f for f in failures}

    def step(s: Step) -> Outcome:
        if s.action is Action.KEEP and s.stored is not None:
            metadata = store.read_metadata(s.stored)
            deps = tuple(requires_dist(metadata)) if metadata is not None else None
            return Outcome(step=s, status=Status.PRESENT, filename=s.stored.filename,
                           dependencies=deps)
        failure = failed.get((canonicalize_name(s.pin.project), s.pin.version,
                              target.identifier))
        if failure is not None:
            log = f"; log: {failure.log}" if failure.log else ""
            return Outcome(step=s, status=Status.MISSING, message=(
                f"its build failed: {failure.message}{log}"))
        return Outcome(step=s, status=Status.MISSING, message=_why(s))

    plan, outcomes = drive(Resolver(reqs, target, store_views(store, settings), build=False),
                           step, jobs=1)
    files = [o.step.stored for o in outcomes if o.status is Status.PRESENT and o.step.stored]
    missing = [Missing(label=o.step.label, requested_by=o.step.pin.requested_by,
                       reason=o.message) for o in outcomes if o.status is Status.MISSING]
    return Installable(target=target, files=tuple(files), missing=tuple(missing),
                       problems=plan.problems)


def _why(step: Step) -> str:
    if step.candidate is not None and step.candidate.kind is Kind.SDIST:
        return "the store has its sdist but no wheel for this target"
    if step.action is Action.FETCH:  # build-from-source, and only the upstream wheel stored
        return "build-from-source is set, and the store has only the upstream wheel"
    reason = step.reason
    if reason.startswith("build dependency") or reason.startswith("no files for"):
        return "not in the store"
    return reason.replace("on the index", "in the store")
