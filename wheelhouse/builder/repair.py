"""Repairing built wheels with auditwheel, and checking the result fits its target.

auditwheel grafts shared libraries that are not on the policy's whitelist into the wheel and
gives it the most compatible platform tag its symbols allow. It must run where the libraries
are (on the build machine or inside the build container), so the recipe runs these commands
through the builder's Runner.
"""

from __future__ import annotations

import json
import shlex
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from packaging.utils import parse_wheel_filename

from wheelhouse.errors import BuildFailed
from wheelhouse.targets import Target


def is_pure(wheel: Path) -> bool:
    _name, _ver, _build, tags = parse_wheel_filename(wheel.name)
    return all(t.platform == "any" for t in tags)


#: what auditwheel says when an extension links no libc at all (it uses only Python's C API;
#: seen with CPython 3.9 on glibc), so ``--plat auto`` cannot tell the wheel's family.
NO_LIBC = "couldn't detect libc for python extension"


def repair_command(auditwheel: Sequence[str], wheel: str, out_dir: str,
                   exclude: Sequence[str], *, image_plat: bool = False) -> list[str]:
    """``auditwheel repair``: with ``--plat auto`` (the most compatible tag the symbols
    allow), or with ``image_plat`` the builder image's own ``$AUDITWHEEL_PLAT`` (as the pypa
    images set it), which names the libc family for a wheel whose extensions name none;
    auditwheel still adds the more compatible tags the wheel satisfies."""
    cmd = [*auditwheel, "repair", "--plat", "auto", "-w", out_dir]
    for soname in exclude:
        cmd += ["--exclude", soname]
    if not image_plat:
        return [*cmd, wheel]
    cmd[cmd.index("auto")] = "$AUDITWHEEL_PLAT"
    script = ('[ -n "$AUDITWHEEL_PLAT" ] || { echo "the builder image sets no AUDITWHEEL_PLAT" '
              '>&2; exit 2; }; exec ' + " ".join(shlex.quote(c) if c != "$AUDITWHEEL_PLAT"
                                                  else '"$AUDITWHEEL_PLAT"' for c in cmd)
              + " " + shlex.quote(wheel))
    return ["sh", "-c", script]


def show_command(auditwheel: Sequence[str], wheel: str) -> list[str]:
    return [*auditwheel, "show", "--json", wheel]


#: Runs with the interpreter that has auditwheel: ``repair`` then ``show --json`` of the same
#: wheel through auditwheel's own ``main``, as its script would run each, in one process:
#: auditwheel's start-up (its imports, a quarter of a second here, seconds under emulation)
#: is paid once, not twice. repair's output comes as it would; show's output and status
#: follow on one last line after ``_SHOWN``; the exit status is repair's.
SHOW_AND_REPAIR = r"""
import contextlib, io, json, sys, traceback
repair, show = json.loads(sys.argv[1])
from auditwheel.main import main

def run(argv):
    sys.argv = ["auditwheel", *argv]
    try:
        code = main()
    except SystemExit as e:
        code = e.code
    except Exception:
        traceback.print_exc()
        code = 1
    if code is None:
        return 0
    return code if isinstance(code, int) else 1

code = run(repair)
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    shown = run(show)
sys.stderr.flush()
print("\n" + %r + json.dumps({"code": shown, "output": buf.getvalue()}), flush=True)
sys.exit(code)
"""
_SHOWN = "wheelhouse-auditwheel-show: "
SHOW_AND_REPAIR = SHOW_AND_REPAIR % _SHOWN


def show_and_repair_command(python: str, wheel: str, out_dir: str,
                            exclude: Sequence[str]) -> list[str]:
    """``repair_command`` and ``show_command`` of ``wheel`` in one process of ``python``."""
    repair = repair_command((), wheel, out_dir, exclude)
    return [python, "-c", SHOW_AND_REPAIR, json.dumps([repair, ["show", "--json", wheel]])]


def split_shown(output: str) -> tuple[str, int, str] | None:
    """(repair's output, show's status, show's output) from ``show_and_repair_command``'s
    output; None when it did not get as far as saying (the interpreter cannot import
    auditwheel, or it was killed)."""
    at = output.rfind(_SHOWN)
    if at < 0 or (at > 0 and output[at - 1] != "\n"):
        return None
    line = output[at + len(_SHOWN):].split("\n", 1)[0]
    try:
        said = json.loads(line)
    except ValueError:
        return None
    if not isinstance(said, dict) or not isinstance(said.get("output"), str):
        return None
    code = said.get("code")
    before = output[:at].rstrip("\n")
    return (before + "\n" if before else "", code if isinstance(code, int) else 1,
            said["output"])


def grafted_libraries(wheel: Path) -> tuple[str, ...]:
    with zipfile.ZipFile(wheel) as zf:
        return tuple(sorted(
            n for n in zf.namelist()
            if ".libs/" in n and not n.endswith("/")
        ))


def check_fits(wheel: Path, target: Target) -> None:
    """Refuse a repaired wheel the target's installer would not take, saying which part of
    its tags is wrong: the interpreter or ABI (built by another Python), or the platform."""
    _name, _ver, _build, tags = parse_wheel_filename(wheel.name)
    if target.tag_rank(frozenset(tags)) is None:
        platforms = set(target.platform_tags())
        got = ", ".join(sorted({t.platform for t in tags}))
        if any(t.platform in platforms for t in tags):
            pythons = ", ".join(sorted({f"{t.interpreter}-{t.abi}" for t in tags}))
            raise BuildFailed(
                f"the wheel {wheel.name} is for {pythons}, which target {target} "
                f"({target.python_description}) cannot install: it was built by another "
                "interpreter than the target's")
        raise BuildFailed(
            f"the repaired wheel {wheel.name} is tagged {got}, which target {target} "
            f"(up to {target.policy_tag}) does not accept: it was built against a newer libc "
            "than the target allows"
        )


def parse_show(output: str) -> dict[str, Any]:
    """auditwheel show --json output, or the raw text where JSON is not available."""
    start = output.find("{")
    if start >= 0:
        try:
            loaded, _end = json.JSONDecoder().raw_decode(output[start:])
            if isinstance(loaded, dict):
                return loaded
        except ValueError:
            pass
    return {"text": output.strip()}
