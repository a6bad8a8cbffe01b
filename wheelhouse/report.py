"""What a person reads while ``wheelhouse build`` runs and when it ends: one line per event as
it happens, then a summary per target (or the plan, for a dry run)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from wheelhouse.execute import Outcome, Status
from wheelhouse.pipeline import RunResult
from wheelhouse.plan import Action, Step

Echo = Callable[..., None]


class PlainProgress:
    """Plain lines, one per event: fit for a terminal, a pipe or a CI log alike."""

    def __init__(self, echo: Echo, *, ledger_root: Path) -> None:
        self.echo = echo
        self.root = ledger_root

    def started(self, step: Step, how: str) -> None:
        cand = step.candidate
        source = f" from {cand.filename}" if cand is not None else ""
        self.echo(f"  building {step.label} for {step.target}{source} ({step.reason}; {how})")

    def finished(self, outcome: Outcome) -> None:
        line = self.line(outcome)
        if line:
            self.echo(line)
        if outcome.status is Status.FAILED:
            for cause in outcome.cause:
                self.echo(f"           {cause}")
            if outcome.hint:
                self.echo(f"           hint: {outcome.hint}")

    def line(self, outcome: Outcome) -> str | None:
        step = outcome.step
        where = f"{step.label} for {step.target}"
        if outcome.status is Status.FETCHED:
            return f"  fetched  {outcome.filename}"
        if outcome.status is Status.PRESENT and outcome.message:
            return f"  present  {outcome.filename} ({outcome.message})"
        if outcome.status is Status.BUILT:
            grafted = f", {outcome.message}" if outcome.message else ""
            return f"  built    {outcome.filename} in {outcome.seconds:.0f} s{grafted}"
        if outcome.status is Status.MISSING:
            return f"  missing  {step.label} ({step.pin.requested_by}) for {step.target}: " \
                   f"{outcome.message}"
        if outcome.status is Status.FAILED:
            log = f". Log: {self.root / outcome.log}" if outcome.log else ""
            if step.action is Action.FAILED or outcome.message.startswith("failed before"):
                return f"  failed   {where} (not retried; --retry-failed to try again){log}"
            return f"  failed   {where}: {outcome.message}{log}"
        return None


def print_summary(result: RunResult, *, dry_run: bool, echo: Echo) -> None:
    for note in result.notes:
        echo(f"note: {note}")
    for target in result.results:
        if target.cached:
            echo(f"{target.target}: nothing to do: all {len(target.outcomes)} files are in the "
                 "store (no downloads, no builds)")
            continue
        plan = target.plan
        if dry_run and plan is not None:
            for line in plan.render():
                echo(line)
            continue
        for note in plan.notes if plan is not None else ():
            echo(f"  note: {note}")
        for problem in target.problems:
            echo(f"  problem  {problem}", err=True)
        present, fetched, built = (target.count(s) for s in
                                   (Status.PRESENT, Status.FETCHED, Status.BUILT))
        failed = target.count(Status.FAILED) + target.count(Status.MISSING)
        if not fetched and not built and not failed:
            echo(f"{target.target}: nothing to do: all {present} files are in the store "
                 "(no downloads, no builds)")
        else:
            echo(f"{target.target}: {fetched} fetched, {built} built, {present} already "
                 f"present, {failed} failed")


def print_failures(result: RunResult, *, root: Path, echo: Echo) -> None:
    """Every failed pin once more at the end, where a person looks: what, why, the fix."""
    failed = [o for r in result.results for o in r.outcomes
              if o.status in (Status.FAILED, Status.MISSING)]
    if not failed:
        return
    echo(f"\n{len(failed)} {'pin' if len(failed) == 1 else 'pins'} failed:")
    for o in failed:
        echo(f"  {o.step.label} for {o.step.target}: {o.message}")
        for cause in o.cause[:2]:
            echo(f"      {cause}")
        if o.hint:
            echo(f"      hint: {o.hint}")
        if o.log:
            echo(f"      log: {root / o.log}")
