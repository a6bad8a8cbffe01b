"""What a run came to, as values: each target's outcomes and plan (``TargetResult``) and the
whole run with its remarks (``RunResult``). The pipeline builds them once per target and once
per run; ``wheelhouse.report`` reads them."""

from __future__ import annotations

from dataclasses import dataclass

from wheelhouse.execute.outcome import Outcome, Status
from wheelhouse.plan.model import TargetPlan
from wheelhouse.targets import Target


@dataclass(frozen=True, kw_only=True)
class TargetResult:
    target: Target
    outcomes: tuple[Outcome, ...] = ()
    #: None when the target was answered from the plan cache.
    plan: TargetPlan | None = None
    cached: bool = False

    @property
    def problems(self) -> tuple[str, ...]:
        return self.plan.problems if self.plan is not None else ()

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status is status)

    @property
    def ok(self) -> bool:
        return not self.problems and not any(
            o.status in (Status.FAILED, Status.MISSING) for o in self.outcomes)


@dataclass(frozen=True, kw_only=True)
class RunResult:
    results: tuple[TargetResult, ...] = ()
    #: remarks about the whole run (not one target), for the summary.
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def count(self, status: Status) -> int:
        return sum(r.count(status) for r in self.results)

    @property
    def filenames(self) -> list[str]:
        return sorted({o.filename for r in self.results for o in r.outcomes if o.filename})
