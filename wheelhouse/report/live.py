"""The live view of a build on a terminal: every event as the line plain output gives it, and
under them a footer redrawn in place: what is building, for which target, for how long, and
how many steps are done and left. Whether a stream gets it is ``Terminal.detect``'s call."""

from __future__ import annotations

import shutil
import textwrap
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TextIO

from wheelhouse.execute.outcome import Outcome, Status
from wheelhouse.plan.model import Step
from wheelhouse.report.plain import detail_lines, event_line, plural

#: ANSI SGR codes by meaning; nothing else in wheelhouse writes control codes.
_SGR = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}
_CLEAR_BELOW = "\x1b[J"
#: Builds listed in the footer; more are counted on one line.
_MAX_RUNNING = 6


@dataclass(frozen=True, kw_only=True)
class Terminal:
    """What a stream can show: live redraws (a terminal, not CI) and colour (not NO_COLOR)."""

    live: bool
    color: bool

    @classmethod
    def detect(cls, stream: TextIO, environ: Mapping[str, str]) -> Terminal:
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        # CI logs are files even where the runner fakes a terminal: plain lines there.
        ci = environ.get("CI", "").lower() not in ("", "0", "false", "no")
        live = tty and not ci and environ.get("TERM", "") != "dumb"
        return cls(live=live, color=live and not environ.get("NO_COLOR"))


def terminal_width() -> int:
    return shutil.get_terminal_size(fallback=(80, 24)).columns


class Paint:
    """Colour for a terminal that wants it; the identity otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles or not text:
            return text
        codes = ";".join(_SGR[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"


def wrap_words(text: str, width: int, indent: str) -> list[str]:
    """An event line folded at spaces to the terminal's width (the terminal would break it
    mid-word), continuation lines indented; a word longer than a line (a path) is split."""
    lead = text[: len(text) - len(text.lstrip())]
    return textwrap.wrap(text, width=width, initial_indent=lead, subsequent_indent=indent,
                         break_on_hyphens=False, break_long_words=True) or [text]


def clip(text: str, width: int) -> str:
    """One screen line: a footer line that wrapped would break the redraw."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


_STATUS_STYLE = {Status.FETCHED: ("green",), Status.BUILT: ("green", "bold"),
                 Status.PRESENT: ("dim",), Status.FAILED: ("red", "bold"),
                 Status.MISSING: ("red", "bold")}


@dataclass(frozen=True, kw_only=True)
class _Running:
    step: Step
    how: str
    since: float


class LiveProgress:
    """Progress on a terminal. Thread-safe: executors report from their own threads, and a
    ticker redraws the footer so elapsed times move while a build is quiet. Use it as a
    context manager (or call ``close``) so the footer is gone before anything else prints."""

    def __init__(self, stream: TextIO, *, ledger_root: Path, color: bool = True,
                 width: Callable[[], int] = terminal_width,
                 clock: Callable[[], float] = time.monotonic, interval: float = 0.25) -> None:
        self.stream = stream
        self.root = ledger_root
        self.paint = Paint(color)
        self.width = width
        self.clock = clock
        self.interval = interval
        self.began = clock()
        self._lock = threading.Lock()
        self._queued: set[tuple[str, str]] = set()
        self._done: set[tuple[str, str]] = set()
        self._running: dict[tuple[str, str], _Running] = {}
        self._footer = 0
        self._frame = 0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        self._spinner = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏" if encoding == "utf8" else "|/-\\"

    # -- Progress --------------------------------------------------------------------------
    def queued(self, steps: Sequence[Step]) -> None:
        with self._lock:
            self._queued.update(_key(s) for s in steps)
            self._redraw()

    def started(self, step: Step, how: str) -> None:
        with self._lock:
            self._running[_key(step)] = _Running(step=step, how=how, since=self.clock())
            self._redraw()

    def finished(self, outcome: Outcome) -> None:
        key = _key(outcome.step)
        line = event_line(outcome, self.root)
        width = max(self.width() - 1, 20)
        style = _STATUS_STYLE.get(outcome.status, ())
        lines = [] if line is None else [self.paint(w, *style)
                                         for w in wrap_words(line, width, "           ")]
        lines += [self.paint(w, "dim") for d in detail_lines(outcome)
                  for w in wrap_words(d, width, "             ")]
        with self._lock:
            self._running.pop(key, None)
            # Build requirements report here too; only the targets' own steps are counted.
            if key in self._queued:
                self._done.add(key)
            self._redraw(lines)

    # -- lifetime --------------------------------------------------------------------------
    def __enter__(self) -> LiveProgress:
        self._ticker = threading.Thread(target=self._tick, name="wheelhouse-progress",
                                        daemon=True)
        self._ticker.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None and self._ticker is not threading.current_thread():
            self._ticker.join()
        with self._lock:
            self._clear()
            self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                self._frame += 1
                self._redraw()

    # -- drawing (under the lock) ----------------------------------------------------------
    def _clear(self) -> None:
        if self._footer:
            # Back to the first footer line, then erase it and everything below.
            self.stream.write(f"\r\x1b[{self._footer}A{_CLEAR_BELOW}")
            self._footer = 0

    def _redraw(self, lines: Sequence[str] = ()) -> None:
        if self._stop.is_set():
            # Closed: whatever still arrives is printed as it is, with no footer.
            self.stream.write("".join(f"{line}\n" for line in lines))
            return
        self._clear()
        footer = self.footer()
        self.stream.write("".join(f"{line}\n" for line in (*lines, *footer)))
        self._footer = len(footer)
        self.stream.flush()

    def footer(self) -> list[str]:
        """The lines under the events: one per running build, then the counts."""
        if not self._queued and not self._running:
            return []
        width = max(self.width() - 1, 10)
        now = self.clock()
        spin = self._spinner[self._frame % len(self._spinner)]
        lines = []
        running = sorted(self._running.values(), key=lambda r: r.since)
        for run in running[:_MAX_RUNNING]:
            text = (f"  {spin} building {run.step.label} for {run.step.target} "
                    f"· {duration(now - run.since)} · {run.how}")
            lines.append(self.paint(clip(text, width), "cyan"))
        if len(running) > _MAX_RUNNING:
            # A footer taller than the screen could not be erased by moving the cursor up.
            more = f"  … and {len(running) - _MAX_RUNNING} more building"
            lines.append(self.paint(clip(more, width), "cyan"))
        done, total = len(self._done), len(self._queued)
        left = total - done
        counts = (f"  {done} of {plural(total, 'step')} done, {left} left"
                  f" · {duration(now - self.began)}")
        lines.append(self.paint(clip(counts, width), "bold"))
        return lines


def _key(step: Step) -> tuple[str, str]:
    return step.target.identifier, step.label
