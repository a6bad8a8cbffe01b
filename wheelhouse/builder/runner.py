"""Running build commands: the seam between what a build does and where it runs.

``Runner`` is the protocol the builders use; ``LocalRunner`` runs on this machine. A runner
writes the command's output to the build log and enforces the time limit by killing the whole
process group, so a hung compiler cannot outlive its build.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol


@dataclass(frozen=True, kw_only=True)
class Completed:
    returncode: int
    timed_out: bool
    seconds: float
    #: the command's output when it was run without a log.
    output: str = ""


class Runner(Protocol):
    def run(
        self,
        cmd: Sequence[str],
        *,
        log: IO[str] | None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float | None = None,
    ) -> Completed:
        """Run ``cmd``; its output goes to ``log``, or into ``Completed.output`` if None."""
        ...


#: every command a LocalRunner is running, so an interrupted run can stop them all.
_ACTIVE: set[subprocess.Popen[bytes]] = set()
_ACTIVE_GUARD = threading.Lock()


def terminate_all() -> None:
    """Kill the process group of every running command (an interrupted run)."""
    with _ACTIVE_GUARD:
        procs = list(_ACTIVE)
    for proc in procs:
        _kill_group(proc)


class LocalRunner:
    """Runs commands as child processes of this one, each in its own process group."""

    def run(
        self,
        cmd: Sequence[str],
        *,
        log: IO[str] | None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float | None = None,
    ) -> Completed:
        if log is None:
            with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as buf:
                done = self.run(cmd, log=buf, env=env, cwd=cwd, timeout=timeout)
                buf.seek(0)
                text = buf.read()
            return Completed(returncode=done.returncode, timed_out=done.timed_out,
                             seconds=done.seconds, output=text.split("\n", 1)[-1])
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        start = time.monotonic()
        proc = subprocess.Popen(
            list(cmd), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True,
        )
        with _ACTIVE_GUARD:
            _ACTIVE.add(proc)
        try:
            rc = proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            rc, timed_out = proc.wait(), True
        except BaseException:
            _kill_group(proc)
            proc.wait()
            raise
        finally:
            with _ACTIVE_GUARD:
                _ACTIVE.discard(proc)
        seconds = time.monotonic() - start
        log.write(f"[exit {rc}{' (time limit reached)' if timed_out else ''} "
                  f"after {seconds:.1f} s]\n")
        log.flush()
        return Completed(returncode=rc, timed_out=timed_out, seconds=seconds)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
