"""Running the index with the built-in server, for development: bind the socket (turning bind
failures into a ``ServeError``), then serve the app with werkzeug's HTTP server and a fixed
pool of threads.

Werkzeug's server closes the connection after every response, so throughput is bounded by
connection setup, and each connection holds a pool thread for as long as its client takes to
send a request: a few dozen idle connections stop it. ``wheelhouse serve`` therefore runs
granian (``wheelhouse.server.production``) unless told ``--server builtin``.
"""

from __future__ import annotations

import errno
import logging
import queue
import socket
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler

from wheelhouse.errors import ServeError
from wheelhouse.options import BUILTIN_THREADS, ServerOptions
from wheelhouse.server.app import create_app

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

log = logging.getLogger(__name__)

_BACKLOG = 512


class _Handler(WSGIRequestHandler):
    # Declared so werkzeug does not set it on the shared base class for us.
    protocol_version = "HTTP/1.1"
    #: Seconds a socket read or write may stall. Without it a client that stops sending in
    #: the middle of an upload (or never sends its request) holds a pool thread forever.
    timeout = 120


class _QuietHandler(_Handler):
    """No access log line per request (benchmarks, or a proxy in front that logs)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class _PooledServer(BaseWSGIServer):
    """Werkzeug's server with a bounded pool of daemon worker threads.

    Werkzeug's threaded server starts a thread per connection, without limit; a pool keeps
    memory bounded under load and keeps each worker's SQLite connection (the store's are per
    thread) alive across requests. Daemon threads: a slow download must not delay exit.
    """

    multithread = True

    def __init__(self, *args: Any, threads: int, **kwargs: Any) -> None:
        self._jobs: queue.SimpleQueue[tuple[Any, Any] | None] = queue.SimpleQueue()
        # Werkzeug calls server_close() inside __init__ (to drop the socket socketserver
        # opened before it adopts ours); no worker may be told to stop before it exists.
        self._threads = 0
        super().__init__(*args, **kwargs)
        for i in range(threads):
            threading.Thread(
                target=self._work, name=f"wheelhouse-http-{i}", daemon=True
            ).start()
        self._threads = threads

    def process_request(self, request: Any, client_address: Any) -> None:
        self._jobs.put((request, client_address))

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            request, client_address = job
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        for _ in range(self._threads):
            self._jobs.put(None)
        self._threads = 0


def _bind_error(e: OSError, host: str, port: int) -> ServeError:
    if e.errno == errno.EADDRINUSE:
        return ServeError(
            f"port {port} on {host} is already in use",
            hint="stop the other server or choose another --port",
        )
    if e.errno in (errno.EACCES, errno.EPERM):
        return ServeError(
            f"no permission to listen on port {port} on {host}",
            hint="ports below 1024 need privileges; choose another --port",
        )
    if e.errno == errno.EADDRNOTAVAIL:
        return ServeError(
            f"{host} is not an address of this machine",
            hint="use 127.0.0.1, 0.0.0.0 or one of this machine's addresses with --host",
        )
    return ServeError(f"cannot listen on {host} port {port}: {e.strerror or e}")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one. Raises ServeError."""
    if not 0 <= port <= 65535:
        raise ServeError(f"port {port} is not a TCP port", hint="choose a port from 1 to 65535")
    try:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as e:
        raise ServeError(
            f"cannot listen on {host!r}: {e.strerror}",
            hint="give --host an IP address or a name this machine resolves",
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # Lets a restarted server bind while old connections sit in TIME_WAIT; on Linux it
        # does not let two servers listen on one port, so "in use" is still detected.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(_BACKLOG)
    except OSError as e:
        sock.close()
        raise _bind_error(e, host, port) from None
    return sock


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/simple/"


class IndexServer:
    """A bound, not yet running server. ``serve_forever`` runs it; ``shutdown`` stops it."""

    def __init__(
        self,
        app: WSGIApplication,
        sock: socket.socket,
        *,
        threads: int,
        access_log: bool,
    ) -> None:
        bound_host, bound_port = sock.getsockname()[:2]
        handler = _Handler if access_log else _QuietHandler
        # The numeric address we bound decides the family werkzeug uses for the socket; a
        # name such as "localhost" could make it guess another family than the one bound.
        self._server = _PooledServer(
            bound_host, bound_port, app, handler, fd=sock.fileno(), threads=threads
        )
        # Werkzeug duplicated the descriptor; ours is no longer needed.
        sock.close()
        self.host: str = bound_host
        self.port: int = self._server.port

    @property
    def url(self) -> str:
        return _url(self.host, self.port)

    @property
    def upload_url(self) -> str:
        """Where twine and uv publish (answered only with an upload token configured)."""
        return self.url.removesuffix("simple/") + "legacy/"

    def serve_forever(self) -> None:
        """Serve until ``shutdown`` or Ctrl-C (which werkzeug turns into a clean return)."""
        self._server.serve_forever()

    def shutdown(self) -> None:
        self._server.shutdown()


#: Threads of the built-in server when the options do not say.
DEFAULT_THREADS = BUILTIN_THREADS


def make_server(options: ServerOptions) -> IndexServer:
    """Bind ``options.host``/``options.port``, then load the store. The socket comes first so
    that a busy port fails at once, before a large catalogue is rendered. Raises ServeError,
    StoreError or UsageError."""
    threads = DEFAULT_THREADS if options.threads is None else options.threads
    if threads < 1:
        raise ServeError(f"threads must be at least 1, not {threads}")
    sock = bind_socket(options.host, options.port)
    try:
        app = create_app(replace(options, server="builtin", threads=threads))
        return IndexServer(app, sock, threads=threads, access_log=options.access_log)
    except BaseException:
        sock.close()
        raise


def serve(options: ServerOptions, *, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the store until interrupted. Calls ``on_ready`` with one line saying where,
    e.g. ``Serving /srv/store at http://127.0.0.1:8000/simple/`` (logged if no callback);
    with an upload token the line also names the upload URL."""
    server = make_server(options)
    line = f"Serving {options.store} at {_url(options.host, server.port)}"
    if options.upload_token is not None:
        line += f", uploads at {server.upload_url}"
    if on_ready is not None:
        on_ready(line)
    else:
        log.info("%s", line)
    server.serve_forever()
