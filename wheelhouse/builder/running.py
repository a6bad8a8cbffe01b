"""One running container of an image, driven by wheelhouse: files in and out, commands run
through the agent in it (``agent``) once its Python is known, and a Runner over it for the
build recipe. The container is removed on ``close``, and by ``engine.prune_stopped`` should
its owner die first.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from wheelhouse.builder.agent import Agent, AgentGone, TextSink, Zygote
from wheelhouse.builder.engine import CONTAINER_CA, OWNER_LABEL, ContainerOptions, owner
from wheelhouse.builder.runner import Completed
from wheelhouse.errors import EngineError


class Container:
    """One running container of an image; removed on ``close``. Until ``start_agent``
    only ``exec_output`` (a plain ``exec``) works: it finds the Python the agent runs with.
    Everything else goes through the agent."""

    def __init__(self, *, image: str, options: ContainerOptions, label: str,
                 volumes: Sequence[str] = ()) -> None:
        self.image = image
        self.options = options
        self.engine = options.engine
        self.name = f"wheelhouse-{label}-{uuid.uuid4().hex[:8]}"
        #: the channel commands take once ``start_agent`` named the container's Python.
        self.agent: Agent | None = None
        cmd = self.engine.command(
            "create", "--pull=never", "--name", self.name, "--network", options.network,
            "--label", "org.wheelhouse.builder=1", "--label", f"{OWNER_LABEL}={owner()}")
        if options.memory:
            cmd += ["--memory", options.memory]
        if options.cpus:
            cmd += ["--cpus", str(options.cpus)]
        # A bind mount names a path on the engine's machine: only ours when it runs here.
        mount_ca = options.ca_bundle is not None and self.engine.on_this_machine
        if options.ca_bundle is not None and mount_ca:
            cmd += ["--volume", f"{options.ca_bundle.resolve()}:{CONTAINER_CA}:ro"]
        for spec in volumes:  # named volumes only (the compile cache), never host paths
            cmd += ["--volume", spec]
        cmd += [image, "sh", "-c", "while sleep 3600; do :; done"]
        self._run(cmd, what=f"create a container from {image}")
        self._run(self.engine.command("start", self.name), what=f"start {self.name}")
        if options.ca_bundle is not None and not mount_ca:
            try:
                self.exec_output(f"mkdir -p {Path(CONTAINER_CA).parent}")
                self.copy_in(options.ca_bundle.resolve(), CONTAINER_CA)
            except BaseException:
                self.close()
                raise

    def _run(self, cmd: Sequence[str], *, what: str) -> str:
        done = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise EngineError(f"cannot {what}: {done.stderr.strip()}")
        return done.stdout

    def start_agent(self, python: str, *, zygotes: Sequence[Zygote] = ()) -> None:
        """From now on, run commands through one ``exec`` of wheelhouse's agent (with the
        container's ``python``) instead of an ``exec`` each (see ``agent``); ``zygotes``:
        the Python commands it runs often start with their imports done."""
        if self.agent is None:
            self.agent = Agent(self.engine.command("exec", "-i", self.name, python),
                               name=self.name, zygotes=zygotes)

    def channel(self) -> Agent:
        """The agent commands go through (``start_agent`` comes first)."""
        if self.agent is None:
            raise RuntimeError(f"no agent runs in {self.name} yet: call start_agent first")
        return self.agent

    def _through_agent(self, argv: Sequence[str], *, what: str, stdin: bytes | None = None,
                       sink: IO[bytes] | None = None) -> bytes:
        out = io.BytesIO()
        try:
            done = self.channel().run(argv, env={}, cwd=None, timeout=None, stdin=stdin,
                                  sink=(sink or out).write)
        except AgentGone as e:
            raise EngineError(f"cannot {what}: {e}") from None
        if done.code != 0:
            text = out.getvalue().decode(errors="replace").strip()
            raise EngineError(f"cannot {what}: {text or f'exit {done.code}'}")
        return out.getvalue()

    def exec_output(self, script: str) -> str:
        if self.agent is not None:
            return self._through_agent(["sh", "-c", script],
                                       what=f"run {script!r} in {self.name}").decode(
                                           errors="replace")
        return self._run(self.engine.command("exec", self.name, "sh", "-c", script),
                         what=f"run {script!r} in {self.name}")

    def copy_in(self, src: Path, dest: str) -> None:
        self._run(self.engine.command("cp", str(src), f"{self.name}:{dest}"),
                  what=f"copy {src.name} into {self.name}")

    def send(self, files: Mapping[str, Path | bytes], script: str) -> str:
        """Run ``script`` with a tar of ``files`` (member name -> host file, or its bytes)
        on its stdin: one command where a ``cp`` per file and an ``exec`` per step cost a
        round trip to the engine each (the time around a compile, not the compile)."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, content in files.items():
                if isinstance(content, bytes):
                    info = tarfile.TarInfo(name)
                    info.size, info.mode = len(content), 0o644
                    tar.addfile(info, io.BytesIO(content))
                    continue
                info = tar.gettarinfo(str(content), arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                with content.open("rb") as f:
                    tar.addfile(info, f)
        return self._through_agent(["sh", "-c", script],
                                   what=f"send {len(files)} files into {self.name}",
                                   stdin=buffer.getvalue()).decode(errors="replace")

    def copy_out(self, src: str, dest: Path) -> None:
        """The regular files directly in ``src`` (a build's output directory), into
        ``dest``. They come as a tar of which only plain files with plain names are written:
        links or paths a build put there are not followed here."""
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as archive:
            self._through_agent(["tar", "-cf", "-", "-C", src, "."],
                                what=f"copy {src} out of {self.name}", sink=archive)
            archive.seek(0)
            with tarfile.open(fileobj=archive, mode="r:") as tar:
                for member in tar:
                    name = member.name.removeprefix("./")
                    if not member.isfile() or not name or "/" in name or name in (".", ".."):
                        continue
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    with extracted, open(dest / name, "wb") as f:
                        shutil.copyfileobj(extracted, f)

    def close(self) -> None:
        subprocess.run(self.engine.command("rm", "-f", self.name), capture_output=True,
                       check=False)
        if self.agent is not None:
            self.agent.close()


class ContainerRunner:
    """A Runner that executes inside a container, through its agent. The time limit is
    enforced inside (the agent kills the command's process group) and, should that fail,
    by removing the container. The log reads as it would with ``exec``: each command is
    shown as the equivalent ``docker exec`` line."""

    def __init__(self, container: Container, base_env: Mapping[str, str]) -> None:
        self.container = container
        self.base_env = dict(base_env)

    def run(
        self,
        cmd: Sequence[str],
        *,
        log: IO[str] | None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float | None = None,
    ) -> Completed:
        merged = {**self.base_env, **(env or {})}
        buffer = io.StringIO() if log is None else None
        out = log if log is not None else buffer
        assert out is not None
        if log is not None:
            shown = self.container.engine.command("exec")
            for key, value in merged.items():
                shown += ["-e", f"{key}={value}"]
            if cwd is not None:
                shown += ["-w", str(cwd)]
            log.write(f"$ {' '.join([*shown, self.container.name, *cmd])}\n")
            log.flush()
        sink = TextSink(out)
        start = time.monotonic()
        try:
            done = self.container.channel().run(
                cmd, env=merged, cwd=None if cwd is None else str(cwd), timeout=timeout,
                sink=sink)
        except AgentGone as e:
            raise self._stopped(cmd, str(e)) from None
        sink.finish()
        seconds = time.monotonic() - start
        if done.abandoned:
            self.container.close()
        out.write(f"[exit {done.code}{' (time limit reached)' if done.timed_out else ''} "
                  f"after {seconds:.1f} s]\n")
        out.flush()
        return Completed(returncode=done.code, timed_out=done.timed_out, seconds=seconds,
                         output=buffer.getvalue() if buffer is not None else "")

    def _stopped(self, cmd: Sequence[str], detail: str) -> EngineError:
        # Not the command's failure: the container is gone (removed by another process,
        # killed for memory, the engine restarted), or the agent in it is.
        return EngineError(
            f"the container {self.container.name} stopped while running "
            f"{' '.join(cmd)[:80]} ({detail})",
            hint="check `docker events` and the engine's log; run again")
