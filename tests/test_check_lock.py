"""Issue 10 (d) and lockfiles out: ``wheelhouse check`` passes on a warmed lockfile and names
pin and target when the store lacks one; ``wheelhouse lock`` writes per-target requirements
files with hashes and pylock files that validate and install from our server with pip and uv.
Offline: made-up wheels in a find-links directory, written into pylock.toml by hand."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.pylock import PackageWheel, Pylock
from packaging.tags import sys_tags

from tests.conftest import clean_env, make_venv, start_server, stop_server, wheelhouse
from tests.distributions import write_wheel
from wheelhouse.targets import host_target

HOST = str(host_target())
MUSL = "cp311-musllinux_aarch64"
HOST_TAG = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"


def pylock_entry(wheel: Path, *, marker: str | None = None) -> str:
    name, version = wheel.name.split("-")[:2]
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    lines = ["[[packages]]", f'name = "{name.replace("_", "-")}"', f'version = "{version}"']
    if marker:
        lines.append(f'marker = "{marker}"')
    lines += ["[[packages.wheels]]", f'path = "wheels/{wheel.name}"',
              f'hashes = {{ sha256 = "{sha}" }}', ""]
    return "\n".join(lines)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose wheelhouse.toml names a pylock.toml and two targets; warmed."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    app = write_wheel(wheels, "whapp", "1.0", requires_dist=["whlib>=1", "whplat"])
    lib = write_wheel(wheels, "whlib", "1.1")
    plat = [write_wheel(wheels, "whplat", "2.0", tag=f"cp311-cp311-{tag}")
            for tag in ("manylinux_2_17_x86_64.manylinux2014_x86_64", "musllinux_1_2_aarch64")]
    write_wheel(wheels, "whextra", "3.0")
    (tmp_path / "pylock.toml").write_text(
        'lock-version = "1.0"\ncreated-by = "hand"\n\n' + "".join(
            pylock_entry(w) for w in (app, lib)) + _multi(plat))
    (tmp_path / "wheelhouse.toml").write_text(
        f"requirements = ['pylock.toml']\ntargets = ['{HOST}', '{MUSL}']\nstore = 'store'\n")
    done = wheelhouse("build", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    return tmp_path


def _multi(wheels: list[Path]) -> str:
    out = ['[[packages]]', 'name = "whplat"', 'version = "2.0"']
    for w in wheels:
        sha = hashlib.sha256(w.read_bytes()).hexdigest()
        out += ["[[packages.wheels]]", f'path = "wheels/{w.name}"',
                f'hashes = {{ sha256 = "{sha}" }}']
    return "\n".join(out) + "\n"


def test_check_passes_on_the_warmed_lock_and_names_what_is_missing(project: Path) -> None:
    ok = wheelhouse("check", cwd=project)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"{HOST}: ok, all 3 pins are in the store" in ok.stdout
    assert f"{MUSL}: ok, all 3 pins are in the store" in ok.stdout
    lock = project / "pylock.toml"
    lock.write_text(lock.read_text() + pylock_entry(project / "wheels" /
                                                    "whextra-3.0-py3-none-any.whl",
                                                    marker="platform_machine == 'aarch64'"))
    bad = wheelhouse("check", cwd=project)
    assert bad.returncode == 3, bad.stdout + bad.stderr
    assert f"{HOST}: ok" in bad.stdout, "the new pin's marker is false on x86_64"
    assert f"{MUSL}: 1 of 4 pins missing" in bad.stdout
    assert "missing  whextra==3.0" in bad.stdout and "not in the store" in bad.stdout
    assert "cannot install 1 pin on 1 of 2 targets" in bad.stderr
    as_json = wheelhouse("check", "--json", cwd=project)
    assert as_json.returncode == 3
    by_target = {r["target"]: r for r in json.loads(as_json.stdout)}
    assert by_target[HOST]["ok"] and not by_target[MUSL]["ok"]
    assert by_target[MUSL]["missing"][0]["pin"] == "whextra==3.0"


def test_check_tells_a_missing_wheel_from_a_missing_release(project: Path) -> None:
    reqs = project / "requirements.txt"
    reqs.write_text("whplat==2.0\nwhlib>=1\n")
    done = wheelhouse("check", str(reqs), "--target", "cp311-manylinux_aarch64", cwd=project)
    assert done.returncode == 3
    assert "missing  whplat==2.0" in done.stdout
    assert "no wheel fits this target; wheels exist for: manylinux2014_x86_64" in done.stdout
    assert "whlib" not in done.stdout, "an unpinned name gets the store's version"


def test_lock_writes_per_target_files_that_install_from_our_index(project: Path) -> None:
    server = start_server(project / "store", project / "server.log")
    try:
        out = project / "locks"
        done = wheelhouse("lock", "--base-url", f"{server.url}/simple/", "-o", str(out),
                          cwd=project)
        assert done.returncode == 0, done.stdout + done.stderr
        reqs = out / f"requirements.{HOST}.txt"
        pylock = out / f"pylock.{HOST}.toml"
        assert {p.name for p in out.iterdir()} == {
            reqs.name, pylock.name, f"requirements.{MUSL}.txt", f"pylock.{MUSL}.toml"}
        assert "--hash=sha256:" in reqs.read_text()
        lock = Pylock.from_dict(tomllib.loads(pylock.read_text()))
        wheels = {str(p.name): w for p, w in lock.select(tags=list(sys_tags()))}
        assert set(wheels) == {"whapp", "whlib", "whplat"}
        plat = wheels["whplat"]
        assert isinstance(plat, PackageWheel) and plat.filename.endswith(f"{HOST_TAG}.whl")
        assert plat.url == f"{server.url}/files/whplat/{plat.filename}"
        assert plat.upload_time is not None and plat.size
        musl = tomllib.loads((out / f"pylock.{MUSL}.toml").read_text())
        assert "musllinux_1_2_aarch64" in json.dumps(musl, default=str)

        venv = make_venv(project / "venv")
        pip = subprocess.run(
            [str(venv), "-m", "pip", "install", "--require-hashes", "--only-binary", ":all:",
             "--index-url", f"{server.url}/simple/", "-r", str(reqs)],
            capture_output=True, text=True, env=clean_env(), timeout=300, check=False)
        assert pip.returncode == 0, pip.stdout + pip.stderr
        # pip >= 26.1 installs a pylock.toml (this interpreter's pip, into a target dir)
        target_dir = project / "by-pip"
        pip = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--target", str(target_dir),
             "-r", str(pylock)],
            capture_output=True, text=True, env=clean_env(), timeout=300, check=False)
        assert pip.returncode == 0, pip.stdout + pip.stderr
        assert (target_dir / "whplat").is_dir()
        from uv import find_uv_bin

        uv_venv = make_venv(project / "uv-venv")
        uv = subprocess.run(
            [find_uv_bin(), "pip", "install", "--python", str(uv_venv), "-r", str(pylock)],
            capture_output=True, text=True, env=clean_env(), timeout=300, check=False)
        assert uv.returncode == 0, uv.stdout + uv.stderr
    finally:
        stop_server(server)
    log = server.access_log()
    assert "/files/whplat/" in log and "/simple/whapp/" in log


def test_lock_writes_nothing_when_the_store_lacks_a_pin(project: Path) -> None:
    (project / "more.txt").write_text("whextra==3.0\n")
    done = wheelhouse("lock", "pylock.toml", "more.txt", "-o", "locks", cwd=project)
    assert done.returncode == 3
    assert f"{HOST}: missing  whextra==3.0 (more.txt:1)" in done.stdout
    assert not (project / "locks").exists()


def test_the_lock_urls_come_from_any_of_the_servers_urls() -> None:
    from wheelhouse.lockfiles.write import base_url

    for url in ("https://w.example/", "https://w.example", "https://w.example/simple/",
                "https://w.example/legacy/", "https://w.example/legacy"):
        assert base_url(url) == "https://w.example/"
    assert base_url("https://w.example/pypi/simple") == "https://w.example/pypi/"


def test_lock_without_an_index_url_says_so_instead_of_guessing(project: Path) -> None:
    """Without --base-url or `publish`, lock used to write http://127.0.0.1:8000/ URLs (the
    serve settings' default), whatever port the index ran on: a lock that fails elsewhere."""
    done = wheelhouse("lock", "-o", "locks", cwd=project)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "URL of the index" in done.stderr and "--base-url" in done.stderr
    assert "publish" in done.stderr
    assert not (project / "locks").exists()


def test_lock_takes_the_index_from_publish_and_pip_installs_from_it(project: Path) -> None:
    server = start_server(project / "store", project / "server.log")
    try:
        assert not server.url.endswith(":8000")
        with (project / "wheelhouse.toml").open("a") as f:
            f.write(f"publish = '{server.url}/legacy/'\n")
        done = wheelhouse("lock", "-o", "locks", cwd=project)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"served from {server.url}/" in done.stdout
        pylock = project / "locks" / f"pylock.{HOST}.toml"
        assert f"{server.url}/files/whplat/" in pylock.read_text()
        assert ":8000" not in pylock.read_text()
        pip = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--target",
             str(project / "by-pip"), "-r", str(pylock)],
            capture_output=True, text=True, env=clean_env(), timeout=300, check=False)
        assert pip.returncode == 0, pip.stdout + pip.stderr
    finally:
        stop_server(server)
    assert "/files/whplat/" in server.access_log()
