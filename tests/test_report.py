"""What a person reads, without a build: live progress on a terminal, the final table at any
width, plurals, the report files and the exit status a run ends with."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from packaging.utils import NormalizedName

from wheelhouse.errors import BuildError, EngineError, ResolutionError, UsageError
from wheelhouse.execute.outcome import Outcome, Status
from wheelhouse.execute.results import RunResult, TargetResult
from wheelhouse.plan.model import Action, Pin, Step
from wheelhouse.report.files import (
    append_step_summary,
    check_report_paths,
    to_json,
    to_junit,
    to_markdown,
    write_reports,
)
from wheelhouse.report.live import LiveProgress, Paint, Terminal
from wheelhouse.report.model import BuildReport
from wheelhouse.report.output import run_error
from wheelhouse.report.plain import nothing_to_do, plural
from wheelhouse.report.table import render_table
from wheelhouse.targets import parse_target

T = parse_target("cp311-manylinux_x86_64")
M = parse_target("cp311-musllinux_aarch64")
ROOT = Path("/srv/store")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def step(name: str, target: object = T, action: Action = Action.FETCH) -> Step:
    pin = Pin(project=NormalizedName(name), version="1.0", extras=frozenset(),
              hashes=frozenset(), requested_by="r.txt:1")
    return Step(pin=pin, target=target, action=action)  # type: ignore[arg-type]


def outcome(name: str, status: Status, target: object = T, **kw: object) -> Outcome:
    action = {Status.BUILT: Action.BUILD, Status.FAILED: Action.BUILD,
              Status.MISSING: Action.MISSING, Status.PRESENT: Action.KEEP}.get(status,
                                                                              Action.FETCH)
    filename = None if status in (Status.FAILED, Status.MISSING) else f"{name}-1.0-py3-none-any.whl"
    return Outcome(step=step(name, target, action), status=status, filename=filename,
                   **kw)  # type: ignore[arg-type]


def sample() -> RunResult:
    broken = outcome("broken-thing", Status.FAILED, message="the build failed (exit 1)",
                     log="logs/broken-thing/1.0/x.log", cause=("error: no such header",),
                     hint="install libfoo-dev", seconds=3.0)
    return RunResult(results=(
        TargetResult(target=T, outcomes=(
            outcome("idna", Status.FETCHED, seconds=0.2),
            outcome("six", Status.PRESENT),
            outcome("ext", Status.BUILT, seconds=12.0, log="logs/ext/1.0/y.log"),
            broken,
        )),
        TargetResult(target=M, outcomes=(outcome("idna", Status.PRESENT, M),), cached=True),
    ))


def report_of(result: RunResult) -> BuildReport:
    return BuildReport.of(result, lookup=lambda name: None, root=ROOT, seconds=75.0)


class FakeTTY(io.StringIO):
    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


def test_terminal_is_live_only_on_a_tty_outside_ci() -> None:
    assert not Terminal.detect(io.StringIO(), {}).live
    assert Terminal.detect(FakeTTY(), {"TERM": "xterm"}) == Terminal(live=True, color=True)
    assert not Terminal.detect(FakeTTY(), {"CI": "true"}).live
    assert Terminal.detect(FakeTTY(), {"CI": "false"}).live
    assert not Terminal.detect(FakeTTY(), {"TERM": "dumb"}).live
    assert Terminal.detect(FakeTTY(), {"NO_COLOR": "1"}) == Terminal(live=True, color=False)


def test_live_progress_shows_what_builds_where_for_how_long_and_what_is_left() -> None:
    now = [100.0]
    out = FakeTTY()
    live = LiveProgress(out, ledger_root=ROOT, color=False, width=lambda: 100,
                        clock=lambda: now[0])
    steps = [step("idna"), step("ext", action=Action.BUILD), step("six")]
    live.queued(steps)
    live.started(steps[1], "native")
    now[0] += 75
    live.finished(Outcome(step=steps[0], status=Status.FETCHED,
                          filename="idna-1.0-py3-none-any.whl"))
    screen = out.getvalue()
    assert "building ext==1.0 for cp311-manylinux_x86_64 · 1 min 15 s · native" in screen
    assert "1 of 3 steps done, 2 left · 1 min 15 s" in screen
    assert "  fetched  idna-1.0-py3-none-any.whl\n" in screen, "events keep their plain text"
    # A build requirement's outcome is printed but not counted as one of the target's steps.
    live.finished(Outcome(step=step("setuptools"), status=Status.FETCHED, filename="s.whl"))
    assert out.getvalue().rstrip().endswith("1 of 3 steps done, 2 left · 1 min 15 s")
    live.close()
    assert out.getvalue().endswith("\x1b[J"), "closing erases the footer"


def test_live_footer_lines_never_wrap() -> None:
    out = FakeTTY()
    live = LiveProgress(out, ledger_root=ROOT, color=True, width=lambda: 40)
    s = step("a-package-with-a-very-long-name-indeed", M, Action.BUILD)
    live.queued([s])
    live.started(s, "docker quay.io/pypa/musllinux_1_2_aarch64 under QEMU emulation")
    plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", live.footer()[0])
    assert len(plain) <= 39 and plain.endswith("…")


def test_many_builds_fit_in_a_short_footer() -> None:
    live = LiveProgress(FakeTTY(), ledger_root=ROOT, color=False, width=lambda: 80)
    steps = [step(f"p{i}", action=Action.BUILD) for i in range(9)]
    live.queued(steps)
    for s in steps:
        live.started(s, "native")
    footer = live.footer()
    assert len(footer) == 8 and footer[-2] == "  … and 3 more building"
    assert footer[-1].startswith("  0 of 9 steps done, 9 left")


def test_plurals() -> None:
    assert plural(1, "pin") == "1 pin" and plural(2, "pin") == "2 pins"
    assert plural(0, "library", "libraries") == "0 libraries"
    assert nothing_to_do(1).startswith("nothing to do: the 1 file is in the store")
    assert nothing_to_do(3).startswith("nothing to do: all 3 files are in the store")


@pytest.mark.parametrize("width", [24, 40, 60, 80, 120])
def test_the_table_fits_the_terminal(width: int) -> None:
    lines = render_table(report_of(sample()), width=width, paint=Paint(False))
    words = " ".join(" ".join(lines).split())
    if width >= 40:
        assert "broken-thing==1.0 for cp311-manylinux_x86_64" in words
    for line in lines:
        if "log: " not in line:  # a log path stays whole, to be copied
            assert len(line) <= max(width, 20), line
    assert "Finished with failures in 1 min 15 s for 2 targets" in words


def test_the_table_counts_per_target() -> None:
    lines = render_table(report_of(sample()), width=100, paint=Paint(False))
    head, first, second, total = lines[:4]
    assert head.split() == ["target", "cached", "fetched", "built", "failed"]
    assert first.split() == ["cp311-manylinux_x86_64", "1", "1", "1", "1"]
    assert second.split() == ["cp311-musllinux_aarch64", "1", "0", "0", "0"]
    assert total.split() == ["total", "2", "1", "1", "1"]
    assert "1 pin failed:" in lines
    assert "      log: /srv/store/logs/broken-thing/1.0/x.log" in lines
    assert "      hint: install libfoo-dev" in lines


def test_all_cached_says_nothing_to_do() -> None:
    result = RunResult(results=(TargetResult(target=M, cached=True,
                                             outcomes=(outcome("idna", Status.PRESENT, M),)),))
    lines = render_table(report_of(result), width=80, paint=Paint(False))
    assert lines[-1].startswith("Nothing to do: the 1 file is in the store")


def test_json_lists_every_pin_on_every_target() -> None:
    doc = json.loads(to_json(report_of(sample())))
    rows = {(r["pin"], r["target"]): r for r in doc["results"]}
    assert len(rows) == 5 and doc["ok"] is False
    assert rows[("six==1.0", str(T))]["status"] == "cached"
    assert rows[("idna==1.0", str(M))]["status"] == "cached"
    broken = rows[("broken-thing==1.0", str(T))]
    assert broken["status"] == "failed" and broken["cause"] == ["error: no such header"]
    assert broken["log"] == "/srv/store/logs/broken-thing/1.0/x.log"
    assert broken["seconds"] == 3.0
    assert {"status", "origin", "file", "sha256", "seconds", "cause"} <= set(broken)
    assert doc["targets"][1]["from_cache"] is True


def test_junit_parses_and_carries_the_failure() -> None:
    root = ET.fromstring(to_junit(report_of(sample())).split("?>", 1)[1])
    assert root.tag == "testsuites" and root.get("failures") == "1"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [str(T), str(M)]
    (failure,) = root.iter("failure")
    assert failure.get("message") == "the build failed (exit 1)"
    assert "install libfoo-dev" in (failure.text or "") and "x.log" in (failure.text or "")


def test_junit_drops_control_codes_from_log_lines() -> None:
    result = RunResult(results=(TargetResult(target=T, outcomes=(
        outcome("x", Status.FAILED, message="bad\x1b[31m", cause=("\x1b[1merror\x00",)),)),))
    text = to_junit(report_of(result))
    assert not CONTROL.search(text.replace("\n", ""))
    ET.fromstring(text.split("?>", 1)[1])


def test_markdown_has_the_table_and_the_failures() -> None:
    text = to_markdown(report_of(sample()))
    assert "| `cp311-manylinux_x86_64` | 1 | 1 | 1 | 1 |" in text
    assert "- `broken-thing==1.0` for `cp311-manylinux_x86_64`" in text
    assert "<details><summary>Every pin on every target (5)</summary>" in text


def test_report_files_by_suffix_and_the_step_summary(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="suffix"):
        check_report_paths([tmp_path / "report.txt"])
    report = report_of(sample())
    paths = [tmp_path / "out" / "r.json", tmp_path / "r.md", tmp_path / "r.xml"]
    write_reports(report, paths)
    assert json.loads(paths[0].read_text())["results"]
    assert paths[1].read_text().startswith("### wheelhouse build")
    assert paths[2].read_text().startswith("<?xml")
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    append_step_summary(report, summary)
    append_step_summary(report, summary)
    assert summary.read_text().startswith("earlier step\n")
    assert summary.read_text().count("### wheelhouse build") == 2


def test_exit_status_says_whose_fault() -> None:
    assert run_error(RunResult(results=(TargetResult(target=T, outcomes=(
        outcome("idna", Status.FETCHED),)),))) is None
    assert isinstance(run_error(sample()), BuildError)
    machine = RunResult(results=(TargetResult(target=M, outcomes=(
        outcome("ext", Status.FAILED, M, message="no container engine", hint="install docker",
                environment=True),)),))
    error = run_error(machine)
    assert isinstance(error, EngineError) and error.exit_code == 8
    assert error.hint == "install docker" and "1 build could not run" in error.message
    missing = RunResult(results=(TargetResult(target=T, outcomes=(
        outcome("gone", Status.MISSING, message="no file"),)),))
    assert isinstance(run_error(missing), ResolutionError)
