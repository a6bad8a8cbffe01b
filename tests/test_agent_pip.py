"""The agent's pip zygote (``wheelhouse.builder.inside.ZYGOTE``): ``python -m pip`` commands
forked from a process that has pip imported must behave as the process ``python -m pip``
would: the same output, exit status, environment, working directory, signals, time limit.

Run here with this machine's Python in place of ``docker exec -i CONTAINER PYTHON`` and a
stand-in ``pip`` package first on PYTHONPATH (the agent runs ``-I``, so only its children see
it, as the zygote and ``python -m pip`` both do), which reports how it was started; each
case runs through an agent without the zygote and one with it, and the two must agree. The
real pip through it is proven by the consumer checks of the container tests and by the last
test here.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from wheelhouse.builder.agent import Agent, pip_zygote

MAIN = '''
import json, os, signal, sys, time
def main(args=None):
    how = args[0] if args else "ok"
    print(json.dumps({
        "args": args, "argv0": os.path.basename(sys.argv[0]), "argv": sys.argv[1:],
        "cwd": os.getcwd(), "x": os.environ.get("WH_X"),
        "own_session": os.getsid(0) == os.getpid(),
        "stdin": sys.stdin.read(),
        "ppid": os.getppid(),
        "path0": sys.path[0],
        "entry": ENTRY,
    }), flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    if how == "exit3":
        return 3
    if how == "message":
        sys.exit("pip says no")
    if how == "raise":
        raise RuntimeError("boom")
    if how == "signal":
        os.kill(os.getpid(), signal.SIGTERM)
    if how.startswith("sleep"):
        time.sleep(float(how[5:]))
    return 0
'''


def _fake_pip(root: Path) -> Path:
    (root / "pip" / "_internal" / "cli").mkdir(parents=True)
    (root / "pip" / "__init__.py").write_text("")
    # As pip's: the working directory leaves sys.path, then its ``cli``.
    (root / "pip" / "__main__.py").write_text(
        "import os, sys\nif sys.path[0] in ('', os.getcwd()):\n    sys.path.pop(0)\n"
        "from pip._internal.cli.main import cli\nsys.exit(cli())\n")
    (root / "pip" / "_internal" / "__init__.py").write_text("")
    (root / "pip" / "_internal" / "cli" / "__init__.py").write_text("")
    (root / "pip" / "_internal" / "cli" / "main.py").write_text(
        MAIN.replace("def main(args=None):", "def main(args=None):\n"
                     "    args = sys.argv[1:] if args is None else args")
        + "def cli(args=None):\n    global ENTRY\n    ENTRY = 'cli'\n    return main(args)\n"
        + "ENTRY = 'main'\n")
    return root


@pytest.fixture
def agents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Agent, Agent]]:
    monkeypatch.setenv("PYTHONPATH", str(_fake_pip(tmp_path / "fake")))
    plain = Agent([sys.executable], name="plain")
    zygote = Agent([sys.executable], name="zygote", zygotes=[pip_zygote(sys.executable)])
    yield plain, zygote
    plain.close()
    zygote.close()


def run(agent: Agent, args: list[str], **kw: object) -> tuple[int, bool, str]:
    out: list[bytes] = []
    done = agent.run([sys.executable, "-m", "pip", *args], env=kw.pop("env", {}),  # type: ignore[arg-type]
                     cwd=kw.pop("cwd", None), timeout=kw.pop("timeout", None),  # type: ignore[arg-type]
                     sink=out.append)
    return done.code, done.timed_out, b"".join(out).decode()


def said(output: str, agent: Agent | None = None) -> dict[str, object]:
    """What the command reported; with ``agent``, also whether it was ``forked``: its parent
    is then the zygote, not the agent (which runs each command as its child)."""
    loaded = json.loads(output.splitlines()[0])
    assert isinstance(loaded, dict)
    if agent is not None:
        loaded["forked"] = loaded["ppid"] != agent._proc.pid
    return loaded


def test_a_forked_pip_is_the_process_python_m_pip_would_be(agents: tuple[Agent, Agent],
                                                           tmp_path: Path) -> None:
    plain, zygote = agents
    for how, code in (("ok", 0), ("exit3", 3), ("message", 1), ("raise", 1),
                      ("signal", 128 + signal.SIGTERM)):
        results = []
        for agent in (plain, zygote):
            got, timed_out, out = run(agent, [how, "--flag"], env={"WH_X": "given"},
                                      cwd=str(tmp_path))
            assert (got, timed_out) == (code, False), (agent.name, how, out)
            report = said(out, agent)
            assert report["forked"] is (agent is zygote), agent.name
            results.append((report, out.splitlines()[1:]))
        (a, a_rest), (b, b_rest) = results
        for key in ("args", "argv0", "argv", "cwd", "x", "own_session", "stdin", "path0",
                    "entry"):
            assert a[key] == b[key], (how, key, a[key], b[key])
        assert a["argv0"] == "__main__.py" and a["args"] == [how, "--flag"]
        assert a["entry"] == "cli"
        assert a["own_session"] is True and a["stdin"] == "" and a["x"] == "given"
        assert a["path0"] != "" and a["path0"] != str(tmp_path)
        # stderr comes as it does from a process of its own, and so does a traceback.
        assert a_rest[0] == b_rest[0] == "to stderr"
        if how == "message":
            assert a_rest[-1] == b_rest[-1] == "pip says no"
        if how == "raise":
            assert b_rest[-1] == "RuntimeError: boom" == a_rest[-1]


def test_the_time_limit_and_concurrency_hold_for_forked_commands(
    agents: tuple[Agent, Agent],
) -> None:
    _plain, zygote = agents
    code, timed_out, out = run(zygote, ["sleep30"], timeout=1)
    assert timed_out and code == 128 + signal.SIGKILL and said(out, zygote)["forked"]
    results: list[tuple[int, bool]] = []
    threads = [threading.Thread(target=lambda: results.append(run(zygote, ["sleep0.5"])[:2]))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [(0, False)] * 4


def test_what_the_zygote_cannot_do_exactly_runs_as_before(agents: tuple[Agent, Agent],
                                                          tmp_path: Path) -> None:
    _plain, zygote = agents
    # A variable the interpreter reads when it starts: its own process.
    _code, _t, out = run(zygote, ["ok"], env={"PYTHONWARNINGS": "ignore::UserWarning:wh"})
    assert said(out, zygote)["forked"] is False
    # A locale (read when the interpreter starts, too), an interpreter named otherwise than
    # the agent's, a command given stdin: their own processes.
    assert said(run(zygote, ["ok"], env={"LC_ALL": "C.wh-test"})[2], zygote)["forked"] is False
    same_file = os.path.dirname(sys.executable) + "/./" + os.path.basename(sys.executable)
    for argv, stdin in (([same_file, "-m", "pip", "ok"], None),
                        ([sys.executable, "-m", "pip", "ok"], b"given")):
        out_parts: list[bytes] = []
        zygote.run(argv, env={}, cwd=None, timeout=60, sink=out_parts.append, stdin=stdin)
        report = said(b"".join(out_parts).decode(), zygote)
        assert report["forked"] is False, (argv, stdin)
        assert report["stdin"] == (stdin or b"").decode()
    # The zygote gone (killed under a running command): that command says so, later ones
    # run as their own processes.
    holder: list[tuple[int, bool, str]] = []
    t = threading.Thread(target=lambda: holder.append(run(zygote, ["sleep1"])))
    t.start()
    _code, _t, out = run(zygote, ["ok"])
    os.kill(int(str(said(out)["ppid"])), signal.SIGKILL)
    t.join()
    code, _timed_out, out = holder[0]
    assert code == 125 and "the process that started this command stopped" in out
    code, _t, out = run(zygote, ["exit3"])
    assert code == 3 and said(out, zygote)["forked"] is False


def test_an_interpreter_without_pip_gets_the_same_answer_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = tmp_path / "broken" / "pip"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('no pip here')\n")
    monkeypatch.setenv("PYTHONPATH", str(broken.parent))
    agent = Agent([sys.executable], name="no-pip", zygotes=[pip_zygote(sys.executable)])
    try:
        code, timed_out, out = run(agent, ["--version"], timeout=60)
    finally:
        agent.close()
    assert (code, timed_out) == (1, False) and "no pip here" in out


def test_the_real_pip_installs_through_the_zygote(tmp_path: Path) -> None:
    """This machine's pip, forked: a wheel installed into a target directory, as the
    consumer check does, and the same files as pip's own process puts there."""
    wheel = tmp_path / "wheels" / "demo-1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    import zipfile
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("demo/__init__.py", "VALUE = 1\n")
        zf.writestr("demo-1.0.dist-info/METADATA",
                    "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
        zf.writestr("demo-1.0.dist-info/WHEEL",
                    "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                    "Tag: py3-none-any\n")
        zf.writestr("demo-1.0.dist-info/RECORD", "")
    trees = []
    for pip in (False, True):
        agent = Agent([sys.executable], name="real",
                      zygotes=[pip_zygote(sys.executable)] if pip else [])
        site = tmp_path / f"site-{pip}"
        try:
            code, _t, out = run(agent, ["install", "--no-index", "--find-links",
                                        str(wheel.parent), "--target", str(site),
                                        "--no-compile", "--disable-pip-version-check", "-q",
                                        "demo==1.0"], timeout=120)
            assert code == 0, out
            code, _t, out = run(agent, ["install", "--no-index", "--find-links",
                                        str(wheel.parent), "--target", str(tmp_path / "x"),
                                        "-q", "absent==1.0"], timeout=120)
            assert code == 1 and "No matching distribution found for absent==1.0" in out
        finally:
            agent.close()
        trees.append(sorted(str(p.relative_to(site)) for p in site.rglob("*")))
    assert trees[0] == trees[1] and "demo/__init__.py" in trees[1]
