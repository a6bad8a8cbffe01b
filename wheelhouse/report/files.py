"""Reports as files, chosen by suffix: JSON (every pin on every target), Markdown (a summary
for people and for GitHub's step summary) and JUnit XML (for CI test views)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from wheelhouse.errors import UsageError
from wheelhouse.report.live import duration
from wheelhouse.report.model import COLUMNS, BuildReport, Entry
from wheelhouse.report.plain import plural


def to_json(report: BuildReport) -> str:
    def entry(e: Entry) -> dict[str, Any]:
        data = asdict(e)
        data["cause"] = list(e.cause)
        data["phases"] = dict(e.phases)
        return {"pin": e.pin, **data}

    doc = {
        "wheelhouse": report.version, "store": report.store, "dry_run": report.dry_run,
        "ok": report.ok, "seconds": round(report.seconds, 3), "notes": list(report.notes),
        "phases": report.phases(),
        "targets": [{"target": t.target, "from_cache": t.from_cache, "ok": t.ok,
                     "counts": {c: t.count(c) for c in COLUMNS},
                     "problems": list(t.problems), "notes": list(t.notes)}
                    for t in report.targets],
        "results": [entry(e) for e in report.entries],
    }
    return json.dumps(doc, indent=2) + "\n"


# -- Markdown ---------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def to_markdown(report: BuildReport) -> str:
    failures = report.failures
    what = "plan" if report.dry_run else "build"
    state = "ok" if report.ok else f"{plural(len(failures), 'pin')} failed"
    lines = [f"### wheelhouse {what}: {plural(len(report.targets), 'target')}, {state}", ""]
    lines += [f"> note: {_cell(n)}" for n in report.notes]
    lines += ["| target | " + " | ".join(COLUMNS) + " |",
              "|---|" + "---:|" * len(COLUMNS)]
    for t in report.targets:
        lines.append(f"| {_code(t.target)} | "
                     + " | ".join(str(t.count(c)) for c in COLUMNS) + " |")
    lines.append("")
    for t in report.targets:
        lines += [f"- **problem** on {_code(t.target)}: {_cell(p)}" for p in t.problems]
    if failures:
        lines += ["#### Failures", ""]
        for e in failures:
            lines.append(f"- {_code(e.pin)} for {_code(e.target)}: {_cell(e.message)}")
            if e.cause:
                lines += ["  ```", *(f"  {c}" for c in e.cause), "  ```"]
            if e.hint:
                lines.append(f"  hint: {_cell(e.hint)}")
            if e.log:
                lines.append(f"  log: {_code(e.log)}")
        lines.append("")
    entries = report.entries
    if entries:
        lines += [f"<details><summary>Every pin on every target ({len(entries)})</summary>", "",
                  "| pin | target | status | origin | file | time |", "|---|---|---|---|---|---:|"]
        lines += [f"| {_code(e.pin)} | {_code(e.target)} | {e.status} | {e.origin or ''} | "
                  f"{_cell(e.file or '')} | {e.seconds:.1f} s |" for e in entries]
        lines += ["", "</details>", ""]
    lines.append(f"Store: {_code(report.store)}; took {duration(report.seconds)}.")
    return "\n".join(lines) + "\n"


# -- JUnit XML --------------------------------------------------------------------------------

# XML 1.0 admits no C0 controls but tab, newline and carriage return; logs carry colour codes.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(text: str) -> str:
    return _NOT_XML.sub("", text)


def to_junit(report: BuildReport) -> str:
    """One suite per target, one case per pin; failures carry the cause, hint and log."""
    entries = report.entries
    root = ET.Element("testsuites", name=f"wheelhouse {'plan' if report.dry_run else 'build'}",
                      tests=str(len(entries) + sum(len(t.problems) for t in report.targets)),
                      failures=str(len(report.failures)
                                   + sum(len(t.problems) for t in report.targets)),
                      time=f"{report.seconds:.3f}")
    for t in report.targets:
        suite = ET.SubElement(
            root, "testsuite", name=t.target, tests=str(len(t.entries) + len(t.problems)),
            failures=str(t.count("failed") + len(t.problems)), errors="0", skipped="0",
            time=f"{sum(e.seconds for e in t.entries):.3f}")
        for e in t.entries:
            case = ET.SubElement(suite, "testcase", classname=f"wheelhouse.{t.target}",
                                 name=e.pin, time=f"{e.seconds:.3f}")
            if e.failed:
                failure = ET.SubElement(case, "failure", message=_x(e.message),
                                        type="environment" if e.environment else e.status)
                failure.text = _x("\n".join(_details(e)))
            else:
                out = ET.SubElement(case, "system-out")
                out.text = _x(f"{e.status}: {e.file or ''} ({e.origin or 'not stored'})")
        for i, problem in enumerate(t.problems, 1):
            case = ET.SubElement(suite, "testcase", classname=f"wheelhouse.{t.target}",
                                 name=f"resolution problem {i}", time="0")
            ET.SubElement(case, "failure", message=_x(problem), type="resolution")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _details(e: Entry) -> Iterable[str]:
    yield from e.cause
    if e.hint:
        yield f"hint: {e.hint}"
    if e.log:
        yield f"log: {e.log}"


# -- writing ----------------------------------------------------------------------------------

RENDERERS: dict[str, Callable[[BuildReport], str]] = {
    ".json": to_json, ".md": to_markdown, ".markdown": to_markdown, ".xml": to_junit,
}


def check_report_paths(paths: Iterable[Path]) -> None:
    """Refuse an unknown suffix or a place that cannot be written before the run, not after
    an hour of building: the directory is made and a file is tried in it."""
    for path in paths:
        if path.suffix.lower() not in RENDERERS:
            raise UsageError(
                f"--report {path}: cannot tell the format from the suffix {path.suffix!r}",
                hint="name the file *.json (every pin on every target), *.md (a summary) or *.xml "
                "(JUnit)")
        if path.is_dir():
            raise UsageError(f"--report {path} is a directory",
                             hint="name a file in it, e.g. --report DIR/wheelhouse.json")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            probe = path.with_name(f".{path.name}.probe")
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise UsageError(f"--report {path} cannot be written: {e.strerror or e}",
                             hint="choose a --report path in a writable directory") from None


def write_reports(report: BuildReport, paths: Iterable[Path]) -> None:
    for path in paths:
        text = RENDERERS[path.suffix.lower()](report)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        except OSError as e:
            raise UsageError(f"cannot write the report {path}: {e.strerror or e}",
                             hint="choose a --report path in a writable directory") from None


def append_step_summary(report: BuildReport, path: Path) -> None:
    """GitHub Actions shows what a step appends to $GITHUB_STEP_SUMMARY on the run's page."""
    try:
        with path.open("a", encoding="utf-8") as f:
            f.write(to_markdown(report))
    except OSError as e:
        raise UsageError(f"cannot append to GITHUB_STEP_SUMMARY ({path}): {e.strerror or e}",
                         hint="unset GITHUB_STEP_SUMMARY outside GitHub Actions") from None
