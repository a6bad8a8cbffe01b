"""One ``exec`` per container instead of one per command.

Every ``docker exec`` costs a round trip through the client, the daemon, containerd and runc:
measured here, 0.1 s of wall time and 0.11 s of CPU each, and a build with its repair and
consumer check ran about ten of them per pin (60 ``exec`` and 12 ``cp`` for six pins, a
third of the CPU a cache-warm rebuild used on two cores). So once a container's interpreter
is known, ``AGENT`` runs in it through one long-lived ``exec -i`` and starts each command as
a child process: the same argv, the container's environment plus the command's own (as
``exec -e``), the same working directory, output and exit status (a signal as 128 + N, as
``exec`` reports it). The time limit is enforced in the container by killing the command's
whole process group.

The channel is the exec's stdin and stdout, binary-safe, one frame per message:
a header ``>II`` (JSON length, payload length), the JSON, the payload. Requests carry the
command's stdin as payload (a tar of files to unpack); the agent answers with ``out`` frames
(output as it comes, so build logs stay live) and one ``exit`` frame per request. Requests
run concurrently. When its stdin closes (wheelhouse is done or gone) the agent kills what it
still runs and exits; the container is removed by its owner as before.
"""

from __future__ import annotations

import codecs
import contextlib
import itertools
import json
import struct
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from wheelhouse.builder.inside import AGENT, ZYGOTE
from wheelhouse.errors import EngineError

#: How long the agent has to say it is ready (a cold interpreter under QEMU takes seconds).
_READY_TIMEOUT = 120.0


@dataclass(frozen=True)
class Zygote:
    """Commands of ``python`` in one of ``forms`` (``-m NAME``, ``-c``, ``script``) forked
    from a process that has imported ``need`` (without them, no zygote: those commands run
    as their own processes) and what it could of ``warm`` (see ``inside.ZYGOTE``)."""

    python: str
    forms: tuple[str, ...]
    need: tuple[str, ...]
    warm: tuple[str, ...] = ()

    def spec(self) -> dict[str, Any]:
        return {"python": self.python, "forms": list(self.forms), "need": list(self.need),
                "warm": list(self.warm)}


def pip_zygote(python: str) -> Zygote:
    """``python -m pip``, as the consumer checks run it for every wheel."""
    return Zygote(python, ("-m pip",), ("pip._internal.cli.main",),
                  ("pip._internal.commands.install", "pip._internal.index.package_finder",
                   "pip._internal.network.session", "pip._internal.operations.install.wheel",
                   "pip._internal.operations.prepare", "pip._internal.req.req_install",
                   "pip._internal.resolution.resolvelib.resolver"))


def build_zygotes(python: str, auditwheel_python: str | None) -> list[Zygote]:
    """A builder container's: the build driver (``buildenv.DRIVER``, a script run by the
    target's ``python``) and auditwheel's show and repair (``repair.SHOW_AND_REPAIR``, run
    with ``-c`` by auditwheel's interpreter), once per pin each. The build's backend runs in
    processes of its own, started by the driver, as ever."""
    driver = Zygote(python, ("script",), ("build",),
                    ("build._builder", "pyproject_hooks", "packaging.requirements",
                     "packaging.utils", "fcntl", "hashlib", "shutil", "subprocess"))
    if auditwheel_python is None:
        return [driver]
    repair = Zygote(auditwheel_python, ("-c",), ("auditwheel.main",),
                    ("auditwheel.main_repair", "auditwheel.main_show", "auditwheel.repair",
                     "auditwheel.wheel_abi", "auditwheel.patcher", "contextlib", "io"))
    if auditwheel_python != python:
        return [driver, repair]
    # One interpreter for both: one zygote with both's modules (without auditwheel it
    # still serves the driver).
    return [Zygote(python, ("script", "-c"), ("build",),
                   driver.warm + repair.need + repair.warm)]


@dataclass
class _Request:
    sink: Callable[[bytes], object]
    done: threading.Event = field(default_factory=threading.Event)
    code: int = -1
    timed_out: bool = False
    #: what writing its output raised (a full disk under the log): raised by ``run``.
    error: BaseException | None = None


@dataclass(frozen=True)
class Exit:
    #: the command's exit status (128 + N for a signal, as ``exec`` reports it).
    code: int
    #: its time limit was reached and the agent killed it.
    timed_out: bool = False
    #: no answer came within the grace after the time limit: the container is in an unknown
    #: state and should be removed.
    abandoned: bool = False


class AgentGone(EngineError):
    """The agent's ``exec`` ended (the container stopped or was removed, the engine went
    away): nothing more can run through it."""


class Agent:
    """The host's end: ``command`` is the engine's ``exec -i CONTAINER PYTHON`` prefix."""

    def __init__(self, command: Sequence[str], *, name: str,
                 zygotes: Sequence[Zygote] = ()) -> None:
        """``zygotes``: the container's commands that start the same Python programs often
        (pip in the consumer checks, a build's driver and auditwheel) are forked from
        processes that have their modules imported (``ZYGOTE``)."""
        self.name = name
        # Its stderr (the engine's complaints, a traceback) goes to a file read at the end:
        # a pipe nobody reads until then could fill and stall the agent.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self._proc = subprocess.Popen([*command, "-I", "-u", "-c", AGENT,
                                       *([ZYGOTE, json.dumps([z.spec() for z in zygotes])]
                                         if zygotes else [])],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr, start_new_session=True)
        self._ids = itertools.count(1)
        self._pending: dict[int, _Request] = {}
        self._guard = threading.Lock()
        self._write = threading.Lock()
        self._gone: str | None = None
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, name=f"agent-{name}", daemon=True)
        self._reader.start()
        if not self._ready.wait(_READY_TIMEOUT) or self._gone is not None:
            self.close()
            raise EngineError(f"cannot start wheelhouse's agent in {name}: "
                              f"{self._gone or 'no answer'}")

    def run(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None,
            timeout: float | None, sink: Callable[[bytes], object], stdin: bytes | None = None,
            grace: float = 30.0) -> Exit:
        """Run ``argv`` in the container; its output goes to ``sink`` as it comes. Raises
        AgentGone when the channel ends first; gives up waiting ``grace`` seconds after the
        time limit (``Exit.abandoned``: the container is then the caller's to remove)."""
        request = _Request(sink=sink)
        with self._guard:
            if self._gone is not None:
                raise AgentGone(self._gone)
            rid = next(self._ids)
            self._pending[rid] = request
        head: dict[str, Any] = {"id": rid, "argv": list(argv), "env": dict(env), "cwd": cwd,
                                "timeout": timeout, "stdin": stdin is not None}
        try:
            self._send(head, stdin or b"")
            if not request.done.wait(None if timeout is None else timeout + grace):
                return Exit(137, timed_out=True, abandoned=True)
        finally:
            with self._guard:
                self._pending.pop(rid, None)
        if request.error is not None:
            raise request.error
        if request.code < 0:  # woken by the channel's end, not by an exit frame
            raise AgentGone(self._gone or "the agent stopped")
        return Exit(request.code, timed_out=request.timed_out)

    def _send(self, head: Mapping[str, Any], data: bytes) -> None:
        encoded = json.dumps(head).encode()
        try:
            with self._write:
                assert self._proc.stdin is not None
                self._proc.stdin.write(struct.pack(">II", len(encoded), len(data)) + encoded)
                self._proc.stdin.write(data)
                self._proc.stdin.flush()
        except (OSError, ValueError) as e:
            raise AgentGone(self._gone or f"the agent in {self.name} stopped ({e})") from None

    def _read(self) -> None:
        stream = self._proc.stdout
        assert stream is not None
        try:
            while True:
                head = stream.read(8)
                if len(head) < 8:
                    break
                size, payload = struct.unpack(">II", head)
                message = json.loads(stream.read(size))
                data = stream.read(payload) if payload else b""
                if message.get("kind") == "ready":
                    self._ready.set()
                    continue
                with self._guard:
                    request = self._pending.get(message.get("id"))
                if request is None:
                    continue
                if message.get("kind") == "out" and request.error is None:
                    try:
                        request.sink(data)
                    except Exception as e:  # the command's own trouble, not the channel's
                        request.error = e
                elif message.get("kind") == "exit":
                    request.code = int(message["code"])
                    request.timed_out = bool(message.get("timed_out"))
                    request.done.set()
        except (OSError, ValueError, struct.error):
            pass
        self._end()

    def _end(self) -> None:
        err = b""
        with contextlib.suppress(OSError, ValueError, subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)
            self._stderr.seek(0)
            err = self._stderr.read()[-4000:]
        text = err.decode(errors="replace").strip()
        with self._guard:
            self._gone = (f"the agent in {self.name} stopped" + (f": {text[-500:]}" if text
                                                                  else ""))
            pending = list(self._pending.values())
        self._ready.set()
        for request in pending:
            request.done.set()

    def close(self) -> None:
        """End the channel: the agent kills what it still runs and exits."""
        with contextlib.suppress(OSError, ValueError):
            assert self._proc.stdin is not None
            with self._write:
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=10)
        for stream in (self._proc.stdout, self._stderr):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()


class TextSink:
    """Output bytes as text into a log, decoded across chunk boundaries."""

    def __init__(self, log: IO[str]) -> None:
        self.log = log
        self._decode = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lock = threading.Lock()

    def __call__(self, data: bytes) -> None:
        with self._lock:
            self.log.write(self._decode.decode(data))
            self.log.flush()

    def finish(self) -> None:
        with self._lock:
            self.log.write(self._decode.decode(b"", final=True))
