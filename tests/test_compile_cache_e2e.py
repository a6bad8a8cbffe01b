"""Issue 17, the compile cache on the real stand-in builders: with ccache in the image a build
goes through it (named volume per builder image), a rebuild of the same sdists hits for every
compilation and says so in the run's summary, its builds reuse the build environments kept in
the same volume, and the wheels are the same bytes as those of a build with the cache off, on
both libc families."""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import clean_env, wheelhouse
from wheelhouse.builder.ccache import volume

pytestmark = [pytest.mark.container, pytest.mark.network, pytest.mark.slow]

TARGETS = ["cp311-manylinux_x86_64", "cp311-musllinux_x86_64"]
#: small C extensions from PyPI with no cp311 wheel for these targets.
PINS = "crcmod==1.7\nnetifaces==0.11.0\n"


def _build(config: Path, reqs: Path, store: Path) -> subprocess.CompletedProcess[str]:
    args = ["build", str(reqs), "--store", str(store), "--config", str(config), "--jobs", "2"]
    for target in TARGETS:
        args += ["--target", target]
    done = wheelhouse(*args, timeout=1800, env=clean_env(CI="true"))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return done


def _wheels(store: Path) -> dict[str, str]:
    """The built wheels (not the build requirements fetched beside them) and their digests."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for name in ("crcmod", "netifaces")
            for p in sorted((store / "files" / name).glob("*.whl"))}


def test_a_warm_compile_cache_hits_and_gives_the_same_bytes(
        images_config: Path, tmp_path: Path) -> None:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(PINS)
    off = tmp_path / "off.toml"
    off.write_text(images_config.read_text() + "\n[tool.wheelhouse]\ncompile-cache = false\n")
    cold = _build(off, reqs, tmp_path / "store-off")
    assert "compile cache" not in cold.stdout
    reference = _wheels(tmp_path / "store-off")
    assert len(reference) == 4, reference
    # Twice with the cache on: the first fills it (unless an earlier run did), the second,
    # into a new store so everything is built again, hits for every compilation.
    _build(images_config, reqs, tmp_path / "store-1")
    warm = _build(images_config, reqs, tmp_path / "store-2")
    line = next((ln for ln in warm.stdout.splitlines() if "compile cache:" in ln), "")
    assert line, warm.stdout[-3000:]
    hits, _of, total = line.split("compile cache:")[1].split()[:3]
    assert int(total) > 0 and hits == total, line
    assert _wheels(tmp_path / "store-1") == reference
    assert _wheels(tmp_path / "store-2") == reference
    # The build environments were kept too: no build of the second run made one.
    logs = sorted((tmp_path / "store-2" / "logs").rglob("*.log"))
    built = [p for p in logs if p.parts[-3] in ("crcmod", "netifaces")]
    assert len(built) == 4, logs
    for log in built:
        text = log.read_text()
        assert "Reusing the build environment /wheelhouse/ccache/envs/" in text, text[-2000:]
        assert "Creating the build environment" not in text, text[-2000:]


def test_an_image_without_ccache_still_keeps_its_build_environments(
        images_config: Path, tmp_path: Path) -> None:
    """The pypa images carry no ccache: with the cache setting on, the volume still keeps
    their build environments between runs, and no hit rate is claimed."""
    base = "wheelhouse/builder-manylinux_x86_64:"
    text = images_config.read_text()
    tag = next(line.split('"')[1] for line in text.splitlines()
               if line.startswith("manylinux_x86_64") and base in line)
    image = f"wheelhouse/test-no-ccache:{uuid.uuid4().hex[:12]}"
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {tag}\nRUN rm -f \"$(command -v ccache)\"\n")
    built = subprocess.run(["docker", "build", "--force-rm", "-q", "-t", image, str(context)],
                           capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    image_id = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image],
                              capture_output=True, text=True, check=True).stdout.strip()
    try:
        config = tmp_path / "no-ccache.toml"
        config.write_text(text.replace(f'"{tag}"', f'"{image}"', 1))
        reqs = tmp_path / "requirements.txt"
        reqs.write_text("crcmod==1.7\n")
        for store in ("store-1", "store-2"):
            done = wheelhouse("build", str(reqs), "--store", str(tmp_path / store), "--config",
                              str(config), "--target", "cp311-manylinux_x86_64",
                              timeout=1800, env=clean_env(CI="true"))
            assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
            assert "compile cache:" not in done.stdout
        (log,) = (tmp_path / "store-2" / "logs" / "crcmod").rglob("*.log")
        assert "Reusing the build environment /wheelhouse/ccache/envs/" in log.read_text()
    finally:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False)
        subprocess.run(["docker", "volume", "rm", "-f", volume(image_id)],
                       capture_output=True, check=False)
