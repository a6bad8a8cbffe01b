"""The one build recipe: sdist → ``python -m build --wheel`` → exactly one wheel → pure, or
``auditwheel show`` + ``repair`` → exactly one repaired wheel that fits the target.

It runs through a ``Runner`` (this machine, or ``exec`` in a container) over a ``Workspace``
(where the build's files are as the runner sees them, and how wheels come back to this
machine), so the local and the container builder share every step and every error message.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from wheelhouse.builder.buildenv import ENVS_DIR, driver_command
from wheelhouse.builder.repair import (
    NO_LIBC,
    check_fits,
    grafted_libraries,
    is_pure,
    parse_show,
    repair_command,
    show_and_repair_command,
    show_command,
    split_shown,
)
from wheelhouse.builder.runner import Completed, Runner
from wheelhouse.errors import BuildFailed
from wheelhouse.platforms import platforms
from wheelhouse.settings import PackageSettings
from wheelhouse.targets import Target


@dataclass(frozen=True, kw_only=True)
class BuiltWheel:
    wheel: Path
    grafted: tuple[str, ...] = ()
    report: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    #: where the recipe's time went: ``build`` (the backend), ``repair`` (auditwheel).
    phases: Mapping[str, float] = field(default_factory=dict)
    #: the container engine that built it (``default`` or the one named for the target;
    #: None: built on this machine without one).
    engine: str | None = None


@dataclass(frozen=True, kw_only=True)
class Paths:
    """Where the build's files are, as the runner sees them."""

    source: str
    #: a directory of wheels for the build requirements (hermetic builds), or None.
    deps: str | None
    dist: str
    repaired: str
    #: ``buildenv.DRIVER`` as a file the runner can run, when the workspace keeps build
    #: environments shared by builds with the same requirement wheels; None: every build
    #: makes its own (``python -m build``).
    driver: str | None = None
    #: where the driver keeps its build environments (``buildenv.ENVS_DIR`` in a container;
    #: in the compile cache's volume when that is on, so they outlive the container).
    envs: str = ENVS_DIR


class Workspace(Protocol):
    def open(self, sdist: Path, build_deps: Path | None) -> contextlib.AbstractContextManager[
            Paths]:
        """Unpack the sdist (and place the build requirements) where the runner builds."""
        ...

    def collect(self, directory: str, into: Path) -> list[Path]:
        """The wheels in the runner's ``directory``, as files on this machine under ``into``."""
        ...

    def add_deps(self, wheels: Path, paths: Paths) -> None:
        """Put the wheels in ``wheels`` beside the build requirements in ``paths.deps``."""
        ...


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """One build's fixed inputs besides the sdist."""

    runner: Runner
    workspace: Workspace
    #: the interpreter that builds, as the runner sees it.
    python: str
    #: the command that runs auditwheel there (its own environment needs Python >= 3.10,
    #: so it is not the target's interpreter on old targets).
    auditwheel: Sequence[str]
    env: Mapping[str, str]
    #: where the build runs, for messages ("in IMAGE"; "" for this machine).
    where: str = ""
    #: the interpreter auditwheel runs with, when known: show and repair then share one
    #: process (``repair.show_and_repair_command``); None: one process each.
    auditwheel_python: str | None = None


#: Requirements a build may ask for beyond ``[build-system] requires`` (a backend's
#: ``get_requires_for_build_wheel``: setuptools' ``setup_requires``, scikit-build-core's
#: cmake) are met in rounds: at most this many.
_ROUNDS = 3
#: pip's words when a build asks for a requirement that is not among the wheels it was given.
_UNMET = re.compile(r"Could not find a version that satisfies the requirement (\S+)")

#: Resolves build requirements for the target and returns a directory of wheels for them.
MoreRequirements = Callable[[Sequence[str]], Path]


def build_wheel(
    recipe: Recipe, sdist: Path, *, target: Target, package: PackageSettings, work_dir: Path,
    log: IO[str], timeout: float, build_deps: Path | None = None,
    more_requirements: MoreRequirements | None = None,
    compiling: contextlib.AbstractContextManager[None] | None = None,
) -> BuiltWheel:
    """Build and repair ``sdist`` for ``target``; the wheel is returned inside ``work_dir``.

    With ``build_deps`` (a directory of wheels for the build requirements) the build installs
    its requirements from there only; without, from whatever index the environment names. A
    hermetic build whose backend asks for more is given them through ``more_requirements``
    and run again. ``compiling`` is held while the backend runs (the run's compile slots:
    unpacking, the repair and copies happen outside it). Raises BuildFailed with the reason;
    the log has the details.
    """
    with recipe.workspace.open(sdist, build_deps) as paths:
        # The same timestamp for every build, so two builds of one sdist give the same bytes.
        epoch = str(platforms().source_date_epoch)
        env = {**recipe.env, **package.environment, "SOURCE_DATE_EPOCH": epoch}
        if paths.deps is not None:
            env |= {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": paths.deps}
        return _build(recipe, paths, env, sdist=sdist, target=target, package=package,
                      work_dir=work_dir, log=log, timeout=timeout,
                      more=more_requirements if paths.deps is not None else None,
                      compiling=compiling or contextlib.nullcontext())


def _run_build(recipe: Recipe, paths: Paths, env: Mapping[str, str], *, log: IO[str],
               timeout: float, more: MoreRequirements | None) -> Completed:
    asked: set[str] = set()
    for _round in range(_ROUNDS):
        start = _log_size(log)
        if paths.driver is not None and paths.deps is not None:
            cmd = driver_command(recipe.python, paths.driver, source=paths.source,
                                 outdir=paths.dist, deps=paths.deps, envs=paths.envs)
        else:
            cmd = [recipe.python, "-m", "build", "--wheel", "--outdir", paths.dist,
                   paths.source]
        done = recipe.runner.run(cmd, log=log, env=env, timeout=timeout)
        if done.returncode == 0 or done.timed_out or more is None:
            return done
        unmet = sorted(set(_UNMET.findall(_log_since(log, start) or done.output)) - asked)
        if not unmet:
            return done
        asked |= set(unmet)
        log.write(f"# wheelhouse: the build asked for {', '.join(unmet)}; resolving it for the "
                  "target into the store and building again\n")
        log.flush()
        recipe.workspace.add_deps(more(unmet), paths)
    return done


def _build(
    recipe: Recipe, paths: Paths, env: Mapping[str, str], *, sdist: Path, target: Target,
    package: PackageSettings, work_dir: Path, log: IO[str], timeout: float,
    more: MoreRequirements | None, compiling: contextlib.AbstractContextManager[None],
) -> BuiltWheel:
    where = f" {recipe.where}" if recipe.where else ""
    with compiling:
        done = _run_build(recipe, paths, env, log=log, timeout=timeout, more=more)
    if done.timed_out:
        raise BuildFailed(f"the build did not finish within {timeout:.0f} s", timed_out=True)
    if done.returncode != 0:
        raise BuildFailed(f"the build failed{where} (exit {done.returncode})",
                          killed=killed_by_signal(done.returncode))
    built = _one(recipe.workspace.collect(paths.dist, work_dir / "dist"), "the build")
    if is_pure(built):
        log.write(f"{built.name} is pure Python; no repair needed\n")
        return BuiltWheel(wheel=built, seconds=done.seconds, phases={"build": done.seconds})
    inner = f"{paths.dist}/{built.name}"
    repair, shown = _show_and_repair(recipe, inner, paths, env, package=package, log=log,
                                     timeout=timeout)
    if repair.returncode != 0 and NO_LIBC in repair.output:
        log.write(repair.output + "# wheelhouse: no extension names its libc; repairing with "
                  "the builder image's AUDITWHEEL_PLAT\n")
        repair = recipe.runner.run(
            repair_command(recipe.auditwheel, inner, paths.repaired,
                           package.auditwheel_exclude, image_plat=True),
            log=None, env=env, timeout=timeout,
        )
    log.write(f"$ {' '.join(repair_command(recipe.auditwheel, inner, paths.repaired, ()))}\n"
              + repair.output + ("\n" if repair.output and not repair.output.endswith("\n")
                                 else ""))
    if repair.timed_out:
        raise BuildFailed("auditwheel repair did not finish within the time limit",
                          timed_out=True)
    if repair.returncode != 0:
        raise BuildFailed(f"auditwheel repair failed (exit {repair.returncode}); see the log",
                          killed=killed_by_signal(repair.returncode))
    broken = removed_from_programs(repair.output)
    if broken:
        raise BuildFailed(
            f"auditwheel removed {broken[0][0]} from {broken[0][1]}, a program that cannot run "
            "without it; the repaired wheel would not work")
    repaired = _one(recipe.workspace.collect(paths.repaired, work_dir / "repaired"),
                    "auditwheel repair")
    check_fits(repaired, target)
    return BuiltWheel(wheel=repaired, grafted=grafted_libraries(repaired),
                      report=parse_show(shown.output), seconds=done.seconds,
                      phases={"build": done.seconds,
                              "repair": max(shown.seconds, repair.seconds)})


def _show_and_repair(recipe: Recipe, inner: str, paths: Paths, env: Mapping[str, str], *,
                     package: PackageSettings, log: IO[str],
                     timeout: float) -> tuple[Completed, Completed]:
    """``auditwheel repair`` of the built wheel, and ``auditwheel show`` of it for the
    provenance: in one process where auditwheel's interpreter is known (its start-up paid
    once), else side by side (they read the same wheel and write nothing in common)."""
    if recipe.auditwheel_python is not None:
        both = recipe.runner.run(
            show_and_repair_command(recipe.auditwheel_python, inner, paths.repaired,
                                    package.auditwheel_exclude),
            log=None, env=env, timeout=timeout)
        split = split_shown(both.output)
        if split is not None or both.timed_out:
            said, code, output = split or (both.output, 1, "")
            return (Completed(returncode=both.returncode, timed_out=both.timed_out,
                              seconds=both.seconds, output=said),
                    Completed(returncode=code, timed_out=False, seconds=0.0, output=output))
        log.write(f"# wheelhouse: {recipe.auditwheel_python} could not run auditwheel "
                  f"(exit {both.returncode}); running {' '.join(recipe.auditwheel)}\n"
                  + _tail(both.output))
    with ThreadPoolExecutor(max_workers=1) as aside:
        showing = aside.submit(recipe.runner.run, show_command(recipe.auditwheel, inner),
                               log=None, env=env, timeout=timeout)
        repair = recipe.runner.run(
            repair_command(recipe.auditwheel, inner, paths.repaired,
                           package.auditwheel_exclude),
            log=None, env=env, timeout=timeout,
        )
        return repair, showing.result()


def _tail(text: str, lines: int = 10) -> str:
    kept = text.strip().splitlines()[-lines:]
    return "".join(f"#   {ln}\n" for ln in kept)


def _one(wheels: list[Path], what: str) -> Path:
    if len(wheels) != 1:
        raise BuildFailed(f"{what} produced {len(wheels)} wheels, expected one")
    return wheels[0]


_REMOVED = re.compile(r"Removing (libpython[\w.]*) dependency from (\S+?)\.? Linking")


def removed_from_programs(output: str) -> list[tuple[str, str]]:
    """(library, file) for each libpython auditwheel removed from something that is not an
    extension module: harmless for an extension (the interpreter provides those symbols),
    fatal for a program, which then cannot start (uwsgi's binary, for one)."""
    return [(m[1], m[2]) for m in _REMOVED.finditer(output) if not m[2].endswith(".so")]


def _log_size(log: IO[str]) -> int | None:
    try:
        log.flush()
        return os.fstat(log.fileno()).st_size
    except (OSError, ValueError, io.UnsupportedOperation):
        return None


def _log_since(log: IO[str], start: int | None) -> str:
    """What the runner wrote to the log file since ``start`` (the child writes to the file
    descriptor, so it is read back from the file, not from the Python object)."""
    if start is None:
        return ""
    try:
        log.flush()
        with open(log.name, "rb") as f:
            f.seek(start)
            return f.read().decode("utf-8", "replace")
    except (OSError, AttributeError, TypeError):
        return ""


def killed_by_signal(returncode: int) -> bool:
    """Whether a command's status says a signal stopped it: negative here, 128 + SIGKILL or
    SIGTERM (what ``docker exec`` and shells report) in a container."""
    return returncode < 0 or returncode in (128 + 9, 128 + 15)
