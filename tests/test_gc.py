"""Issue 17, item 4: `wheelhouse gc --dry-run` then `gc` on a store with staging debris,
superseded failures and their logs, and (with an engine) a derived image whose base is gone:
the dry run lists them with sizes and removes nothing; gc frees them; every published file is
still installable with pip from the served store."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import clean_env, engine_ready, make_venv, start_server, stop_server
from tests.conftest import wheelhouse as run_wheelhouse
from tests.distributions import write_wheel
from wheelhouse.ledger import Failure, Ledger
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store

pytestmark = [pytest.mark.slow]


def _store_with_debris(root: Path) -> dict[str, Path]:
    store = Store(root)
    src = root.parent / "src"
    src.mkdir()
    for version in ("1.0", "2.0"):
        store.publish(write_wheel(src, "gcdemo", version), origin=Origin.UPLOADED,
                      provenance={"log": f"logs/gcdemo/{version}/kept.log"})
    ledger = Ledger(root)
    logs = {}
    for name, when in (("old", "2026-01-01T00:00:00.000000Z"),
                       ("new", "2026-06-01T00:00:00.000000Z")):
        log = ledger.new_log("gcfail", "1.0", "cp311-manylinux_x86_64")
        log.path.write_text(f"the {name} failure\n")
        logs[name] = log.path
        ledger.record_failure(Failure(key=name * 8, project="gcfail", version="1.0",
                                      target="cp311-manylinux_x86_64", message=name,
                                      log=log.relative, time=when))
    kept_log = root / "logs" / "gcdemo" / "1.0" / "kept.log"
    kept_log.parent.mkdir(parents=True)
    kept_log.write_text("provenance names me\n")
    orphan = root / "logs" / "gone" / "1.0" / "orphan.log"
    orphan.parent.mkdir(parents=True)
    orphan.write_text("x" * 5000)
    loose = root / "tmp" / "leftover.part"
    loose.write_bytes(b"y" * 20000)
    dead = root / "tmp" / "w0123456789abcdef.deadbeef.part"
    dead.write_bytes(b"z" * 30000)
    week = time.time() - 7 * 86400
    for path in (orphan, loose):
        os.utime(path, (week, week))
    return {"kept_log": kept_log, "orphan": orphan, "loose": loose, "dead": dead,
            "old_log": logs["old"], "new_log": logs["new"]}


def test_gc_dry_run_lists_and_gc_frees_leaving_every_published_file(tmp_path: Path) -> None:
    root = tmp_path / "store"
    paths = _store_with_debris(root)
    dry = run_wheelhouse("gc", "--store", str(root), "--dry-run", "--keep-images", "--json")
    assert dry.returncode == 0, dry.stderr
    listed = json.loads(dry.stdout)
    whats = {(i["kind"], i["what"]) for i in listed["items"]}
    assert ("staging", "tmp/leftover.part") in whats
    assert ("staging", "tmp/w0123456789abcdef.deadbeef.part") in whats
    assert ("failure", "gcfail==1.0 cp311-manylinux_x86_64") in whats
    assert ("log", str(paths["old_log"].relative_to(root))) in whats
    assert ("log", "logs/gone/1.0/orphan.log") in whats
    assert listed["bytes"] >= 55000
    assert all(p.exists() for p in paths.values()), "a dry run removes nothing"
    done = run_wheelhouse("gc", "--store", str(root), "--keep-images")
    assert done.returncode == 0, done.stderr
    assert "Freed" in done.stdout
    for gone in ("orphan", "loose", "dead", "old_log"):
        assert not paths[gone].exists(), gone
    assert paths["kept_log"].exists() and paths["new_log"].exists()
    failures = Ledger(root, readonly=True).failures()
    assert [f.message for f in failures] == ["new"]
    # Every published file is still there and installable.
    server = start_server(root, tmp_path / "server.log")
    try:
        python = make_venv(tmp_path / "venv")
        for version in ("1.0", "2.0"):
            pip = subprocess.run(
                [str(python), "-m", "pip", "install", "--no-cache-dir", "--index-url",
                 f"{server.url}/simple/", f"gcdemo=={version}"],
                capture_output=True, text=True, env=clean_env(PIP_CONFIG_FILE="/dev/null"),
                check=False)
            assert pip.returncode == 0, pip.stdout + pip.stderr
    finally:
        stop_server(server)
    again = run_wheelhouse("gc", "--store", str(root), "--keep-images", "--dry-run")
    assert "Would free 0 bytes (0 items)" in again.stdout


@pytest.mark.container
def test_gc_removes_a_derived_image_whose_base_is_gone(tmp_path: Path) -> None:
    if engine_ready():
        pytest.skip(engine_ready() or "")
    images = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
                             "wheelhouse/base-*"], capture_output=True, text=True,
                            check=False).stdout.split()
    if not images:
        pytest.skip("no local base image (run builders/bootstrap)")
    tag = "wheelhouse/derived-gctest0000000:latest"
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {images[0]}\nLABEL org.wheelhouse.derived-from=sha256:{'0' * 64}\n")
    built = subprocess.run(["docker", "build", "--force-rm", "-q", "-t", tag, str(context)],
                           capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    try:
        root = tmp_path / "store"
        Store(root)
        dry = run_wheelhouse("gc", "--store", str(root), "--dry-run", "--json")
        items = json.loads(dry.stdout)["items"]
        assert any(i["kind"] == "derived image" and i["what"] == tag
                   and i["why"] == "its base image is gone" for i in items), items
        done = run_wheelhouse("gc", "--store", str(root))
        assert done.returncode == 0, done.stderr
        left = subprocess.run(["docker", "image", "inspect", tag], capture_output=True,
                              check=False)
        assert left.returncode != 0, "the derived image is gone"
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)


@pytest.mark.container
def test_gc_removes_the_build_cache_of_a_gone_image_only(tmp_path: Path) -> None:
    """A builder image's cache volume (compiles and build environments) goes with the image;
    the cache of an image still there stays."""
    import uuid

    from wheelhouse.builder.ccache import volume

    if engine_ready():
        pytest.skip(engine_ready() or "")
    ids = subprocess.run(["docker", "images", "-q", "--no-trunc", "wheelhouse/base-*"],
                         capture_output=True, text=True, check=False).stdout.split()
    if not ids:
        pytest.skip("no local base image (run builders/bootstrap)")
    orphan = volume("sha256:" + uuid.uuid4().hex)  # no image has this id
    present = volume(ids[0])
    existed = subprocess.run(["docker", "volume", "inspect", present], capture_output=True,
                             check=False).returncode == 0
    for name in (orphan, present):
        subprocess.run(["docker", "volume", "create", name], capture_output=True, check=True)
    try:
        root = tmp_path / "store"
        Store(root)
        dry = run_wheelhouse("gc", "--store", str(root), "--dry-run", "--json")
        items = json.loads(dry.stdout)["items"]
        caches = {i["what"]: i["why"] for i in items if i["kind"] == "build cache"}
        assert caches.get(orphan) == "its builder image is gone", items
        assert present not in caches
        done = run_wheelhouse("gc", "--store", str(root))
        assert done.returncode == 0, done.stderr
        assert f"removed      build cache    {orphan}" in done.stdout, done.stdout
        gone = subprocess.run(["docker", "volume", "inspect", orphan], capture_output=True,
                              check=False)
        assert gone.returncode != 0, "the orphaned cache is gone"
        assert subprocess.run(["docker", "volume", "inspect", present], capture_output=True,
                              check=False).returncode == 0, "the present image's cache stays"
    finally:
        subprocess.run(["docker", "volume", "rm", "-f", orphan], capture_output=True,
                       check=False)
        if not existed:
            subprocess.run(["docker", "volume", "rm", "-f", present], capture_output=True,
                           check=False)
