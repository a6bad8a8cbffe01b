"""Reading upload bodies so that slow clients cannot take the server's threads: a cap on
uploads read at once per process, a pace each block of a body must keep, and slots that a
body which stopped arriving loses.

Why a cap and not only a deadline. granian hands the body over as a blocking stream that
waits in Rust, without a timeout, until the bytes arrive, and gives the app no handle on the
connection to cut it; reading it from a helper thread instead, so the app thread could give
up, stalls the whole worker (measured again with granian 2.8.9: a helper thread blocked in
the read holds the interpreter, and every other request of that worker waits). So the app
thread reads, and at most ``UploadSlots.n`` of them per process may be doing so: the rest of
the threads always serve the index, and uploads beyond the cap get 503 with Retry-After at
once (twine and uv retry a 503; a queued upload would hold a thread while it waits).

The stall timeout applies to the slots too. A holder whose body has not moved for
``stall_timeout`` seconds (no block arrived) loses its slot to the next upload that asks:
its thread stays blocked in the read (nothing can interrupt it) and is counted as stuck, up to
another ``n`` per process, so uploads never hold more than ``2 n`` threads. Four connections
that declare a body and send nothing therefore stop other uploads for ``stall_timeout``, not
for as long as they stay open. A stuck upload ends with 408 once anything arrives (the block
took longer than the pace allows, ``PacedReader``) or when its client goes away; a block that
trickles in slowly but steadily is also ended by the pace.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import IO

from wheelhouse.errors import Stalled


class Slot:
    """One upload's hold on a slot; ``progress`` is called as its body arrives."""

    def __init__(self) -> None:
        self.last_progress = time.monotonic()
        #: the slot was given to another upload while this one's read was stuck.
        self.reclaimed = False
        self.reading = True

    def progress(self) -> None:
        self.last_progress = time.monotonic()

    def done_reading(self) -> None:
        """The body is read: what follows (checking, publishing) may take long, and is work,
        not a stall."""
        self.reading = False


class UploadSlots:
    """At most ``n`` uploads read at once in this process; the rest are turned away. A slot
    whose body has not moved for ``stall_timeout`` is taken back (see above)."""

    def __init__(self, n: int, *, stall_timeout: float = 30.0) -> None:
        if n < 1:
            raise ValueError(f"upload slots must be at least 1, not {n}")
        self.n = n
        self.stall_timeout = stall_timeout
        self._lock = threading.Lock()
        self._held: list[Slot] = []
        self._stuck = 0

    def take(self) -> Slot | None:
        with self._lock:
            if len(self._held) >= self.n:
                self._reclaim()
            if len(self._held) >= self.n:
                return None
            slot = Slot()
            self._held.append(slot)
            return slot

    def _reclaim(self) -> None:
        cutoff = time.monotonic() - self.stall_timeout
        for slot in list(self._held):
            if self._stuck >= self.n:
                return
            if slot.reading and slot.last_progress <= cutoff:
                self._held.remove(slot)
                slot.reclaimed = True
                self._stuck += 1

    def give(self, slot: Slot | None = None) -> None:
        """Give ``slot`` back (without one: any held slot, for tests)."""
        with self._lock:
            if slot is None:
                if self._held:
                    self._held.pop()
            elif slot.reclaimed:
                self._stuck -= 1
            elif slot in self._held:
                self._held.remove(slot)

    @property
    def stuck(self) -> int:
        """Threads blocked in a body that stopped arriving, whose slots were taken back."""
        return self._stuck


class PacedReader:
    """``read(n)`` of ``stream`` that raises Stalled once a read took longer than
    ``stall_timeout`` seconds: it cannot interrupt the read (see above), but it ends an
    upload that keeps trickling."""

    def __init__(self, stream: IO[bytes], *, stall_timeout: float,
                 on_progress: Callable[[], None] | None = None) -> None:
        self._stream = stream
        self._timeout = stall_timeout
        self._on_progress = on_progress

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
        if self._on_progress is not None:
            self._on_progress()
        return data
