"""nginx in the foreground for the export tests, every path under one prefix (never the
system service), listening on loopback only."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.conftest import free_port


def executable() -> str | None:
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def on_loopback(config: str, port: int) -> str:
    """The config listening on 127.0.0.1:port (the one change a test makes)."""
    changed, count = re.subn(r"(?m)^(\s*)listen\s+\S+;", rf"\1listen 127.0.0.1:{port};", config)
    assert count == 1, "an nginx config of ours should have exactly one listen directive"
    return changed


def start_nginx(prefix: Path, config: str) -> tuple[subprocess.Popen[bytes], str]:
    """nginx serving ``config`` (rewritten to loopback) from ``prefix``; waits for /health."""
    exe = executable()
    assert exe is not None
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    (prefix / "tmp").mkdir(exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(on_loopback(config, port))
    # As root, nginx would run its workers as "nobody", which cannot enter pytest's private
    # temporary directories; the shipped configs deliberately name no user.
    directives = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    cmd = [exe, "-p", str(prefix), "-c", str(conf), "-g", directives]
    check = subprocess.run([*cmd, "-t"], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2):
                return proc, base
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                _, err = proc.communicate()
                raise AssertionError(f"nginx did not start: {err.decode()}") from None
            time.sleep(0.05)
