"""Why a build failed, read from its log: the few lines that say it, and a hint naming the
setting that fixes it. The known patterns are data (``resources/causes.toml``)."""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

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
# Lines that look like causes but only echo one: the generic wrappers around the real error.
_NOISE = re.compile(
    r"ERROR Backend subprocess exited|subprocess-exited-with-error|^\s*error: subprocess|"
    r"^\s*note: |^\$ |^\[exit \d+|^# wheelhouse|CalledProcessError"
)


@dataclass(frozen=True, kw_only=True)
class Pattern:
    name: str
    regex: re.Pattern[str]
    summary: str
    hint: str


@dataclass(frozen=True, kw_only=True)
class Explanation:
    #: the log lines that say why, most telling first.
    lines: tuple[str, ...] = ()
    #: what the known pattern says it is, and the setting that fixes it.
    summary: str | None = None
    hint: str | None = None
    pattern: str | None = None


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
        unknown = set(entry) - {"name", "pattern", "summary", "hint"}
        if unknown or not all(isinstance(entry.get(k), str) for k in ("name", "pattern",
                                                                       "hint")):
            raise ValueError(f"causes.toml: entry {i} ({entry.get('name')!r}) is malformed")
        out.append(Pattern(name=entry["name"], regex=re.compile(entry["pattern"]),
                           summary=entry.get("summary", ""), hint=entry["hint"]))
    return tuple(out)


def explain(log: str, *, project: str, target: str) -> Explanation:
    """The cause of a failure in ``log`` (a build log, or a test's output)."""
    lines = [ln.rstrip() for ln in log.splitlines()[-5000:] if ln.strip()]
    found: list[str] = []
    known: tuple[Pattern, re.Match[str]] | None = None
    for pattern in patterns():
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
                       hint=pattern.hint.format_map(values), pattern=pattern.name)


def _add(found: list[str], line: str) -> None:
    text = line.strip()
    if len(text) > MAX_WIDTH:
        text = text[: MAX_WIDTH - 1] + "…"
    if text not in found:
        found.append(text)
