"""Builders: where a target's builds run. A ``Builder`` runs the one recipe (``recipe``) on this
machine (``local``) or in a container of the target's platform (``container``); ``Builders``
picks one per target. ``default_policies`` is what the configured images say they make, the
seam through which targets learn their platform's default policy (options never ask the
engine).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from wheelhouse.platforms import Policy
from wheelhouse.settings import PackageSettings, Settings
from wheelhouse.targets import Target

if TYPE_CHECKING:
    # Annotations only: a run with nothing to build never loads the recipe (40 ms of
    # imports, with auditwheel's ELF reader, in a no-op rerun of about 400 ms).
    from wheelhouse.builder.container import ContainerBuilder
    from wheelhouse.builder.engine import Engine
    from wheelhouse.builder.recipe import BuiltWheel, MoreRequirements
    from wheelhouse.builder.smoke import CheckResult


class Builder(Protocol):
    #: a short name for messages and provenance ("local", "docker").
    name: str
    #: True when builds cannot reach an index, so build requirements must be handed in.
    hermetic: bool

    def describe(self, target: Target) -> str:
        """How a build for ``target`` runs, for messages ("native", "docker IMAGE ...")."""
        ...

    def identity(self, target: Target) -> str:
        """What a build's result depends on besides the sdist (image id, python, tools)."""
        ...

    def python_version(self, target: Target) -> str | None:
        """The full version of the interpreter that builds for ``target`` (``3.11.2``), or
        None when it cannot be asked here."""
        ...

    def prepare(self, target: Target, settings: PackageSettings) -> None:
        """A build for ``target`` with ``settings`` is coming: start, in the background,
        what it and its check will need (containers). Returns at once; never raises."""
        ...

    def build(
        self, sdist: Path, *, target: Target, settings: PackageSettings, work_dir: Path,
        log: IO[str], timeout: float, build_deps: Path | None = None,
        more_requirements: MoreRequirements | None = None,
        compiling: AbstractContextManager[None] | None = None,
    ) -> BuiltWheel:
        """Build and repair; return a wheel inside ``work_dir``, or raise BuildFailed.

        ``build_deps`` is a directory of wheels that satisfy the sdist's build requirements,
        for builders whose builds have no index to install them from; ``more_requirements``
        resolves what the build's backend asks for beyond them. ``compiling`` is entered
        while the build's backend runs (the run's compile slots).
        """
        ...

    def check(
        self, target: Target, wheel: Path, *, requirement: str, available: Sequence[Path],
        test: str | None, timeout: float,
    ) -> CheckResult:
        """Install ``requirement`` from ``available`` wheels plus ``wheel`` into a clean
        environment of the target and check it works (see ``wheelhouse.builder.smoke``)."""
        ...

    def close(self) -> None:
        """Release what the builder holds (containers)."""
        ...


def default_policies(settings: Settings) -> dict[str, Policy]:
    """platform → the policy its configured image makes (its ``org.wheelhouse.policy`` label
    or ``AUDITWHEEL_POLICY``), for ``parse_target``'s defaults. Asks the default engine
    (``docker image inspect``) only when images are configured; never raises."""
    if not settings.images:
        return {}
    from wheelhouse.builder.engine import Engine, image_policies

    return image_policies(Engine(program=settings.engine), settings.images)


class Builders:
    """Which builder serves a target: an image configured for its platform, or an engine
    named for it → a container on its engine; else this machine when it is the target's
    platform; else the family's default image on the default engine."""

    def __init__(self, settings: Settings, *, build_env: Mapping[str, str],
                 index_url: str | None) -> None:
        from wheelhouse.builder.engines import Engines
        from wheelhouse.builder.local import LocalBuilder

        self.local = LocalBuilder(build_env=build_env)
        self.settings = settings
        self.index_url = index_url
        self.engines = Engines(settings.engine, settings.engines)
        self._containers: dict[Engine, ContainerBuilder] = {}
        self._guard = threading.Lock()

    def container(self, target: Target) -> Builder:
        # Targets side by side ask at once: one ContainerBuilder per engine, or the
        # containers of a second one would never be closed.
        with self._guard:
            return self._make_container(self.engines.for_target(target))

    def _make_container(self, engine: Engine) -> ContainerBuilder:
        if engine not in self._containers:
            from wheelhouse.builder.container import ContainerBuilder, passthrough_environment
            from wheelhouse.builder.engine import ContainerOptions

            s = self.settings
            options = ContainerOptions(
                engine=engine, network=s.builder_network, memory=s.builder_memory,
                cpus=s.builder_cpus, ca_bundle=s.ca_bundle,
                index_url=self.index_url if s.builder_network == "host" else None,
                passthrough_env=passthrough_environment(), compile_cache=s.compile_cache,
            )
            self._containers[engine] = ContainerBuilder(
                images=self.images(), consumer_images=dict(self.settings.consumer_images),
                options=options, engines=self.engines)
        return self._containers[engine]

    def images(self) -> dict[str, str]:
        from wheelhouse.targets import default_images

        return default_images() | dict(self.settings.images)

    def __call__(self, target: Target) -> Builder:
        from wheelhouse.builder.local import LocalBuilder

        if (target.platform not in self.settings.images and not self.engines.named(target)
                and LocalBuilder.can_build(target)):
            return self.local
        return self.container(target)

    def describe(self, target: Target) -> str:
        return self(target).describe(target)

    def engine(self, target: Target) -> str:
        """Which engine builds ``target`` and whether natively (``default, native``,
        ``ssh://arm, emulated on x86_64``); ``-`` for builds on this machine."""
        if self(target) is self.local:
            return "-"
        return self.engines.describe(target)

    def notes(self) -> list[str]:
        """What the run should say about its engines and caches: images loaded into other
        engines, the compile cache's hits."""
        cache = self.cache_summary()
        return [*self.engines.notes, *([cache] if cache else [])]

    def cache_summary(self) -> str | None:
        """The compile cache's hits in this run's builder containers, for the run's notes."""
        with self._guard:
            containers = list(self._containers.values())
        if not containers:
            return None
        total = containers[0].cache_stats()
        for more in containers[1:]:
            total = total + more.cache_stats()
        return total.summary()

    def default_policies(self) -> dict[str, Policy]:
        """See ``default_policies``: what this run's configured images make."""
        return default_policies(self.settings)

    def close(self) -> None:
        with self._guard:
            containers = list(self._containers.values())
        for container in containers:
            container.close()
