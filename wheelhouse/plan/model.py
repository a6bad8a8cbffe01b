"""The plan as values: what must happen for each (pin, target), frozen so a whole run's plan
can be printed, compared and tested without a network."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName

from wheelhouse.ledger import Failure
from wheelhouse.store.model import StoredFile
from wheelhouse.targets import Target

if TYPE_CHECKING:  # the upstream client pulls in requests; a warm no-op run needs neither
    from wheelhouse.simple.pages import Candidate


class Action(StrEnum):
    #: a fitting file is already in the store.
    KEEP = "keep"
    #: a fitting wheel is upstream: copy it into the store.
    FETCH = "fetch"
    #: only an sdist: build it for the target.
    BUILD = "build"
    #: a build that failed before with the same inputs; not retried without --retry-failed.
    FAILED = "failed"
    #: no file fits and there is nothing to build from.
    MISSING = "missing"


@dataclass(frozen=True, kw_only=True)
class Pin:
    project: NormalizedName
    version: str
    extras: frozenset[str]
    #: allowed hashes from the requirements file (``sha256:<hex>``); empty = any.
    hashes: frozenset[str]
    #: where this pin came from: a requirements line or "X==1 (dependency)".
    requested_by: str

    @property
    def label(self) -> str:
        return f"{self.project}=={self.version}"


@dataclass(frozen=True, kw_only=True)
class Step:
    pin: Pin
    target: Target
    action: Action
    stored: StoredFile | None = None
    candidate: Candidate | None = None
    reason: str = ""
    #: the earlier failure, for Action.FAILED.
    failure: Failure | None = None
    #: MISSING because the upstream could not be read (not because nothing fits).
    upstream_failed: bool = False

    @property
    def label(self) -> str:
        return self.pin.label

    @property
    def filename(self) -> str | None:
        if self.stored is not None:
            return self.stored.filename
        return self.candidate.filename if self.candidate is not None else None

    def describe(self) -> str:
        """The detail shown for this step in a printed plan."""
        if self.action is Action.KEEP and self.stored is not None:
            return self.stored.filename
        if self.action is Action.FETCH and self.candidate is not None:
            return self.candidate.filename
        if self.action is Action.BUILD and self.candidate is not None:
            return f"{self.candidate.filename} ({self.reason})"
        if self.action is Action.FAILED and self.failure is not None:
            return (f"failed before with the same inputs: {self.failure.message} "
                    f"(log: {self.failure.log}; --retry-failed to try again)")
        return self.reason


@dataclass(frozen=True, kw_only=True)
class TargetPlan:
    """Every step one target needs, in the order the closure was walked."""

    target: Target
    steps: tuple[Step, ...]
    #: conflicts and unresolvable requirements, one sentence each.
    problems: tuple[str, ...] = ()
    #: remarks that are not failures (e.g. a version chosen for an unpinned dependency).
    notes: tuple[str, ...] = ()
    #: steps whose dependencies could not be known before building (dry runs).
    unexpanded: tuple[str, ...] = ()
    #: some problem is the upstream's failure to answer, not the pins'.
    upstream_failed: bool = False

    def count(self, action: Action) -> int:
        return sum(1 for s in self.steps if s.action is action)

    def render(self) -> list[str]:
        """The plan as lines, for ``--dry-run``."""
        lines = [f"{self.target}:"]
        lines += [f"  note     {n}" for n in self.notes]
        for step in self.steps:
            detail = step.describe()
            if step.label in self.unexpanded:
                detail += ("; its dependencies are known only after the build"
                           if step.action is Action.BUILD else
                           "; its dependencies cannot be read without downloading it")
            lines.append(f"  {step.action.value:<8} {step.label:<40} {detail}")
        lines += [f"  problem  {p}" for p in self.problems]
        return lines


@dataclass(frozen=True, kw_only=True)
class Plan:
    """The plan of a whole run: one TargetPlan per target, in the order targets were named."""

    targets: tuple[TargetPlan, ...]

    def render(self) -> list[str]:
        return [line for t in self.targets for line in t.render()]
