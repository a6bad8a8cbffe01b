"""Issue 10 (a): a project with ``[tool.wheelhouse]`` warms its cache with a bare ``wheelhouse
build`` (several requirements files and a lockfile, two targets, paths relative to the config),
and a second run answers every target from the store. Offline: made-up wheels."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.conftest import wheelhouse
from tests.distributions import write_wheel

TARGETS = ("cp311-manylinux_x86_64", "cp311-musllinux_aarch64")


def make_project(root: Path) -> Path:
    wheels = root / "vendor" / "wheels"
    wheels.mkdir(parents=True)
    write_wheel(wheels, "whweb", "1.0", requires_dist=["whutil>=1"])
    write_wheel(wheels, "whutil", "1.2")
    write_wheel(wheels, "whtest", "7.0")
    for tag in ("manylinux_2_17_x86_64.manylinux2014_x86_64", "musllinux_1_2_aarch64"):
        write_wheel(wheels, "whfast", "0.9", tag=f"cp311-cp311-{tag}")
    locked = write_wheel(wheels, "whlocked", "2.0")
    project = root / "app"
    (project / "requirements").mkdir(parents=True)
    find_links = "--no-index\n--find-links ../../vendor/wheels\n"
    (project / "requirements" / "base.txt").write_text(find_links + "whweb==1.0\nwhfast\n")
    (project / "requirements" / "dev.txt").write_text(find_links + "whtest==7.0\n")
    sha = hashlib.sha256(locked.read_bytes()).hexdigest()
    (project / "pylock.toml").write_text(
        'lock-version = "1.0"\ncreated-by = "hand"\n[[packages]]\nname = "whlocked"\n'
        'version = "2.0"\n[[packages.wheels]]\npath = "../vendor/wheels/whlocked-2.0-py3-none'
        f'-any.whl"\nhashes = {{ sha256 = "{sha}" }}\n')
    (project / "pyproject.toml").write_text(f"""
[project]
name = "the-app"
version = "1.0"

[tool.wheelhouse]
requirements = ["requirements/base.txt", "requirements/dev.txt", "pylock.toml"]
targets = {json.dumps(list(TARGETS))}
store = "../wheel-store"
jobs = 2

[tool.wheelhouse.packages.whfast]
build-from-source = false
""")
    return project


def test_a_bare_build_warms_the_cache_and_a_second_run_is_all_cached(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    first = wheelhouse("build", cwd=project)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"into {project / '../wheel-store'}" in first.stdout
    listed = wheelhouse("list", "--json", cwd=project)
    assert listed.returncode == 0, listed.stderr
    files = {f["filename"] for f in json.loads(listed.stdout)}
    assert files == {
        "whweb-1.0-py3-none-any.whl", "whutil-1.2-py3-none-any.whl",
        "whtest-7.0-py3-none-any.whl", "whlocked-2.0-py3-none-any.whl",
        "whfast-0.9-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "whfast-0.9-cp311-cp311-musllinux_1_2_aarch64.whl"}
    again = wheelhouse("build", cwd=project)
    assert again.returncode == 0, again.stdout + again.stderr
    for target in TARGETS:
        assert f"{target}: nothing to do: all 5 files are in the store" in again.stdout
    assert "fetched" not in again.stdout
    check = wheelhouse("check", cwd=project)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_bare_build_without_requirements_says_where_to_name_them(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.wheelhouse]\njobs = 1\n")
    done = wheelhouse("build", cwd=tmp_path)
    assert done.returncode == 2
    assert "no requirements" in done.stderr and "requirements = " in done.stderr
