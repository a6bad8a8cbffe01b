"""Hostile clients for tests and benchmarks, on loopback only: connections that never finish
their request, uploads that trickle, and probes that say whether a normal client is still
served. Shared by ``tests/test_hostile_*.py`` (small, bounded numbers) and
``bench/bench_hostile.py`` (the thresholds, with larger numbers)."""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import stop_group

PIP_ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; "
              "q=0.1, text/html; q=0.01")

READY = re.compile(r"Serving .+ at (http://127\.0\.0\.1:(\d+))/simple/")


@dataclass
class Served:
    """A ``wheelhouse serve`` process started by ``serve``."""

    proc: subprocess.Popen[str]
    base: str
    port: int
    output: list[str] = field(default_factory=list)

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after 20 s, then the rest of its group; the exit status."""
        return stop_group(self.proc, timeout=20)


def serve(store: Path | str, *args: str, env: dict[str, str] | None = None,
          timeout: float = 60.0, python: str = sys.executable, cwd: Path | None = None
          ) -> Served:
    """``python -m wheelhouse serve --store STORE --host 127.0.0.1 --port FREE ARGS``, once
    it says where it listens. Its output is collected in ``Served.output`` by a thread."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [python, "-m", "wheelhouse", "serve", "--store", str(store), "--host", "127.0.0.1",
         "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        start_new_session=True, cwd=cwd,
    )
    assert proc.stdout is not None
    output: list[str] = []
    found: list[re.Match[str]] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            match = READY.search(line)
            if match and not found:
                found.append(match)
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(timeout) or not found:
        proc.kill()
        proc.wait()
        raise RuntimeError("the server did not start:\n" + "".join(output))
    return Served(proc=proc, base=found[0].group(1), port=int(found[0].group(2)),
                  output=output)


def basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()


# -- probes -------------------------------------------------------------------------------------


def get(url: str, *, timeout: float = 5.0, headers: dict[str, str] | None = None
        ) -> tuple[int, bytes]:
    """Status and body; 0 when nothing came back in time (timeout, reset, refused)."""
    req = urllib.request.Request(url, headers={"Accept": PIP_ACCEPT, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, ValueError):
        return 0, b""


def probe(url: str, *, within: float = 1.0) -> float | None:
    """Seconds a fresh connection takes to get a 200 for ``url``; None if not within."""
    started = time.monotonic()
    status, _ = get(url, timeout=within)
    took = time.monotonic() - started
    return took if status == 200 and took <= within else None


def answered(url: str, *, tries: int = 4, within: float = 1.0) -> int:
    """How many of ``tries`` fresh requests got a 200 within ``within`` seconds each."""
    return sum(probe(url, within=within) is not None for _ in range(tries))


# -- connections that hold on ------------------------------------------------------------------


class Holders:
    """Connections kept open in some unfinished state, closed together by ``close``."""

    def __init__(self) -> None:
        self.socks: list[socket.socket] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Holders:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self, port: int, first: bytes = b"") -> socket.socket | None:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if first:
                s.sendall(first)
        except OSError:
            return None
        self.socks.append(s)
        return s

    def incomplete(self, port: int, n: int) -> int:
        """``n`` connections that sent a request line and one header, never the end."""
        made = 0
        for _ in range(n):
            made += self.connect(port, b"GET /simple/ HTTP/1.1\r\nHost: 127.0.0.1\r\n") is not None
        return made

    def silent(self, port: int, n: int) -> int:
        """``n`` connections that send nothing at all."""
        return sum(self.connect(port) is not None for _ in range(n))

    def uploads(self, port: int, n: int, token: str, *, size: int = 8 << 20,
                every: float = 1.0) -> int:
        """``n`` authenticated uploads that declare ``size`` bytes and then send one byte
        every ``every`` seconds (a client on a dying link, or one doing it on purpose)."""
        head = (
            f"POST /legacy/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {basic(token)}\r\n"
            "Content-Type: multipart/form-data; boundary=XyZ\r\n"
            f"Content-Length: {size}\r\n\r\n"
            "--XyZ\r\nContent-Disposition: form-data; name=\":action\"\r\n\r\nfile_upload\r\n"
            "--XyZ\r\nContent-Disposition: form-data; name=\"content\"; "
            "filename=\"slow-1.0-py3-none-any.whl\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\nPK"
        ).encode()
        made = [s for s in (self.connect(port, head) for _ in range(n)) if s is not None]
        self.trickle(made, every)
        return len(made)

    def trickle(self, socks: Sequence[socket.socket], every: float) -> None:
        """Send one byte on each of ``socks`` every ``every`` seconds until closed."""
        def run() -> None:
            while not self._stop.wait(every):
                for s in socks:
                    with contextlib.suppress(OSError):
                        s.send(b"x")

        t = threading.Thread(target=run, daemon=True)
        t.start()
        self._threads.append(t)

    def open_count(self) -> int:
        """How many of the connections the server has not closed yet."""
        alive = 0
        for s in self.socks:
            try:
                s.setblocking(False)
                data = s.recv(65536, socket.MSG_PEEK)
                alive += data != b""
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    s.setblocking(True)
        return alive

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        for s in self.socks:
            with contextlib.suppress(OSError):
                s.close()
        self.socks.clear()


def held_for(port: int, first: bytes, *, cap: float, every: float | None = None) -> float:
    """Seconds until the server closes a connection that sent ``first`` (and then one byte
    every ``every`` seconds, if given) without completing a request; ``cap`` if it is still
    open then."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(first)
        next_byte = started + (every or cap)
        while True:
            now = time.monotonic()
            if now - started >= cap:
                return cap
            s.settimeout(max(0.05, min(next_byte, started + cap) - now))
            try:
                data = s.recv(65536)
            except TimeoutError:
                if every is not None and time.monotonic() >= next_byte:
                    with contextlib.suppress(OSError):
                        s.send(b"x")
                    next_byte += every
                continue
            except OSError:
                return time.monotonic() - started
            if not data or b"\r\n\r\n" in data:
                # closed, or answered (e.g. 408) and about to close
                return time.monotonic() - started


@contextlib.contextmanager
def holding(port: int, kind: str, n: int, *, token: str = "") -> Iterator[Holders]:
    with Holders() as h:
        if kind == "incomplete":
            h.incomplete(port, n)
        elif kind == "silent":
            h.silent(port, n)
        elif kind == "uploads":
            h.uploads(port, n, token)
        else:  # pragma: no cover - a caller's typo
            raise ValueError(kind)
        yield h
