"""The end of a build on a terminal: a table per target (cached, fetched, built, failed) that
fits the screen's width, then every failure with its cause, the fix and its log."""

from __future__ import annotations

import textwrap

from wheelhouse.report.live import Paint, duration
from wheelhouse.report.model import COLUMNS, BuildReport, TargetReport
from wheelhouse.report.plain import nothing_to_do, plural

#: Columns between the table's cells.
_GAP = 2


def render_table(report: BuildReport, *, width: int, paint: Paint) -> list[str]:
    """The summary table, then failures; every line at most ``width`` wide, except log paths,
    which stay whole so they can be copied."""
    width = max(width, 20)
    lines = [line for n in report.notes for line in _wrap(f"note: {n}", width, "", "  ")]
    for t in report.targets:
        for n in t.notes:
            lines += _wrap(f"{t.target}: note: {n}", width, "", "  ")
        for p in t.problems:
            lines += [paint(line, "red")
                      for line in _wrap(f"{t.target}: problem: {p}", width, "", "  ")]
    lines += _table(report, width, paint)
    failures = report.failures
    if failures:
        lines += ["", paint(f"{plural(len(failures), 'pin')} failed:", "red", "bold")]
        for e in failures:
            lines += _wrap(f"{e.pin} for {e.target}: {e.message}", width, "  ", "    ")
            for cause in e.cause[:4]:
                lines += [paint(line, "dim") for line in _wrap(cause, width, "      ", "      ")]
            if e.hint:
                lines += _wrap(f"hint: {e.hint}", width, "      ", "        ")
            if e.log:
                lines.append(f"      log: {e.log}")
    lines += ["", *_wrap(_closing(report), width, "", "")]
    return lines


def _table(report: BuildReport, width: int, paint: Paint) -> list[str]:
    heads = ("target", *COLUMNS)
    rows = [(t.target, *(str(t.count(c)) for c in COLUMNS)) for t in report.targets]
    if len(rows) > 1:
        rows.append(("total", *(str(report.count(c)) for c in COLUMNS)))
    numbers = [max(len(h), *(len(r[i + 1]) for r in rows)) for i, h in enumerate(COLUMNS)]
    room = width - sum(numbers) - _GAP * len(numbers)
    if room < len("target"):
        # Too narrow for columns (a phone over ssh): one sentence per target instead.
        return [line for t in report.targets
                for line in _wrap(_sentence(t), width, "", "  ")]
    first = min(max(len(r[0]) for r in [heads, *rows]), room)
    out = [paint(_row(heads, first, numbers), "bold")]
    for i, row in enumerate(rows):
        line = _row(row, first, numbers)
        failed = row[-1] != "0"
        is_total = len(rows) > 1 and i == len(rows) - 1
        out.append(paint(line, "red") if failed and not is_total else
                   paint(line, "bold") if is_total else line)
    return out


def _row(cells: tuple[str, ...], first: int, numbers: list[int]) -> str:
    gap = " " * _GAP
    return _middle(cells[0], first).ljust(first) + "".join(
        gap + cell.rjust(w) for cell, w in zip(cells[1:], numbers, strict=True))


def _middle(text: str, width: int) -> str:
    """Shortened in the middle: a target's Python and architecture are at its two ends."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def _sentence(t: TargetReport) -> str:
    return f"{t.target}: " + ", ".join(f"{t.count(c)} {c}" for c in COLUMNS)


def _closing(report: BuildReport) -> str:
    if not report.count("fetched") and not report.count("built") and report.ok:
        text = nothing_to_do(len(report.entries))
        return f"{text[:1].upper()}{text[1:]}."
    done = ", ".join(f"{report.count(c)} {c}" for c in COLUMNS)
    verdict = "Done" if report.ok else "Finished with failures"
    targets = plural(len(report.targets), "target")
    return f"{verdict} in {duration(report.seconds)} for {targets}: {done}."


def _wrap(text: str, width: int, first: str, rest: str) -> list[str]:
    return textwrap.wrap(text, width=width, initial_indent=first, subsequent_indent=rest,
                         break_on_hyphens=False, break_long_words=True) or [first.rstrip()]
