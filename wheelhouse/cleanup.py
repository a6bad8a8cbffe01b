"""What ``wheelhouse gc`` removes, and how much space that frees: staging debris (dead writers'
entries at once, loose ones older than a cutoff), build failures superseded by a later record
or by a published wheel, logs nothing refers to any more, and derived builder images whose
base is gone or that no build used for a number of days.

It never removes a published file, its metadata, or a log a published file's provenance or a
current failure names, and it takes the locks a running build takes: a dead writer's lock
before its debris, a release's build lock before its failures, a derived image's lock before
the image (and the engine refuses to remove an image a container uses)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wheelhouse.ledger import FILENAME as LEDGER_FILE
from wheelhouse.ledger import Failure, Ledger
from wheelhouse.store.staging import Staging
from wheelhouse.store.store import Store

if TYPE_CHECKING:
    from wheelhouse.builder.engine import Engine


@dataclass(frozen=True, kw_only=True)
class Item:
    """One thing gc removes (or would remove)."""

    #: ``staging``, ``failure``, ``log``, ``derived image``, ``build cache``.
    kind: str
    what: str
    size: int
    #: why it goes.
    why: str


@dataclass(frozen=True, kw_only=True)
class Collected:
    items: tuple[Item, ...]
    #: what was kept although it qualified (held by a running build, used by a container).
    kept: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return sum(i.size for i in self.items)


def collect(root: Path, *, older_than: float, image_days: float | None, engine: str,
            dry_run: bool) -> Collected:
    """Find (and unless ``dry_run``, remove) what gc removes in the store at ``root``;
    ``image_days``: derived images unused that long go too (None: leave images alone)."""
    items: list[Item] = []
    kept: list[str] = []
    items += _staging(root, older_than, dry_run)
    failures, logs = _ledger(root, older_than, dry_run)
    items += failures + logs
    if image_days is not None:
        images, held = _images(engine, image_days, dry_run)
        items += images
        kept += held
        # After the images: a derived image removed above leaves its cache behind.
        volumes, held = _cache_volumes(engine, dry_run,
                                       gone={i.what for i in images} if dry_run else set())
        items += volumes
        kept += held
    return Collected(items=tuple(items), kept=tuple(kept))


def _size(path: Path) -> int:
    try:
        if path.is_dir() and not path.is_symlink():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return path.lstat().st_size
    except OSError:
        return 0


def _staging(root: Path, older_than: float, dry_run: bool) -> list[Item]:
    found = Staging(root).debris(loose_max_age=older_than)
    items = [Item(kind="staging", what=str(p.relative_to(root)), size=_size(p),
                  why="left by a writer that is gone" if p.name.startswith("w")
                  else f"older than {older_than / 3600:g} h") for p in found]
    if not dry_run and found:
        Store(root).clean_staging(older_than)  # the store's own clean-up, with its locks
    return items


def _superseded(failures: list[Failure], store: Store | None) -> list[tuple[Failure, str]]:
    """Failures a later record of the same pin and target replaced, or whose pin has since
    been published for that target."""
    latest: dict[tuple[str, str, str], Failure] = {}
    for f in failures:
        key = (f.project, f.version, f.target)
        if key not in latest or f.time > latest[key].time:
            latest[key] = f
    built = set()
    if store is not None:
        for stored in store.files():
            target = stored.provenance.get("target")
            if target:
                built.add((str(stored.project), stored.version, str(target)))
    out = []
    for f in failures:
        key = (f.project, f.version, f.target)
        if latest[key] is not f:
            out.append((f, "a later build of the same pin and target replaced it"))
        elif (str(_canonical(f.project)), f.version, f.target) in built:
            out.append((f, "the pin has since been built and published for the target"))
    return out


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def _ledger(root: Path, older_than: float, dry_run: bool) -> tuple[list[Item], list[Item]]:
    if not (root / LEDGER_FILE).is_file() and not Store.exists(root):
        return [], []
    ledger = Ledger(root, readonly=dry_run)
    store = Store(root, readonly=True) if Store.exists(root) else None
    failures = ledger.failures()
    gone = _superseded(failures, store)
    items: list[Item] = []
    doomed_logs: set[str] = set()
    for failure, why in gone:
        items.append(Item(kind="failure", size=0, why=why,
                          what=f"{failure.project}=={failure.version} {failure.target}"))
        if failure.log:
            doomed_logs.add(failure.log)
    if not dry_run:
        for failure, _why in gone:
            _forget(ledger, failure)
    # Logs: those of removed failures, and old ones nothing names (a kept failure, or a
    # published file's provenance).
    named = {f.log for f in failures if f.log} - doomed_logs
    if store is not None:
        named |= {str(f.provenance.get("log")) for f in store.files()
                  if f.provenance.get("log")}
    cutoff = time.time() - older_than
    logs: list[Item] = []
    for path in _log_files(root):
        relative = str(path.relative_to(root))
        if relative in named:
            continue
        try:
            old = path.stat().st_mtime < cutoff
        except OSError:
            continue
        if relative in doomed_logs or old:
            logs.append(Item(kind="log", what=relative, size=_size(path),
                             why="its failure was superseded" if relative in doomed_logs
                             else "nothing refers to it"))
            if not dry_run:
                path.unlink(missing_ok=True)
    return items, logs


def _forget(ledger: Ledger, failure: Failure) -> None:
    """Remove a failure record under its release's build lock, as a build takes it."""
    from wheelhouse.targets import parse_target

    try:
        lock_name = parse_target(failure.target).policy_tag
    except Exception:  # a target this version no longer knows: no build can hold it
        ledger.clear_failure(failure.key)
        return
    with ledger.build_lock(failure.project, failure.version, lock_name):
        ledger.clear_failure(failure.key)


def _log_files(root: Path) -> Iterable[Path]:
    logs = root / "logs"
    if not logs.is_dir():
        return []
    return sorted(p for p in logs.rglob("*.log") if p.is_file())


def _images(program: str, days: float, dry_run: bool) -> tuple[list[Item], list[str]]:
    from wheelhouse.builder.derived import derived_images, remove_derived

    engine = _default_engine(program)
    if engine is None:
        return [], []
    items: list[Item] = []
    kept: list[str] = []
    cutoff = time.time() - days * 86400
    for image in derived_images(engine):
        if image.base_gone:
            why = "its base image is gone"
        elif image.last_used < cutoff:
            why = f"no build used it for {days:g} days"
        else:
            continue
        if dry_run or remove_derived(engine, image.tag):
            items.append(Item(kind="derived image", what=image.tag, size=image.size, why=why))
        else:
            kept.append(f"{image.tag} ({why}, but a build or container is using it)")
    return items, kept


def _cache_volumes(program: str, dry_run: bool, gone: set[str]) -> tuple[list[Item], list[str]]:
    """The build caches (``ccache.volume``: compiler results and build environments) whose
    builder image is no longer in the engine: no build can use them again. ``gone``: images
    a dry run counts as removed."""
    from wheelhouse.builder.ccache import VOLUME_PREFIX, image_key, volume

    engine = _default_engine(program)
    if engine is None:
        return [], []
    listed = subprocess.run(engine.command("volume", "ls", "-q", "--filter",
                                           f"name={VOLUME_PREFIX}"),
                            capture_output=True, text=True, check=False)
    ids = subprocess.run(engine.command("images", "-a", "-q", "--no-trunc"),
                         capture_output=True, text=True, check=False)
    if listed.returncode != 0 or ids.returncode != 0:
        return [], []
    in_use = {volume(i) for i in ids.stdout.split()}
    for tag in gone:
        inspected = subprocess.run(engine.command("image", "inspect", "--format", "{{.Id}}",
                                                  tag), capture_output=True, text=True,
                                   check=False)
        in_use.discard(volume(inspected.stdout.strip()))
    orphans = sorted(name for name in listed.stdout.split()
                     if image_key(name) is not None and name not in in_use)
    if not orphans:
        return [], []
    sizes = _volume_sizes(engine.command("system", "df", "-v", "--format",
                                         "{{json .Volumes}}"))
    items: list[Item] = []
    kept: list[str] = []
    why = "its builder image is gone"
    for name in orphans:
        if dry_run or subprocess.run(engine.command("volume", "rm", name), capture_output=True,
                                     check=False).returncode == 0:
            items.append(Item(kind="build cache", what=name, size=sizes.get(name, 0), why=why))
        else:  # the engine refuses while a container mounts it
            kept.append(f"{name} ({why}, but a container is using it)")
    return items, kept


def _default_engine(program: str) -> Engine | None:
    """The default engine (gc cleans only its images and volumes, not other engines'), or
    None when its program is not installed."""
    from wheelhouse.builder.engine import Engine

    if shutil.which(program) is None and not os.path.isabs(program):
        return None
    return Engine(program=program)


_UNITS = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def _volume_sizes(command: list[str]) -> dict[str, int]:
    """Volume name → bytes, from ``docker system df -v`` (sizes as it prints them, decimal
    units); empty when the engine cannot say."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        volumes = json.loads(done.stdout) if done.returncode == 0 else []
    except ValueError:
        return {}
    out: dict[str, int] = {}
    for v in volumes if isinstance(volumes, list) else []:
        m = re.fullmatch(r"([\d.]+)\s*([kKMGT]?B)", str(v.get("Size", "")))
        if m:
            out[str(v.get("Name"))] = int(float(m[1]) * _UNITS.get(m[2], 1))
    return out
