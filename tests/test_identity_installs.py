"""Issue 9's look-alikes end to end: with ``click-8.1.7-py3-none-any.whl`` published through
``wheelhouse serve``, uploads of ``Click-8.1.7``, ``click-8.1.7.0``, ``click-v8.1.7``,
``click-8.1.7-1`` (build tag) and ``click-8.1.7+evil`` with other bytes are refused, and
``pip install click==8.1.7`` and ``uv pip install click==8.1.7`` get the original bytes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import clean_env
from tests.corpus import evil, original, upload
from tests.hostile import Served, serve
from wheelhouse.store.store import Store

pytestmark = pytest.mark.slow

TOKEN = "identity-token"
LOOK_ALIKES = [
    ("Click-8.1.7-py3-none-any.whl", "8.1.7"),
    ("click-8.1.7.0-py3-none-any.whl", "8.1.7.0"),
    ("click-v8.1.7-py3-none-any.whl", "v8.1.7"),
    ("click-8.1.7-1-py3-none-any.whl", "8.1.7"),
    ("click-8.1.7+evil-py3-none-any.whl", "8.1.7+evil"),
]


def _post(port: int, data: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        head = s.recv(4096)
    return int(head.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("identity")


@pytest.fixture(scope="module")
def server(work: Path) -> Iterator[Served]:
    (work / "token").write_text(TOKEN)
    served = serve(work / "store", "--upload-token-file", str(work / "token"),
                   env=clean_env())
    try:
        assert _post(served.port, upload(TOKEN, "click-8.1.7-py3-none-any.whl",
                                         original())) == 200
        yield served
    finally:
        served.stop()


def test_the_five_look_alikes_are_refused(server: Served, work: Path) -> None:
    statuses = {}
    for filename, version in LOOK_ALIKES:
        statuses[filename] = _post(server.port, upload(TOKEN, filename, evil(version)))
    assert all(code in (400, 409) for code in statuses.values()), statuses
    assert [f.filename for f in Store(work / "store", readonly=True).files()] == [
        "click-8.1.7-py3-none-any.whl"]


def _where(target: Path) -> str:
    text = (target / "click" / "__init__.py").read_text()
    return "original" if "original" in text else text


def test_pip_installs_the_original(server: Served, work: Path, tmp_path: Path) -> None:
    test_the_five_look_alikes_are_refused(server, work)
    target = tmp_path / "pip-target"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-deps", "--target",
         str(target), "--index-url", f"{server.base}/simple/", "click==8.1.7"],
        capture_output=True, text=True, env=clean_env(), timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _where(target) == "original"


def test_uv_installs_the_original(server: Served, work: Path, tmp_path: Path) -> None:
    test_the_five_look_alikes_are_refused(server, work)
    uv = shutil.which("uv", path=os.path.dirname(sys.executable)) or "uv"
    target = tmp_path / "uv-target"
    done = subprocess.run(
        [uv, "pip", "install", "--python", sys.executable, "--no-deps", "--target",
         str(target), "--index-url", f"{server.base}/simple/", "click==8.1.7"],
        capture_output=True, text=True, timeout=300, check=False,
        env=clean_env(UV_CACHE_DIR=str(tmp_path / "uv-cache"), UV_PYTHON_DOWNLOADS="never"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert _where(target) == "original"
