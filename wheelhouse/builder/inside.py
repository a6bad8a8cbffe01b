"""What runs inside a container with its own Python, as source handed to ``python -c``: the
agent that takes a container's commands over one ``exec`` (``wheelhouse.builder.agent`` is the
host's end, and says why), and the zygotes it starts for the commands a container runs often
(pip in consumer containers, a build's driver and auditwheel in builder containers). The stdlib
only, and Python 3.9 or later, free-threaded too: they run with whatever interpreter the image
has for the target.
"""

from __future__ import annotations

#: Runs in the container with its Python (any 3.9+, free-threaded too): the stdlib only.
#: Its arguments, when given, are ``ZYGOTE``'s source and a JSON list of zygotes
#: (``{"python", "forms", "need", "warm"}``, see ``agent.Zygote``): a command of one of their
#: interpreters in one of their forms is then forked from a process that has its modules
#: imported, started by the first such command.
AGENT = r"""
import json, os, signal, socket, struct, subprocess, sys, threading
inp, out = sys.stdin.buffer, sys.stdout.buffer
lock = threading.Lock()
groups = {}
zygotes = {}
# What the interpreter reads from the environment when it starts: a command that sets any
# of these differently than the zygote started with runs as its own process.
STARTUP = ("PYTHON", "LC_", "LANG", "HOME")

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

def start_zygote(zy):
    spec = zy["spec"]
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        subprocess.Popen([spec["python"], "-c", sys.argv[1], str(theirs.fileno()),
                          json.dumps([spec.get("need", []), spec.get("warm", [])])],
                         pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL)
    except OSError:
        ours.close()
        return
    finally:
        theirs.close()
    zy["sock"] = ours
    threading.Thread(target=zygote_replies, args=(zy, ours), daemon=True).start()

def zygote_replies(zy, sock):
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

def form(argv):
    # How a command starts its interpreter: ``-m NAME``, ``-c``, a script; None for others.
    if len(argv) < 2:
        return None
    if argv[1] == "-m":
        return "-m " + argv[2] if len(argv) > 2 else None
    if argv[1] == "-c":
        return "-c" if len(argv) > 2 else None
    return None if argv[1].startswith("-") else "script"

def zygote_for(req):
    zy = zygotes.get(req["argv"][0])
    if zy is None or req.get("stdin") or form(req["argv"]) not in zy["forms"]:
        return None
    if not all(os.environ.get(k) == v for k, v in (req.get("env") or {}).items()
               if k.startswith(STARTUP)):
        return None
    with zy["lock"]:
        if not zy["started"]:
            zy["started"] = True
            start_zygote(zy)
        return zy if zy["sock"] is not None else None

def forked(zy, req, env):
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
    return zy, waiter, r

def serve(req, data):
    rid = req["id"]
    env = dict(os.environ)
    env.update(req.get("env") or {})
    zy = zygote_for(req)
    child = forked(zy, req, env) if zy is not None else None
    if child is not None:
        zy, waiter, fd = child
        def wait():
            waiter["event"].wait()
            with zy["lock"]:
                zy["waiting"].pop(rid, None)
            if "code" not in waiter:
                send({"id": rid, "kind": "out"},
                     b"wheelhouse agent: the process that started this command stopped\n")
                return 125
            return waiter["code"]
        try:
            pump(rid, wait, waiter["pid"], fd, req, b"", None)
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
    pump(rid, proc.wait, proc.pid, proc.stdout.fileno(), req, data, proc.stdin)

def pump(rid, wait, pid, fd, req, data, stdin):
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
    code = wait()
    if timer is not None:
        timer.cancel()
    groups.pop(rid, None)
    send({"id": rid, "kind": "exit", "code": 128 - code if code < 0 else code,
          "timed_out": bool(expired)})

# Each started by the first command it can serve: a container that never runs one (a probe,
# a build that fails before its driver) pays nothing for it.
for spec in json.loads(sys.argv[2]) if len(sys.argv) > 2 else []:
    zygotes[spec["python"]] = {"spec": spec, "started": False, "sock": None,
                               "ready": threading.Event(), "waiting": {},
                               "lock": threading.Lock(), "forms": set(spec["forms"])}
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

#: Started by the agent (``python -c ZYGOTE FD MODULES``, the container's environment, no
#: ``-I``: as the commands it serves start), it imports the modules its commands would import
#: (``MODULES``: a JSON pair, those it needs and those worth having), then forks a child for
#: each command the agent hands it over the socket FD (argv, environment, working directory,
#: and the write end of the command's output): ``python -m NAME``, ``python -c CODE`` or
#: ``python SCRIPT`` of its own interpreter. The child is the command as its own process would
#: be: a new session, stdin from /dev/null, stdout and stderr to the output, the environment
#: replaced, ``sys.argv``, ``sys.path`` and ``__main__`` as the interpreter sets them for that
#: form, its exit status, its exit functions; only the imports are already done (a consumer
#: check's ``pip install``: 0.5 of 0.65 s here, 5 s under aarch64 emulation; a build's
#: ``build`` driver and auditwheel: 0.2 s each here, 1.1 and 1.7 s emulated). Where a module
#: it imported would be shadowed for the command (a file or directory of its name first on
#: the command's ``sys.path``) the child becomes the command's own process (``exec``). The
#: zygote answers each command with the child's pid, then its exit status (negative for a
#: signal), and exits when the agent does. Where a needed module cannot be imported it exits
#: at once: the agent runs those commands as their own processes.
ZYGOTE = r"""
import sys
at_start = set(sys.modules)
import atexit, builtins, json, os, runpy, select, signal, socket, traceback, types
sock = socket.socket(fileno=int(sys.argv[1]))
need, warm = json.loads(sys.argv[2])
if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]
for name in need:
    __import__(name)
for name in warm:
    try:
        __import__(name)
    except Exception:
        pass
# What a command's own interpreter would import from its sys.path[0] after start-up.
ours = {name.partition(".")[0] for name in set(sys.modules) - at_start}
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
        code = run(req["argv"])
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        kind, error, tb = sys.exc_info()
        while tb is not None and tb.tb_frame.f_globals is globals():  # the zygote's own
            tb = tb.tb_next
        traceback.print_exception(kind, error, tb)
        code = 1
    finally:
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) and 0 <= code < 256 else 1)

def shadowed(directory):
    try:
        return any(entry.partition(".")[0] in ours for entry in os.listdir(directory or "."))
    except OSError:
        return False

def run(argv):
    # As the interpreter runs each form: its sys.path[0] (none with -P), argv, __main__.
    # Not as it would (a module it would find elsewhere, a script that is a directory or a
    # zip): the child becomes the command's own process.
    how = argv[1]
    first = (os.getcwd() if how == "-m" else "" if how == "-c"
             else os.path.dirname(os.path.realpath(argv[1])))
    safe = getattr(sys.flags, "safe_path", False)
    if (not safe and shadowed(first)) or (
            how not in ("-m", "-c") and not (argv[1].endswith(".py") and os.path.isfile(argv[1]))):
        os.execv(argv[0], argv)
    if not safe:
        sys.path.insert(0, first)
    if how == "-m":
        sys.argv = ["-m", *argv[3:]]
        runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
    elif how == "-c":
        sys.argv = ["-c", *argv[3:]]
        main = types.ModuleType("__main__")
        main.__builtins__ = builtins
        sys.modules["__main__"] = main
        exec(compile(argv[2], "<string>", "exec"), main.__dict__)
    else:
        sys.argv = list(argv[1:])
        runpy.run_path(argv[1], run_name="__main__")
    return 0

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
