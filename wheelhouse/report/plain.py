"""Plain lines: one per event as it happens, then a summary per target (or the plan, for a dry
run). What a pipe, a CI log or a test reads; no control codes, ever."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from wheelhouse.execute.outcome import Outcome, Status
from wheelhouse.execute.results import RunResult, TargetResult
from wheelhouse.plan.model import Action, Step

Echo = Callable[..., None]


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 pin``, ``2 pins``; ``many`` for words that do not just take an s."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def event_line(outcome: Outcome, root: Path) -> str | None:
    """The one line an outcome gets as it happens, or None for a quiet keep."""
    step = outcome.step
    where = f"{step.label} for {step.target}"
    if outcome.status is Status.FETCHED:
        return f"  fetched  {outcome.filename}"
    if outcome.status is Status.PRESENT and outcome.message:
        return f"  cached   {outcome.filename} ({outcome.message})"
    if outcome.status is Status.BUILT:
        grafted = f", {outcome.message}" if outcome.message else ""
        return f"  built    {outcome.filename} in {outcome.seconds:.0f} s{grafted}"
    if outcome.status is Status.MISSING:
        return f"  missing  {step.label} ({step.pin.requested_by}) for {step.target}: " \
               f"{outcome.message}"
    if outcome.status is Status.FAILED:
        log = f". Log: {root / outcome.log}" if outcome.log else ""
        if step.action is Action.FAILED or outcome.message.startswith("failed before"):
            return f"  failed   {where} (not retried; --retry-failed to try again){log}"
        return f"  failed   {where}: {outcome.message}{log}"
    return None


def detail_lines(outcome: Outcome) -> list[str]:
    """Under a failure's line: the log lines that say why, and the fix."""
    if outcome.status is not Status.FAILED:
        return []
    lines = [f"           {cause}" for cause in outcome.cause]
    if outcome.hint:
        lines.append(f"           hint: {outcome.hint}")
    return lines


class PlainProgress:
    """Plain lines, one per event: fit for a terminal, a pipe or a CI log alike."""

    def __init__(self, echo: Echo, *, ledger_root: Path) -> None:
        self.echo = echo
        self.root = ledger_root

    def queued(self, steps: Sequence[Step]) -> None:
        """Plain output has no running count to keep."""

    def started(self, step: Step, how: str) -> None:
        cand = step.candidate
        source = f" from {cand.filename}" if cand is not None else ""
        self.echo(f"  building {step.label} for {step.target}{source} ({step.reason}; {how})")

    def finished(self, outcome: Outcome) -> None:
        line = self.line(outcome)
        if line:
            self.echo(line)
        for detail in detail_lines(outcome):
            self.echo(detail)

    def line(self, outcome: Outcome) -> str | None:
        return event_line(outcome, self.root)


def nothing_to_do(count: int) -> str:
    files = "the 1 file is" if count == 1 else f"all {count} files are"
    return f"nothing to do: {files} in the store (no downloads, no builds)"


def failed_count(target: TargetResult) -> int:
    return target.count(Status.FAILED) + target.count(Status.MISSING)


def print_summary(result: RunResult, *, dry_run: bool, echo: Echo) -> None:
    for note in result.notes:
        echo(f"note: {note}")
    for target in result.results:
        if target.cached:
            echo(f"{target.target}: {nothing_to_do(len(target.outcomes))}")
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
        failed = failed_count(target)
        if not fetched and not built and not failed:
            echo(f"{target.target}: {nothing_to_do(present)}")
        else:
            echo(f"{target.target}: {fetched} fetched, {built} built, {present} cached, "
                 f"{failed} failed")
    phases = None if dry_run else phase_line(result)
    if phases:
        echo(phases)


#: the phases of a build, in the order they happen.
PHASES = ("download", "wait", "requirements", "setup", "build", "repair", "check", "publish")


def phase_line(result: RunResult) -> str | None:
    """Where the builds' time went, summed over every build of the run; None if none ran."""
    totals: dict[str, float] = {}
    for target in result.results:
        for o in target.outcomes:
            for phase, seconds in o.phases.items():
                totals[phase] = totals.get(phase, 0.0) + seconds
    if not totals:
        return None
    order = [p for p in PHASES if p in totals] + sorted(set(totals) - set(PHASES))
    return "build time by phase: " + ", ".join(f"{p} {totals[p]:.1f} s" for p in order)


def failures(result: RunResult) -> list[Outcome]:
    return [o for r in result.results for o in r.outcomes
            if o.status in (Status.FAILED, Status.MISSING)]


def print_failures(result: RunResult, *, root: Path, echo: Echo) -> None:
    """Every failed pin once more at the end, where a person looks: what, why, the fix."""
    failed = failures(result)
    if not failed:
        return
    echo(f"\n{plural(len(failed), 'pin')} failed:")
    for o in failed:
        echo(f"  {o.step.label} for {o.step.target}: {o.message}")
        for cause in o.cause[:2]:
            echo(f"      {cause}")
        if o.hint:
            echo(f"      hint: {o.hint}")
        if o.log:
            echo(f"      log: {root / o.log}")
