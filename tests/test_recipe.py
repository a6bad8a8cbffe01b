"""The build recipe's error paths, with a fake runner and a workspace in a temporary directory:
no compiler, no auditwheel, no engine. The real runners are proven by the end-to-end tests."""

from __future__ import annotations

import contextlib
import io
import shutil
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from wheelhouse.builder.recipe import Paths, Recipe, build_wheel
from wheelhouse.builder.runner import Completed
from wheelhouse.errors import BuildFailed
from wheelhouse.settings import PackageSettings
from wheelhouse.targets import parse_target

TARGET = parse_target("cp311-manylinux_x86_64")
LINUX = "demo-1.0-cp311-cp311-linux_x86_64.whl"
REPAIRED = "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"


def wheel(path: Path, libs: Sequence[str] = ()) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("demo/__init__.py", "")
        for lib in libs:
            zf.writestr(f"demo.libs/{lib}", "")


@dataclass
class FakeRunner:
    """Answers the recipe's commands by exit code and by the wheels it 'produces'."""

    build_rc: int = 0
    build_outputs: tuple[str, ...] = (LINUX,)
    repair_rc: int = 0
    repair_outputs: tuple[str, ...] = (REPAIRED,)
    timeout_on: str | None = None
    #: fail the first build asking for this requirement, as pip does when it has no wheel.
    asks_for: str | None = None
    commands: list[list[str]] = field(default_factory=list)
    envs: list[dict[str, str]] = field(default_factory=list)

    def run(self, cmd: Sequence[str], *, log: IO[str] | None,
            env: Mapping[str, str] | None = None, cwd: Path | None = None,
            timeout: float | None = None) -> Completed:
        self.commands.append(list(cmd))
        self.envs.append(dict(env or {}))
        step = "build" if "build" in cmd else cmd[3] if "auditwheel" in cmd else "?"
        if step == self.timeout_on:
            return Completed(returncode=-9, timed_out=True, seconds=timeout or 0)
        if step == "build" and self.asks_for:
            asked, self.asks_for = self.asks_for, None
            return Completed(returncode=1, timed_out=False, seconds=0.5, output=(
                "ERROR: Could not find a version that satisfies the requirement "
                f"{asked} (from versions: none)"))
        if step == "build":
            out = Path(cmd[cmd.index("--outdir") + 1])
            out.mkdir(parents=True, exist_ok=True)
            for name in self.build_outputs:
                wheel(out / name)
            return Completed(returncode=self.build_rc, timed_out=False, seconds=1.5)
        if step == "show":
            return Completed(returncode=0, timed_out=False, seconds=0.1,
                             output='{"policy": "manylinux_2_17_x86_64"}')
        if step == "repair":
            out = Path(cmd[cmd.index("-w") + 1])
            out.mkdir(parents=True, exist_ok=True)
            for name in self.repair_outputs:
                wheel(out / name, libs=["libfoo-1234.so.1"])
            return Completed(returncode=self.repair_rc, timed_out=False, seconds=0.2)
        raise AssertionError(f"unexpected command {cmd}")


class DirWorkspace:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.added: list[Path] = []

    @contextlib.contextmanager
    def open(self, sdist: Path, build_deps: Path | None) -> Iterator[Paths]:
        yield Paths(source=str(self.root / "src"),
                    deps=str(build_deps) if build_deps is not None else None,
                    dist=str(self.root / "dist"), repaired=str(self.root / "repaired"))

    def add_deps(self, wheels: Path, paths: Paths) -> None:
        self.added.append(wheels)

    def collect(self, directory: str, into: Path) -> list[Path]:
        into.mkdir(parents=True, exist_ok=True)
        for w in Path(directory).glob("*.whl"):
            shutil.copyfile(w, into / w.name)
        return sorted(into.glob("*.whl"))


def build(tmp_path: Path, runner: FakeRunner, *, deps: Path | None = None,
          package: PackageSettings | None = None,
          more: Callable[[Sequence[str]], Path] | None = None) -> tuple[Path, str]:
    recipe = Recipe(runner=runner, workspace=DirWorkspace(tmp_path / "ws"), python="python3",
                    auditwheel=("python3", "-m", "auditwheel"), env={"PATH": "/usr/bin"},
                    where="in some-image")
    log = io.StringIO()
    built = build_wheel(recipe, tmp_path / "demo-1.0.tar.gz", target=TARGET,
                        package=package or PackageSettings(), work_dir=tmp_path / "work",
                        log=log, timeout=60, build_deps=deps, more_requirements=more)
    return built.wheel, log.getvalue()


def test_a_repaired_wheel_comes_back_with_its_report(tmp_path: Path) -> None:
    runner = FakeRunner()
    built, _log = build(tmp_path, runner, package=PackageSettings(
        auditwheel_exclude=("libpq.so.5",), environment={"PG_CONFIG": "/x"}))
    assert built.name == REPAIRED and built.parent == tmp_path / "work" / "repaired"
    repair = runner.commands[2]
    assert repair[:5] == ["python3", "-m", "auditwheel", "repair", "--plat"]
    assert "--exclude" in repair and "libpq.so.5" in repair
    assert all(e["SOURCE_DATE_EPOCH"] == "315532800" and e["PG_CONFIG"] == "/x"
               for e in runner.envs)


def test_the_build_failing_names_where(tmp_path: Path) -> None:
    with pytest.raises(BuildFailed, match=r"the build failed in some-image \(exit 1\)"):
        build(tmp_path, FakeRunner(build_rc=1, build_outputs=()))


def test_a_build_past_its_time_limit_says_so(tmp_path: Path) -> None:
    with pytest.raises(BuildFailed, match="did not finish within 60 s") as e:
        build(tmp_path, FakeRunner(timeout_on="build"))
    assert e.value.timed_out
    with pytest.raises(BuildFailed, match="auditwheel repair did not finish") as e:
        build(tmp_path / "again", FakeRunner(timeout_on="repair"))
    assert e.value.timed_out


@pytest.mark.parametrize("outputs", [(), (LINUX, "demo-1.0-cp311-cp311-linux_i686.whl")])
def test_not_exactly_one_wheel_is_an_error(tmp_path: Path, outputs: tuple[str, ...]) -> None:
    with pytest.raises(BuildFailed, match=f"the build produced {len(outputs)} wheels"):
        build(tmp_path, FakeRunner(build_outputs=outputs))


def test_repair_failures(tmp_path: Path) -> None:
    with pytest.raises(BuildFailed, match=r"auditwheel repair failed \(exit 2\)"):
        build(tmp_path / "a", FakeRunner(repair_rc=2, repair_outputs=()))
    with pytest.raises(BuildFailed, match="auditwheel repair produced 0 wheels"):
        build(tmp_path / "b", FakeRunner(repair_outputs=()))


def test_a_wheel_tagged_beyond_the_target_is_refused(tmp_path: Path) -> None:
    too_new = "demo-1.0-cp311-cp311-manylinux_2_36_x86_64.whl"
    with pytest.raises(BuildFailed, match="does not accept"):
        build(tmp_path, FakeRunner(repair_outputs=(too_new,)))


def test_a_pure_wheel_is_not_repaired(tmp_path: Path) -> None:
    runner = FakeRunner(build_outputs=("demo-1.0-py3-none-any.whl",))
    built, log = build(tmp_path, runner)
    assert built.name == "demo-1.0-py3-none-any.whl"
    assert len(runner.commands) == 1 and "no repair needed" in log


def test_build_requirements_come_from_the_given_directory_only(tmp_path: Path) -> None:
    runner = FakeRunner()
    build(tmp_path, runner, deps=tmp_path / "deps")
    env = runner.envs[0]
    assert env["PIP_NO_INDEX"] == "1" and env["PIP_FIND_LINKS"] == str(tmp_path / "deps")


def test_requirements_the_backend_asks_for_are_resolved_and_the_build_runs_again(
    tmp_path: Path,
) -> None:
    """setup_requires (or any get_requires_for_build_wheel) is not in [build-system]
    requires: a hermetic build meets it in a second round."""
    asked: list[list[str]] = []

    def more(reqs: Sequence[str]) -> Path:
        asked.append(list(reqs))
        return tmp_path / "more"

    runner = FakeRunner(asks_for="cppy>=1.1.0")
    built, log = build(tmp_path, runner, deps=tmp_path / "deps", more=more)
    assert asked == [["cppy>=1.1.0"]]
    assert built.name == REPAIRED
    assert "asked for cppy>=1.1.0" in log
    # Without a way to resolve more (native builds, which use the index), it fails as before.
    with pytest.raises(BuildFailed, match="the build failed"):
        build(tmp_path / "again", FakeRunner(asks_for="cppy"), deps=tmp_path / "deps")


# auditwheel's show and repair in one process: the program run with a stand-in auditwheel
# (a package named so on PYTHONPATH, behaving as its `main` does), through a real interpreter.

FAKE_AUDITWHEEL = '''
import json, os, sys
def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    how = os.environ.get("FAKE_AUDITWHEEL", "ok")
    if cmd == "show":
        print(json.dumps({"policy": "manylinux_2_17_x86_64", "wheel": args[-1]}))
        if how == "show-fails":
            sys.exit(1)
        return None
    print("INFO: repairing " + args[-1], file=sys.stderr)
    if how == "repair-exits":
        sys.exit("cannot repair: too new")
    if how == "repair-raises":
        raise RuntimeError("boom")
    out = args[args.index("-w") + 1]
    os.makedirs(out, exist_ok=True)
    import shutil
    shutil.copyfile(args[-1], os.path.join(
        out, os.path.basename(args[-1]).replace("linux", "manylinux_2_17")))
    return 0
'''


@dataclass
class HybridRunner(FakeRunner):
    """The fake build; commands run with ``-c`` (the one-process auditwheel) run for real."""

    fake: Path = Path()

    def run(self, cmd: Sequence[str], *, log: IO[str] | None,
            env: Mapping[str, str] | None = None, cwd: Path | None = None,
            timeout: float | None = None) -> Completed:
        if "-c" not in cmd:
            return super().run(cmd, log=log, env=env, cwd=cwd, timeout=timeout)
        self.commands.append(list(cmd))
        import os
        import subprocess
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                  env={**os.environ, **(env or {}),
                                       "PYTHONPATH": str(self.fake)})
        except OSError as e:  # as the agent answers
            return Completed(returncode=127, timed_out=False, seconds=0.0,
                             output=f"cannot run {cmd[0]}: {e}\n")
        return Completed(returncode=done.returncode, timed_out=False, seconds=0.1,
                         output=done.stderr + done.stdout)


def _fake_auditwheel(root: Path) -> Path:
    (root / "auditwheel").mkdir(parents=True)
    (root / "auditwheel" / "__init__.py").write_text("")
    (root / "auditwheel" / "main.py").write_text(FAKE_AUDITWHEEL)
    return root


def build_one_process(tmp_path: Path, runner: FakeRunner, python: str) -> tuple[Path, str]:
    import sys
    recipe = Recipe(runner=runner, workspace=DirWorkspace(tmp_path / "ws"), python="python3",
                    auditwheel=("python3", "-m", "auditwheel"), env={"PATH": "/usr/bin"},
                    where="in some-image", auditwheel_python=python or sys.executable)
    log = io.StringIO()
    built = build_wheel(recipe, tmp_path / "demo-1.0.tar.gz", target=TARGET,
                        package=PackageSettings(), work_dir=tmp_path / "work", log=log,
                        timeout=60)
    return built.wheel, log.getvalue()


def test_show_and_repair_run_in_one_process(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    runner = HybridRunner(fake=_fake_auditwheel(tmp_path / "fake"))
    built, log = build_one_process(tmp_path, runner, "")
    assert built.name == "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    # one build, one auditwheel process: repair's words in the log, show's JSON not.
    assert len(runner.commands) == 2 and runner.commands[1][1] == "-c"
    assert "INFO: repairing" in log and '"policy"' not in log
    monkeypatch.setenv("FAKE_AUDITWHEEL", "repair-exits")
    with pytest.raises(BuildFailed, match=r"auditwheel repair failed \(exit 1\)"):
        build_one_process(tmp_path / "b", HybridRunner(fake=tmp_path / "fake"), "")
    monkeypatch.setenv("FAKE_AUDITWHEEL", "repair-raises")
    with pytest.raises(BuildFailed, match=r"auditwheel repair failed \(exit 1\)"):
        build_one_process(tmp_path / "c", HybridRunner(fake=tmp_path / "fake"), "")


def test_the_report_of_show_comes_from_the_same_process(tmp_path: Path) -> None:
    import sys

    from wheelhouse.builder.repair import show_and_repair_command, split_shown
    fake = _fake_auditwheel(tmp_path / "fake")
    import os
    import subprocess
    wheel(tmp_path / "x-1-cp311-cp311-linux_x86_64.whl")
    cmd = show_and_repair_command(sys.executable,
                                  str(tmp_path / "x-1-cp311-cp311-linux_x86_64.whl"),
                                  str(tmp_path / "out"), ("libpq.so.5",))
    done = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(fake),
                               "FAKE_AUDITWHEEL": "show-fails"})
    assert done.returncode == 0
    split = split_shown(done.stderr + done.stdout)
    assert split is not None
    repair_out, show_code, show_out = split
    assert repair_out.startswith("INFO: repairing") and show_code == 1
    assert '"policy": "manylinux_2_17_x86_64"' in show_out
    assert "--exclude" in cmd[-1] and "libpq.so.5" in cmd[-1]
    # Output that does not end with the program's last line says nothing.
    assert split_shown("Traceback ...\nModuleNotFoundError: No module named 'auditwheel'\n") \
        is None
    assert split_shown("x wheelhouse-auditwheel-show: {}\n") is None


def test_an_interpreter_that_cannot_run_auditwheel_falls_back_to_its_command(
    tmp_path: Path,
) -> None:
    """A ``#!`` interpreter that is gone (or has no auditwheel): the two commands run."""
    runner = HybridRunner()
    built, log = build_one_process(tmp_path, runner, "/nonexistent/python3")
    assert built.name == REPAIRED
    assert "/nonexistent/python3 could not run auditwheel (exit 127)" in log
    assert "cannot run /nonexistent/python3" in log
    steps = ["-c" if c[1] == "-c" else c[3] for c in runner.commands[1:]]
    assert steps[0] == "-c" and sorted(steps[1:]) == ["repair", "show"]
