"""The container engine as wheelhouse uses it: checks that it (and emulation for a foreign
architecture) works, which containers are whose, and what images say; one running container
is ``running``.

Every failure of the engine is an ``EngineError`` that names the fix.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from wheelhouse import platforms as pf
from wheelhouse.errors import EngineError
from wheelhouse.targets import host_arch

#: where the CA bundle appears inside build containers.
CONTAINER_CA = "/etc/wheelhouse/ca-bundle.crt"

#: engine specs that are addresses (``DOCKER_HOST`` forms); anything else names a context.
ADDRESS_SCHEMES = ("unix://", "tcp://", "ssh://", "fd://", "npipe://")


@dataclass(frozen=True, kw_only=True)
class Engine:
    """One container engine: the client program, and which daemon it talks to (``spec``:
    an address such as ``unix:///run/arm.sock`` or ``ssh://arm-builder``, a Docker context
    name, or None for the client's own default)."""

    program: str = "docker"
    spec: str | None = None

    @property
    def name(self) -> str:
        """How messages and provenance name it: ``default``, or the spec."""
        return self.spec or "default"

    @property
    def is_default(self) -> bool:
        return self.spec is None

    @property
    def on_this_machine(self) -> bool:
        """Whether its containers run on this kernel (its binfmt_misc handlers are ours)."""
        return self.spec is None or self.spec.startswith("unix://")

    def command(self, *args: str) -> list[str]:
        """The argv of one client command against this engine."""
        if self.spec is None:
            return [self.program, *args]
        if self.spec.startswith(ADDRESS_SCHEMES):
            return [self.program, "--host", self.spec, *args]
        return [self.program, "--context", self.spec, *args]


@dataclass(frozen=True, kw_only=True)
class ContainerOptions:
    engine: Engine = field(default_factory=Engine)
    network: Literal["none", "host"] = "none"
    memory: str | None = "4g"
    cpus: float | None = None
    ca_bundle: Path | None = None
    #: the index builds use when network is "host" (None: only the copied-in wheels).
    index_url: str | None = None
    passthrough_env: Mapping[str, str] = field(default_factory=dict)
    #: keep a compile cache (ccache) and build environments per builder image in a named
    #: volume (``ccache``, ``buildenv``).
    compile_cache: bool = True


def check_engine(engine: Engine, *, setting: str | None = None) -> str:
    """The engine's architecture (``x86_64``, ``aarch64``); raises EngineError with the fix
    unless it answers. ``setting`` is where a non-default engine was named, for messages."""
    named = "" if engine.is_default else \
        f"the engine {engine.name!r}" + (f" (named by {setting})" if setting else "")
    try:
        done = subprocess.run(engine.command("info", "--format", "{{.Architecture}}"),
                              capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        raise EngineError(
            f"no container engine: {engine.program!r} is not installed"
            + (f", so {named} cannot be reached" if named else ""),
            hint="install Docker (Debian: apt-get install docker.io) and start it; "
            ".ci/engine in this repository does both; targets for this machine's own "
            "platform build without one",
        ) from None
    except subprocess.TimeoutExpired:
        raise EngineError(f"{named or engine.program + ' info'} did not answer within 30 s",
                          hint="is the daemon hung? restart it") from None
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        if not named:
            raise EngineError(
                f"the {engine.program} engine is not running: {said}",
                hint="start the daemon (e.g. `dockerd --bridge=none --iptables=false &`, as "
                ".ci/engine does) and check `docker info`",
            )
        raise EngineError(
            f"{named} does not answer: {said}",
            hint=f"check `{' '.join(engine.command('info'))}`; an engine is an address "
            "(unix:///PATH.sock, tcp://HOST:PORT, ssh://HOST) or a `docker context ls` name",
        )
    return pf.platforms().normalize_arch(done.stdout.strip() or host_arch())


def check_emulation(arch: str, entry_name: str | None) -> None:
    """A foreign-architecture target needs a binfmt_misc handler for that architecture."""
    if arch == host_arch() or entry_name is None:
        return
    entry = Path("/proc/sys/fs/binfmt_misc") / entry_name
    try:
        enabled = entry.read_text().splitlines()[0].strip() == "enabled"
    except (OSError, IndexError):
        enabled = False
    if not enabled:
        raise EngineError(
            f"{arch} targets run under emulation, and no binfmt_misc handler for {arch} is "
            f"registered on this {host_arch()} machine",
            hint="install qemu-user-static and register it with the F flag (Debian: "
            "apt-get install qemu-user-static binfmt-support; or run .ci/engine)",
        )


def image_id(engine: Engine, image: str) -> str | None:
    """The image's id on ``engine``, or None when it does not hold it."""
    done = subprocess.run(engine.command("image", "inspect", "--format", "{{.Id}}", image),
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def image_exists(engine: Engine, image: str) -> str:
    """The image's id; raises EngineError with the fix when the image is not present."""
    found = image_id(engine, image)
    if found is None:
        on = "" if engine.is_default else f" on the engine {engine.name!r}"
        raise EngineError(
            f"the builder image {image} is not available to {engine.program}{on}",
            hint=f"`{' '.join(engine.command('pull', image))}`, or where no registry is "
            "reachable run builders/bootstrap and pass the config it prints with --config",
        )
    return found


#: who started a container: this process, on this boot of this machine.
OWNER_LABEL = "org.wheelhouse.owner"


def owner(pid: int | None = None) -> str:
    """``<pid>:<process start time>@<boot id>``: unique while the process lives, and
    recognisably dead after it exits, was killed, or the machine rebooted."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_start_time(pid)}@{_boot_id()}"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return socket.gethostname()


def _start_time(pid: int) -> str:
    try:
        # Field 22 of /proc/<pid>/stat, after the parenthesised command name.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def owner_gone(value: str) -> bool:
    """True when the container's owner was this machine's and that process no longer runs."""
    who, _, boot = value.partition("@")
    if boot != _boot_id():
        # Another machine sharing the engine, or an earlier boot: only the latter is ours to
        # reap, and the engine's containers do not survive a reboot running anyway.
        return False
    pid, _, started = who.partition(":")
    return not pid.isdigit() or _start_time(int(pid)) != started


def prune_stopped(engine: Engine) -> None:
    """Remove builder containers whose wheelhouse process is gone: stopped ones, and running
    ones whose owner (a process on this machine, see ``owner``) was killed before it could
    remove them. Running containers of live processes (a concurrent run) are left alone."""
    subprocess.run(engine.command("container", "prune", "--force", "--filter",
                                  "label=org.wheelhouse.builder=1"),
                   capture_output=True, check=False)
    listed = subprocess.run(
        engine.command("ps", "--filter", "label=org.wheelhouse.builder=1", "--format",
                       "{{.ID}} {{.Label \"" + OWNER_LABEL + "\"}}"),
        capture_output=True, text=True, check=False)
    orphans = [line.split()[0] for line in listed.stdout.splitlines()
               if len(line.split()) == 2 and owner_gone(line.split()[1])]
    if orphans:
        subprocess.run(engine.command("rm", "-f", *orphans), capture_output=True, check=False)


def image_label(engine: Engine, image: str, label: str) -> str | None:
    fmt = "{{index .Config.Labels " + f'"{label}"' + "}}"
    done = subprocess.run(engine.command("image", "inspect", "--format", fmt, image),
                          capture_output=True, text=True, check=False)
    value = done.stdout.strip()
    return value if done.returncode == 0 and value and value != "<no value>" else None


#: Where an image says which policy it builds for: wheelhouse's label, then the environment
#: variable the pypa images set (AUDITWHEEL_POLICY=manylinux_2_28).
_POLICY_FORMAT = ('{{index .Config.Labels "org.wheelhouse.policy"}} '
                  '{{range .Config.Env}}{{println .}}{{end}}')


def image_policies(engine: Engine, images: Mapping[str, str]) -> dict[str, tuple[int, int]]:
    """platform → the policy its image makes (``manylinux_x86_64`` → (2, 31)), for the images
    that say so and are present; others are left out (the platform's default applies). Never
    raises: without an engine, planning still works with the defaults."""
    def inspect(image: str) -> subprocess.CompletedProcess[str] | None:
        try:
            return subprocess.run(engine.command("image", "inspect", "--format",
                                                 _POLICY_FORMAT, image),
                                  capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None

    # Asked side by side: a no-op rerun waits for these before it can say "nothing to do".
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(images)))) as pool:
        answers = list(pool.map(inspect, images.values()))
    out: dict[str, tuple[int, int]] = {}
    for platform, done in zip(images, answers, strict=True):
        if done is None or done.returncode != 0:
            continue
        label, _, env = done.stdout.partition(" ")
        values = [label.strip()] + [line.removeprefix("AUDITWHEEL_POLICY=")
                                    for line in env.splitlines()
                                    if line.startswith("AUDITWHEEL_POLICY=")]
        family = platform.split("_", 1)[0]  # family names have no underscore; archs may
        for value in values:
            match = re.fullmatch(rf"{re.escape(family)}_(\d+)_(\d+)", value)
            if match:
                out[platform] = (int(match[1]), int(match[2]))
                break
    return out
