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

from wheelhouse.errors import EngineError

#: Runs in the container with its Python (any 3.9+, free-threaded too): the stdlib only.
#: Its first argument, when given, is ``ZYGOTE``'s source: ``python -m pip`` commands of its
#: own interpreter are then forked from a process that has pip imported (see ``ZYGOTE``).
AGENT = r"""
import json, os, signal, socket, struct, subprocess, sys, threading
inp, out = sys.stdin.buffer, sys.stdout.buffer
lock = threading.Lock()
groups = {}
zy = {"sock": None, "ready": threading.Event(), "waiting": {}, "lock": threading.Lock()}
# What the interpreter reads from the environment when it starts: a command that sets any
# of these differently than the zygote started with runs as its own process.
STARTUP = ("PYTHON", "LC_", "LANG")

def send(obj, data=b""):
    head = json.dumps(obj).encode()
    with lock:
        out.write(struct.pack(">II", len(head), len(data)) + head + data)
        out.flush()

def exactly(n):
    buf = b""
    while len(buf) < n:
        chunk = inp.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf

def kill(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass

def start_zygote(source):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        subprocess.Popen([sys.executable, "-c", source, str(theirs.fileno())],
                         pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL)
    except OSError:
        ours.close()
        return
    finally:
        theirs.close()
    zy["sock"] = ours
    threading.Thread(target=zygote_replies, args=(ours,), daemon=True).start()

def zygote_replies(sock):
    while True:
        try:
            msg = sock.recv(65536)
        except OSError:
            msg = b""
        if not msg:
            break
        said = json.loads(msg)
        if said.get("ready"):
            zy["ready"].set()
            continue
        with zy["lock"]:
            waiter = zy["waiting"].get(said.get("id"))
        if waiter is not None:
            waiter.update(said)
            waiter["event" if "code" in said else "started"].set()
    with zy["lock"]:
        zy["sock"] = None
        waiting = list(zy["waiting"].values())
    zy["ready"].set()
    for waiter in waiting:
        waiter["started"].set()
        waiter["event"].set()

def forkable(req):
    argv = req["argv"]
    if zy["sock"] is None or argv[:3] != [sys.executable, "-m", "pip"] or req.get("stdin"):
        return False
    return all(os.environ.get(k) == v for k, v in (req.get("env") or {}).items()
               if k.startswith(STARTUP))

def forked(req, env):
    # Returns the pid and the read end of its output, or None (nothing ran): run it as a
    # process of its own.
    zy["ready"].wait()
    sock = zy["sock"]
    if sock is None:
        return None
    rid = req["id"]
    waiter = {"started": threading.Event(), "event": threading.Event()}
    with zy["lock"]:
        zy["waiting"][rid] = waiter
    r, w = os.pipe()
    try:
        socket.send_fds(sock, [json.dumps({"id": rid, "argv": req["argv"], "env": env,
                                           "cwd": req.get("cwd")}).encode()], [w])
    except OSError:
        waiter["started"].set()
    finally:
        os.close(w)
    waiter["started"].wait()
    if waiter.get("pid") is None:
        os.close(r)
        with zy["lock"]:
            zy["waiting"].pop(rid, None)
        return None
    return waiter, r

def serve(req, data):
    rid = req["id"]
    env = dict(os.environ)
    env.update(req.get("env") or {})
    child = forked(req, env) if forkable(req) else None
    if child is not None:
        waiter, fd = child
        pid = waiter["pid"]
        class Forked:
            def wait(self):
                waiter["event"].wait()
                with zy["lock"]:
                    zy["waiting"].pop(rid, None)
                if "code" not in waiter:
                    send({"id": rid, "kind": "out"},
                         b"wheelhouse agent: the process that started this command stopped\n")
                    return 125
                return waiter["code"]
        try:
            pump(rid, Forked(), pid, fd, req, b"", None)
        finally:
            os.close(fd)
        return
    try:
        proc = subprocess.Popen(req["argv"], cwd=req.get("cwd"), env=env,
                                stdin=subprocess.PIPE if req.get("stdin") else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError as e:
        send({"id": rid, "kind": "out"}, ("cannot run %s: %s\n" % (req["argv"][0], e)).encode())
        send({"id": rid, "kind": "exit", "code": 126 if os.path.exists(req["argv"][0]) else 127,
              "timed_out": False})
        return
    pump(rid, proc, proc.pid, proc.stdout.fileno(), req, data, proc.stdin)

def pump(rid, proc, pid, fd, req, data, stdin):
    groups[rid] = pid
    expired = []
    timer = None
    if req.get("timeout"):
        def expire():
            expired.append(True)
            kill(pid)
        timer = threading.Timer(req["timeout"], expire)
        timer.daemon = True
        timer.start()
    if stdin is not None:
        def feed():
            try:
                stdin.write(data)
            except OSError:
                pass
            try:
                stdin.close()
            except OSError:
                pass
        threading.Thread(target=feed, daemon=True).start()
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        send({"id": rid, "kind": "out"}, chunk)
    code = proc.wait()
    if timer is not None:
        timer.cancel()
    groups.pop(rid, None)
    send({"id": rid, "kind": "exit", "code": 128 - code if code < 0 else code,
          "timed_out": bool(expired)})

if len(sys.argv) > 1:
    start_zygote(sys.argv[1])
send({"id": 0, "kind": "ready"})
while True:
    head = exactly(8)
    if head is None:
        break
    size, payload = struct.unpack(">II", head)
    req = json.loads(exactly(size))
    data = exactly(payload) if payload else b""
    threading.Thread(target=serve, args=(req, data), daemon=True).start()
for pid in list(groups.values()):
    kill(pid)
"""

#: Started by the agent (``python -c ZYGOTE FD``, the container's environment, no ``-I``: as
#: ``python -m pip`` starts), it imports pip's install path once, then forks a child for each
#: ``python -m pip`` command the agent hands it over the socket FD (argv, environment, working
#: directory, and the write end of the command's output). The child is the command as its own
#: process would be: a new session, stdin from /dev/null, stdout and stderr to the output, the
#: environment replaced, ``sys.argv`` and ``sys.path`` as ``-m pip`` leaves them, the entry
#: point pip's ``__main__`` calls and its exit status; only pip's imports are already done
#: (most of a consumer check's ``pip install``: 0.5 of 0.65 s here, 5 s under aarch64
#: emulation, per wheel checked). The zygote answers each command
#: with the child's pid, then its exit status (negative for a signal), and exits when the
#: agent does. Where pip cannot be imported it exits at once: the agent runs pip as before.
ZYGOTE = r"""
import json, os, select, signal, socket, sys, traceback
sock = socket.socket(fileno=int(sys.argv[1]))
if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]
from pip._internal.cli import main as entry
# What pip's own __main__ calls: ``cli`` (pip 25.3+: blocks imports from what it installed),
# else ``main``.
entry = getattr(entry, "cli", None) or entry.main
for name in ("pip._internal.commands.install", "pip._internal.index.package_finder",
             "pip._internal.network.session", "pip._internal.operations.install.wheel",
             "pip._internal.operations.prepare", "pip._internal.req.req_install",
             "pip._internal.resolution.resolvelib.resolver"):
    try:
        __import__(name)
    except Exception:
        pass
prog = os.path.join(os.path.dirname(sys.modules["pip"].__file__), "__main__.py")
wake_r, wake_w = os.pipe()
os.set_blocking(wake_r, False)
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGCHLD, lambda *_: None)
kids = {}

def child(req, fd):
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        for other in (null, fd, wake_r, wake_w):
            os.close(other)
        sock.close()
        if req.get("cwd"):
            os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        sys.argv = [prog, *req["argv"][3:]]
        code = entry()
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) and 0 <= code < 256 else 1)

sock.send(b'{"ready": true}')
while True:
    ready = select.select([sock, wake_r], [], [])[0]
    if wake_r in ready:
        try:
            os.read(wake_r, 4096)
        except OSError:
            pass
    while kids:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        sock.send(json.dumps({"id": kids.pop(pid), "code": os.waitstatus_to_exitcode(status)}
                             ).encode())
    if sock in ready:
        msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 1)
        if not msg:
            break
        req = json.loads(msg)
        pid = os.fork()
        if pid == 0:
            child(req, fds[0])
        for fd in fds:
            os.close(fd)
        kids[pid] = req["id"]
        sock.send(json.dumps({"id": req["id"], "pid": pid}).encode())
"""

#: How long the agent has to say it is ready (a cold interpreter under QEMU takes seconds).
_READY_TIMEOUT = 120.0


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

    def __init__(self, command: Sequence[str], *, name: str, pip: bool = False) -> None:
        """``pip``: fork the container's ``python -m pip`` commands from a zygote with pip
        imported (``ZYGOTE``); for containers that run pip often (the consumer checks)."""
        self.name = name
        # Its stderr (the engine's complaints, a traceback) goes to a file read at the end:
        # a pipe nobody reads until then could fill and stall the agent.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self._proc = subprocess.Popen([*command, "-I", "-u", "-c", AGENT,
                                       *([ZYGOTE] if pip else [])],
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
