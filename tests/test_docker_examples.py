"""The example consumer Dockerfiles in docker/ build against our index with no compiler:
the slim (glibc) one from manylinux wheels, the Alpine-style (musl) one from musllinux wheels,
netifaces included, which has no wheel upstream for either."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import clean_env, consumer_images, start_server, stop_server, wheelhouse

pytestmark = [pytest.mark.container, pytest.mark.network, pytest.mark.slow]

DOCKER = Path(__file__).resolve().parent.parent / "docker"


@pytest.mark.parametrize(("dockerfile", "target"), [
    ("Dockerfile.slim", "cp311-manylinux_x86_64"),
    ("Dockerfile.alpine", "cp311-musllinux_x86_64"),
])
def test_example_dockerfile_installs_from_the_index_without_compiling(
    images_config: Path, tmp_path: Path, dockerfile: str, target: str
) -> None:
    store = tmp_path / "store"
    built = wheelhouse("build", str(DOCKER / "requirements.txt"), "--store", str(store),
                       "--target", target, "--config", str(images_config), timeout=1800)
    assert built.returncode == 0, built.stdout + built.stderr
    base = consumer_images(images_config)[target.split("-", 1)[1]]
    tag = f"wheelhouse-example-{uuid.uuid4().hex[:8]}:test"
    server = start_server(store, tmp_path / "server.log")
    try:
        done = subprocess.run(
            ["docker", "build", "--network", "host", "--no-cache", "-t", tag,
             "--build-arg", f"BASE={base}",
             "--build-arg", f"INDEX_URL={server.url}/simple/",
             "-f", str(DOCKER / dockerfile), str(DOCKER)],
            capture_output=True, text=True, timeout=900, check=False, env=clean_env(),
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "ok " in done.stdout
        log = server.access_log()
        for project in ("netifaces", "markupsafe", "requests", "urllib3"):
            assert f"/files/{project}/" in log
        ran = subprocess.run(["docker", "run", "--rm", "--pull=never", "--network", "none",
                              tag, "sh", "-c", "! command -v gcc && ! command -v cc && "
                              "python3 -c 'import netifaces; print(netifaces.interfaces())'"],
                             capture_output=True, text=True, timeout=120, check=False)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "lo" in ran.stdout
    finally:
        stop_server(server)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
