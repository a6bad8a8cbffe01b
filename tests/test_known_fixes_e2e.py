"""Issue 15, items 7 and 8, with real sdists from PyPI on the stand-in images: builds that need
a known fix (PyYAML 5.4.1: cython<3 and libyaml's headers; psycopg2: libpq) build with no
configuration on manylinux and musllinux and the report names the fix; cryptography 3.4.7
builds for cp39-musllinux_x86_64 (without Rust, against the musl stand-in's OpenSSL) and its
OpenSSL binding imports in the consumer; numpy fetched for cp313-musllinux_x86_64 imports and
computes there (the musl extension-suffix trap; and Alpine-built libraries need musl >= 1.2.4,
which the stand-ins have: builders/musllinux/musl.debs)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import clean_env, consumer_images, start_server, stop_server, wheelhouse
from wheelhouse.targets import parse_target

pytestmark = [pytest.mark.container, pytest.mark.network, pytest.mark.slow]

FIXED = ["cp311-manylinux_x86_64", "cp311-musllinux_x86_64"]


def _consumer_run(config: Path, identifier: str, server_url: str, pins: str, code: str
                  ) -> subprocess.CompletedProcess[str]:
    target = parse_target(identifier)
    python = f"/opt/python/{target.python_dir}/bin/python"
    script = (f"! command -v gcc && {python} -m pip install -q --no-cache-dir --only-binary "
              f":all: --index-url {server_url}/simple/ {pins} && {python} -c \"{code}\"")
    return subprocess.run(
        ["docker", "run", "--rm", "--pull=never", "--network", "host",
         consumer_images(config)[target.platform], "sh", "-c", script],
        capture_output=True, text=True, timeout=900, check=False, env=clean_env())


def test_sdists_that_need_a_known_fix_build_without_configuration(
        images_config: Path, tmp_path: Path) -> None:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("pyyaml==5.4.1\npsycopg2==2.9.10\n")
    store = tmp_path / "store"
    report = tmp_path / "report.json"
    args = ["build", str(reqs), "--store", str(store), "--config", str(images_config),
            "--jobs", "2", "--report", str(report)]
    for target in FIXED:
        args += ["--target", target]
    done = wheelhouse(*args, timeout=3600, env=clean_env(CI="true"))
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    results = json.loads(report.read_text())["results"]
    fixes = {(r["project"], r["target"]): r.get("fix") for r in results}
    for target in FIXED:
        assert "cython<3" in (fixes[("pyyaml", target)] or ""), fixes
        assert "yaml" in (fixes[("pyyaml", target)] or ""), fixes
        assert "libpq" in (fixes[("psycopg2", target)] or ""), fixes
    assert "built with a known fix: cython<3" in done.stdout
    listing = json.loads(wheelhouse("list", "--json", "--store", str(store)).stdout)
    assert all(f["provenance"].get("fix") for f in listing if f["origin"] == "built")
    server = start_server(store, tmp_path / "server.log")
    try:
        for target in FIXED:
            run = _consumer_run(images_config, target, server.url,
                                "pyyaml==5.4.1 psycopg2==2.9.10",
                                "import yaml, psycopg2, psycopg2.extensions; "
                                "assert yaml.__with_libyaml__; "
                                "print('ok', yaml.dump({'a': 1}).strip(), "
                                "psycopg2.extensions.libpq_version())")
            assert run.returncode == 0, f"{target}: {run.stdout[-3000:]}{run.stderr[-3000:]}"
            assert "ok a: 1" in run.stdout
    finally:
        stop_server(server)


def test_cryptography_347_builds_for_cp39_musl_and_its_openssl_binding_imports(
        images_config: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    crypto = tmp_path / "crypto.txt"
    crypto.write_text("cryptography==3.4.7\n")
    done = wheelhouse("build", str(crypto), "--store", str(store), "--config",
                      str(images_config), "--target", "cp39-musllinux_x86_64",
                      timeout=3600, env=clean_env(CI="true"))
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    server = start_server(store, tmp_path / "server.log")
    try:
        run = _consumer_run(images_config, "cp39-musllinux_x86_64", server.url,
                            "cryptography==3.4.7",
                            "from cryptography.hazmat.bindings._openssl import ffi, lib; "
                            "from cryptography.hazmat.primitives import hashes; "
                            "h = hashes.Hash(hashes.SHA256()); h.update(b'x'); "
                            "print('ok', h.finalize().hex()[:8])")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "ok 2d711642" in run.stdout
    finally:
        stop_server(server)


def test_numpy_fetched_for_cp313_musl_imports_and_computes_in_the_consumer(
        images_config: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    numpy = tmp_path / "numpy.txt"
    numpy.write_text("numpy==2.3.5\n")
    fetched = wheelhouse("build", str(numpy), "--store", str(store), "--config",
                         str(images_config), "--target", "cp313-musllinux_x86_64",
                         timeout=1800, env=clean_env(CI="true"))
    assert fetched.returncode == 0, fetched.stdout[-3000:] + fetched.stderr[-2000:]
    listing = json.loads(wheelhouse("list", "numpy", "--json", "--store", str(store)).stdout)
    assert [f["origin"] for f in listing] == ["upstream"], listing
    assert listing[0]["filename"].endswith("-cp313-cp313-musllinux_1_2_x86_64.whl")
    server = start_server(store, tmp_path / "server.log")
    try:
        run = _consumer_run(images_config, "cp313-musllinux_x86_64", server.url,
                            "numpy==2.3.5",
                            "import numpy, sysconfig; "
                            "assert 'musl' in sysconfig.get_config_var('EXT_SUFFIX'); "
                            "print('ok', int(numpy.arange(10).sum()))")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "ok 45" in run.stdout
    finally:
        stop_server(server)


def test_the_system_packages_hint_followed_verbatim_builds_on_both_families(
        images_config: Path, tmp_path: Path) -> None:
    """With auto-fix off, psycopg2 fails with a hint naming a system-packages table; that table,
    copied from the output into the config as it is, builds psycopg2 on both families."""
    import re

    reqs = tmp_path / "requirements.txt"
    reqs.write_text("psycopg2==2.9.10\n")
    config = tmp_path / "wheelhouse.toml"
    images = images_config.read_text()
    config.write_text(images + "\n[tool.wheelhouse.packages.psycopg2]\nauto-fix = false\n")
    args = ["build", str(reqs), "--store", str(tmp_path / "store"), "--config", str(config)]
    for target in FIXED:
        args += ["--target", target]
    failed = wheelhouse(*args, timeout=3600, env=clean_env(CI="true"))
    assert failed.returncode == 6, failed.stdout[-3000:] + failed.stderr[-2000:]
    hinted = re.search(r"system-packages for psycopg2, per package manager where images "
                       r"differ: (\{[^}]*\})", failed.stdout)
    assert hinted, failed.stdout[-3000:]
    config.write_text(images + "\n[tool.wheelhouse.packages.psycopg2]\nauto-fix = false\n"
                      f"system-packages = {hinted.group(1)}\n")
    fixed = wheelhouse(*args, "--retry-failed", timeout=3600, env=clean_env(CI="true"))
    assert fixed.returncode == 0, fixed.stdout[-5000:] + fixed.stderr[-2000:]
    assert "known fix" not in fixed.stdout
