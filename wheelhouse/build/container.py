"""Building inside a container of the target's platform (Docker, or podman).

One long-lived container per target serves a whole batch: sdists and build-dependency wheels
are copied in, ``python -m build`` and ``auditwheel repair`` both run inside (auditwheel can
only graft libraries it can find, so repair must happen where they are), and the wheel is
copied out. Nothing of the host is mounted except, read-only, a CA bundle when one is given.
The container is always removed. Foreign architectures run through binfmt_misc/QEMU.

By default the container has no network (``--network none``): build dependencies are wheels
from our own store, copied in and used with ``--no-index``. ``network = "host"`` lets builds
reach an index (with the CA bundle and proxy settings passed in) for users who allow it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

from wheelhouse.build.engine import (
    CONTAINER_CA,
    Container,
    ContainerOptions,
    ContainerRunner,
    check_emulation,
    check_engine,
    host_arch,
    image_exists,
    image_label,
    prune_stopped,
)
from wheelhouse.build.errors import BuildFailed
from wheelhouse.build.recipe import BuiltWheel, Paths, Recipe, build_wheel
from wheelhouse.build.sdist import source_root
from wheelhouse.config import PackageSettings
from wheelhouse.errors import EngineError
from wheelhouse.targets import Target

#: proxy variables passed through to containers when set on the host.
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


_FIND_PYTHON = r"""
for p in /opt/python/cp{maj}{min}-cp{maj}{min}/bin/python {label} python{maj}.{min}; do
  if [ -n "$p" ] && command -v "$p" >/dev/null 2>&1; then command -v "$p"; exit 0; fi
done
exit 1
"""


class ContainerBuilder:
    """Builds for targets whose platform maps to a builder image (``images`` in the config)."""

    def __init__(self, *, images: Mapping[str, str], options: ContainerOptions) -> None:
        self.images = dict(images)
        self.options = options
        self.name = options.engine
        self.hermetic = options.network == "none"
        self._containers: dict[str, tuple[Container, str, set[str]]] = {}
        self._ids: dict[str, str] = {}
        self._guard = threading.Lock()

    def image_for(self, target: Target) -> str | None:
        return self.images.get(target.platform)

    def describe(self, target: Target) -> str:
        how = f"{self.options.engine} {self.image_for(target) or '(no image)'}"
        if target.arch != host_arch():
            how += f", under QEMU emulation on {host_arch()}"
        return how

    def identity(self, target: Target) -> str:
        image = self.image_for(target)
        if image is None:
            return "container:none"
        if image not in self._ids:
            check_engine(self.options.engine)
            self._ids[image] = image_exists(self.options.engine, image)
        return f"{self.options.engine}:{image}@{self._ids[image]}:{target.python_tag}"

    def close(self) -> None:
        with self._guard:
            for container, _python, _installed in self._containers.values():
                container.close()
            self._containers.clear()

    def _container(self, target: Target) -> tuple[Container, str, set[str]]:
        with self._guard:
            found = self._containers.get(target.identifier)
            if found is not None:
                return found
            image = self.image_for(target)
            if image is None:
                raise BuildFailed(f"no builder image is configured for {target.platform}")
            check_engine(self.options.engine)
            check_emulation(target.arch)
            image_exists(self.options.engine, image)
            prune_stopped(self.options.engine)
            container = Container(image=image, options=self.options,
                                  label=target.identifier.replace("_", "-"))
            try:
                arch = container.exec_output("uname -m").strip()
                if arch != target.arch:
                    raise EngineError(
                        f"the image {image} runs as {arch}, but {target} needs {target.arch}",
                        hint=f"configure an {target.arch} image for {target.platform}",
                    )
                label = image_label(self.options.engine, image, "org.wheelhouse.python")
                script = _FIND_PYTHON.format(maj=target.python[0], min=target.python[1],
                                             label=shlex.quote(label) if label else "")
                try:
                    python = container.exec_output(script).strip()
                except EngineError:
                    raise EngineError(
                        f"the image {image} has no CPython {target.version_string}",
                        hint="choose an image with that Python (pypa images keep them in "
                        "/opt/python), or label the image org.wheelhouse.python=/path",
                    ) from None
            except BaseException:
                container.close()
                raise
            self._containers[target.identifier] = (container, python, set())
            return self._containers[target.identifier]

    def _forget(self, target: Target) -> None:
        with self._guard:
            found = self._containers.pop(target.identifier, None)
        if found:
            found[0].close()

    def build(
        self, sdist: Path, *, target: Target, settings: PackageSettings, work_dir: Path,
        log: IO[str], timeout: float, build_deps: Path | None = None,
    ) -> BuiltWheel:
        container, python, installed = self._container(target)
        runner = ContainerRunner(container, self._environment())
        try:
            self._install_system_packages(runner, installed, settings, log, timeout)
            recipe = Recipe(runner=runner, workspace=ContainerWorkspace(container, python),
                            python=python, env=self._build_index_env(),
                            where=f"in {container.image}")
            return build_wheel(recipe, sdist, target=target, package=settings,
                               work_dir=work_dir, log=log, timeout=timeout,
                               build_deps=build_deps)
        except BuildFailed as e:
            if e.timed_out:
                self._forget(target)  # a killed build may leave the container in any state
            raise

    def _environment(self) -> dict[str, str]:
        env = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1",
               **self.options.passthrough_env}
        if self.options.ca_bundle is not None:
            env |= {"PIP_CERT": CONTAINER_CA, "SSL_CERT_FILE": CONTAINER_CA,
                    "REQUESTS_CA_BUNDLE": CONTAINER_CA}
        return env

    def _build_index_env(self) -> dict[str, str]:
        """Where a build with network finds its requirements (hermetic builds get a
        directory of wheels from the recipe instead)."""
        if self.options.network == "host" and self.options.index_url:
            return {"PIP_INDEX_URL": self.options.index_url}
        return {}

    def _install_system_packages(
        self, runner: ContainerRunner, installed: set[str], settings: PackageSettings,
        log: IO[str], timeout: float,
    ) -> None:
        missing = [p for p in settings.system_packages if p not in installed]
        if missing and self.options.network == "none":
            # Package managers need their repositories; a hermetic container has no network.
            raise BuildFailed(
                f"system packages {', '.join(missing)} cannot be installed: the builder "
                "container has no network (builder-network = \"none\"); set "
                "builder-network = \"host\", or use an image that already has them"
            )
        if missing:
            done = runner.run(["sh", "-c", _install_script(missing)], log=log, timeout=timeout)
            if done.returncode != 0:
                raise BuildFailed(f"installing system packages {missing} failed "
                                  f"(exit {done.returncode})", timed_out=done.timed_out)
            installed.update(missing)


class ContainerWorkspace:
    """Files are copied into the container and wheels copied out; nothing is mounted.

    A fixed path per sdist, so compilers record the same source paths in every build and the
    wheel comes out byte for byte the same (with SOURCE_DATE_EPOCH) on any runner. Builds of
    one sdist for one target never overlap (the executor holds a lock)."""

    def __init__(self, container: Container, python: str) -> None:
        self.container = container
        self.python = python

    @contextlib.contextmanager
    def open(self, sdist: Path, build_deps: Path | None) -> Iterator[Paths]:
        stem = sdist.name.removesuffix(".tar.gz").removesuffix(".zip")
        job = f"/wheelhouse/build/{stem}"
        q = shlex.quote(job)
        self.container.exec_output(f"rm -rf {q} && mkdir -p {q}/src {q}/deps {q}/dist "
                                   f"{q}/repaired")
        try:
            self.container.copy_in(sdist, f"{job}/{sdist.name}")
            if build_deps is not None:
                for wheel in sorted(build_deps.glob("*.whl")):
                    self.container.copy_in(wheel, f"{job}/deps/{wheel.name}")
            archive = shlex.quote(f"{job}/{sdist.name}")
            unpack = (f"{self.python} -m zipfile -e {archive} {q}/src"
                      if sdist.name.endswith(".zip") else f"tar -xf {archive} -C {q}/src")
            try:
                self.container.exec_output(unpack)
            except EngineError:
                raise BuildFailed(f"{sdist.name} cannot be unpacked in the container") from None
            root = source_root(sdist)
            yield Paths(source=f"{job}/src/{root}" if root else f"{job}/src",
                        deps=f"{job}/deps" if build_deps is not None else None,
                        dist=f"{job}/dist", repaired=f"{job}/repaired")
        finally:
            with contextlib.suppress(EngineError):
                self.container.exec_output(f"rm -rf {q}")

    def collect(self, directory: str, into: Path) -> list[Path]:
        self.container.copy_out(directory, into)
        return sorted(into.glob("*.whl"))


def _install_script(packages: Sequence[str]) -> str:
    """Install system packages with whichever package manager the image has."""
    pkgs = " ".join(shlex.quote(p) for p in packages)
    return (
        "set -e; "
        f"if command -v apk >/dev/null; then apk add --no-cache {pkgs}; "
        f"elif command -v dnf >/dev/null; then dnf install -y {pkgs}; "
        f"elif command -v yum >/dev/null; then yum install -y {pkgs}; "
        "elif command -v apt-get >/dev/null; then "
        f"DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {pkgs}; "
        "else echo 'no known package manager in the image' >&2; exit 1; fi"
    )


def passthrough_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    return {k: env[k] for k in PROXY_VARS if k in env}
