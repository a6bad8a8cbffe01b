"""Issue 16, items 1 and 2, with real builds on this machine: a build stopped by Ctrl-C or
SIGTERM (a cancelled CI job) is not remembered as the package's failure, and neither is a build
that failed for the machine's reason (no C compiler); the next plain run builds and exits 0."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import build_sdist, clean_env, wheelhouse

pytestmark = [pytest.mark.slow, pytest.mark.network]


def _failures(store: Path) -> list[object]:
    out = wheelhouse("list", "--failures", "--json", "--store", str(store))
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout or "[]"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_build_is_built_by_the_next_plain_run(
        tmp_path: Path, sig: signal.Signals) -> None:
    links = tmp_path / "links"
    build_sdist("whslow", links)
    gate = tmp_path / "gate"
    (tmp_path / "wheelhouse.toml").write_text(
        f'[packages.whslow]\nenvironment = {{ WHSLOW_GATE = "{gate}" }}\n')
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"--find-links {links}\nwhslow==1.0.0\n")
    store = tmp_path / "store"
    cmd = [sys.executable, "-m", "wheelhouse", "build", str(reqs), "--store", str(store)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=clean_env(CI="true"), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not Path(f"{gate}.started").exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the build never started"
            time.sleep(0.1)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    assert "failed (exit -9)" not in out and "interrupted" in out
    assert _failures(store) == []
    gate.touch()
    again = wheelhouse("build", str(reqs), "--store", str(store), cwd=tmp_path,
                       env=clean_env(CI="true"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "not retried" not in again.stdout
    assert list((store / "files" / "whslow").glob("whslow-1.0.0-*.whl"))


def test_a_missing_compiler_is_the_machines_failure_not_the_packages(tmp_path: Path) -> None:
    links = tmp_path / "links"
    build_sdist("whslow", links)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"--find-links {links}\nwhslow==1.0.0\n")
    store = tmp_path / "store"
    broken = wheelhouse("build", str(reqs), "--store", str(store),
                        env=clean_env(CI="true", CC="/nonexistent/gcc"))
    assert broken.returncode == 8, broken.stdout + broken.stderr
    text = broken.stdout + broken.stderr
    assert "this machine" in text and "no C compiler" in text
    assert "apt-get install gcc" in text
    assert _failures(store) == []
    fixed = wheelhouse("build", str(reqs), "--store", str(store), env=clean_env(CI="true"))
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "not retried" not in fixed.stdout
