"""Reading upload bodies so that slow clients cannot take the server's threads: a cap on
uploads read at once per process, and a pace each block of a body must keep.

Why a cap and not only a deadline. granian hands the body over as a blocking stream that
waits in Rust, without a timeout, until the bytes arrive, and gives the app no handle on the
connection to cut it; reading it from a helper thread instead, so the app thread could give
up, stalls the whole worker (measured with granian 2.8). So the app thread reads, and at most
``UploadSlots.n`` of them per process may be doing so: the rest of the threads always serve
the index, and uploads beyond the cap get 503 with Retry-After at once (twine and uv retry a
503; a queued upload would hold a thread while it waits). Each block must also arrive within
``stall_timeout`` (``PacedReader``), checked as it arrives, which ends uploads that trickle
slowly yet steadily. An upload that sends nothing at all keeps its slot until its client goes
away (werkzeug's server drops it after its own socket timeout): uploads need the upload
token, so that is the worst one of its holders can do, and reads are never affected.
"""

from __future__ import annotations

import threading
import time
from typing import IO

from wheelhouse.errors import Stalled


class UploadSlots:
    """At most ``n`` uploads read at once in this process; the rest are turned away."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError(f"upload slots must be at least 1, not {n}")
        self.n = n
        self._free = threading.BoundedSemaphore(n)

    def take(self) -> bool:
        return self._free.acquire(blocking=False)

    def give(self) -> None:
        self._free.release()


class PacedReader:
    """``read(n)`` of ``stream`` that raises Stalled once a read took longer than
    ``stall_timeout`` seconds: it cannot interrupt the read (see above), but it ends an
    upload that keeps trickling."""

    def __init__(self, stream: IO[bytes], *, stall_timeout: float) -> None:
        self._stream = stream
        self._timeout = stall_timeout

    def read(self, size: int = -1) -> bytes:
        started = time.monotonic()
        try:
            data = self._stream.read(size)
        except Exception:
            # werkzeug reports its socket's timeout as a disconnect; the clock tells.
            if time.monotonic() - started >= self._timeout:
                raise Stalled(f"no data for {self._timeout:g} s") from None
            raise
        if time.monotonic() - started > self._timeout:
            raise Stalled(f"a block took more than {self._timeout:g} s")
        return data
