"""The example consumer Dockerfiles in docker/examples/ build against our index with no
compiler: the slim (glibc) one from manylinux wheels through --index-url, the Alpine-style
(musl) one from musllinux wheels through --find-links, netifaces included, which has no wheel
upstream for either. And (issue 10, c) the lockfiles ``wheelhouse lock`` writes install with
``pip install --require-hashes`` in both targets' consumer images, built wheels included."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    Server,
    clean_env,
    consumer_images,
    start_server,
    stop_server,
    wheelhouse,
)

pytestmark = [pytest.mark.container, pytest.mark.network, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parent.parent / "docker" / "examples"
TARGETS = ("cp311-manylinux_x86_64", "cp311-musllinux_x86_64")
#: The stand-in consumer images carry Debian's pip 23.0.1 and CPython 3.11.2's pip 22.3.1, which
#: discard a find-links file whose PEP 658 metadata spells its name unnormalized (MarkupSafe);
#: the examples run with those pips as they are, so /links/ must not offer that metadata.


@pytest.fixture(scope="module")
def store(images_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's requirements built once for both targets (what its wheelhouse.toml
    names), with the stand-in images."""
    work = tmp_path_factory.mktemp("examples")
    store = work / "store"
    flags = [a for t in TARGETS for a in ("--target", t)]
    built = wheelhouse("build", str(EXAMPLES / "requirements.txt"),
                       "--store", str(store), *flags, "--config", str(images_config),
                       timeout=2400)
    assert built.returncode == 0, built.stdout + built.stderr
    return store


@pytest.fixture
def server(store: Path, tmp_path: Path) -> Iterator[Server]:
    server = start_server(store, tmp_path / "server.log")
    yield server
    stop_server(server)


@pytest.mark.parametrize(("dockerfile", "target", "arg", "path"), [
    ("Dockerfile.slim", "cp311-manylinux_x86_64", "INDEX_URL", "/simple/"),
    ("Dockerfile.alpine", "cp311-musllinux_x86_64", "FIND_LINKS", "/links/"),
])
def test_example_dockerfile_installs_from_the_index_without_compiling(
    images_config: Path, server: Server, dockerfile: str, target: str, arg: str, path: str
) -> None:
    base = consumer_images(images_config)[target.split("-", 1)[1]]
    tag = f"wheelhouse-example-{uuid.uuid4().hex[:8]}:test"
    try:
        done = subprocess.run(
            ["docker", "build", "--network", "host", "--force-rm", "--no-cache", "-t", tag,
             "--build-arg", f"BASE={base}", "--build-arg", f"{arg}={server.url}{path}",
             "-f", str(EXAMPLES / dockerfile), str(EXAMPLES)],
            capture_output=True, text=True, timeout=900, check=False, env=clean_env(),
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "ok " in done.stdout
        log = server.access_log()
        assert path in log
        for project in ("netifaces", "markupsafe", "requests", "urllib3"):
            assert f"/files/{project}/" in log
        ran = subprocess.run(["docker", "run", "--rm", "--pull=never", "--network", "none",
                              tag, "sh", "-c", "! command -v gcc && ! command -v cc && "
                              "python3 -c 'import netifaces; print(netifaces.interfaces())'"],
                             capture_output=True, text=True, timeout=120, check=False)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "lo" in ran.stdout
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True,
                       check=False)


def test_the_lock_installs_with_require_hashes_in_each_targets_consumer(
    images_config: Path, store: Path, server: Server, tmp_path: Path
) -> None:
    flags = [a for t in TARGETS for a in ("--target", t)]
    locked = wheelhouse("lock", str(EXAMPLES / "requirements.txt"), "--store", str(store),
                        *flags, "--base-url", server.url, "-o", str(tmp_path / "locks"))
    assert locked.returncode == 0, locked.stdout + locked.stderr
    listed = wheelhouse("list", "--json", "--store", str(store))
    built = {f["sha256"]: f["filename"] for f in json.loads(listed.stdout)
             if f["origin"] == "built"}
    for target in TARGETS:
        text = (tmp_path / "locks" / f"requirements.{target}.txt").read_text()
        ours = [name for sha, name in built.items() if f"--hash=sha256:{sha}" in text]
        assert any(n.startswith("netifaces-0.11.0") for n in ours), text
        image = consumer_images(images_config)[target.split("-", 1)[1]]
        script = ("cat > /tmp/requirements.txt && python3 -m pip install --no-cache-dir "
                  "--disable-pip-version-check --require-hashes --only-binary :all: "
                  f"--index-url {server.url}/simple/ -r /tmp/requirements.txt && "
                  "! command -v gcc && python3 -c 'import netifaces, markupsafe._speedups, "
                  "requests; print(\"imported\")'")
        ran = subprocess.run(["docker", "run", "--rm", "-i", "--pull=never", "--network",
                              "host", image, "sh", "-c", script], input=text,
                             capture_output=True, text=True, timeout=600, check=False)
        assert ran.returncode == 0, f"{target}:\n{ran.stdout[-3000:]}{ran.stderr[-3000:]}"
        assert "imported" in ran.stdout
