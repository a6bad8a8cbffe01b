"""Builder images with system packages: derived from a builder image once per (base image id,
package list), built with the network, so that builds themselves still run without one and
no two builds ever run a package manager in the same container."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from wheelhouse.builder.engine import Engine
from wheelhouse.errors import BuildFailed
from wheelhouse.platforms import platforms
from wheelhouse.settings import SystemPackages
from wheelhouse.store.store import file_lock

#: how long installing system packages into a derived image may take.
TIMEOUT = 1800


def for_manager(wanted: SystemPackages, manager: str) -> tuple[str, ...]:
    """The packages to install with ``manager``: the list, or the table's entry for it."""
    names: list[str] = []
    for item in wanted:
        if isinstance(item, str):
            names.append(item)
        elif item[0] == manager:
            names.extend(item[1])
    return tuple(sorted(set(names)))


def describe(wanted: SystemPackages) -> str:
    """``libffi-dev`` for a list; ``apk: libffi-dev; dnf: libffi-devel`` for a table."""
    if all(isinstance(item, str) for item in wanted):
        return " ".join(sorted({str(item) for item in wanted}))
    return "; ".join(f"{item[0]}: {' '.join(item[1])}" for item in wanted
                     if not isinstance(item, str))


def derived_tag(base_id: str, wanted: SystemPackages) -> str:
    lists = all(isinstance(item, str) for item in wanted)
    parts = sorted({str(item) for item in wanted}) if lists else [describe(wanted)]
    key = hashlib.sha256(("\0".join([base_id, *parts])).encode())
    return f"wheelhouse/derived-{key.hexdigest()[:16]}:latest"


def install_script(wanted: SystemPackages) -> str:
    """A POSIX shell script that installs system packages with whichever package manager the
    image has (the managers and their commands are platform data). A table that names
    nothing for the image's manager fails with a message saying so. Every word that comes
    from data is quoted with ``shlex``; the script is copied into the image and run as a
    file, so no Dockerfile parsing touches it."""
    lines = ["set -e"]
    for i, m in enumerate(platforms().package_managers):
        pkgs = for_manager(wanted, m.command)
        action = m.install_command(pkgs) if pkgs else _fail(
            f"system-packages names no packages for {m.command}, the package manager of "
            "this image")
        keyword = "if" if i == 0 else "elif"
        lines.append(f"{keyword} command -v {shlex.quote(m.command)} >/dev/null 2>&1; then")
        lines.append(f"    {action}")
    names = ", ".join(m.command for m in platforms().package_managers)
    lines += ["else", f"    {_fail(f'no known package manager ({names}) in the image')}", "fi"]
    return "\n".join(lines) + "\n"


def _fail(message: str) -> str:
    return f"echo {shlex.quote(message)} >&2; exit 1"


def ensure_derived(
    engine: Engine, base: str, base_id: str, packages: SystemPackages, *, log: IO[str],
    build_args: Mapping[str, str],
) -> str:
    """The tag of the derived image, built now unless it already exists."""
    tag = derived_tag(base_id, packages)
    lock = _lock_path(tag)
    with file_lock(lock):
        # The lock file's time is the image's last use, which `wheelhouse gc` reads.
        os.utime(lock)
        if _exists(engine, tag):
            log.write(f"# system packages {describe(packages)}: using the derived image {tag}\n")
            return tag
        log.write(f"# system packages {describe(packages)}: deriving {tag} from {base}\n")
        log.flush()
        with tempfile.TemporaryDirectory(prefix="wheelhouse-derive-") as tmp:
            dockerfile = Path(tmp) / "Dockerfile"
            (Path(tmp) / "install-system-packages.sh").write_text(install_script(packages))
            dockerfile.write_text(
                f"FROM {base}\n"
                f"LABEL org.wheelhouse.derived-from={json.dumps(base_id)} "
                f"org.wheelhouse.system-packages={json.dumps(describe(packages))}\n"
                "COPY install-system-packages.sh /tmp/wheelhouse-install-system-packages.sh\n"
                "RUN sh /tmp/wheelhouse-install-system-packages.sh "
                "&& rm -f /tmp/wheelhouse-install-system-packages.sh\n")
            # --force-rm: a failed install must not leave its container behind (the classic
            # builder keeps the intermediate container of a failed step).
            cmd = engine.command("build", "--network", "host", "--force-rm", "-t", tag)
            for key, value in build_args.items():
                cmd += ["--build-arg", f"{key}={value}"]
            try:
                done = subprocess.run([*cmd, tmp], stdout=log, stderr=subprocess.STDOUT,
                                      timeout=TIMEOUT, check=False)
                rc = done.returncode
            except subprocess.TimeoutExpired:
                rc = -9
        if rc != 0:
            raise BuildFailed(
                f"installing the system packages ({describe(packages)}) into an image derived "
                f"from {base} failed (exit {rc}); check the package names for its package "
                "manager")
        return tag


def _lock_path(tag: str) -> Path:
    lock_dir = Path(tempfile.gettempdir()) / "wheelhouse-build"
    lock_dir.mkdir(exist_ok=True)
    return lock_dir / (tag.split("/", 1)[1].replace(":", "-") + ".lock")


@dataclass(frozen=True, kw_only=True)
class DerivedImage:
    """A derived builder image as ``wheelhouse gc`` sees it."""

    tag: str
    base_id: str
    size: int
    #: seconds since the epoch it was last used by a build (or made, if never used since).
    last_used: float
    #: its base image is no longer in the engine.
    base_gone: bool


def derived_images(engine: Engine) -> list[DerivedImage]:
    """Every derived image the engine holds, with its base and last use."""
    listed = subprocess.run(
        engine.command("images", "--filter", "reference=wheelhouse/derived-*", "--format",
                       "{{.Repository}}:{{.Tag}}"), capture_output=True, text=True, check=False)
    out = []
    for tag in sorted(set(listed.stdout.split())):
        done = subprocess.run(engine.command("image", "inspect", tag), capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            continue
        info = json.loads(done.stdout)[0]
        labels = (info.get("Config") or {}).get("Labels") or {}
        base = str(labels.get("org.wheelhouse.derived-from", ""))
        created = _seconds(str(info.get("Created", "")))
        lock = _lock_path(tag)
        used = max(created, lock.stat().st_mtime if lock.exists() else 0.0)
        out.append(DerivedImage(tag=tag, base_id=base, size=int(info.get("Size", 0)),
                                last_used=used, base_gone=not base or not _exists(engine, base)))
    return out


def remove_derived(engine: Engine, tag: str) -> bool:
    """Remove a derived image unless a build holds it now (its lock) or a container uses it
    (the engine refuses then); whether it went."""
    import fcntl

    lock = _lock_path(tag)
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        done = subprocess.run(engine.command("rmi", tag), capture_output=True, check=False)
    if done.returncode == 0:
        with contextlib.suppress(OSError):
            lock.unlink()
    return done.returncode == 0


def _seconds(created: str) -> float:
    """Docker's RFC 3339 time (with nanoseconds) as seconds since the epoch; 0 if unreadable."""
    from datetime import datetime

    text = re.sub(r"(\.\d{6})\d*", r"\1", created.strip()).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


def _exists(engine: Engine, tag: str) -> bool:
    done = subprocess.run(engine.command("image", "inspect", tag), capture_output=True,
                          check=False)
    return done.returncode == 0
