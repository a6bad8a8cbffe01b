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
import platform
import shlex
import subprocess
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from wheelhouse.build import BuildFailed, BuiltWheel
from wheelhouse.build.runner import Completed, LocalRunner
from wheelhouse.config import PackageSettings
from wheelhouse.errors import EngineError
from wheelhouse.repair import RepairFailed, is_pure, parse_show, run_repair, show_command
from wheelhouse.targets import Target

#: where the CA bundle appears inside build containers.
CONTAINER_CA = "/etc/wheelhouse/ca-bundle.crt"
#: proxy variables passed through to containers when set on the host.
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


@dataclass(frozen=True, kw_only=True)
class ContainerOptions:
    engine: str = "docker"
    network: Literal["none", "host"] = "none"
    memory: str | None = "4g"
    cpus: float | None = None
    ca_bundle: Path | None = None
    #: the index builds use when network is "host" (None: only the copied-in wheels).
    index_url: str | None = None
    passthrough_env: Mapping[str, str] = field(default_factory=dict)


def host_arch() -> str:
    machine = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine)


def check_engine(engine: str) -> None:
    try:
        done = subprocess.run([engine, "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        raise EngineError(
            f"no container engine: {engine!r} is not installed",
            hint="install Docker (Debian: apt-get install docker.io) and start it; "
            ".ci/engine in this repository does both; targets for this machine's own "
            "platform build without one",
        ) from None
    except subprocess.TimeoutExpired:
        raise EngineError(f"{engine} info did not answer within 30 s",
                          hint="is the daemon hung? restart it") from None
    if done.returncode != 0:
        raise EngineError(
            f"the {engine} engine is not running: {done.stderr.strip().splitlines()[-1:]}",
            hint="start the daemon (e.g. `dockerd --bridge=none --iptables=false &`, as "
            ".ci/engine does) and check `docker info`",
        )


def check_emulation(arch: str) -> None:
    """A foreign-architecture target needs a binfmt_misc handler for that architecture."""
    if arch == host_arch():
        return
    entry = Path("/proc/sys/fs/binfmt_misc") / f"qemu-{arch}"
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


def image_exists(engine: str, image: str) -> str:
    """The image's id; raises EngineError with the fix when the image is not present."""
    done = subprocess.run([engine, "image", "inspect", "--format", "{{.Id}}", image],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise EngineError(
            f"the builder image {image} is not available to {engine}",
            hint=f"`{engine} pull {image}`, or where no registry is reachable run "
            "builders/bootstrap and pass the config it prints with --config",
        )
    return done.stdout.strip()


class Container:
    """One running container of an image, used through ``exec``; removed on ``close``."""

    def __init__(self, *, image: str, options: ContainerOptions, label: str) -> None:
        self.image = image
        self.options = options
        self.engine = options.engine
        self.name = f"wheelhouse-{label}-{uuid.uuid4().hex[:8]}"
        cmd = [self.engine, "create", "--pull=never", "--name", self.name,
               "--network", options.network, "--label", "org.wheelhouse.builder=1"]
        if options.memory:
            cmd += ["--memory", options.memory]
        if options.cpus:
            cmd += ["--cpus", str(options.cpus)]
        if options.ca_bundle is not None:
            cmd += ["--volume", f"{options.ca_bundle.resolve()}:{CONTAINER_CA}:ro"]
        cmd += [image, "sh", "-c", "while sleep 3600; do :; done"]
        self._run(cmd, what=f"create a container from {image}")
        self._run([self.engine, "start", self.name], what=f"start {self.name}")

    def _run(self, cmd: Sequence[str], *, what: str) -> str:
        done = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise EngineError(f"cannot {what}: {done.stderr.strip()}")
        return done.stdout

    def exec_output(self, script: str) -> str:
        return self._run([self.engine, "exec", self.name, "sh", "-c", script],
                         what=f"run {script!r} in {self.name}")

    def copy_in(self, src: Path, dest: str) -> None:
        self._run([self.engine, "cp", str(src), f"{self.name}:{dest}"],
                  what=f"copy {src.name} into {self.name}")

    def copy_out(self, src: str, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        self._run([self.engine, "cp", f"{self.name}:{src}/.", str(dest)],
                  what=f"copy {src} out of {self.name}")

    def close(self) -> None:
        subprocess.run([self.engine, "rm", "-f", self.name], capture_output=True, check=False)


class ContainerRunner:
    """A Runner that executes inside a container. The time limit is enforced inside (with
    ``timeout``) and, should that fail, by removing the container."""

    def __init__(self, container: Container, base_env: Mapping[str, str]) -> None:
        self.container = container
        self.base_env = dict(base_env)
        self.local = LocalRunner()

    def run(
        self,
        cmd: Sequence[str],
        *,
        log: IO[str] | None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float | None = None,
    ) -> Completed:
        full = [self.container.engine, "exec"]
        for key, value in {**self.base_env, **(env or {})}.items():
            full += ["-e", f"{key}={value}"]
        if cwd is not None:
            full += ["-w", str(cwd)]
        full.append(self.container.name)
        inner = list(cmd)
        if timeout is not None:
            inner = ["timeout", "-s", "KILL", str(int(timeout)), *inner]
        full += inner
        # A little grace beyond the inner limit, for the engine itself.
        done = self.local.run(full, log=log, timeout=None if timeout is None else timeout + 30)
        if done.returncode == 137 and timeout is not None and done.seconds >= timeout - 1:
            return Completed(returncode=done.returncode, timed_out=True, seconds=done.seconds,
                             output=done.output)
        if done.timed_out:
            self.container.close()
        return done


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
            _prune_stopped(self.options.engine)
            container = Container(image=image, options=self.options,
                                  label=target.identifier.replace("_", "-"))
            try:
                arch = container.exec_output("uname -m").strip()
                if arch != target.arch:
                    raise EngineError(
                        f"the image {image} runs as {arch}, but {target} needs {target.arch}",
                        hint=f"configure an {target.arch} image for {target.platform}",
                    )
                label = _image_label(self.options.engine, image, "org.wheelhouse.python")
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
        container, python, installed = self._container(target)
        runner = ContainerRunner(container, self._environment())
        try:
            return self._build_in(container, runner, python, installed, sdist, target=target,
                                  settings=settings, work_dir=work_dir, log=log,
                                  timeout=timeout, build_deps=build_deps)
        except BuildFailed as e:
            if e.timed_out:
                self._forget(target)  # a killed build may leave the container in any state
            raise

    def _environment(self) -> dict[str, str]:
        env = {"SOURCE_DATE_EPOCH": "315532800", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
               "PIP_NO_CACHE_DIR": "1", **self.options.passthrough_env}
        if self.options.ca_bundle is not None:
            env |= {"PIP_CERT": CONTAINER_CA, "SSL_CERT_FILE": CONTAINER_CA,
                    "REQUESTS_CA_BUNDLE": CONTAINER_CA}
        return env

    def _build_in(
        self, container: Container, runner: ContainerRunner, python: str, installed: set[str],
        sdist: Path, *, target: Target, settings: PackageSettings, work_dir: Path,
        log: IO[str], timeout: float, build_deps: Path | None,
    ) -> BuiltWheel:
        # A fixed path per sdist, so compilers record the same source paths in every build and
        # the wheel comes out byte for byte the same (with SOURCE_DATE_EPOCH) on any runner.
        # Builds of one sdist for one target never overlap (the pipeline holds a lock).
        stem = sdist.name.removesuffix(".tar.gz").removesuffix(".zip")
        job = f"/wheelhouse/build/{shlex.quote(stem)}"
        container.exec_output(f"rm -rf {job} && "
                              f"mkdir -p {job}/src {job}/deps {job}/dist {job}/repaired")
        container.copy_in(sdist, f"{job}/{sdist.name}")
        if build_deps is not None:
            for wheel in sorted(build_deps.glob("*.whl")):
                container.copy_in(wheel, f"{job}/deps/{wheel.name}")
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
        unpack = runner.run(["sh", "-c", f"cd {job}/src && tar -xf ../{shlex.quote(sdist.name)}"
                             if not sdist.name.endswith(".zip") else
                             f"cd {job}/src && {python} -m zipfile -e ../{sdist.name} ."],
                            log=log, timeout=timeout)
        if unpack.returncode != 0:
            raise BuildFailed(f"{sdist.name} cannot be unpacked in the container")
        env = dict(settings.environment)
        if self.options.network == "host" and self.options.index_url:
            env["PIP_INDEX_URL"] = self.options.index_url
            env["PIP_FIND_LINKS"] = f"{job}/deps"
        else:
            env |= {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": f"{job}/deps"}
        src = f"$(ls -d {job}/src/*/ | head -n1)"
        done = runner.run(
            ["sh", "-c", f'{python} -m build --wheel --outdir {job}/dist "{src}"'],
            log=log, env=env, timeout=timeout,
        )
        if done.timed_out:
            raise BuildFailed(f"the build did not finish within {timeout:.0f} s", timed_out=True)
        if done.returncode != 0:
            raise BuildFailed(f"the build failed in {container.image} (exit {done.returncode})")
        built_dir = work_dir / "dist"
        container.copy_out(f"{job}/dist", built_dir)
        wheels = sorted(built_dir.glob("*.whl"))
        if len(wheels) != 1:
            raise BuildFailed(f"the build produced {len(wheels)} wheels, expected one")
        if is_pure(wheels[0]):
            return BuiltWheel(wheel=wheels[0], seconds=done.seconds)
        inner_wheel = f"{job}/dist/{wheels[0].name}"
        shown = runner.run(show_command(python, inner_wheel), log=None, timeout=timeout)
        try:
            # auditwheel runs inside, where the libraries are; the result is copied out.
            repaired = run_repair(
                runner, python=python, wheel=Path(inner_wheel),
                out_dir=Path(f"{job}/repaired"), target=target,
                exclude=settings.auditwheel_exclude, log=log, timeout=timeout, env=env,
                outputs=lambda: self._copy_repaired(container, job, work_dir),
            )
        except RepairFailed as e:
            raise BuildFailed(str(e)) from None
        finally:
            with contextlib.suppress(EngineError):
                container.exec_output(f"rm -rf {job}")
        return BuiltWheel(wheel=repaired.wheel, grafted=repaired.grafted,
                          report=parse_show(shown.output), seconds=done.seconds)

    @staticmethod
    def _copy_repaired(container: Container, job: str, work_dir: Path) -> list[Path]:
        out = work_dir / "repaired"
        container.copy_out(f"{job}/repaired", out)
        return sorted(out.glob("*.whl"))


def _prune_stopped(engine: str) -> None:
    """Remove stopped builder containers left by a wheelhouse process that was killed.

    Only stopped ones: running builder containers may belong to a concurrent run.
    """
    subprocess.run([engine, "container", "prune", "--force", "--filter",
                    "label=org.wheelhouse.builder=1"], capture_output=True, check=False)


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


def _image_label(engine: str, image: str, label: str) -> str | None:
    fmt = "{{index .Config.Labels " + f'"{label}"' + "}}"
    done = subprocess.run([engine, "image", "inspect", "--format", fmt, image],
                          capture_output=True, text=True, check=False)
    value = done.stdout.strip()
    return value if done.returncode == 0 and value and value != "<no value>" else None


def passthrough_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    return {k: env[k] for k in PROXY_VARS if k in env}
