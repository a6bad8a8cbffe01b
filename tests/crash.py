"""kill -9 loops on loopback: servers killed while uploads stream in, builds killed while they
publish, and the checks a store must pass afterwards (no staging debris once a writer has
started again, catalogue and files equal, no traceback from later commands). Shared by
``tests/test_crash_loops.py`` (50 rounds each) and ``bench/bench_hostile.py``."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.corpus import upload
from tests.distributions import wheel_bytes, write_wheel
from tests.hostile import serve
from wheelhouse.store.store import Store

#: Kernel module source of this many bytes makes an upload take several writes.
_PAYLOAD = 256 * 1024


@dataclass
class Loop:
    rounds: int = 0
    killed_mid_upload: int = 0
    uploads_done: int = 0
    debris_seen: int = 0
    problems: list[str] = field(default_factory=list)


def kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the process and everything it started (granian's workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _slow_upload(port: int, token: str, name: str, stop: threading.Event,
                 done: list[int]) -> None:
    data = upload(token, f"{name.replace('-', '_')}-1.0-py3-none-any.whl",
                  wheel_bytes(name, "1.0", module_source="# " + "x" * _PAYLOAD))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            for i in range(0, len(data), 32 * 1024):
                if stop.is_set():
                    return
                s.sendall(data[i:i + 32 * 1024])
                time.sleep(0.003)
            if s.recv(64).startswith(b"HTTP/1.1 200"):
                done.append(1)
    except OSError:
        pass


def server_kill_loop(store: Path | str, token_file: Path, rounds: int, *,
                     env: dict[str, str], seed: int = 9, args: tuple[str, ...] = (),
                     staging: Path | None = None) -> Loop:
    """Start ``wheelhouse serve`` (granian, one worker), stream uploads into it from three
    clients, SIGKILL the whole process group at a random moment; ``rounds`` times. ``args``:
    more flags (a shared store's --catalogue); ``staging``: where uploads are staged (for a
    bucket, this machine's staging area; else the store's tmp/)."""
    rng = random.Random(seed)
    tmp = staging if staging is not None else Path(store) / "tmp"
    loop = Loop()
    token = token_file.read_text().strip()
    for r in range(rounds):
        served = serve(store, "--upload-token-file", str(token_file), "--workers", "1",
                       "--threads", "4", *args, env=env)
        stop = threading.Event()
        done: list[int] = []
        clients = [threading.Thread(target=_client_loop,
                                    args=(served.port, token, f"crash-{r}-{c}", stop, done),
                                    daemon=True) for c in range(3)]
        for t in clients:
            t.start()
        # Kill while something is staged: once an upload is streaming, after a random delay.
        _until_staging(tmp, served.proc, 5.0)
        time.sleep(rng.uniform(0.0, 0.3))
        loop.killed_mid_upload += bool(list(tmp.iterdir()))
        kill_group(served.proc)
        stop.set()
        for t in clients:
            t.join(15)
        loop.rounds += 1
        loop.uploads_done += len(done)
        loop.debris_seen += len(list(tmp.iterdir()))
    return loop


def _client_loop(port: int, token: str, prefix: str, stop: threading.Event,
                 done: list[int]) -> None:
    n = 0
    while not stop.is_set():
        _slow_upload(port, token, f"{prefix}-{n}", stop, done)
        n += 1


def build_kill_loop(work: Path, store: Path, rounds: int, *, env: dict[str, str],
                    seed: int = 7, wheels_per_round: int = 30) -> Loop:
    """``wheelhouse build`` of local wheels (find-links, no index), SIGKILLed at a random
    moment while it publishes; each round asks for some wheels it has not published yet."""
    rng = random.Random(seed)
    links = work / "links"
    links.mkdir(exist_ok=True)
    total = rounds * wheels_per_round // 2 + wheels_per_round
    for i in range(total):
        write_wheel(links, f"wh-crash-{i:04d}", "1.0", module_source="# " + "y" * 20_000)
    loop = Loop()
    for r in range(rounds):
        first = r * wheels_per_round // 2
        reqs = work / f"r{r}.txt"
        reqs.write_text(f"--no-index\n--find-links {links}\n" + "".join(
            f"wh-crash-{i:04d}==1.0\n" for i in range(first, first + wheels_per_round)))
        proc = subprocess.Popen(
            [sys.executable, "-m", "wheelhouse", "build", str(reqs), "--store", str(store)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True,
        )
        _until_staging(store / "tmp", proc, 10.0)
        time.sleep(rng.uniform(0.0, 0.15))
        loop.killed_mid_upload += proc.poll() is None
        kill_group(proc)
        loop.rounds += 1
        loop.debris_seen += len(list((store / "tmp").iterdir()))
    return loop


def _until_staging(tmp: Path, proc: subprocess.Popen[str], limit: float) -> None:
    """Until ``proc`` has something in the store's staging area (or exits, or ``limit``):
    machines differ in speed, so a fixed delay would often kill too early or too late."""
    deadline = time.monotonic() + limit
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if any(e.is_file() for e in tmp.iterdir()):
                return
        time.sleep(0.002)


def store_problems(root: Path) -> list[str]:
    """How the store's files and catalogue disagree (empty when they match)."""
    problems = []
    store = Store(root, readonly=True)
    listed: set[Path] = set()
    for f in store.files():
        path = store.file_path(f)
        listed.add(path)
        try:
            data = path.read_bytes()
        except OSError:
            problems.append(f"{f.relpath} is listed but missing")
            continue
        if len(data) != f.size or hashlib.sha256(data).hexdigest() != f.sha256:
            problems.append(f"{f.relpath} does not match its row")
        if f.metadata_sha256 is not None:
            meta = store.metadata_path(f)
            listed.add(meta)
            if not meta.exists() or hashlib.sha256(meta.read_bytes()).hexdigest() != (
                    f.metadata_sha256):
                problems.append(f"{f.relpath}.metadata does not match its row")
    for path in (root / "files").rglob("*"):
        if path.is_file() and path not in listed:
            problems.append(f"{path.relative_to(root)} is on disk but not listed")
    return problems


def no_traceback(*commands: list[str], env: dict[str, str], ok: Callable[[int], bool]
                 ) -> list[str]:
    """Run each ``wheelhouse`` command; what went wrong (a traceback, an unexpected exit)."""
    problems = []
    for args in commands:
        done = subprocess.run([sys.executable, "-m", "wheelhouse", *args], env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        text = done.stdout + done.stderr
        if "Traceback" in text or not ok(done.returncode):
            problems.append(f"wheelhouse {' '.join(args[:2])}: exit {done.returncode}: "
                            f"{text[-1500:]}")
    return problems
