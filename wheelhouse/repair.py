"""Repairing built wheels with auditwheel, and checking the result fits its target.

auditwheel grafts shared libraries that are not on the policy's whitelist into the wheel and
gives it the most compatible manylinux/musllinux tag its symbols allow. It must run where the
libraries are (on the build machine or inside the build container), so the command is run
through the builder's Runner.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from packaging.utils import parse_wheel_filename

from wheelhouse.build.runner import Runner
from wheelhouse.targets import Target


class RepairFailed(Exception):
    """auditwheel could not repair the wheel, or the result does not fit the target."""


@dataclass(frozen=True, kw_only=True)
class RepairResult:
    wheel: Path
    #: files auditwheel grafted into ``<package>.libs/``.
    grafted: tuple[str, ...] = ()
    report: dict[str, Any] = field(default_factory=dict)


def is_pure(wheel: Path) -> bool:
    _name, _ver, _build, tags = parse_wheel_filename(wheel.name)
    return all(t.platform == "any" for t in tags)


def repair_command(python: str, wheel: str, out_dir: str, exclude: Sequence[str]) -> list[str]:
    cmd = [python, "-m", "auditwheel", "repair", "--plat", "auto", "-w", out_dir]
    for soname in exclude:
        cmd += ["--exclude", soname]
    return [*cmd, wheel]


def show_command(python: str, wheel: str) -> list[str]:
    return [python, "-m", "auditwheel", "show", "--json", wheel]


def grafted_libraries(wheel: Path) -> tuple[str, ...]:
    with zipfile.ZipFile(wheel) as zf:
        return tuple(sorted(
            n for n in zf.namelist()
            if ".libs/" in n and not n.endswith("/")
        ))


def check_fits(wheel: Path, target: Target) -> None:
    _name, _ver, _build, tags = parse_wheel_filename(wheel.name)
    if target.tag_rank(frozenset(tags)) is None:
        got = ", ".join(sorted({t.platform for t in tags}))
        raise RepairFailed(
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


def run_repair(
    runner: Runner, *, python: str, wheel: Path, out_dir: Path, target: Target,
    exclude: Sequence[str], log: IO[str], timeout: float | None,
    env: Mapping[str, str] | None = None,
    outputs: Callable[[], list[Path]] | None = None,
) -> RepairResult:
    """Repair ``wheel`` into ``out_dir`` where ``runner`` runs; the output must fit ``target``.

    ``outputs`` fetches the repaired wheels to this machine when the runner is elsewhere (a
    container); by default they are read from ``out_dir`` itself.
    """
    if outputs is None:
        out_dir.mkdir(parents=True, exist_ok=True)
    done = runner.run(repair_command(python, str(wheel), str(out_dir), exclude),
                      log=log, env=env, timeout=timeout)
    if done.timed_out:
        raise RepairFailed("auditwheel repair did not finish within the time limit")
    if done.returncode != 0:
        raise RepairFailed(f"auditwheel repair failed (exit {done.returncode}); see the log")
    wheels = outputs() if outputs is not None else sorted(out_dir.glob("*.whl"))
    if len(wheels) != 1:
        raise RepairFailed(f"auditwheel repair produced {len(wheels)} wheels, expected one")
    check_fits(wheels[0], target)
    return RepairResult(wheel=wheels[0], grafted=grafted_libraries(wheels[0]))
