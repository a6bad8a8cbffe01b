"""The dry run's step: what a step's dependencies are, from metadata alone (the store's, the
upstream's PEP 658 files or range reads, a local sdist's static PKG-INFO). No distribution file
is downloaded, nothing is built, the store is only read."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from wheelhouse.builder.sdist import static_metadata
from wheelhouse.errors import MetadataUnavailable
from wheelhouse.execute.outcome import Outcome, Status
from wheelhouse.plan.model import Action, Step
from wheelhouse.plan.resolver import requires_dist
from wheelhouse.simple.client import local_path
from wheelhouse.store.protocols import StoreReader

if TYPE_CHECKING:
    from wheelhouse.upstream import Upstream


class DryRun:
    """Runs a step as ``drive`` expects (``Executor.run``'s shape) and answers PLANNED."""

    def __init__(self, *, store: StoreReader, upstream: Callable[[], Upstream]) -> None:
        self._store = store
        #: asked on first use, so a plan met from the store opens no connection.
        self._upstream = upstream

    def __call__(self, step: Step) -> Outcome:
        metadata: bytes | None = None
        if step.action is Action.KEEP and step.stored is not None:
            metadata = self._store.read_metadata(step.stored)
        elif step.action is Action.FETCH and step.candidate is not None:
            try:
                metadata = self._upstream().metadata(step.candidate)
            except MetadataUnavailable:
                # Neither PEP 658 nor range requests: reading them would mean downloading the
                # file, which a dry run never does. Its dependencies stay unknown.
                metadata = None
        elif step.action is Action.BUILD and step.candidate is not None:
            local = local_path(step.candidate.url)
            metadata = static_metadata(local) if local is not None else None
        deps = tuple(requires_dist(metadata)) if metadata is not None else None
        return Outcome(step=step, status=Status.PLANNED, dependencies=deps)
