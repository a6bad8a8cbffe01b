"""Issue 18, point 4, end to end: a second Docker engine (a second dockerd on its own unix
socket) named for aarch64 builds that platform's wheels while the default engine builds the
x86_64 ones, in one `wheelhouse build`; the builder images it lacks are loaded into it from
the default engine, and the provenance says which engine built what. A build interrupted
there leaves no container on it."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import clean_env, emulation_ready, engine_ready, wheelhouse

pytestmark = [pytest.mark.container, pytest.mark.network, pytest.mark.slow,
              pytest.mark.emulation]

ON_SECOND = "cp311-manylinux_aarch64"
ON_DEFAULT = "cp311-manylinux_x86_64"


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == str(path) or p.startswith(f"{path}/")]


def _processes_naming(path: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(path).encode() in cmdline:
            found.append(int(entry.name))
    return found


def _stop_dockerd(proc: subprocess.Popen[bytes], host: str, root: Path) -> None:
    """Its containers first (so no container mount outlives it), then the daemon (which
    stops its own containerd), then anything still naming the directory; then the mounts
    and the directory itself."""
    listed = subprocess.run(["docker", "--host", host, "ps", "-aq"], capture_output=True,
                            text=True, timeout=60, check=False).stdout.split()
    if listed:
        subprocess.run(["docker", "--host", host, "rm", "-f", *listed], capture_output=True,
                       timeout=120, check=False)
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for pid in _processes_naming(root):  # a containerd or shim the daemon did not stop
        os.kill(pid, signal.SIGKILL)
    for point in sorted(_mounts_under(root), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def second_engine() -> Iterator[str]:
    """A second dockerd of its own (data, exec root, pid file, containerd) on a unix socket
    only: no TCP, no bridge, no iptables; stopped and removed whatever the test did."""
    reason = engine_ready() or emulation_ready()
    if reason:
        pytest.skip(reason)
    if shutil.which("dockerd") is None:
        pytest.skip("no dockerd on this machine (run .ci/engine)")
    # Short: a unix socket's path is limited to 108 bytes, pytest's tmp_path can be longer.
    root = Path(tempfile.mkdtemp(prefix="wh-dockerd-", dir="/tmp"))
    host = f"unix://{root}/docker.sock"
    log = (root / "dockerd.log").open("wb")
    proc = subprocess.Popen(
        ["dockerd", "--host", host, "--data-root", str(root / "data"),
         "--exec-root", str(root / "exec"), "--pidfile", str(root / "docker.pid"),
         "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "--host", host, "info"], capture_output=True,
                             check=False).returncode != 0:
            assert proc.poll() is None, (root / "dockerd.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the second dockerd did not answer in 60 s"
            time.sleep(0.5)
        yield host
    finally:
        log.close()
        _stop_dockerd(proc, host, root)
        assert not _mounts_under(root), "a mount of the second engine was left behind"
        assert not _processes_naming(root), "a process of the second engine was left behind"
        assert not root.exists()


def _created_on(host: str, since: float) -> list[str]:
    """Names of the containers created on an engine since ``since`` (its event log)."""
    done = subprocess.run(
        ["docker", "--host", host, "events", "--since", f"{since:.0f}", "--until",
         f"{time.time():.0f}", "--filter", "type=container", "--filter", "event=create",
         "--format", "{{.Actor.Attributes.name}}"],
        capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.split()


def test_a_named_engine_builds_its_platform_and_the_default_the_others(
    second_engine: str, images_config: Path, sdists: Path, tmp_path: Path
) -> None:
    host = second_engine
    config = tmp_path / "wheelhouse.toml"
    config.write_text(images_config.read_text()
                      + f'[tool.wheelhouse.engines]\naarch64 = "{host}"\n')
    listed = wheelhouse("targets", "--json", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    engines = {row["target"]: row["engine"] for row in json.loads(listed.stdout)}
    assert engines[ON_SECOND] == f"{host}, emulated on x86_64"
    assert engines[ON_DEFAULT] == "default, native"

    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"--find-links {sdists}\nwhdemo-ext==1.0.0\n")
    store = tmp_path / "store"
    began = time.time() - 1
    run = wheelhouse("build", str(reqs), "--store", str(store), "--config", str(config),
                     "--target", ON_SECOND, "--target", ON_DEFAULT, "--jobs", "2",
                     "--report", str(tmp_path / "report.json"), timeout=1800)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    # Only the aarch64 images were loaded into the second engine, and the run said so.
    assert (f"loaded wheelhouse/builder-manylinux_aarch64:local into the engine {host}"
            in run.stdout), run.stdout[-3000:]
    images = subprocess.run(["docker", "--host", host, "images", "--format",
                             "{{.Repository}}:{{.Tag}}"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert sorted(images) == ["wheelhouse/builder-manylinux_aarch64:local",
                              "wheelhouse/consumer-manylinux_aarch64:local"]

    # The second engine's own log: it ran the aarch64 build and check, nothing of x86_64.
    second = _created_on(host, began)
    assert any("build-cp311-manylinux-aarch64" in name for name in second), second
    assert any("check-cp311-manylinux-aarch64" in name for name in second), second
    assert not any("x86-64" in name for name in second), second
    # ... and removed them, on the engine they ran on.
    left = subprocess.run(["docker", "--host", host, "ps", "-aq"], capture_output=True,
                          text=True, check=True).stdout.split()
    assert left == []

    # The provenance of each wheel names the engine that built it.
    out = wheelhouse("list", "--json", "--store", str(store))
    assert out.returncode == 0, out.stderr
    built = {str(f["filename"]): f["provenance"] for f in json.loads(out.stdout)
             if f["project"] == "whdemo-ext"}
    by_arch = {("aarch64" if "aarch64" in name else "x86_64"): prov
               for name, prov in built.items()}
    assert set(by_arch) == {"aarch64", "x86_64"}, built
    assert by_arch["aarch64"]["engine"] == host
    assert by_arch["x86_64"]["engine"] == "default"
    assert by_arch["aarch64"]["target"] == ON_SECOND
    # ... and so does the build report.
    report = json.loads((tmp_path / "report.json").read_text())
    engines_built = {r["target"]: r["engine"] for r in report["results"]
                     if r["project"] == "whdemo-ext" and r["status"] == "built"}
    assert engines_built == {ON_SECOND: host, ON_DEFAULT: "default"}, report["results"]


def _hanging_sdist(out: Path) -> Path:
    """An sdist whose build never ends, anywhere."""
    sdist = out / "whsleep-1.0.0.tar.gz"
    files = {
        "pyproject.toml": '[build-system]\nrequires = ["setuptools>=61"]\n'
                          'build-backend = "setuptools.build_meta"\n'
                          '[project]\nname = "whsleep"\nversion = "1.0.0"\n',
        "setup.py": "import time\ntime.sleep(10**6)\n",
    }
    with tarfile.open(sdist, "w:gz") as tf:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"whsleep-1.0.0/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return sdist


def test_b_interrupted_builds_leave_no_container_on_the_named_engine(
    second_engine: str, images_config: Path, tmp_path: Path
) -> None:
    """SIGTERM removes the container on the engine it runs on; after SIGKILL, the next run
    on that engine removes what the dead process left there."""
    from wheelhouse.builder.engine import Engine, prune_stopped

    host = second_engine

    def builders() -> set[str]:
        return set(subprocess.run(
            ["docker", "--host", host, "ps", "-aq", "--filter", "label=org.wheelhouse.builder"],
            capture_output=True, text=True, check=True).stdout.split())

    links = tmp_path / "links"
    links.mkdir()
    _hanging_sdist(links)
    reqs = tmp_path / "r.txt"
    reqs.write_text(f"--find-links {links}\nwhsleep==1.0.0\n")
    config = tmp_path / "wheelhouse.toml"
    config.write_text(images_config.read_text()
                      + f'[tool.wheelhouse.engines]\naarch64 = "{host}"\n')
    for sig in (signal.SIGTERM, signal.SIGKILL):
        proc = subprocess.Popen(
            [sys.executable, "-m", "wheelhouse", "build", str(reqs), "--store",
             str(tmp_path / f"store-{sig.name}"), "--config", str(config),
             "--target", ON_SECOND],
            env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 600
            while not builders() and time.monotonic() < deadline:
                assert proc.poll() is None, "the build ended before it hung"
                time.sleep(0.5)
            time.sleep(3)
            started = builders()
            assert started, "the build started no container on the named engine"
            proc.send_signal(sig)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if sig == signal.SIGTERM:
            assert proc.returncode == 130
            assert not builders() & started, "SIGTERM left the container on the named engine"
        else:
            assert builders() & started, "SIGKILL cannot clean up"
            prune_stopped(Engine(spec=host))
            assert not builders() & started, "the orphan was not reaped on its engine"
