"""Where ``wheelhouse build`` speaks: live progress and a table on a terminal, plain lines in a
pipe or CI; at the end, the summary, the ``--report`` files and GitHub's step summary."""

from __future__ import annotations

import contextlib
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from wheelhouse.errors import (
    BuildError,
    EngineError,
    ResolutionError,
    UpstreamError,
    WheelhouseError,
)
from wheelhouse.execute.outcome import Progress, Status
from wheelhouse.execute.results import RunResult
from wheelhouse.report.live import LiveProgress, Paint, Terminal, terminal_width
from wheelhouse.report.model import BuildReport, Lookup
from wheelhouse.report.plain import (
    Echo,
    PlainProgress,
    phase_line,
    plural,
    print_failures,
    print_summary,
)


class BuildOutput:
    def __init__(self, *, echo: Echo, stream: TextIO, environ: Mapping[str, str], root: Path,
                 dry_run: bool, reports: Sequence[Path] = (), store: str | None = None) -> None:
        self.echo = echo
        self.stream = stream
        self.root = root
        self.store = store
        self.dry_run = dry_run
        self.reports = tuple(reports)
        summary = environ.get("GITHUB_STEP_SUMMARY", "")
        self.step_summary = Path(summary) if summary else None
        # A dry run only plans: nothing builds, so there is nothing to watch.
        self.terminal = Terminal.detect(stream, environ)
        self.live = self.terminal.live and not dry_run
        self.began = time.monotonic()
        if self.reports:
            from wheelhouse.report.files import check_report_paths

            check_report_paths(self.reports)

    @contextlib.contextmanager
    def progress(self) -> Iterator[Progress]:
        """The executor's listener; on leaving, a live footer is gone from the screen."""
        if not self.live:
            yield PlainProgress(self.echo, ledger_root=self.root)
            return
        with LiveProgress(self.stream, ledger_root=self.root,
                          color=self.terminal.color) as live:
            yield live

    def finish(self, result: RunResult, *, lookup: Lookup) -> BuildReport:
        """Print the summary and write the reports; the CLI then picks the exit status."""
        report = BuildReport.of(result, lookup=lookup, root=self.root, dry_run=self.dry_run,
                                seconds=time.monotonic() - self.began, store=self.store)
        if self.live:
            from wheelhouse.report.table import render_table

            for line in render_table(report, width=terminal_width(),
                                     paint=Paint(self.terminal.color)):
                self.echo(line)
            phases = None if self.dry_run else phase_line(result)
            for line in textwrap.wrap(phases or "", width=max(terminal_width() - 1, 20),
                                      subsequent_indent="  "):
                self.echo(line)
        else:
            print_summary(result, dry_run=self.dry_run, echo=self.echo)
            if not self.dry_run:
                print_failures(result, root=self.root, echo=self.echo)
        if self.reports or self.step_summary is not None:
            from wheelhouse.report.files import append_step_summary, write_reports

            write_reports(report, self.reports)
            if self.step_summary is not None:
                append_step_summary(report, self.step_summary)
        return report


def run_error(result: RunResult) -> WheelhouseError | None:
    """The documented exit status of a finished run, as its error: 8 when builds could not run
    on this machine (no engine, image, emulation, compiler, disk), 4 when the upstream could
    not be read, 6 when builds failed, 3 when pins have no file to fetch or build; None when
    all is well."""
    if result.ok:
        return None
    failed = [o for r in result.results for o in r.outcomes if o.status is Status.FAILED]
    machine = [o for o in failed if o.environment]
    if machine:
        return EngineError(
            f"{plural(len(machine), 'build')} could not run on this machine: "
            f"{machine[0].message}",
            hint=machine[0].hint or "fix the container engine or emulation and run again")
    upstream = [o for r in result.results for o in r.outcomes if o.step.upstream_failed]
    if upstream or any(r.plan is not None and r.plan.upstream_failed for r in result.results):
        said = upstream[0].message if upstream else next(
            p for r in result.results for p in r.problems)
        return UpstreamError(
            f"the upstream index or a find-links source failed: {said}",
            hint="check the index URL (--index-url, the config's index-url, the requirements "
            "file's own -i) and this machine's network; nothing was looked up there")
    if failed:
        return BuildError(
            f"{plural(len(failed), 'pin')} could not be built or fetched; everything else was "
            "published",
            hint="read the logs named above; fix the cause and run again (add "
            "--retry-failed to rebuild what failed with unchanged inputs)")
    return ResolutionError(
        "some pins could not be resolved to files (see above)",
        hint="check the versions exist for these targets, or allow building from sdists")
