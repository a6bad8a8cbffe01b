"""The derived builder images' install script and identity (build/derived.py), without an
engine: the script runs here under sh with stub package managers on PATH."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from wheelhouse.builder.derived import derived_tag, install_script
from wheelhouse.settings import SystemPackages

TABLE: SystemPackages = (("apk", ("libffi-dev",)), ("dnf", ("libffi-devel",)))


def _run(script: str, manager: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The script in an "image" whose first package manager is ``manager`` (a stub that
    prints what it was asked to install; the script probes apk, dnf, yum, then apt-get)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / manager
    stub.write_text('#!/bin/sh\necho "$0 $*"\n')
    stub.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    for real in ("apk", "dnf", "yum"):
        if real != manager and any(Path(d, real).exists() for d in env["PATH"].split(":")):
            pytest.skip(f"this machine has {real}")
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False,
                          env={**env, "HOME": os.environ.get("HOME", "/")})


@pytest.mark.parametrize(("manager", "package"), [("apk", "libffi-dev"),
                                                  ("dnf", "libffi-devel")])
def test_a_table_installs_each_managers_names(tmp_path: Path, manager: str,
                                              package: str) -> None:
    done = _run(install_script(TABLE), manager, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == package


def test_a_table_without_the_images_manager_says_so(tmp_path: Path) -> None:
    done = _run(install_script(TABLE), "yum", tmp_path)
    assert done.returncode == 1
    assert "system-packages names no packages for yum" in done.stderr


def test_a_list_is_for_every_manager(tmp_path: Path) -> None:
    done = _run(install_script(("zlib-dev", "libffi-dev")), "apk", tmp_path)
    assert done.returncode == 0 and done.stdout.split()[-2:] == ["libffi-dev", "zlib-dev"]


def test_the_tag_is_keyed_by_base_and_packages() -> None:
    assert derived_tag("sha256:a", ("x", "y")) == derived_tag("sha256:a", ("y", "x", "x"))
    assert derived_tag("sha256:a", ("x",)) != derived_tag("sha256:b", ("x",))
    assert derived_tag("sha256:a", TABLE) != derived_tag("sha256:a", ("libffi-dev",))
