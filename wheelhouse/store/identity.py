"""A file's identity in the store: the same filename, or the same project, kind, tags and
version (PEP 440 equality) under another spelling or build tag, is one file; publishing it
again with the same bytes changes nothing, with other bytes is a conflict."""

from __future__ import annotations

from wheelhouse.errors import PublishConflict
from wheelhouse.store import catalogue, shadowing
from wheelhouse.store.db import Tx as Transaction
from wheelhouse.store.model import Origin, PublishResult, PublishStatus, StoredFile


def check(tx: Transaction, stored: StoredFile) -> PublishResult | None:
    """IDENTICAL if ``stored`` is already published; raises PublishConflict if its identity
    is published with other bytes (or it would shadow a published file); None: go on."""
    existing = catalogue.existing(tx, stored.filename)
    if existing is None:
        existing = catalogue.same_release(tx, stored)
    if existing is not None:
        if existing.sha256 == stored.sha256:
            return PublishResult(status=PublishStatus.IDENTICAL, file=existing)
        raise conflict(stored, existing)
    if stored.origin is Origin.UPLOADED:
        shadow = shadowing.shadowed(stored, catalogue.release_files(tx, stored))
        if shadow is not None:
            raise shadow_conflict(stored, shadow)
    return None


def conflict(offered: StoredFile, existing: StoredFile) -> PublishConflict:
    if existing.filename == offered.filename:
        what = f"{offered.filename} is already published with different bytes"
    else:
        what = (f"{offered.filename} is the same release as the published "
                f"{existing.filename} (project {offered.project}, version "
                f"{existing.version}, the same tags), with different bytes")
    return PublishConflict(
        f"{what} (sha256 {existing.sha256[:12]}…, offered {offered.sha256[:12]}…)",
        hint="published files never change; publish a new version instead",
        existing=existing,
    )


def shadow_conflict(offered: StoredFile, shadow: shadowing.Shadow) -> PublishConflict:
    existing = shadow.existing
    return PublishConflict(
        f"{offered.filename} would shadow the published {existing.filename}: on "
        f"{shadow.environment} installers would pick it instead, so =={existing.version} "
        "would install other files than it does today",
        hint="a release may gain wheels only for Pythons and platforms its wheels do not "
        "cover yet; publish a new version instead",
        existing=existing,
    )
