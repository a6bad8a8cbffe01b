"""Issue 10 (b): one lock, given as uv.lock, as the pylock.toml ``uv export`` writes from it,
and as the requirements file it exports, fills the store with the same files, for every target.
Real uv writes the lockfiles; the real CLI builds."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import clean_env, wheelhouse
from tests.distributions import write_wheel

pytestmark = [pytest.mark.slow]

TARGETS = ("cp311-manylinux_x86_64", "cp311-musllinux_aarch64")


def uv(*args: str, cwd: Path) -> str:
    from uv import find_uv_bin

    done = subprocess.run([find_uv_bin(), *args], cwd=cwd, env=clean_env(),
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def store_contents(store: Path) -> set[tuple[str, str]]:
    out = wheelhouse("list", "--json", "--store", str(store))
    assert out.returncode == 0, out.stderr
    return {(f["filename"], f["sha256"]) for f in json.loads(out.stdout)}


def build_each(project: Path, inputs: dict[str, Path], *targets: str
               ) -> dict[str, set[tuple[str, str]]]:
    flags = [a for t in targets for a in ("--target", t)]
    contents = {}
    for kind, path in inputs.items():
        store = project / f"store-{kind}"
        done = wheelhouse("build", str(path), "--store", str(store), *flags, cwd=project)
        assert done.returncode == 0, f"{kind}:\n{done.stdout}{done.stderr}"
        contents[kind] = store_contents(store)
    return contents


def export(project: Path, *, index_options: str = "") -> dict[str, Path]:
    uv("export", "--frozen", "--format", "pylock.toml", "-o", "pylock.toml", cwd=project)
    uv("export", "--frozen", "--format", "requirements.txt", "--no-emit-project",
       "-o", "exported.txt", cwd=project)
    reqs = project / "requirements.txt"
    reqs.write_text(index_options + (project / "exported.txt").read_text())
    return {"uv.lock": project / "uv.lock", "pylock": project / "pylock.toml",
            "requirements": reqs}


def test_uv_lock_pylock_and_requirements_fill_the_store_alike(tmp_path: Path) -> None:
    """Offline: a uv project locked against a find-links directory of made-up wheels, with
    markers on edges, an extra, a dev group, and a release with a wheel per platform."""
    wheels = tmp_path / "project" / "wheels"
    wheels.mkdir(parents=True)
    project = wheels.parent
    write_wheel(wheels, "whalpha", "1.0", requires_dist=[
        "whbeta>=1; platform_machine == 'aarch64'", "whgamma; sys_platform == 'win32'",
        "whdelta[fast]"])
    for name in ("whbeta", "whgamma", "whepsilon", "whdev"):
        write_wheel(wheels, name, "1.0")
    write_wheel(wheels, "whdelta", "1.0", requires_dist=["whepsilon; extra == 'fast'"])
    for tag in ("manylinux_2_17_x86_64.manylinux2014_x86_64", "musllinux_1_2_aarch64",
                "win_amd64"):
        write_wheel(wheels, "whplat", "2.0", tag=f"cp311-cp311-{tag}")
    (project / "pyproject.toml").write_text(
        "[project]\nname = 'the-app'\nversion = '0.1.0'\nrequires-python = '>=3.11'\n"
        "dependencies = ['whalpha', 'whplat']\n[dependency-groups]\ndev = ['whdev']\n")
    uv("lock", "--no-index", "--find-links", "wheels", cwd=project)
    inputs = export(project, index_options="--no-index\n--find-links wheels\n")
    contents = build_each(project, inputs, *TARGETS)
    assert contents["uv.lock"] == contents["pylock"] == contents["requirements"]
    assert {f for f, _ in contents["uv.lock"]} == {
        "whalpha-1.0-py3-none-any.whl", "whbeta-1.0-py3-none-any.whl",
        "whdelta-1.0-py3-none-any.whl", "whepsilon-1.0-py3-none-any.whl",
        "whdev-1.0-py3-none-any.whl",
        "whplat-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "whplat-2.0-cp311-cp311-musllinux_1_2_aarch64.whl"}


@pytest.mark.network
def test_a_pypi_lock_with_an_sdist_fills_the_store_alike(tmp_path: Path) -> None:
    """From PyPI: wheels per platform (markupsafe), a marker that is false on Linux (click's
    colorama), and an sdist-only C extension that is built from the lock's sdist."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        "[project]\nname = 'the-app'\nversion = '0.1.0'\nrequires-python = '>=3.11'\n"
        "dependencies = ['click==8.1.7', 'markupsafe==2.1.5', 'netifaces==0.11.0']\n")
    uv("lock", "--python", "3.11", cwd=project)
    contents = build_each(project, export(project))
    assert contents["uv.lock"] == contents["pylock"] == contents["requirements"]
    files = {f for f, _ in contents["uv.lock"]}
    assert "click-8.1.7-py3-none-any.whl" in files
    assert not any(f.startswith("colorama") for f in files)
    assert any(f.startswith("netifaces-0.11.0-cp311") for f in files)
    assert any(f.startswith("MarkupSafe-2.1.5-cp311") or f.startswith("markupsafe-2.1.5-cp311")
               for f in files)
