"""Tests of the production server (wheelhouse.server.production): the app under granian with
several worker processes serves pages, files and metadata, every worker follows the store, and
start-up failures (busy port, missing store, no granian) are one clear error each.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from urllib.parse import urljoin

import pytest
from granian import Granian
from granian.constants import Interfaces

from tests.conftest import clean_env, end_group, free_port
from tests.distributions import write_wheel
from tests.hostile import get, serve
from tests.test_export import (
    ALPHA,
    BETA,
    BETA_WHEEL,
    JSON,
    LOCAL_WHEEL,
    PIP_ACCEPT,
    make_store,
)
from wheelhouse.errors import ServeError, StoreError
from wheelhouse.options import ServerOptions
from wheelhouse.server import production
from wheelhouse.server.production import serve_production
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store

pytest.importorskip("granian", reason="granian is not installed (pip install 'granian>=2')")

# Runs serve_production as the CLI would: errors become "error:"/"hint:" lines and the exit
# code of the error class.
LAUNCHER = """
import sys
from pathlib import Path
from wheelhouse.errors import WheelhouseError
from wheelhouse.options import ServerOptions
from wheelhouse.server.production import serve_production
try:
    serve_production(ServerOptions(store=Path(sys.argv[1]), host="127.0.0.1",
                                   port=int(sys.argv[2]), workers=int(sys.argv[3]), threads=2,
                                   access_log=False, upload_token=sys.argv[4] or None),
                     on_ready=lambda line: print(line, flush=True))
except WheelhouseError as e:
    print(f"error: {e.message}", flush=True)
    print(f"hint: {e.hint}", flush=True)
    sys.exit(e.exit_code)
"""

READY = re.compile(r"Serving (.+) at (http://127\.0\.0\.1:(\d+))/simple/ \(granian, [^)]+\)")


@dataclass
class Running:
    proc: subprocess.Popen[str]
    base: str
    port: int


def launch(store: Path, port: int = 0, workers: int = 2,
           upload_token: str = "") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(store), str(port), str(workers), upload_token],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env(),
        # its own process group, so end_group() can end granian's forked workers too
        start_new_session=True,
    )


def two_workers(proc: subprocess.Popen[str]) -> list[int]:
    """The server's two worker pids: "ready" is printed while granian is still forking, so
    the second may come a moment later."""
    deadline = time.monotonic() + 10
    while len(workers := children(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(workers) == 2
    return workers


def wait_ready(proc: subprocess.Popen[str]) -> Running:
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = READY.search(line)
        if match:
            return Running(proc=proc, base=match.group(2), port=int(match.group(3)))
    proc.kill()
    end_group(proc)
    raise AssertionError("production server did not become ready:\n" + "".join(lines))


def stop(proc: subprocess.Popen[str] | subprocess.Popen[bytes], *, then_reap: bool = True
         ) -> int:
    """SIGTERM, as a service manager stops it; then (by default) nothing of it is left."""
    proc.send_signal(signal.SIGTERM)
    try:
        # systemd allows 90 s (TimeoutStopSec); 20 s was missed on a machine at load 15.
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    finally:
        if then_reap:
            end_group(proc)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the field after the parenthesised command name (which may hold spaces) is the state,
        # then the parent pid
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def fetch(url: str, method: str = "GET", **headers: str) -> tuple[int, Message, bytes]:
    """Status, headers (case-insensitive: granian sends them in lower case) and body."""
    req = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("production") / "store")


@pytest.fixture(scope="module")
def server(store_root: Path) -> Iterator[Running]:
    running = wait_ready(launch(store_root, workers=2))
    try:
        yield running
    finally:
        stop(running.proc)


# -- serving ----------------------------------------------------------------------------------


def test_runs_the_requested_number_of_workers(server: Running) -> None:
    assert len(children(server.proc.pid)) == 2


def test_serves_negotiated_pages(server: Running, store_root: Path) -> None:
    status, headers, body = fetch(f"{server.base}/simple/", Accept=PIP_ACCEPT)
    assert status == 200 and headers["Content-Type"] == JSON
    assert [p["name"] for p in json.loads(body)["projects"]] == [ALPHA, BETA]
    status, headers, body = fetch(f"{server.base}/simple/{ALPHA}/", Accept="text/html")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Vary"] == "Accept"
    assert b"whx_alpha-1.1%2Blocal.1-py3-none-any.whl" in body
    # 304 on revalidation, 404 for an unknown project, 301 to the normalized name
    etag = headers["ETag"]
    assert fetch(f"{server.base}/simple/{ALPHA}/", Accept="text/html",
                 **{"If-None-Match": etag})[0] == 304
    assert fetch(f"{server.base}/simple/nothing-here/", Accept=PIP_ACCEPT)[0] == 404
    status, _, body = fetch(f"{server.base}/simple/WHX_Alpha/", Accept=PIP_ACCEPT)
    assert status == 200 and json.loads(body)["name"] == ALPHA


def test_serves_files_and_metadata(server: Running, store_root: Path) -> None:
    page_url = f"{server.base}/simple/{ALPHA}/"
    files = json.loads(fetch(page_url, Accept=PIP_ACCEPT)[2])["files"]
    assert LOCAL_WHEEL in {f["filename"] for f in files}
    for entry in files:
        url = urljoin(page_url, entry["url"])
        status, headers, data = fetch(url)
        assert status == 200
        assert hashlib.sha256(data).hexdigest() == entry["hashes"]["sha256"]
        assert headers.get("Content-Encoding") is None
        if entry["core-metadata"]:
            status, _, meta = fetch(url + ".metadata")
            assert status == 200
            assert hashlib.sha256(meta).hexdigest() == entry["core-metadata"]["sha256"]


def test_head_and_range_on_files(server: Running) -> None:
    url = f"{server.base}/files/{BETA}/{BETA_WHEEL}"
    status, headers, body = fetch(url, method="HEAD")
    assert status == 200 and body == b""
    assert headers["Accept-Ranges"] == "bytes"
    size = int(headers["Content-Length"])
    status, headers, body = fetch(url, Range="bytes=2-5")
    assert status == 206
    assert headers["Content-Range"] == f"bytes 2-5/{size}"
    assert len(body) == 4


def test_health(server: Running) -> None:
    status, headers, body = fetch(f"{server.base}/health")
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    # 5, or 6 once the publication test below has run (the store is shared by the module)
    assert json.loads(body)["files"] >= 5


def test_every_worker_sees_a_new_publication(server: Running, store_root: Path,
                                             tmp_path: Path) -> None:
    Store(store_root).publish(write_wheel(tmp_path, BETA, "2.0"), origin=Origin.UPLOADED)
    # Each request is a new connection, which the kernel hands to either worker; all must
    # list the file within about a second (each checks the store's generation on its own).
    deadline = time.monotonic() + 10
    streak = 0
    while streak < 30:
        assert time.monotonic() < deadline, "a worker kept serving the old page"
        body = fetch(f"{server.base}/simple/{BETA}/", Accept=PIP_ACCEPT)[2]
        streak = streak + 1 if b"whx_beta-2.0-py3-none-any.whl" in body else 0
        if not streak:
            time.sleep(0.05)


def test_uploads_reach_every_worker(tmp_path: Path) -> None:
    """With an upload token the store may start missing; twine publishes through one worker
    and every worker lists the file."""
    token = "production-test-token"
    running = wait_ready(launch(tmp_path / "new-store", workers=2, upload_token=token))
    try:
        wheel = write_wheel(tmp_path, "whx-uploaded", "1.0")
        env = clean_env(TWINE_NON_INTERACTIVE="1", HOME=str(tmp_path),
                        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
        result = subprocess.run(
            [sys.executable, "-m", "twine", "upload", "--disable-progress-bar",
             "--repository-url", f"{running.base}/legacy/", "-u", "__token__", "-p", token,
             str(wheel)],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        deadline = time.monotonic() + 10
        streak = 0
        while streak < 20:
            assert time.monotonic() < deadline, "a worker does not list the upload"
            status, _, body = fetch(f"{running.base}/simple/whx-uploaded/", Accept=PIP_ACCEPT)
            streak = streak + 1 if status == 200 and wheel.name.encode() in body else 0
            if not streak:
                time.sleep(0.05)
    finally:
        assert stop(running.proc) == 0


def test_sigterm_stops_workers_and_exits_cleanly(store_root: Path) -> None:
    running = wait_ready(launch(store_root, workers=2))
    try:
        workers = two_workers(running.proc)
        assert stop(running.proc, then_reap=False) == 0
        for pid in workers:
            assert (not Path(f"/proc/{pid}").exists()
                    or "Z" in Path(f"/proc/{pid}/stat").read_text())
    finally:
        end_group(running.proc)


@pytest.mark.parametrize("loader", ["serve_production", "granian --factory"])
def test_a_worker_still_building_its_app_ends_on_sigterm(store_root: Path, loader: str) -> None:
    """The supervisor's stop reaches a worker before granian has set the worker's own
    handlers when the server is stopped just after it started (the larger the store, the
    longer the window). Forked, the worker has the supervisor's handlers, which ignore it
    here; the worker must end anyway, or the supervisor waits for it forever (it did, with a
    3,000-project store, 5 times in 6)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: granian's fork, with the supervisor's handler inherited
        status = 1
        try:
            os.close(read)
            # What granian's fork leaves: the supervisor's handler, which sets a flag that
            # only the supervisor's loop reads.
            supervisor = Granian("wheelhouse.server.production:app_from_env",
                                 interface=Interfaces.WSGI)
            supervisor.pid = os.getppid()  # type: ignore[assignment]  # None until it runs
            signal.signal(signal.SIGTERM, supervisor.signal_handler_interrupt)

            def building(options: object) -> None:
                os.write(write, b"x")  # now loading, as a large store's worker would be
                time.sleep(30)

            production.build_app = building  # type: ignore[assignment]
            if loader == "serve_production":
                production._worker_app(ServerOptions(store=store_root), os.getppid())
            else:
                os.environ["WHEELHOUSE_STORE"] = str(store_root)
                production.app_from_env()
        finally:
            os._exit(status)
    os.close(write)
    try:
        assert os.read(read, 1) == b"x"
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert done[0] == pid, "the worker went on loading after SIGTERM"
        assert os.WIFSIGNALED(done[1]) and os.WTERMSIG(done[1]) == signal.SIGTERM
    finally:
        os.close(read)
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)


def test_a_handler_not_inherited_from_granian_is_left_alone() -> None:
    """Only granian's inherited handler is replaced: app_from_env under another server (or
    called in a test run) keeps that server's handlers."""
    mine = signal.getsignal(signal.SIGTERM)
    try:
        def handler(*_: object) -> None:
            pass
        signal.signal(signal.SIGTERM, handler)
        production._stoppable_while_loading()
        assert signal.getsignal(signal.SIGTERM) is handler
        # granian's own, in the process that runs it (its main process)
        server = Granian("wheelhouse.server.production:app_from_env", interface=Interfaces.WSGI)
        server.pid = os.getpid()  # type: ignore[assignment]  # None until it runs
        signal.signal(signal.SIGTERM, server.signal_handler_interrupt)
        production._stoppable_while_loading()
        assert signal.getsignal(signal.SIGTERM) == server.signal_handler_interrupt
    finally:
        signal.signal(signal.SIGTERM, mine)


def test_workers_end_with_a_killed_supervisor(store_root: Path) -> None:
    """kill -9 of the server (an OOM kill) takes its workers with it, so the port is free for
    the restart instead of held by orphans that serve on."""
    running = wait_ready(launch(store_root, workers=2))
    try:
        workers = two_workers(running.proc)
        running.proc.kill()
        running.proc.wait()
        deadline = time.monotonic() + 10
        alive = workers
        while alive and time.monotonic() < deadline:
            alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()
                     and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1]]
            time.sleep(0.05)
        assert not alive, "workers outlived their supervisor"
        with socket.socket() as again:
            again.bind(("127.0.0.1", running.port))
    finally:
        end_group(running.proc)


# -- start-up failures ------------------------------------------------------------------------


def test_port_in_use_is_one_clear_serve_error(store_root: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ServeError, match=f"port {port} on 127.0.0.1 is already in use") as e:
            serve_production(ServerOptions(store=store_root, host="127.0.0.1", port=port))
        assert e.value.hint is not None and "--port" in e.value.hint


def test_a_second_production_server_on_the_same_port_is_refused(
    server: Running, store_root: Path
) -> None:
    # granian binds with SO_REUSEPORT: without our own probe, a second one would start and
    # silently take half of the first one's connections.
    second = launch(store_root, port=server.port, workers=1)
    out, _ = second.communicate(timeout=60)
    assert second.returncode == ServeError.exit_code, out
    assert f"error: port {server.port} on 127.0.0.1 is already in use" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("kind", ["missing", "empty directory"])
def test_serve_starts_on_a_missing_or_empty_store(tmp_path: Path, kind: str) -> None:
    """A team starts its index before its first build: the store is created, served empty
    (404 for any project, so uv moves on to the next index), and a build fills it."""
    root = tmp_path / "store"
    if kind != "missing":
        root.mkdir()
    served = serve(root, env=clean_env())
    try:
        assert get(f"{served.base}/simple/")[0] == 200
        assert get(f"{served.base}/simple/anything/")[0] == 404
        assert get(f"{served.base}/")[0] == 200
        assert Store.exists(root)
        Store(root).publish(write_wheel(tmp_path, "wh-late", "1.0"), origin=Origin.BUILT)
        assert get(f"{served.base}/simple/wh-late/")[0] == 200
    finally:
        served.stop()
    for server_kind in ("builtin",):
        other = tmp_path / f"store-{server_kind}"
        served = serve(other, "--server", server_kind, env=clean_env())
        try:
            assert get(f"{served.base}/simple/")[0] == 200
        finally:
            served.stop()


def test_unreadable_catalogue_fails_in_the_launcher(tmp_path: Path) -> None:
    (tmp_path / "catalogue.sqlite3").write_bytes(b"not a database")
    proc = launch(tmp_path, port=0, workers=2)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == StoreError.exit_code, out
    assert "cannot read the catalogue" in out
    assert "Traceback" not in out


def test_bad_worker_and_thread_counts(store_root: Path) -> None:
    with pytest.raises(ServeError, match="workers must be at least 1"):
        serve_production(ServerOptions(store=store_root, host="127.0.0.1", port=0, workers=0))
    with pytest.raises(ServeError, match="threads must be at least 1"):
        serve_production(ServerOptions(store=store_root, host="127.0.0.1", port=0, threads=0))


def test_without_granian_is_a_serve_error(store_root: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(production, "granian_available", lambda: False)
    with pytest.raises(ServeError, match="needs granian") as e:
        serve_production(ServerOptions(store=store_root, host="127.0.0.1", port=0))
    assert e.value.hint is not None and "pip install" in e.value.hint


# -- granian's own command line (the container's entrypoint) ---------------------------------


def test_app_from_env_uses_the_store_setting(
    store_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no pyproject.toml here to override the environment
    for name in [n for n in os.environ if n.startswith("WHEELHOUSE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("WHEELHOUSE_STORE", str(store_root))
    client = production.app_from_env().test_client()  # type: ignore[attr-defined]
    resp = client.get(f"/simple/{ALPHA}/", headers={"Accept": PIP_ACCEPT})
    assert resp.status_code == 200
    assert json.loads(resp.data)["name"] == ALPHA


def test_granian_command_line_with_the_factory(store_root: Path, tmp_path: Path) -> None:
    exe = shutil.which("granian", path=os.path.dirname(sys.executable)) or shutil.which("granian")
    if exe is None:
        pytest.skip("the granian command is not on PATH")
    port = free_port()
    env = clean_env(WHEELHOUSE_STORE=str(store_root))
    proc = subprocess.Popen(
        [exe, "--interface", "wsgi", "--factory", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "2", "--blocking-threads", "2", "--no-ws", production.FACTORY_TARGET],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, headers, body = fetch(f"http://127.0.0.1:{port}/simple/",
                                              Accept=PIP_ACCEPT)
                break
            except OSError:
                assert proc.poll() is None, "granian exited"
                assert time.monotonic() < deadline, "granian did not start"
                time.sleep(0.1)
        assert status == 200 and headers["Content-Type"] == JSON
        assert [p["name"] for p in json.loads(body)["projects"]] == [ALPHA, BETA]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        finally:
            end_group(proc)


def test_granian_command_line_stopped_just_after_it_started_exits(store_root: Path,
                                                                  tmp_path: Path) -> None:
    """SIGTERM while the workers are still importing the app: the stop is lost in them (see
    production._stoppable_while_loading), and with server/README's --workers-kill-timeout
    granian kills them and exits 0 instead of waiting forever (it did, 8 times in 8)."""
    exe = shutil.which("granian", path=os.path.dirname(sys.executable)) or shutil.which("granian")
    if exe is None:
        pytest.skip("the granian command is not on PATH")
    readme = (Path(__file__).parent.parent / "server" / "README.md").read_text()
    dockerfile = (Path(__file__).parent.parent / "server" / "Dockerfile").read_text()
    assert f"--workers-kill-timeout {production.STOP_GRACE} " in readme
    assert f"GRANIAN_WORKERS_KILL_TIMEOUT={production.STOP_GRACE} " in dockerfile
    proc = subprocess.Popen(
        [exe, "--interface", "wsgi", "--factory", "--host", "127.0.0.1", "--port",
         str(free_port()), "--workers", "2", "--no-ws", "--workers-kill-timeout",
         str(production.STOP_GRACE), production.FACTORY_TARGET],
        cwd=tmp_path, env=clean_env(WHEELHOUSE_STORE=str(store_root)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while len(children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        assert stop(proc, then_reap=False) == 0
        assert time.monotonic() - started < production.STOP_GRACE + 20
    finally:
        end_group(proc)


def test_default_serve_has_no_thread_count_notice(tmp_path: Path) -> None:
    """granian warns when WSGI threads exceed 2 x cores + 1 (5 here); the default 8 is
    deliberate (see production._DeliberateThreads), so a default serve must not print it at
    every start, while a count the user chose keeps granian's notice."""
    served = serve(tmp_path / "store", env=clean_env())
    try:
        assert get(f"{served.base}/simple/")[0] == 200
    finally:
        served.stop()
    assert "seems quite high" not in "".join(served.output)
    many = str(4 * (os.cpu_count() or 2) + 2)
    served = serve(tmp_path / "store", "--threads", many, env=clean_env())
    try:
        assert get(f"{served.base}/simple/")[0] == 200
    finally:
        served.stop()
    assert "seems quite high" in "".join(served.output)
