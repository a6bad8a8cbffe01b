"""Issue 17, the compile cache on the real stand-in builders: with ccache in the image a build
goes through it (named volume per builder image), a rebuild of the same sdists hits for every
compilation and says so in the run's summary, its builds reuse the build environments kept in
the same volume, and the wheels are the same bytes as those of a build with the cache off, on
both libc families."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.conftest import clean_env, wheelhouse

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
