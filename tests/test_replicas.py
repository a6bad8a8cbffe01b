"""Issue 18's acceptance: two ``wheelhouse serve`` replicas (granian, as in production) on one
``s3://`` store and one PostgreSQL catalogue, with the real clients: an upload through one is
listed by the other within a second; pip and uv install from either; after ``kill -9`` of one
(and of every PostgreSQL connection) the other still installs; nothing of the store is
written to local disk. Then ``wheelhouse build`` of real pins straight into the shared store,
twice at once.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import SharedStore, end_group, start_server, stop_server, wheelhouse
from tests.crash import no_traceback, server_kill_loop
from tests.distributions import write_wheel
from tests.hostile import get, serve
from tests.test_upload import client_env, twine, uv
from wheelhouse.store.backends import open_store, staging_root

TOKEN = "upload-token-for-tests"


def _listed(base: str, project: str, filename: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/simple/{project}/", timeout=5) as resp:
            return filename in resp.read().decode()
    except OSError:
        return False


def _pip_install(tmp: Path, base: str, what: str, into: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--target", str(into),
         "--index-url", f"{base}/simple/", what],
        capture_output=True, text=True, env=client_env(tmp), timeout=180)


@pytest.mark.slow
def test_two_replicas_share_one_bucket_and_catalogue(shared_store: SharedStore,
                                                     tmp_path: Path) -> None:
    env = dict(shared_store.env, WHEELHOUSE_UPLOAD_TOKEN=TOKEN)
    args = ("--catalogue", shared_store.catalogue, "--workers", "2")
    a = start_server(shared_store.store, tmp_path / "a.log", *args, env=env)
    b = start_server(shared_store.store, tmp_path / "b.log", *args, env=env)
    try:
        dist = tmp_path / "dist"
        dist.mkdir()
        wheels = [write_wheel(dist, "wh-replicated", "1.0"),
                  write_wheel(dist, "wh-replicated", "1.1")]
        for wheel in wheels:
            done = twine(tmp_path, f"{a.url}/legacy/", str(wheel), token=TOKEN)
            answered = time.monotonic()
            assert done.returncode == 0, done.stdout + done.stderr
            while not _listed(b.url, "wh-replicated", wheel.name):
                assert time.monotonic() - answered < 1.0, "not listed by the other replica"
                time.sleep(0.02)
        for n, server in enumerate((a, b)):
            got = _pip_install(tmp_path, server.url, "wh-replicated==1.1", tmp_path / f"p{n}")
            assert got.returncode == 0, got.stdout + got.stderr
            assert (tmp_path / f"p{n}" / "wh_replicated" / "__init__.py").is_file()
            got = uv(tmp_path, "pip", "install", "--target", str(tmp_path / f"u{n}"),
                     "--index-url", f"{server.url}/simple/", "wh-replicated==1.0")
            assert got.returncode == 0, got.stdout + got.stderr
        # kill -9 one replica, workers and all, and every connection to the database.
        os.killpg(a.proc.pid, signal.SIGKILL)
        a.proc.wait(10)
        shared_store.pg.terminate_clients(shared_store.catalogue)
        got = _pip_install(tmp_path, b.url, "wh-replicated==1.0", tmp_path / "after")
        assert got.returncode == 0, got.stdout + got.stderr
        late = write_wheel(dist, "wh-replicated", "1.2")
        done = twine(tmp_path, f"{b.url}/legacy/", str(late), token=TOKEN)
        assert done.returncode == 0, done.stdout + done.stderr
        health = urllib.request.urlopen(f"{b.url}/health", timeout=5).read().decode()
        assert '"database":"ok"' in health.replace(" ", "")
        assert '"bucket":"ok"' in health.replace(" ", "")
    finally:
        end_group(a.proc)
        stop_server(b)
    # Every file is in the bucket, none on this machine.
    keys = shared_store.s3.keys(shared_store.bucket)
    for wheel in [*wheels, late]:
        assert f"index/files/wh-replicated/{wheel.name}" in keys
        on_disk = [p for p in staging_root(shared_store.store.rstrip("/")).rglob(wheel.name)]
        assert on_disk == []
    reader = open_store(shared_store.store, catalogue=shared_store.catalogue, readonly=True)
    assert len(reader.files("wh-replicated")) == 3


@pytest.mark.slow
@pytest.mark.network
def test_builds_publish_straight_into_the_shared_store(shared_store: SharedStore,
                                                       tmp_path: Path) -> None:
    """Two runners build the same pins into one shared store at once: one file per
    identity, no error, and a third run finds everything there."""
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("six==1.16.0\nidna==3.7\n")
    env = dict(shared_store.env)
    results: list[subprocess.CompletedProcess[str]] = []

    def build() -> None:
        results.append(wheelhouse("build", str(reqs), *shared_store.args(), env=env,
                                  cwd=tmp_path, timeout=600))

    runners = [threading.Thread(target=build) for _ in range(2)]
    for r in runners:
        r.start()
    for r in runners:
        r.join()
    for done in results:
        assert done.returncode == 0, done.stdout + done.stderr
    reader = open_store(shared_store.store, catalogue=shared_store.catalogue, readonly=True)
    names = sorted(f.filename for f in reader.files())
    assert names == ["idna-3.7-py3-none-any.whl", "six-1.16.0-py2.py3-none-any.whl"]
    keys = shared_store.s3.keys(shared_store.bucket)
    assert all(f"index/files/{f.project}/{f.filename}" in keys for f in reader.files())
    again = wheelhouse("build", str(reqs), *shared_store.args(), env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    # The gate before `docker build`, on another runner: the shared store installs the pins.
    gate = wheelhouse("check", str(reqs), *shared_store.args(), env=env, cwd=tmp_path)
    assert gate.returncode == 0, gate.stdout + gate.stderr


@pytest.mark.slow
def test_replicas_killed_mid_upload_lose_nothing_and_list_no_torn_file(
        shared_store: SharedStore, tmp_path: Path) -> None:
    """tests/test_crash_loops.py's server loop against the shared store: kill -9 of a
    replica while uploads stream in, 12 times; then every listed file's object has the
    listed bytes, and a restart leaves no staging debris on this machine."""
    token = tmp_path / "token"
    token.write_text("crash-loop-token\n")
    staging = staging_root(shared_store.store) / "tmp"
    args = ("--catalogue", shared_store.catalogue)
    loop = server_kill_loop(shared_store.store, token, 12, env=shared_store.env, args=args,
                            staging=staging)
    assert loop.rounds == 12 and loop.killed_mid_upload >= 3, loop
    served = serve(shared_store.store, "--upload-token-file", str(token), "--workers", "1",
                   *args, env=shared_store.env)
    try:
        assert [e for e in staging.iterdir() if e.is_file()] == []
        assert get(f"{served.base}/simple/")[0] == 200
    finally:
        served.stop()
    reader = open_store(shared_store.store, catalogue=shared_store.catalogue, readonly=True)
    client = shared_store.s3.client()
    for f in reader.files():
        body = client.get_object(Bucket=shared_store.bucket,
                                 Key=f"index/files/{f.relpath}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == f.sha256, f.filename
    assert loop.uploads_done == 0 or reader.files()
    assert no_traceback(["list", *shared_store.args()], env=shared_store.env,
                        ok=lambda code: code == 0) == []


@pytest.mark.slow
@pytest.mark.network
def test_a_build_and_a_failure_in_the_shared_store_keep_their_logs_in_the_bucket(
        shared_store: SharedStore, sdists: Path, tmp_path: Path) -> None:
    """Real sdists built on the host into s3+postgresql: the wheel and the logs in the bucket,
    the failure in PostgreSQL, both shown by a replica on another "machine"."""
    import json

    from wheelhouse.options import ServerOptions
    from wheelhouse.server.app import create_app

    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"--find-links {sdists}\nwhdemo-ext==1.0.0\nwhbroken==1.0.0\n")
    done = wheelhouse("build", str(reqs), *shared_store.args(), env=shared_store.env,
                      cwd=tmp_path)
    assert done.returncode == 6, done.stdout + done.stderr  # whbroken fails, by design
    listed = wheelhouse("list", "--failures", "--json", *shared_store.args(),
                        env=shared_store.env)
    (failure,) = json.loads(listed.stdout)
    assert failure["project"] == "whbroken" and failure["log"].startswith("logs/")
    keys = shared_store.s3.keys(shared_store.bucket)
    assert f"index/{failure['log']}" in keys
    assert any(k.startswith("index/files/whdemo-ext/") and k.endswith(".whl") for k in keys)
    assert sum(k.startswith("index/logs/whdemo-ext/") for k in keys) == 1
    app = create_app(ServerOptions(store=shared_store.store, catalogue=shared_store.catalogue))
    client = app.test_client()
    got = client.get("/" + failure["log"])
    assert got.status_code == 200 and b"wheelhouse" in got.data
    assert got.headers["Content-Type"].startswith("text/plain")
    assert client.get("/logs/../../etc/passwd").status_code == 404
    page = client.get("/").get_data(as_text=True)
    assert "whbroken" in page
