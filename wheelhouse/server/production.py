"""Running the index under granian, a production WSGI server (HTTP in Rust, keep-alive, one
process per worker): ``serve_production``, and ``app_from_env`` for granian's own command line.

Each worker builds its own app (catalogue connection, rendered snapshot) after the fork, so no
SQLite connection crosses a process boundary. granian has no ``wsgi.file_wrapper``, so
downloads are answered from memory (small files) or read through Python in 1 MiB blocks (see
``wheelhouse.server.files``).
"""

from __future__ import annotations

import ctypes
import errno
import importlib.util
import logging
import os
import resource
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from wheelhouse.config import load_settings
from wheelhouse.errors import ServeError, StoreError, WheelhouseError
from wheelhouse.options import GRANIAN_THREADS, ServerOptions, server_options
from wheelhouse.server.app import create_app
from wheelhouse.server.serving import bind_socket
from wheelhouse.store import backends

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

log = logging.getLogger(__name__)

#: What ``granian --interface wsgi --factory`` is given (see server/README.md).
FACTORY_TARGET = "wheelhouse.server.production:app_from_env"

#: Worker processes. Each renders and holds its own copy of the pages; two keep both cores of
#: a small host busy (measured: 1 worker x 4 threads 33k req/s, 2 x 4 49k, wrk on the same
#: 2 cores).
DEFAULT_WORKERS = 2

#: Python threads per worker that run the app. The hot path holds the GIL for microseconds
#: per request, so a few threads are enough for it; but a download holds a thread while the
#: client reads, and uploads and upstream waits may each hold part of them (they are capped
#: below half), so there are enough to keep some for the hosted pages.
DEFAULT_THREADS = GRANIAN_THREADS

#: Seconds a worker gets to stop after SIGTERM before granian kills it (the image and
#: server/README's command line set the same, ``--workers-kill-timeout``).
STOP_GRACE = 8

#: File descriptors a worker needs besides its connections (store, logs, sockets upstream).
_SPARE_FDS = 256

#: How long ``on_ready`` waits for the first worker to accept connections. Workers render the
#: whole catalogue before they listen, which takes seconds for a large store.
_READY_TIMEOUT = 300.0


def build_app(options: ServerOptions) -> WSGIApplication:
    """The app one worker serves: ``create_app``, hot path included."""
    return create_app(options)


def _worker_app(options: ServerOptions, supervisor: int) -> WSGIApplication:
    """What each forked worker loads: first it ties its life to the supervisor's."""
    # In this order: _exit_with signals this worker if the supervisor is already gone, and
    # the handler inherited from the supervisor would swallow that signal.
    _stoppable_while_loading()
    _exit_with(supervisor)
    return build_app(options)


def _stoppable_while_loading() -> None:
    """Let SIGTERM and SIGINT end a granian worker that is still building its app.

    A forked worker inherits the supervisor's Python handlers for them, which only flag the
    supervisor's own loop, and granian installs the worker's handlers after the app is
    built. A stop that came meanwhile (a server stopped just after it started, which takes
    longer the larger the store) was lost: the worker went on to serve, and the supervisor
    waited for it forever. With the default action the worker just ends, and granian's
    handlers replace it once it serves.

    Only such an inherited handler is replaced: one of a granian server whose main process
    is another. Any other (another server's worker, a test runner) is left as it is."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        owner = getattr(signal.getsignal(sig), "__self__", None)
        main = getattr(owner, "pid", None)
        if (type(owner).__module__.startswith("granian.") and isinstance(main, int)
                and main != os.getpid()):
            signal.signal(sig, signal.SIG_DFL)


def _exit_with(supervisor: int) -> None:
    """Have the kernel send SIGTERM to this worker when the supervisor dies. Without it, a
    supervisor killed with SIGKILL (an OOM kill, ``kill -9`` on a host) leaves its workers
    serving and holding the port, so the restarted server cannot bind it. Linux only."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: nothing to tie
        return
    if os.getppid() != supervisor:  # it died before the call above
        os.kill(os.getpid(), signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def app_from_env() -> WSGIApplication:
    """Factory for ``granian --interface wsgi --factory wheelhouse.server.production:app_from_env``.

    Called in each worker, never at import. Settings are found as ``wheelhouse serve`` finds
    them: ``WHEELHOUSE_*`` variables (``WHEELHOUSE_STORE``, ``WHEELHOUSE_FALL_THROUGH``,
    ``WHEELHOUSE_INDEX_URL``), else ``[tool.wheelhouse]`` in ./pyproject.toml, else the
    defaults; the tokens come from ``WHEELHOUSE_UPLOAD_TOKEN`` and ``WHEELHOUSE_READ_TOKEN``.
    """
    _stoppable_while_loading()
    return build_app(server_options(load_settings()))


class _DeliberateThreads(logging.Filter):
    """Drops granian's notice that the WSGI thread count "seems quite high compared to the
    number of CPU cores" (it warns above 2 x cores + 1: 5 on a 2-core host), for the default
    count only. DEFAULT_THREADS is deliberate and not CPU-bound: a download holds its thread
    while the client reads, and up to 2 upload slots and half the threads for upstream waits
    are budgeted from it, so fewer would leave the hosted pages one thread on a small host
    (the hostile-client tests hold exactly those). Connections are bounded by
    ``backpressure``, as the notice advises. A count the user chose still gets the notice."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "seems quite high compared to the number of CPU cores" not in record.getMessage()


def granian_available() -> bool:
    """True when granian is importable (a dependency, but an install may lack it)."""
    return importlib.util.find_spec("granian") is not None


def _raise_fd_limit(connections: int) -> None:
    """Let each worker hold ``connections`` sockets: the usual soft limit of 1024 files would
    otherwise be the real connection cap, and accept() failing is not backpressure. Never
    above the hard limit, which only root can raise."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + _SPARE_FDS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        except (OSError, ValueError) as e:  # pragma: no cover - a limit we may not touch
            log.warning("cannot raise the open-file limit to %d: %s", new, e)


def check_store(store_root: Path | str, *, create: bool = False, writable: bool = False,
                catalogue: str | None = None) -> None:
    """Read the catalogue once, so an unreadable store fails in the launcher with one
    StoreError, not once per worker with a traceback each. ``create``: make the store if it
    is missing or an empty directory (a team starts its index before its first build);
    ``writable``: check that it can be written (a server taking uploads).

    The read happens in a throwaway thread: the store keeps one SQLite connection per thread,
    and this one is closed when the thread ends, before any worker is forked (a connection
    must never be used on both sides of a fork).
    """
    failure: list[WheelhouseError] = []

    def read() -> None:
        try:
            missing = create and not backends.exists(store_root, catalogue)
            store = backends.open_store(store_root, catalogue=catalogue,
                                        readonly=not (writable or missing))
        except WheelhouseError as e:  # none there, or not writable: its own message says so
            failure.append(e)
            return
        try:
            store.generation()
            if store.shared is not None:
                store.shared.db.close()  # no pool thread may cross the workers' fork
        except (StoreError, OSError) as e:
            failure.append(StoreError(
                f"cannot read the catalogue of the store at {store_root}: {e}",
                hint="check that the path is a wheelhouse store and readable by this user",
            ))

    reader = threading.Thread(target=read, name="wheelhouse-store-check")
    reader.start()
    reader.join()
    if failure:
        raise failure[0]


def _probe_address(host: str) -> str:
    # A wildcard bind is reached through loopback of the same family.
    if host == "0.0.0.0":
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/simple/"


def _announce_when_listening(
    host: str, port: int, line: str, on_ready: Callable[[str], None], stop: threading.Event
) -> None:
    """Call ``on_ready`` once a worker accepts connections (workers bind after loading)."""
    deadline = time.monotonic() + _READY_TIMEOUT
    address = _probe_address(host)
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1.0):
                on_ready(line)
                return
        except OSError:
            stop.wait(0.05)


def serve_production(
    options: ServerOptions,
    *,
    on_ready: Callable[[str], None] | None = None,
    backlog: int = 1024,
) -> None:
    """Serve the store with granian until SIGINT or SIGTERM. Must run in the main thread
    (granian installs signal handlers there).

    ``options.workers`` processes each run ``options.threads`` Python threads. The port is
    claimed first, so a busy port fails at once with ServeError; a missing store is created
    (empty) and an unreadable one fails with StoreError before any worker starts.
    ``on_ready`` is called with one line, e.g. ``Serving /srv/store at
    http://127.0.0.1:8000/simple/ (granian, 2 workers x 4 threads)``, once a worker accepts
    connections.
    """
    host, store_root = options.host, options.store
    workers = DEFAULT_WORKERS if options.workers is None else options.workers
    threads = DEFAULT_THREADS if options.threads is None else options.threads
    if not granian_available():
        raise ServeError(
            "the production server needs granian, which is not installed",
            hint="pip install 'granian>=2.8,<3' (a dependency of wheelhouse this environment "
            "lacks), or use --server builtin for development",
        )
    if workers < 1:
        raise ServeError(f"workers must be at least 1, not {workers}")
    if threads < 1:
        raise ServeError(f"threads must be at least 1, not {threads}")
    if options.max_connections < 1 or options.header_timeout <= 0:
        raise ServeError("max_connections and header_timeout must be positive")

    from granian import Granian
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    # granian binds with SO_REUSEPORT, so a second granian on a busy port would start and
    # silently share it. Our probe binds without it: it fails against any listener there
    # and turns that into the same ServeError as the built-in server, and it resolves
    # names and port 0 to the numeric address and port granian is then given.
    probe = bind_socket(host, options.port)
    bound_host, bound_port = probe.getsockname()[:2]
    probe.close()
    check_store(store_root, create=True, writable=options.upload_token is not None,
                catalogue=options.catalogue)
    _raise_fd_limit(options.max_connections)

    server = Granian(
        FACTORY_TARGET,
        address=bound_host,
        port=bound_port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=threads,
        backlog=backlog,
        # Each open connection holds one of these per worker until it closes: this is the
        # connection cap. Beyond it connections wait in the kernel's backlog, not in Python.
        backpressure=options.max_connections,
        # HTTP/1.1 only: pip, uv and twine speak it, and the header timeout below (hyper's)
        # exists only for HTTP/1; cleartext HTTP/2 would be an unbounded way in.
        http=HTTPModes.http1,
        # A client gets this long to send its headers, whether it trickles them or sends
        # none, and a kept-alive connection this long to start its next request; then it is
        # closed. Bodies are bounded by the app (see server.bodies).
        http1_settings=HTTP1Settings(header_read_timeout=round(options.header_timeout * 1000),
                                     keep_alive=True),
        websockets=False,
        log_level=LogLevels.warning,
        log_access=options.access_log,
        # A worker that dies (out of memory, a crash in C) comes back; granian gives up on
        # a crash loop (two deaths within seconds), which also ends a failed startup.
        respawn_failed_workers=True,
        # On SIGTERM a worker that has not stopped after this long is killed. Without it
        # granian waits forever, e.g. for a worker that missed the stop (see
        # _stoppable_while_loading); below docker stop's 10 s, so the server, not the
        # engine, ends it.
        workers_kill_timeout=STOP_GRACE,
    )
    if options.threads is None:
        logging.getLogger("_granian").addFilter(_DeliberateThreads())
    stop = threading.Event()
    line = (f"Serving {store_root} at {_url(host, bound_port)} "
            f"(granian, {workers} worker{'s' if workers > 1 else ''} x {threads} threads)")
    if options.upload_token is not None:
        line += f", uploads at {_url(host, bound_port).removesuffix('simple/')}legacy/"
    announce = on_ready if on_ready is not None else (lambda text: log.info("%s", text))
    threading.Thread(
        target=_announce_when_listening,
        args=(bound_host, bound_port, line, announce, stop),
        name="wheelhouse-ready",
        daemon=True,
    ).start()
    # The loader is handed to each worker (inherited over fork, pickled over spawn): every
    # worker builds its own app from these options, and nothing goes through os.environ.
    # The workers' options say granian, so their budgets follow granian's thread count.
    loader = partial(_worker_app, replace(options, server="granian", workers=workers,
                                          threads=threads), os.getpid())
    try:
        server.serve(target_loader=loader, wrap_loader=False)
    except OSError as e:
        # Another process took the port between our probe and granian's bind.
        if e.errno == errno.EADDRINUSE:
            raise ServeError(
                f"port {bound_port} on {host} is already in use",
                hint="stop the other server or choose another --port",
            ) from None
        raise ServeError(f"cannot serve on {host} port {bound_port}: {e}") from None
    except SystemExit as e:
        # granian ends with sys.exit(1) when workers died and could not be kept alive.
        if e.code not in (None, 0):
            raise ServeError(
                "the server's workers exited (see the log above)",
                hint="check that the store is readable by this user, and the messages above",
            ) from None
    finally:
        stop.set()
