"""``--jobs N`` is N builds compiling at once; a finished build's check (and the next sdists'
downloads) go on beside them (issue 17: the time around compiles, not the isolation, is cut).

Real builds on this machine: three sdists whose setup scripts log when they run, each checked
by a test command that logs and takes a while. With ``--jobs 1`` no two builds overlap, and a
check overlaps the next build."""

from __future__ import annotations

import itertools
import tarfile
from pathlib import Path

import pytest

from tests.conftest import clean_env, wheelhouse

pytestmark = [pytest.mark.slow, pytest.mark.network]

SETUP = """\
import os, time
from setuptools import setup
name, version = os.path.basename(os.path.dirname(os.path.abspath(__file__))).rsplit("-", 1)
log = os.environ["WHTIMED_LOG"]
with open(log, "a") as f:
    f.write(f"build-start {name} {time.time()}\\n")
time.sleep(1.5)
setup(name=name, version=version, py_modules=[name.replace("-", "_")])
with open(log, "a") as f:
    f.write(f"build-end {name} {time.time()}\\n")
"""

CHECK = """\
import sys, time
log, name = sys.argv[1:3]
with open(log, "a") as f:
    f.write(f"check-start {name} {time.time()}\\n")
time.sleep(2)
with open(log, "a") as f:
    f.write(f"check-end {name} {time.time()}\\n")
"""


def sdist(links: Path, name: str) -> None:
    root = links / "src" / f"{name}-1.0"
    root.mkdir(parents=True)
    (root / "setup.py").write_text(SETUP)
    (root / f"{name.replace('-', '_')}.py").write_text("")
    (root / "PKG-INFO").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    with tarfile.open(links / f"{name.replace('-', '_')}-1.0.tar.gz", "w:gz") as tf:
        tf.add(root, arcname=f"{name}-1.0")


def intervals(log: Path, kind: str) -> list[tuple[float, float]]:
    starts: dict[str, float] = {}
    out = []
    for line in log.read_text().splitlines():
        what, name, when = line.split()
        if what == f"{kind}-start":
            starts[name] = float(when)
        elif what == f"{kind}-end":
            out.append((starts.pop(name), float(when)))
    return sorted(out)


def test_one_compile_at_a_time_and_checks_beside_it(tmp_path: Path) -> None:
    links = tmp_path / "links"
    links.mkdir()
    names = ["whtimed-a", "whtimed-b", "whtimed-c"]
    for name in names:
        sdist(links, name)
    log = tmp_path / "times.log"
    script = tmp_path / "check_time.py"
    script.write_text(CHECK)
    config = "".join(
        f'[packages.{name}]\nenvironment = {{ WHTIMED_LOG = "{log}" }}\n'
        f'test = "python {script} {log} {name}"\n' for name in names)
    (tmp_path / "wheelhouse.toml").write_text(config)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"--find-links {links}\n" + "".join(f"{n}==1.0\n" for n in names))
    done = wheelhouse("build", str(reqs), "--store", str(tmp_path / "store"), "--jobs", "1",
                      cwd=tmp_path, env=clean_env(CI="true"))
    assert done.returncode == 0, done.stdout + done.stderr
    builds, checks = intervals(log, "build"), intervals(log, "check")
    # setuptools runs the setup script for the requirements and again for the wheel: each
    # run is logged, and no two of them (of different builds) overlap.
    assert len(builds) >= 3 and len(checks) == 3, log.read_text()
    for (_s1, e1), (s2, _e2) in itertools.pairwise(builds):
        assert s2 >= e1, f"two builds compiled at once with --jobs 1:\n{log.read_text()}"
    assert any(cs < be and bs < ce for cs, ce in checks for bs, be in builds), (
        f"no check ran beside a build:\n{log.read_text()}")
