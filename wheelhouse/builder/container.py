"""Building inside a container of the target's platform (Docker, or podman).

One long-lived container per target serves a whole batch: sdists and build-dependency wheels
are copied in, ``python -m build`` and ``auditwheel repair`` both run inside (auditwheel can
only graft libraries it can find, so repair must happen where they are), and the wheel is
copied out. Nothing of the host is mounted except, read-only, a CA bundle when one is given.
The container is always removed. Foreign architectures run through binfmt_misc/QEMU.

By default the container has no network (``--network none``): build dependencies are wheels
from our own store, copied in and used with ``--no-index``, and system packages are installed
beforehand into a derived image (``derived``). ``network = "host"`` lets builds reach an index
(with the CA bundle and proxy settings passed in) for users who allow it.

Each new wheel is then checked in a consumer container of the platform (``check``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from wheelhouse.builder import ccache
from wheelhouse.builder.agent import build_zygotes, pip_zygote
from wheelhouse.builder.buildenv import ENVS_DIR
from wheelhouse.builder.derived import ensure_derived
from wheelhouse.builder.engine import (
    CONTAINER_CA,
    ContainerOptions,
    check_emulation,
    prune_stopped,
)
from wheelhouse.builder.engines import Engines
from wheelhouse.builder.interpreters import Found, probe_script
from wheelhouse.builder.interpreters import choose as choose_interpreter
from wheelhouse.builder.recipe import BuiltWheel, MoreRequirements, Recipe, build_wheel
from wheelhouse.builder.running import Container, ContainerRunner
from wheelhouse.builder.smoke import (
    CHECK_SCRIPT,
    CheckPaths,
    CheckResult,
    check_wheel,
    wheel_modules,
)
from wheelhouse.builder.workspace import ContainerWorkspace
from wheelhouse.errors import BuildFailed, EngineError
from wheelhouse.settings import PackageSettings
from wheelhouse.targets import Target

#: proxy variables passed through to containers when set on the host.
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


@dataclass(frozen=True, kw_only=True)
class _Running:
    container: Container
    found: Found
    #: what builds in it run with besides the common environment (the compile cache).
    env: Mapping[str, str] = field(default_factory=dict)
    #: where its builds keep their build environments: in the cache volume when one is
    #: mounted (with or without ccache in the image), else in the container.
    envs: str = ENVS_DIR

    @property
    def python(self) -> str:
        return self.found.interpreter.path


class ContainerBuilder:
    """Builds for targets whose platform maps to a builder image (``images`` in the config),
    and checks the results in a consumer image of the same platform (``consumer_images``),
    all on one engine (``options.engine``; ``engines`` loads images it lacks)."""

    def __init__(self, *, images: Mapping[str, str], consumer_images: Mapping[str, str],
                 options: ContainerOptions, engines: Engines | None = None) -> None:
        self.images = dict(images)
        self.consumer_images = dict(consumer_images)
        self.options = options
        self.engines = engines or Engines(options.engine.program, {})
        self.name = options.engine.program
        self.hermetic = options.network == "none"
        self._running: dict[tuple[str, str, str], _Running] = {}
        self._ids: dict[str, str] = {}
        self._guard = threading.Lock()
        #: one lock per container being started, so different containers start side by
        #: side (a target's consumer container while its builder container starts).
        self._starting: dict[tuple[str, str, str], threading.Lock] = {}
        self._pruned = False
        self._prune_guard = threading.Lock()
        self._preparing: dict[str, list[threading.Thread]] = {}
        #: counts ``close`` calls: a container whose start outlived one is not kept.
        self._generation = 0

    def image_for(self, target: Target) -> str | None:
        return self.images.get(target.platform)

    def describe(self, target: Target) -> str:
        engine = self.options.engine
        how = f"{engine.program} {self.image_for(target) or '(no image)'}"
        if not engine.is_default:
            how += f" on the engine {engine.name}"
        arch = self.engines.answered_arch(engine)
        if arch is None:
            return how
        if target.arch != arch:
            how += f", under QEMU emulation on {arch}"
        elif not engine.is_default:
            how += f", native {arch}"
        return how

    def identity(self, target: Target) -> str:
        image = self.image_for(target)
        if image is None:
            return "container:none"
        return (f"{self.options.engine.program}:{image}@{self._image_id(image)}:"
                f"{target.abi_tag}")

    def _image_id(self, image: str) -> str:
        if image not in self._ids:
            self.engines.arch(self.options.engine)  # it answers, or the error names it
            self._ids[image] = self.engines.ensure_image(self.options.engine, image)
        return self._ids[image]

    def prepare(self, target: Target, settings: PackageSettings) -> None:
        """Start the containers a build for ``target`` with ``settings`` will need (the
        builder's, unless its system packages need a derived image; the consumer's, unless
        the check is off), in the background, once per target: they start while the sdist
        downloads and its build requirements are resolved, and the consumer container (its
        pip imported) is ready when the first wheel is. A start that fails here is tried
        again, and reported, by the build or check that needs it."""
        wanted = []
        image = self.image_for(target)
        if image is not None and not settings.system_packages:
            wanted.append(("build", image))
        consumer = self.consumer_image(target)
        if consumer and settings.test != "":
            wanted.append(("check", consumer))
        with self._guard:
            if target.identifier in self._preparing:
                return
            threads = [threading.Thread(target=self._start_quietly, args=(role, target, name),
                                        name=f"prepare-{role}-{target.identifier}",
                                        daemon=True) for role, name in wanted]
            self._preparing[target.identifier] = threads
            for thread in threads:  # started here, so close() never joins an unstarted one
                thread.start()

    def consumer_image(self, target: Target) -> str:
        """The consumer image configured for the target's platform ("{python}" is the
        target's X.Y), else its family's default; "" when there is none."""
        image = self.consumer_images.get(target.platform, target.default_consumer_image)
        return image.replace("{python}", target.version_string)

    def _start_quietly(self, role: str, target: Target, image: str) -> None:
        # Whatever stops it here stops the build or check that needs it, which says so.
        with contextlib.suppress(Exception):
            self._start(role, target, image)

    def close(self) -> None:
        with self._guard:
            self._generation += 1
            preparing = [t for threads in self._preparing.values() for t in threads]
            self._preparing.clear()
        # A container still starting is registered, then closed below, or closed by its
        # start seeing the builder closed.
        for thread in preparing:
            thread.join()
        with self._guard:
            running = list(self._running.values())
            self._running.clear()
        for r in running:
            r.container.close()

    def cache_stats(self) -> ccache.Stats:
        """The compile cache's hits and misses in this run's builder containers so far."""
        with self._guard:
            running = [r for r in self._running.values() if r.env]
        total = ccache.Stats()
        for r in running:
            with contextlib.suppress(EngineError):
                total = total + ccache.parse_stats(r.container.exec_output(ccache.STATS))
        return total

    def _start(self, role: str, target: Target, image: str) -> _Running:
        """The running container of ``image`` for ``target``, started on first use."""
        key = (role, target.identifier, image)
        with self._guard:
            found = self._running.get(key)
            if found is not None:
                return found
            starting = self._starting.setdefault(key, threading.Lock())
            generation = self._generation
        with starting:
            with self._guard:
                found = self._running.get(key)
            if found is not None:
                return found
            running = self._launch(role, target, image)
            with self._guard:
                if self._generation == generation:
                    self._running[key] = running
                    return running
            running.container.close()
            raise EngineError(f"the run ended while {running.container.name} started")

    def _launch(self, role: str, target: Target, image: str) -> _Running:
        engine = self.options.engine
        if engine.on_this_machine:  # another machine's emulation is its own business
            check_emulation(target.arch, target.binfmt_entry)
        self._image_id(image)
        with self._prune_guard:
            # Once per run, before its first container: containers of runs that are gone.
            if not self._pruned:
                prune_stopped(engine)
                self._pruned = True
        cache = role == "build" and self.options.compile_cache
        volumes = [f"{ccache.volume(self._image_id(image))}:{ccache.CACHE_DIR}"] \
            if cache else []
        container = Container(image=image, options=self.options,
                              label=f"{role}-{target.identifier.replace('_', '-')}",
                              volumes=volumes)
        try:
            python = self._find_python(container, image, target)
            # The consumer check installs each wheel with pip, a build runs its driver and
            # auditwheel: their imports once per container, not once per pin.
            here = python.interpreter.path
            container.start_agent(here, zygotes=[pip_zygote(here)] if role == "check" else
                                  build_zygotes(here, python.auditwheel_python))
            path = (ccache.parse_setup(container.exec_output(ccache.setup_script()))
                    if cache else None)
            running = _Running(container=container, found=python,
                               env=ccache.environment(path) if path else {},
                               envs=ccache.ENVS_DIR if cache else ENVS_DIR)
        except BaseException:
            container.close()
            raise
        return running

    def _find_python(self, container: Container, image: str, target: Target) -> Found:
        arch = container.exec_output("uname -m").strip()
        if arch != target.arch:
            raise EngineError(
                f"the image {image} runs as {arch}, but {target} needs {target.arch}",
                hint=f"configure an {target.arch} image for {target.platform}",
            )
        # Only the target's own build: its version and ABI are asked, never assumed.
        output = container.exec_output(probe_script(target.python_candidates))
        return choose_interpreter(target, image, output)

    def python_version(self, target: Target) -> str | None:
        """The full version of the target's CPython in its builder image (``3.11.2``), asked
        once per container; None when it cannot be asked here (no image, no engine)."""
        image = self.image_for(target)
        if image is None:
            return None
        try:
            return self._start("build", target, image).found.interpreter.version
        except EngineError:
            return None

    def _forget(self, target: Target) -> None:
        with self._guard:
            keys = [k for k in self._running if k[1] == target.identifier]
            gone = [self._running.pop(k) for k in keys]
        for running in gone:
            running.container.close()

    def build(
        self, sdist: Path, *, target: Target, settings: PackageSettings, work_dir: Path,
        log: IO[str], timeout: float, build_deps: Path | None = None,
        more_requirements: MoreRequirements | None = None,
        compiling: AbstractContextManager[None] | None = None,
    ) -> BuiltWheel:
        base = self.image_for(target)
        if base is None:
            raise BuildFailed(f"no builder image is configured for {target.platform}")
        image = base
        if settings.system_packages:
            image = ensure_derived(self.options.engine, base, self._image_id(base),
                                   settings.system_packages, log=log,
                                   build_args=self.options.passthrough_env)
        running = self._start("build", target, image)
        runner = ContainerRunner(running.container, {**self._environment(), **running.env})
        try:
            recipe = Recipe(runner=runner, workspace=ContainerWorkspace(running.container,
                                                                         running.python,
                                                                         running.envs),
                            python=running.python, auditwheel=running.found.auditwheel,
                            auditwheel_python=running.found.auditwheel_python,
                            env=self._build_index_env(), where=f"in {image}")
            built = build_wheel(recipe, sdist, target=target, package=settings,
                                work_dir=work_dir, log=log, timeout=timeout,
                                build_deps=build_deps, more_requirements=more_requirements,
                                compiling=compiling)
            return dataclasses.replace(built, engine=self.options.engine.name)
        except BuildFailed as e:
            if e.timed_out:
                self._forget(target)  # a killed build may leave the container in any state
            raise
        except EngineError:
            self._forget(target)  # the next build starts a fresh container
            raise

    def check(
        self, target: Target, wheel: Path, *, requirement: str, available: Sequence[Path],
        test: str | None, timeout: float,
    ) -> CheckResult:
        """Install and check the wheel in a consumer container of the target's platform:
        no compiler, no network, nothing but what the wheels directory holds."""
        image = self.consumer_image(target)
        if not image:
            raise EngineError(
                f"no consumer image is configured for {target.platform}, so a new wheel "
                "cannot be checked where it will run",
                hint=f"set [tool.wheelhouse.consumer-images] {target.platform} = IMAGE (an "
                "image with the target's Python and no compiler)")
        running = self._start("check", target, image)
        job = f"/wheelhouse/check/{uuid.uuid4().hex[:12]}"
        try:
            files: dict[str, Path | bytes] = {f"wheels/{w.name}": w
                                              for w in [*available, wheel]}
            running.container.send({**files, "check.py": CHECK_SCRIPT.encode()},
                                   f"mkdir -p {job}/wheels && tar -xf - -C {job}")
            runner = ContainerRunner(running.container, {"PIP_NO_CACHE_DIR": "1"})
            return check_wheel(
                runner, python=running.python,
                paths=CheckPaths(wheels=f"{job}/wheels", site=f"{job}/site",
                                 script=f"{job}/check.py"),
                requirement=requirement, modules=wheel_modules(wheel), test=test,
                env={"PIP_DISABLE_PIP_VERSION_CHECK": "1"}, timeout=timeout)
        except EngineError:
            self._forget(target)
            raise
        finally:
            with contextlib.suppress(EngineError):
                running.container.exec_output(f"rm -rf {job}")

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


def passthrough_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    return {k: env[k] for k in PROXY_VARS if k in env}
