"""A store on a full disk, for real: a 2 MiB tmpfs mounted for the test (root only; skipped
where mounting is not permitted). An upload gets 507 with a message and leaves nothing behind
while reads go on; ``wheelhouse build`` stops with exit 5 naming the disk."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import clean_env, wheelhouse
from tests.corpus import upload
from tests.distributions import write_wheel
from tests.hostile import serve
from tests.test_upload import twine
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store

pytestmark = pytest.mark.slow

TOKEN = "full-disk-token"


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs at tmp_path/fs, unmounted afterwards."""
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def _big_wheel(directory: Path, name: str, size: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    # hex of random bytes: deflate gets it to about half, still more than the disk holds
    return write_wheel(directory, name, "1.0", module_source=f"X = {os.urandom(size).hex()!r}\n")


def _fill(fs: Path, leave: int) -> None:
    free = os.statvfs(fs).f_bavail * os.statvfs(fs).f_frsize
    with (fs / "filler").open("wb") as f:
        f.write(bytes(max(free - leave, 0)))


def test_an_upload_onto_a_full_disk_is_507_and_keeps_nothing(small_fs: Path,
                                                            tmp_path: Path) -> None:
    store = Store(small_fs / "store")
    small = write_wheel(tmp_path, "wh-small", "1.0")
    store.publish(small, origin=Origin.UPLOADED)
    before = (store.files(), store.generation())
    (tmp_path / "token").write_text(TOKEN)
    served = serve(small_fs / "store", "--upload-token-file", str(tmp_path / "token"),
                   env=clean_env())
    try:
        big = _big_wheel(tmp_path / "big", "wh-big", 1_500_000)
        assert big.stat().st_size > 2 << 20
        result = twine(tmp_path, f"{served.base}/legacy/", str(big), token=TOKEN)
        out = result.stdout + result.stderr
        assert result.returncode != 0, out
        assert "507 Insufficient Storage" in out, out
        # what the body says (granian sends the standard reason phrase, which twine shows)
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as s:
            s.sendall(upload(TOKEN, big.name, big.read_bytes()))
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 507"), answer[:200]
        assert b"disk is full" in answer and b"nothing of it was kept" in answer
        # reads go on, from every worker
        for _ in range(6):
            with urllib.request.urlopen(f"{served.base}/simple/wh-small/", timeout=5) as r:
                assert r.status == 200 and small.name.encode() in r.read()
        # and a small upload still fits
        again = twine(tmp_path, f"{served.base}/legacy/",
                      str(write_wheel(tmp_path, "wh-small2", "1.0")), token=TOKEN)
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        served.stop()
    after = Store(small_fs / "store")
    assert [f.filename for f in after.files()] == sorted(
        [f.filename for f in before[0]] + ["wh_small2-1.0-py3-none-any.whl"])
    assert after.generation() == before[1] + 1
    assert list((small_fs / "store" / "tmp").iterdir()) == []
    assert sorted(p.name for p in (small_fs / "store" / "files").iterdir()) == [
        "wh-small", "wh-small2"]


def _project(tmp_path: Path, store: Path) -> Path:
    project = tmp_path / "project"
    wheel = _big_wheel(project / "wheels", "whbig", 1_500_000)
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (project / "pylock.toml").write_text(
        'lock-version = "1.0"\ncreated-by = "hand"\n\n[[packages]]\nname = "whbig"\n'
        f'version = "1.0"\n[[packages.wheels]]\npath = "wheels/{wheel.name}"\n'
        f'hashes = {{ sha256 = "{sha}" }}\n')
    (project / "wheelhouse.toml").write_text(
        f"requirements = ['pylock.toml']\nstore = '{store}'\n")
    return project


@pytest.mark.parametrize("leave", [0, 100_000], ids=["full", "nearly-full"])
def test_build_into_a_full_store_says_the_disk_is_full(small_fs: Path, tmp_path: Path,
                                                       leave: int) -> None:
    store = small_fs / "store"
    Store(store)
    project = _project(tmp_path, store)
    _fill(small_fs, leave)
    done = wheelhouse("build", cwd=project)
    assert done.returncode == 5, done.stdout + done.stderr
    assert "is full" in done.stderr and str(small_fs) in done.stderr, done.stderr
    assert "file locks" not in done.stderr and "permission" not in done.stderr
    if leave:
        assert "needed" in done.stderr
    assert Store(store).files() == []
    assert [p for p in (store / "tmp").iterdir()] == []


def test_serve_still_reads_a_full_store(small_fs: Path) -> None:
    store = Store(small_fs / "store")
    store.publish(write_wheel(small_fs, "wh-read", "1.0"), origin=Origin.UPLOADED)
    _fill(small_fs, 0)
    served = serve(small_fs / "store", env=clean_env())
    try:
        with urllib.request.urlopen(f"{served.base}/simple/wh-read/", timeout=5) as r:
            assert r.status == 200
    finally:
        served.stop()
    assert sys.executable  # the server ran from this interpreter's environment
