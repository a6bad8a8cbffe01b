"""The in-container agent (``wheelhouse.builder.agent``), run here with this machine's Python
in place of ``docker exec -i CONTAINER PYTHON``: the same script, the same channel. What the
containers add (the engine, the images) is proven by the container tests, whose every command
now goes through it."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wheelhouse.builder.agent import Agent, AgentGone
from wheelhouse.builder.engine import ContainerOptions
from wheelhouse.builder.running import Container, ContainerRunner
from wheelhouse.errors import EngineError


@pytest.fixture
def agent() -> Iterator[Agent]:
    a = Agent([sys.executable], name="local")
    yield a
    a.close()


def run(agent: Agent, argv: list[str], **kw: object) -> tuple[int, bool, bytes]:
    out: list[bytes] = []
    done = agent.run(argv, env=kw.pop("env", {}), cwd=kw.pop("cwd", None),  # type: ignore[arg-type]
                     timeout=kw.pop("timeout", None), sink=out.append, **kw)  # type: ignore[arg-type]
    return done.code, done.timed_out, b"".join(out)


def test_a_command_runs_with_its_environment_directory_and_status(agent: Agent,
                                                                  tmp_path: Path) -> None:
    code, timed_out, out = run(agent, ["sh", "-c", 'echo "$WH_X $(pwd)"; echo err >&2; exit 3'],
                               env={"WH_X": "given"}, cwd=str(tmp_path))
    assert (code, timed_out) == (3, False)
    assert out.decode().splitlines() == [f"given {tmp_path}", "err"]
    # The agent's own environment is the base, as `exec -e` adds to the container's.
    code, _, out = run(agent, ["sh", "-c", 'echo "$HOME"'])
    assert out.decode().strip() == os.environ["HOME"]


def test_stdin_and_binary_output_pass_unchanged(agent: Agent) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB, every byte value
    code, _, out = run(agent, ["cat"], stdin=payload)
    assert code == 0 and out == payload
    code, _, out = run(agent, ["cat"])
    assert code == 0 and out == b"", "without a payload stdin is empty, not the channel"


def test_commands_run_concurrently(agent: Agent) -> None:
    results: list[int] = []
    start = time.monotonic()
    threads = [threading.Thread(target=lambda: results.append(run(agent, ["sleep", "1"])[0]))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [0, 0, 0, 0]
    assert time.monotonic() - start < 3.5, "four 1 s sleeps ran one after another"


def test_the_time_limit_kills_the_whole_process_group(agent: Agent, tmp_path: Path) -> None:
    marker = tmp_path / "survived"
    # A child that outlives the shell unless its group is killed.
    code, timed_out, _ = run(agent, ["sh", "-c", f"(sleep 3; touch {marker}) & sleep 30"],
                             timeout=1)
    assert timed_out and code == 128 + signal.SIGKILL
    time.sleep(3.5)
    assert not marker.exists(), "a grandchild outlived the time limit"


def test_signals_and_missing_programs_read_as_exec_reports_them(agent: Agent) -> None:
    code, timed_out, _ = run(agent, ["sh", "-c", "kill -TERM $$"])
    assert (code, timed_out) == (128 + signal.SIGTERM, False)
    code, _, out = run(agent, ["no-such-program-here"])
    assert code == 127 and b"no-such-program-here" in out


def test_output_that_cannot_be_written_fails_that_command_only(agent: Agent) -> None:
    def full(_data: bytes) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        agent.run(["sh", "-c", "echo one; echo two"], env={}, cwd=None, timeout=None,
                  sink=full)
    assert run(agent, ["echo", "next"])[2] == b"next\n", "the channel survives it"


def test_a_dead_agent_fails_pending_and_later_commands(tmp_path: Path) -> None:
    a = Agent([sys.executable], name="local")
    try:
        errors: list[BaseException] = []

        def pending() -> None:
            try:
                run(a, ["sleep", "30"])
            except AgentGone as e:
                errors.append(e)

        t = threading.Thread(target=pending)
        t.start()
        time.sleep(0.5)
        a._proc.kill()  # as when the container is removed under it
        t.join(timeout=10)
        assert not t.is_alive() and len(errors) == 1
        with pytest.raises(AgentGone, match="stopped"):
            run(a, ["true"])
    finally:
        a.close()


def test_closing_stops_what_still_runs(tmp_path: Path) -> None:
    a = Agent([sys.executable], name="local")
    pid_file = tmp_path / "pid"
    t = threading.Thread(target=lambda: _swallow(a, ["sh", "-c", f"echo $$ > {pid_file}; "
                                                     "exec sleep 60"]))
    t.start()
    for _ in range(50):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        time.sleep(0.1)
    pid = int(pid_file.read_text())
    a.close()
    t.join(timeout=10)
    for _ in range(50):
        if not _alive(pid):
            break
        time.sleep(0.1)
    assert not _alive(pid), "a command outlived its agent"


def _swallow(a: Agent, argv: list[str]) -> None:
    with contextlib.suppress(AgentGone):
        run(a, argv)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_an_agent_that_cannot_start_says_so() -> None:
    with pytest.raises(EngineError, match="cannot start wheelhouse's agent"):
        Agent(["sh", "-c", "echo no python here >&2; exit 1", "--"], name="broken")


@pytest.mark.container
def test_a_container_through_its_agent(images_config: Path, tmp_path: Path) -> None:
    """A real builder container: commands, files in and out, the time limit, and the
    container's removal, each as the build code sees them."""
    import tomllib

    image = tomllib.loads(images_config.read_text())["tool"]["wheelhouse"]["images"][
        "manylinux_x86_64"]
    c = Container(image=image, options=ContainerOptions(), label="agent-test")
    try:
        c.start_agent("/opt/python/cp311-cp311/bin/python")
        assert c.exec_output("uname -m").strip() == "x86_64"
        with pytest.raises(EngineError, match="nope"):
            c.exec_output("echo nope >&2; exit 4")
        c.send({"a.whl": b"wheel bytes", "sub/b.whl": b"not collected"},
               "mkdir -p /w/out && tar -xf - -C /w/out && ln -s /etc/passwd /w/out/link.whl")
        c.copy_out("/w/out", tmp_path / "got")
        # Only plain files directly in the directory come out: no link, no subdirectory.
        assert sorted(p.name for p in (tmp_path / "got").iterdir()) == ["a.whl"]
        assert (tmp_path / "got" / "a.whl").read_bytes() == b"wheel bytes"
        runner = ContainerRunner(c, {"WH_BASE": "base"})
        log = io.StringIO()
        done = runner.run(["sh", "-c", 'echo "$WH_BASE $WH_X"; pwd'], log=log,
                          env={"WH_X": "x"}, cwd=Path("/w"))
        assert done.returncode == 0 and "base x\n/w\n" in log.getvalue()
        assert log.getvalue().startswith(f"$ docker exec -e WH_BASE=base -e WH_X=x -w /w {c.name} ")
        done = runner.run(["sleep", "60"], log=None, timeout=2)
        assert done.timed_out and done.returncode == 137 and done.seconds < 30
        assert c.exec_output("echo still here").strip() == "still here"
        subprocess.run(["docker", "rm", "-f", c.name], capture_output=True, check=True)
        with pytest.raises(EngineError, match="stopped while running"):
            runner.run(["true"], log=None)
    finally:
        c.close()
    assert subprocess.run(["docker", "ps", "-aq", "--filter", f"name={c.name}"],
                          capture_output=True, text=True, check=True).stdout.strip() == ""


@pytest.mark.container
@pytest.mark.network
def test_builds_cost_no_engine_call_per_pin(images_config: Path, tmp_path: Path) -> None:
    """What the agent is for, held: a run's `docker exec` and `docker cp` calls do not grow
    with its pins. Before it, each built pin cost about ten (send, build, copy out, show,
    repair, copy out, clean up; the check's send, pip, check, clean up) at 0.1 s of CPU
    each. Now each container costs three (`uname`, the interpreter probe, the agent)."""
    from tests.conftest import build_sdist, clean_env, wheelhouse

    sdists = tmp_path / "sdists"
    for project in ("whdemo-ext", "whpy"):
        build_sdist(project, sdists)
    shim = tmp_path / "bin"
    shim.mkdir()
    calls = tmp_path / "calls"
    real = shutil.which("docker")
    assert real is not None
    (shim / "docker").write_text(f'#!/bin/sh\necho "$1" >> {calls}\nexec {real} "$@"\n')
    (shim / "docker").chmod(0o755)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"--find-links {sdists}\nwhdemo-ext==1.0.0\nwhpy\n")
    env = clean_env(PATH=f"{shim}{os.pathsep}{os.environ['PATH']}")
    done = wheelhouse("build", str(reqs), "--store", str(tmp_path / "store"), "--config",
                      str(images_config), "--target", "cp311-manylinux_x86_64", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 built" in done.stdout, done.stdout
    made = calls.read_text().split()
    # One builder and one consumer container: three execs each, whatever the pin count.
    assert made.count("exec") == 6, sorted(made)
    assert made.count("cp") == 0, sorted(made)


@pytest.mark.container
def test_a_targets_containers_start_ahead_and_never_outlive_the_run(images_config: Path
                                                                     ) -> None:
    """``prepare``: the builder and consumer containers of a target start in the background
    (the consumer's pip zygote with them), builds then find them; closing the builder,
    even while they are still starting, leaves none behind."""
    import tomllib

    from wheelhouse.builder.container import ContainerBuilder
    from wheelhouse.settings import PackageSettings
    from wheelhouse.targets import parse_target

    config = tomllib.loads(images_config.read_text())["tool"]["wheelhouse"]
    target = parse_target("cp311-manylinux_x86_64")

    def ours() -> list[str]:
        return subprocess.run(["docker", "ps", "-a", "--filter",
                               "label=org.wheelhouse.builder=1", "--format", "{{.Names}}"],
                              capture_output=True, text=True, check=True).stdout.split()

    before = set(ours())
    builder = ContainerBuilder(images=config["images"],
                               consumer_images=config["consumer-images"],
                               options=ContainerOptions())
    try:
        builder.prepare(target, PackageSettings())
        builder.prepare(target, PackageSettings())  # once per target
        for thread in builder._preparing[target.identifier]:
            thread.join(timeout=120)
        started = set(ours()) - before
        assert len(started) == 2, started
        assert any("-build-" in n for n in started) and any("-check-" in n for n in started)
        # A build finds the started container: no third one.
        assert builder.python_version(target) == "3.11.2"
        assert set(ours()) - before == started
    finally:
        builder.close()
    assert set(ours()) - before == set()
    # Closed at once, while both are starting: nothing is left either, and a later use of
    # the builder starts afresh.
    again = ContainerBuilder(images=config["images"], consumer_images=config["consumer-images"],
                             options=ContainerOptions())
    try:
        again.prepare(target, PackageSettings(test="", system_packages=()))
    finally:
        again.close()
    assert set(ours()) - before == set()
    try:
        assert again.python_version(target) == "3.11.2"
    finally:
        again.close()
    assert set(ours()) - before == set()
