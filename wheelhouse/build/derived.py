"""Builder images with system packages: derived from a builder image once per (base image id,
package list), built with the network, so that builds themselves still run without one and
no two builds ever run a package manager in the same container."""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from wheelhouse.build.errors import BuildFailed
from wheelhouse.platforms import platforms
from wheelhouse.store import file_lock

#: how long installing system packages into a derived image may take.
TIMEOUT = 1800


def derived_tag(base_id: str, packages: Sequence[str]) -> str:
    key = hashlib.sha256(("\0".join([base_id, *sorted(set(packages))])).encode())
    return f"wheelhouse/derived-{key.hexdigest()[:16]}:latest"


def install_script(packages: Sequence[str]) -> str:
    """Install system packages with whichever package manager the image has (the managers
    and their commands are platform data)."""
    pkgs = sorted(set(packages))
    branches = [f"command -v {m.command} >/dev/null; then {m.install_command(pkgs)}"
                for m in platforms().package_managers]
    names = ", ".join(m.command for m in platforms().package_managers)
    return ("set -e; if " + "; elif ".join(branches)
            + f"; else echo 'no known package manager ({names}) in the image' >&2; exit 1; fi")


def ensure_derived(
    engine: str, base: str, base_id: str, packages: Sequence[str], *, log: IO[str],
    build_args: Mapping[str, str],
) -> str:
    """The tag of the derived image, built now unless it already exists."""
    tag = derived_tag(base_id, packages)
    lock_dir = Path(tempfile.gettempdir()) / "wheelhouse-build"
    lock_dir.mkdir(exist_ok=True)
    with file_lock(lock_dir / (tag.split("/", 1)[1].replace(":", "-") + ".lock")):
        if _exists(engine, tag):
            log.write(f"# system packages {' '.join(packages)}: using the derived image {tag}\n")
            return tag
        log.write(f"# system packages {' '.join(packages)}: deriving {tag} from {base}\n")
        log.flush()
        with tempfile.TemporaryDirectory(prefix="wheelhouse-derive-") as tmp:
            dockerfile = Path(tmp) / "Dockerfile"
            dockerfile.write_text(
                f"FROM {base}\n"
                f"LABEL org.wheelhouse.derived-from={shlex.quote(base_id)} "
                f"org.wheelhouse.system-packages={shlex.quote(' '.join(sorted(packages)))}\n"
                f"RUN {install_script(packages)}\n")
            # --force-rm: a failed install must not leave its container behind (the classic
            # builder keeps the intermediate container of a failed step).
            cmd = [engine, "build", "--network", "host", "--force-rm", "-t", tag]
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
                f"installing the system packages {', '.join(packages)} into an image derived "
                f"from {base} failed (exit {rc}); check the package names for its package "
                "manager")
        return tag


def _exists(engine: str, tag: str) -> bool:
    done = subprocess.run([engine, "image", "inspect", tag], capture_output=True, check=False)
    return done.returncode == 0
