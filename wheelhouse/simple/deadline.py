"""What makes a request to an index end by its deadline, whatever the server does: retries
that would start too late are not made (``DeadlineRetry``), and the connections a request
holds are cut when its time is up (``DeadlineAdapter`` with ``deadline``), since a socket
timeout bounds each read and a server sending its status line a byte a second never hits it.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

from requests.adapters import HTTPAdapter
from urllib3.connectionpool import ConnectionPool, HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

#: When the request being made must be done; read by the retry policy, which lives on the
#: shared adapter and so cannot be given it directly.
_DEADLINE: contextvars.ContextVar[float] = contextvars.ContextVar("deadline", default=math.inf)
#: The connections the request being made took from a pool.
_IN_USE: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("in_use",
                                                                           default=None)


class DeadlineRetry(Retry):
    """urllib3's retries, but none that would start after the request's deadline."""

    def increment(
        self, method: str | None = None, url: str | None = None,
        response: BaseHTTPResponse | None = None, error: Exception | None = None,
        _pool: ConnectionPool | None = None, _stacktrace: TracebackType | None = None,
    ) -> Self:
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        if time.monotonic() + new.get_backoff_time() >= _DEADLINE.get():
            # urllib3 raises it with the pool it was given, None included.
            raise MaxRetryError(_pool, url,  # type: ignore[arg-type]
                                error or ResponseError("deadline reached"))
        return new


def _noted(conn: Any) -> Any:
    taken = _IN_USE.get()
    if taken is not None:
        taken.append(conn)
    return conn


class _Pool(HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        return _noted(super()._get_conn(timeout))


class _TLSPool(HTTPSConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        return _noted(super()._get_conn(timeout))


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose pools tell ``deadline`` which connections a request uses."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}


def _cut(taken: list[Any]) -> None:
    for conn in list(taken):
        sock = getattr(conn, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def deadline(at: float) -> Iterator[None]:
    """Requests made in the block through a ``DeadlineAdapter`` end by ``at`` (monotonic):
    no retry starts later, and their connections are shut down then."""
    taken: list[Any] = []
    token, in_use = _DEADLINE.set(at), _IN_USE.set(taken)
    watchdog = threading.Timer(max(0.0, at - time.monotonic()), _cut, args=(taken,))
    watchdog.daemon = True
    watchdog.start()
    try:
        yield
    finally:
        watchdog.cancel()
        _IN_USE.reset(in_use)
        _DEADLINE.reset(token)
