"""Why a build (or pip-compile's lock) failed, read from its log: the few lines that say it, and
a hint naming the setting that fixes it. Neutral ground: ``execute`` records it with a failure,
the pipeline phrases a lock failure with it, and reports only show what they were given.
The known patterns are data (``resources/causes.toml``)."""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from wheelhouse.builder.fixes import Fix, parse_fix

#: how many cause lines a failure shows, and how long each may be.
MAX_LINES = 3
MAX_WIDTH = 220

# Lines that say why, when no known pattern matches: compiler errors, "... not found", and the
# last line of a Python traceback (an exception name and its message).
_GENERIC = (
    re.compile(r"(?:^|\s)(?:fatal )?error: (?!command '.*' failed with exit code)"),
    re.compile(r"\bnot found\b|No such file or directory"),
    re.compile(r"^\s*(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit)(?::\s.*)?$"),
)
# Lines that look like causes but only echo one, or only give context: the generic wrappers
# around the real error (build's, pip's, setuptools'), compiler notes and include chains,
# tracebacks' frames, command lines, and wheelhouse's own markers.
_NOISE = re.compile("|".join([
    r"ERROR Backend subprocess exited", r"subprocess-exited-with-error",
    r"^\s*error: subprocess", r"CalledProcessError", r"^ERROR Command ", r"error: Command '\[",
    r"^TIP ", r"^INFO:", r"^Fixed-up wheel",
    r"(?:^|\s|:)note: ", r"^\s*(?:In file included )?from \S+:\d+[,:]$", r"^\s*\d+ \|",
    r"^\s*\|", r"^\s*\^", r"^\s*File \"", r"^\s*!!\s*$",
    r"^\S*(?:gcc|cc|g\+\+|c\+\+|clang) .* -c \S", r"checking .*\.\.\.",
    r"^\$ ", r"^\[exit \d+", r"^# wheelhouse",
]))
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_WARNING = re.compile(r"warning|^\s*In (file included|function)|^\S+: In function", re.I)


@dataclass(frozen=True, kw_only=True)
class Pattern:
    name: str
    regex: re.Pattern[str]
    summary: str
    hint: str
    #: the failing command only reports a failure of an earlier one (a build that fell back
    #: to pure Python when its extension did not compile): the cause is read before it.
    earlier: bool = False
    #: the settings that fix it, when they are known (``builder.fixes``).
    fix: Fix | None = None
    #: the cause is the machine's or the builder image's (no compiler, a full disk), not the
    #: package's: such a failure is reported but never remembered against the package.
    environment: bool = False


@dataclass(frozen=True, kw_only=True)
class Explanation:
    #: the log lines that say why, most telling first.
    lines: tuple[str, ...] = ()
    #: what the known pattern says it is, and the setting that fixes it.
    summary: str | None = None
    hint: str | None = None
    pattern: str | None = None
    #: the known fix of that pattern, if it has one.
    fix: Fix | None = None
    #: the pattern says the machine is at fault, not the package.
    environment: bool = False


class _Format(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@functools.cache
def patterns() -> tuple[Pattern, ...]:
    """The known causes, validated: a broken file fails loudly, naming the entry."""
    data = tomllib.loads((Path(__file__).parent.parent / "resources" / "causes.toml")
                         .read_text(encoding="utf-8"))
    out = []
    for i, entry in enumerate(data.get("cause", [])):
        unknown = set(entry) - {"name", "pattern", "summary", "hint", "earlier", "fix",
                                "environment"}
        if unknown or not all(isinstance(entry.get(k), str) for k in ("name", "pattern",
                                                                       "hint")) \
                or not isinstance(entry.get("earlier", False), bool) \
                or not isinstance(entry.get("environment", False), bool):
            raise ValueError(f"causes.toml: entry {i} ({entry.get('name')!r}) is malformed")
        fix = (parse_fix(entry["name"], entry["fix"], f"causes.toml: entry {i}")
               if "fix" in entry else None)
        out.append(Pattern(name=entry["name"], regex=re.compile(entry["pattern"]),
                           summary=entry.get("summary", ""), hint=entry["hint"],
                           earlier=entry.get("earlier", False), fix=fix,
                           environment=entry.get("environment", False)))
    return tuple(out)


def explain(log: str, *, project: str, target: str) -> Explanation:
    """The cause of a failure in ``log`` (a build log, or a check's output).

    The part of the log after its last command line (``$ ...``) is read first: that is the
    command that failed, and earlier commands' warnings are not its cause.
    """
    lines = [_ANSI.sub("", ln).rstrip() for ln in log.splitlines()[-5000:] if ln.strip()]
    starts = [i for i, ln in enumerate(lines) if ln.startswith("$ ")]
    last = lines[starts[-1]:] if starts else lines
    for part in (last, lines):
        found = _explain(part, project=project, target=target)
        if found.lines or found.hint:
            return _with_earlier(found, lines[:starts[-1]] if starts else [],
                                 project=project, target=target)
    # Nothing recognisable (a build that stops without saying why): its last words.
    tail = [ln.strip() for ln in last if not _NOISE.search(ln) and not _WARNING.search(ln)]
    return Explanation(lines=tuple(_short(ln) for ln in tail[-2:]))


def _explain(lines: list[str], *, project: str, target: str) -> Explanation:
    found: list[str] = []
    known: tuple[Pattern, re.Match[str]] | None = None
    for pattern in patterns():
        if pattern.fix is not None and not pattern.fix.for_project(project):
            continue  # a cause known only for some projects (its fix says which)
        for line in lines:
            match = pattern.regex.search(line)
            if match:
                known = known or (pattern, match)
                _add(found, line)
                break
    for line in lines:
        if len(found) >= MAX_LINES:
            break
        if not _NOISE.search(line) and any(r.search(line) for r in _GENERIC):
            _add(found, line)
    if known is None:
        return Explanation(lines=tuple(found[:MAX_LINES]))
    pattern, match = known
    values = _Format({k: v for k, v in match.groupdict().items() if v})
    values |= {"project": project, "target": target}
    # Optional groups of alternatives share one placeholder name without their suffix.
    for key, value in match.groupdict().items():
        if value and key[-1].isdigit():
            values.setdefault(key.rstrip("0123456789"), value)
    return Explanation(lines=tuple(found[:MAX_LINES]),
                       summary=pattern.summary.format_map(values) or None,
                       hint=pattern.hint.format_map(values), pattern=pattern.name,
                       fix=pattern.fix, environment=pattern.environment)


def _with_earlier(found: Explanation, before: list[str], *, project: str, target: str
                  ) -> Explanation:
    """A pattern marked ``earlier`` names the effect; the commands before it say the cause
    (msgpack 1.0.2: longintrepr.h missing, so no extension, so auditwheel has nothing to
    repair). Their cause lines come first, and their known pattern gives the hint."""
    known = {p.name: p for p in patterns()}
    if found.pattern is None or not known[found.pattern].earlier or not before:
        return found
    cause = _explain(before, project=project, target=target)
    if not cause.lines:
        return found
    summary = found.summary
    if cause.summary:
        summary = f"{cause.summary}, and {found.summary}" if found.summary else cause.summary
    return Explanation(lines=cause.lines, summary=summary, hint=cause.hint or found.hint,
                       pattern=cause.pattern or found.pattern, fix=cause.fix or found.fix,
                       environment=cause.environment if cause.pattern else found.environment)


def _short(line: str) -> str:
    text = line.strip()
    return text[: MAX_WIDTH - 1] + "…" if len(text) > MAX_WIDTH else text


def _add(found: list[str], line: str) -> None:
    text = _short(line)
    if text not in found:
        found.append(text)
