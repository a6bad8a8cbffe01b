"""Shared build environments (wheelhouse/builder/buildenv.py): the driver run with this
machine's interpreter over real sdists and real setuptools wheels from PyPI, as it runs in a
builder container.

What must hold: builds with the same requirement wheels share one environment, a different
set gets its own, the environment sees nothing but its wheels (isolation kept), and a
requirement the backend asks for beyond them is reported in pip's words with exit 3 (the
recipe resolves it and runs again)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import build_sdist, clean_env
from wheelhouse.builder.buildenv import DRIVER, driver_command

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def deps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """setuptools' wheel from PyPI: what a legacy sdist's build environment holds."""
    out = tmp_path_factory.mktemp("deps")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary",
                    ":all:", "--dest", str(out), "setuptools>=70"],
                   check=True, capture_output=True, env=clean_env())
    return out


@pytest.fixture()
def driver(tmp_path: Path) -> Path:
    path = tmp_path / "driver.py"
    path.write_text(DRIVER, encoding="utf-8")
    return path


def unpack(sdist: Path, into: Path) -> Path:
    with tarfile.open(sdist) as tf:
        tf.extractall(into, filter="data")
    (root,) = into.iterdir()
    return root


def project(tmp_path: Path, name: str, setup: str) -> Path:
    """A source tree with only a setup.py (a legacy sdist: setuptools' default backend)."""
    src = tmp_path / name
    (src / name).mkdir(parents=True)
    (src / name / "__init__.py").write_text("")
    (src / "setup.py").write_text(setup)
    return src


def plain(tmp_path: Path, name: str) -> Path:
    """A legacy project with nothing but its name."""
    return project(tmp_path, name, "from setuptools import setup\n"
                   f"setup(name='{name}', version='1.0', packages=['{name}'])\n")


def with_wheel(deps: Path, into: Path) -> Path:
    """``deps`` plus the ``wheel`` wheel from PyPI: another set of requirement wheels."""
    shutil.copytree(deps, into)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary",
                    ":all:", "--dest", str(into), "wheel"], check=True, capture_output=True,
                   env=clean_env())
    return into


def drive(driver: Path, source: Path, deps: Path, envs: Path, out: Path
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(driver_command(sys.executable, str(driver), source=str(source),
                                         outdir=str(out), deps=str(deps), envs=str(envs)),
                          capture_output=True, text=True, env=clean_env(), check=False)


def test_same_wheels_share_one_environment(tmp_path: Path, deps: Path, driver: Path) -> None:
    envs = tmp_path / "envs"
    first = unpack(build_sdist("whpy", tmp_path / "a"), tmp_path / "src-a")
    second = plain(tmp_path, "whother")
    one = drive(driver, first, deps, envs, tmp_path / "out")
    assert one.returncode == 0, one.stdout + one.stderr
    assert "Creating the build environment" in one.stdout
    two = drive(driver, second, deps, envs, tmp_path / "out")
    assert two.returncode == 0, two.stdout + two.stderr
    assert "Reusing the build environment" in two.stdout
    assert len([p for p in envs.iterdir() if p.is_dir()]) == 1
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "out").glob("*.whl")) == [
        "whother", "whpy"]


def test_other_wheels_get_their_own_environment(tmp_path: Path, deps: Path,
                                                driver: Path) -> None:
    envs = tmp_path / "envs"
    src = plain(tmp_path, "whone")
    assert drive(driver, src, deps, envs, tmp_path / "out").returncode == 0
    more = with_wheel(deps, tmp_path / "more")
    again = drive(driver, src, more, envs, tmp_path / "out2")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Creating the build environment" in again.stdout
    assert len([p for p in envs.iterdir() if p.is_dir()]) == 2


def test_the_environment_sees_only_its_wheels(tmp_path: Path, deps: Path,
                                              driver: Path) -> None:
    """click is installed where the driver runs, not among the build's wheels: the setup
    script cannot import it, as under build isolation."""
    src = project(tmp_path, "whleaky", "import click\nfrom setuptools import setup\n"
                  "setup(name='whleaky', version='1.0', packages=['whleaky'])\n")
    done = drive(driver, src, deps, tmp_path / "envs", tmp_path / "out")
    assert done.returncode == 1
    assert "No module named 'click'" in done.stdout + done.stderr
    assert "ERROR Backend subprocess exited" in done.stdout


def test_what_the_backend_asks_for_beyond_the_wheels_is_said_in_pips_words(
        tmp_path: Path, deps: Path, driver: Path) -> None:
    src = project(tmp_path, "whasks", "from setuptools import setup\n"
                  "setup(name='whasks', version='1.0', packages=['whasks'],\n"
                  "      setup_requires=['whelp-not-here>=2'])\n")
    done = drive(driver, src, deps, tmp_path / "envs", tmp_path / "out")
    assert done.returncode == 3, done.stdout + done.stderr
    assert ("Could not find a version that satisfies the requirement whelp-not-here>=2"
            in done.stdout)
    assert not list(tmp_path.glob("out/*.whl"))


def test_a_half_made_environment_is_made_again(tmp_path: Path, deps: Path,
                                               driver: Path) -> None:
    """A build killed while its environment was being made leaves a directory without the
    completion mark: the next build removes it and makes it whole."""
    envs = tmp_path / "envs"
    src = plain(tmp_path, "whagain")
    assert drive(driver, src, deps, envs, tmp_path / "out").returncode == 0
    (env,) = [p for p in envs.iterdir() if p.is_dir()]
    (env / ".complete").unlink()
    shutil.rmtree(env / "lib")
    again = drive(driver, src, deps, envs, tmp_path / "out2")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Creating the build environment" in again.stdout



def test_a_wheel_of_the_same_name_with_other_bytes_gets_its_own_environment(
        tmp_path: Path, deps: Path, driver: Path) -> None:
    """Environments outlive runs (the compile cache's volume), and a file name can stand for
    other bytes in another store: the wheels' contents name the environment."""
    envs = tmp_path / "envs"
    src = plain(tmp_path, "whbytes")
    assert drive(driver, src, deps, envs, tmp_path / "out").returncode == 0
    other = tmp_path / "other"
    shutil.copytree(deps, other)
    (wheel,) = other.glob("*.whl")
    with zipfile.ZipFile(wheel, "a") as zf:  # still a valid wheel, other bytes
        zf.writestr("setuptools-extra-file.txt", "x")
    again = drive(driver, src, other, envs, tmp_path / "out2")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Creating the build environment" in again.stdout
    assert len([p for p in envs.iterdir() if p.is_dir()]) == 2


def test_environments_unused_for_a_month_go_when_a_new_one_is_made(
        tmp_path: Path, deps: Path, driver: Path) -> None:
    envs = tmp_path / "envs"
    src = plain(tmp_path, "whold")
    assert drive(driver, src, deps, envs, tmp_path / "out").returncode == 0
    (kept,) = [p for p in envs.iterdir() if p.is_dir()]
    stale = envs / "0123456789abcdef"
    (stale / "bin").mkdir(parents=True)
    (stale / ".complete").touch()
    month = time.time() - 31 * 86400
    os.utime(stale / ".complete", (month, month))
    half = envs / "fedcba9876543210"  # no mark: being made by another build; left alone
    half.mkdir()
    more = with_wheel(deps, tmp_path / "more")
    assert drive(driver, src, more, envs, tmp_path / "out2").returncode == 0
    left = {p.name for p in envs.iterdir() if p.is_dir()}
    assert stale.name not in left
    assert {kept.name, half.name} <= left and len(left) == 3
