"""Turning an sdist into a repaired wheel for one target.

A ``Builder`` knows where builds for a target run (this machine, or a container of the target's
platform) and does the build and the auditwheel repair there. The orchestration of a whole
requirements set (what to fetch, what to build, publishing) lives in ``wheelhouse.pipeline``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from wheelhouse.config import PackageSettings
from wheelhouse.targets import Target


class BuildFailed(Exception):
    """A build did not produce a fitting wheel; the message says why, the log says more."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True, kw_only=True)
class BuiltWheel:
    wheel: Path
    grafted: tuple[str, ...] = ()
    report: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


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
        """Build and repair; return a wheel inside ``work_dir``, or raise BuildFailed.

        ``build_deps`` is a directory of wheels that satisfy the sdist's build requirements,
        for builders whose builds have no index to install them from.
        """
        ...

    def close(self) -> None:
        """Release what the builder holds (containers)."""
        ...
