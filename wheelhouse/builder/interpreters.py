"""Finding a target's interpreter in an image: every candidate place (``/opt/python/cpXY-cpXY[t]``
as in the pypa images, then ``pythonX.Y[t]`` on PATH) is asked its version and whether it is a
free-threaded build, and only one that is the target's own is used. There is no fallback to
another version: a cp313 target never builds with 3.11 because 3.11 is what the image has.
The same probe says where auditwheel is (the pypa images keep it in its own environment, on
PATH, since it needs Python 3.10 or later) and which interpreter its script names, so show and
repair can share one process."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from wheelhouse.errors import EngineError
from wheelhouse.targets import Target

#: what each candidate interpreter is asked; Python 3.6 and later can answer it.
_ASK = ("import json, platform, sysconfig; print(json.dumps({"
        "'version': platform.python_version(), "
        "'free_threaded': bool(sysconfig.get_config_var('Py_GIL_DISABLED')), "
        "'ext_suffix': sysconfig.get_config_var('EXT_SUFFIX') or ''}))")
_AUDITWHEEL = "auditwheel"


@dataclass(frozen=True, kw_only=True)
class Interpreter:
    """A CPython in an image, as it describes itself."""

    path: str
    version: str
    free_threaded: bool
    ext_suffix: str = ""

    @property
    def minor(self) -> tuple[int, int]:
        major, minor, *_ = (int(p) for p in self.version.split(".")[:2])
        return major, minor

    def describe(self) -> str:
        return f"{self.path} is {self.version}" + (" (free-threaded)" if self.free_threaded
                                                   else "")


@dataclass(frozen=True, kw_only=True)
class Found:
    """The target's interpreter, and the auditwheel command the image offers."""

    interpreter: Interpreter
    #: the command that runs auditwheel there: its own executable where the image has one on
    #: PATH, else the target's interpreter with ``-m auditwheel``.
    auditwheel: tuple[str, ...]
    #: the interpreter that can import auditwheel (its script's ``#!`` line, or the target's
    #: interpreter): show and repair then run in one process. None: not known.
    auditwheel_python: str | None = None


def probe_script(candidates: Sequence[str]) -> str:
    """A shell script printing, for each candidate that exists, ``PATH<TAB>JSON`` (its answer,
    or ``{}`` when it cannot run), then ``auditwheel<TAB>PATH<TAB>#!-LINE`` (empty when
    absent; the script's first line, which names its interpreter)."""
    quoted = " ".join(shlex.quote(c) for c in candidates if c)
    return (f"for p in {quoted}; do path=$(command -v \"$p\" 2>/dev/null) || continue; "
            "printf '%s\\t' \"$path\"; "
            f"\"$path\" -c {shlex.quote(_ASK)} 2>/dev/null || echo '{{}}'; done; "
            f"printf '{_AUDITWHEEL}\\t'; if aw=$(command -v {_AUDITWHEEL} 2>/dev/null); then "
            "printf '%s\\t' \"$aw\"; head -n 1 \"$aw\" 2>/dev/null | tr -d '\\r\\n'; fi; echo")


def parse_probe(output: str) -> tuple[list[Interpreter], str | None]:
    """The interpreters a probe found (those that answered) and auditwheel's path."""
    found, auditwheel, _python = _parse(output)
    return found, auditwheel


def _parse(output: str) -> tuple[list[Interpreter], str | None, str | None]:
    found: list[Interpreter] = []
    auditwheel = python = None
    for line in output.splitlines():
        path, _, answer = line.partition("\t")
        if path == _AUDITWHEEL:
            where, _, first = answer.partition("\t")
            auditwheel = where.strip() or None
            python = _shebang_python(first)
            continue
        try:
            data = json.loads(answer)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("version"), str):
            found.append(Interpreter(path=path, version=data["version"],
                                     free_threaded=bool(data.get("free_threaded")),
                                     ext_suffix=str(data.get("ext_suffix", ""))))
    return found, auditwheel, python


def _shebang_python(line: str) -> str | None:
    """The interpreter a script's ``#!`` line names, when it is a Python named by its absolute
    path with no arguments (what pip writes for an entry point); None otherwise (``#!/bin/sh``
    wrappers, ``env``): auditwheel then runs as its script, one process per command."""
    if not line.startswith("#!/"):
        return None
    words = line[2:].split()
    if len(words) != 1 or "python" not in words[0].rsplit("/", 1)[-1]:
        return None
    return words[0]


def choose(target: Target, image: str, output: str) -> Found:
    """The target's interpreter among what the probe of ``image`` found; EngineError (exit
    8) naming the image, the Python and where it looked when there is none."""
    found, auditwheel, auditwheel_python = _parse(output)
    for interpreter in found:
        if (interpreter.minor == target.python
                and interpreter.free_threaded == target.free_threaded):
            if auditwheel:
                return Found(interpreter=interpreter, auditwheel=(auditwheel,),
                             auditwheel_python=auditwheel_python)
            return Found(interpreter=interpreter,
                         auditwheel=(interpreter.path, "-m", "auditwheel"),
                         auditwheel_python=interpreter.path)
    looked = ", ".join(c for c in target.python_candidates)
    seen = "; found instead: " + ", ".join(i.describe() for i in found) if found else ""
    raise EngineError(
        f"the image {image} has no {target.python_description} for {target}: looked for "
        f"{looked}{seen}",
        hint=f"use an image that has it at /opt/python/{target.python_dir}/bin/python (as "
        "the pypa images do) or as python" + target.version_string
        + ("t" if target.free_threaded else "") + " on PATH, or drop the target; nothing "
        "is built with another version")
