"""Issue 16, item 11: the install script for system-packages is valid shell for any table,
including one that leaves out a package manager (the psycopg2 hint named apt-get, dnf and apk
but not yum, and the generated script broke: `Syntax error: "(" unexpected`). Run here with
stub package managers on PATH; the real images are in tests/test_derived.py."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from wheelhouse.builder.derived import install_script

MANAGERS = ("apk", "dnf", "yum", "apt-get")


def _stubs(tmp: Path, present: tuple[str, ...]) -> Path:
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for name in (*present, "rm"):
        stub = bin_dir / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> {tmp / "calls"}\n')
        stub.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("named", [c for n in range(1, 5) for c in
                                   itertools.combinations(MANAGERS, n)],
                         ids=lambda c: "+".join(c))
def test_any_table_gives_a_script_the_shell_runs(tmp_path: Path, named: tuple[str, ...]
                                                 ) -> None:
    table = tuple((m, (f"lib-{m}-dev", "two words'quoted")) for m in named)
    script = tmp_path / "install.sh"
    script.write_text(install_script(table))
    assert subprocess.run(["/bin/sh", "-n", str(script)], check=False).returncode == 0
    for image_has in MANAGERS:
        work = tmp_path / image_has
        work.mkdir()
        bin_dir = _stubs(work, (image_has,))
        done = subprocess.run(["/bin/sh", str(script)], env={"PATH": str(bin_dir)},
                              capture_output=True, text=True, check=False)
        if image_has in named:
            assert done.returncode == 0, done.stderr
            calls = (work / "calls").read_text()
            assert f"lib-{image_has}-dev" in calls and "two words'quoted" in calls
        else:
            assert done.returncode == 1
            assert f"names no packages for {image_has}" in done.stderr
    nothing = tmp_path / "none"
    nothing.mkdir()
    done = subprocess.run(["/bin/sh", str(script)], env={"PATH": str(_stubs(nothing, ()))},
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "no known package manager" in done.stderr


def test_a_plain_list_installs_with_whichever_manager_is_there(tmp_path: Path) -> None:
    script = tmp_path / "install.sh"
    script.write_text(install_script(("libffi-dev",)))
    bin_dir = _stubs(tmp_path, ("apt-get",))
    done = subprocess.run(["/bin/sh", str(script)], env={"PATH": str(bin_dir)},
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "apt-get install -y -q --no-install-recommends libffi-dev" in (
        tmp_path / "calls").read_text()
