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

from wheelhouse.builder.agent import Agent, AgentGone, TextSink
from wheelhouse.builder.engine import CONTAINER_CA, OWNER_LABEL, ContainerOptions, owner
from wheelhouse.builder.runner import Completed, LocalRunner
from wheelhouse.errors import EngineError


class Container:
    """One running container of an image, used through ``exec``; removed on ``close``."""

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

    def start_agent(self, python: str) -> None:
        """From now on, run commands through one ``exec`` of wheelhouse's agent (with the
        container's ``python``) instead of an ``exec`` each (see ``agent``)."""
        if self.agent is None:
            self.agent = Agent(self.engine.command("exec", "-i", self.name, python),
                               name=self.name)

    def _through_agent(self, argv: Sequence[str], *, what: str, stdin: bytes | None = None,
                       sink: IO[bytes] | None = None) -> bytes:
        assert self.agent is not None
        out = io.BytesIO()
        try:
            done = self.agent.run(argv, env={}, cwd=None, timeout=None, stdin=stdin,
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
        what = f"send {len(files)} files into {self.name}"
        if self.agent is not None:
            return self._through_agent(["sh", "-c", script], what=what,
                                       stdin=buffer.getvalue()).decode(errors="replace")
        done = subprocess.run(self.engine.command("exec", "-i", self.name, "sh", "-c", script),
                              input=buffer.getvalue(), capture_output=True, check=False)
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip()
            raise EngineError(f"cannot {what}: {err}")
        return done.stdout.decode(errors="replace")

    def copy_out(self, src: str, dest: Path) -> None:
        """The regular files directly in ``src`` (a build's output directory), into
        ``dest``. Through the agent they come as a tar of which only plain files with plain
        names are written: links or paths a build put there are not followed here."""
        dest.mkdir(parents=True, exist_ok=True)
        if self.agent is None:
            self._run(self.engine.command("cp", f"{self.name}:{src}/.", str(dest)),
                      what=f"copy {src} out of {self.name}")
            return
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

    def running(self) -> bool:
        done = subprocess.run(self.engine.command("inspect", "--format", "{{.State.Running}}",
                                                  self.name),
                              capture_output=True, text=True, check=False)
        return done.returncode == 0 and done.stdout.strip() == "true"

    def close(self) -> None:
        subprocess.run(self.engine.command("rm", "-f", self.name), capture_output=True,
                       check=False)
        if self.agent is not None:
            self.agent.close()


class ContainerRunner:
    """A Runner that executes inside a container: through its agent once one runs there
    (``Container.start_agent``), else with an ``exec`` per command. The time limit is
    enforced inside (the agent kills the command's process group; without one, ``timeout``)
    and, should that fail, by removing the container."""

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
        merged = {**self.base_env, **(env or {})}
        full = self.container.engine.command("exec")
        for key, value in merged.items():
            full += ["-e", f"{key}={value}"]
        if cwd is not None:
            full += ["-w", str(cwd)]
        full.append(self.container.name)
        if self.container.agent is not None:
            return self._through_agent(cmd, [*full, *cmd], merged, log=log, cwd=cwd,
                                       timeout=timeout)
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
        elif done.returncode != 0 and not self.container.running():
            raise self._stopped(cmd)
        return done

    def _through_agent(self, cmd: Sequence[str], shown: Sequence[str],
                       env: Mapping[str, str], *, log: IO[str] | None, cwd: Path | None,
                       timeout: float | None) -> Completed:
        """As ``run``, through the container's agent; the log reads as it would with
        ``exec`` (``shown`` is the equivalent command)."""
        assert self.container.agent is not None
        buffer = io.StringIO() if log is None else None
        out = log if log is not None else buffer
        assert out is not None
        if log is not None:
            log.write(f"$ {' '.join(shown)}\n")
            log.flush()
        sink = TextSink(out)
        start = time.monotonic()
        try:
            done = self.container.agent.run(cmd, env=env, cwd=None if cwd is None else str(cwd),
                                            timeout=timeout, sink=sink)
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

    def _stopped(self, cmd: Sequence[str], detail: str = "") -> EngineError:
        # Not the command's failure: the container is gone (removed by another process,
        # killed for memory, the engine restarted), or the agent in it is.
        return EngineError(
            f"the container {self.container.name} stopped while running "
            f"{' '.join(cmd)[:80]}" + (f" ({detail})" if detail else ""),
            hint="check `docker events` and the engine's log; run again")
