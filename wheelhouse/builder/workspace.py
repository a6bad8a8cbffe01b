"""The workspace of container builds: the sdist, its build requirements and the driver go into
the container in one tar through its agent, unpacked at a fixed path per sdist, and wheels come
back as plain files; nothing is mounted."""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator
from pathlib import Path

from wheelhouse.builder.buildenv import DRIVER, ENVS_DIR
from wheelhouse.builder.recipe import Paths
from wheelhouse.builder.running import Container
from wheelhouse.builder.sdist import source_root
from wheelhouse.errors import BuildFailed, EngineError


class ContainerWorkspace:
    """Files are copied into the container and wheels copied out; nothing is mounted.

    A fixed path per sdist, so compilers record the same source paths in every build and the
    wheel comes out byte for byte the same (with SOURCE_DATE_EPOCH) on any runner. Builds of
    one sdist for one target never overlap (the executor holds a lock)."""

    def __init__(self, container: Container, python: str, envs: str = ENVS_DIR) -> None:
        self.container = container
        self.python = python
        self.envs = envs
        self._copied: set[str] = set()

    @contextlib.contextmanager
    def open(self, sdist: Path, build_deps: Path | None) -> Iterator[Paths]:
        stem = sdist.name.removesuffix(".tar.gz").removesuffix(".zip")
        job = f"/wheelhouse/builder/{stem}"
        q = shlex.quote(job)
        # One exec sends the sdist and the build requirements' wheels and unpacks the sdist.
        files: dict[str, Path | bytes] = {sdist.name: sdist}
        if build_deps is not None:
            files |= {f"deps/{w.name}": w for w in sorted(build_deps.glob("*.whl"))}
            files["driver.py"] = DRIVER.encode()
        archive = shlex.quote(f"{job}/{sdist.name}")
        unpack = (f"{self.python} -m zipfile -e {archive} {q}/src"
                  if sdist.name.endswith(".zip") else f"tar -xf {archive} -C {q}/src")
        try:
            self.container.send(files, f"rm -rf {q} && mkdir -p {q}/src {q}/deps {q}/dist "
                                       f"{q}/repaired && tar -xf - -C {q} && {{ {unpack} || "
                                       f"{{ echo 'wheelhouse: cannot unpack' >&2; exit 97; }}; }}")
            self._copied |= {w.name for w in (build_deps.glob("*.whl") if build_deps else ())}
        except EngineError as e:
            if "wheelhouse: cannot unpack" in str(e):
                raise BuildFailed(f"{sdist.name} cannot be unpacked in the container") from None
            raise
        try:
            root = source_root(sdist)
            yield Paths(source=f"{job}/src/{root}" if root else f"{job}/src",
                        deps=f"{job}/deps" if build_deps is not None else None,
                        dist=f"{job}/dist", repaired=f"{job}/repaired",
                        driver=f"{job}/driver.py" if build_deps is not None else None,
                        envs=self.envs)
        finally:
            with contextlib.suppress(EngineError):
                self.container.exec_output(f"rm -rf {q}")

    def add_deps(self, wheels: Path, paths: Paths) -> None:
        assert paths.deps is not None
        new = {w.name: w for w in sorted(wheels.glob("*.whl")) if w.name not in self._copied}
        if new:
            self.container.send(new, f"tar -xf - -C {shlex.quote(paths.deps)}")
            self._copied |= set(new)

    def collect(self, directory: str, into: Path) -> list[Path]:
        self.container.copy_out(directory, into)
        return sorted(into.glob("*.whl"))
