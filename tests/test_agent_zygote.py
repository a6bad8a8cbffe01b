"""The agent's zygotes for ``python -c CODE`` and ``python SCRIPT`` (a builder container's
auditwheel and build driver, ``wheelhouse.builder.agent.build_zygotes``): forked from a
process that imported their modules, they must behave as the interpreter's own process would:
``sys.argv``, ``sys.path[0]``, ``__main__``, output, exit status, exit functions, a module
shadowed by a file beside the script.

As in ``test_agent_pip``, this machine's Python stands in for ``docker exec -i CONTAINER
PYTHON``, and every case runs through an agent without zygotes and one with them; the two must
agree. The real driver and auditwheel through them are proven by the container tests'
builds (every build's driver and repair run forked there).
"""

from __future__ import annotations

import json
import signal
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from wheelhouse.builder.agent import Agent, Zygote

#: What each command reports, as its first line of output.
REPORT = """
import json, os, sys, wh_needed
print(json.dumps({
    "argv": sys.argv, "path0": sys.path[0], "cwd": os.getcwd(),
    "name": __name__, "file": globals().get("__file__"),
    "main_is_us": sys.modules["__main__"].__dict__ is globals(),
    "leaked": sorted(k for k in ("sock", "ours", "need", "warm", "kids") if k in globals()),
    "needed_from": os.path.basename(os.path.dirname(wh_needed.__file__)),
    "x": os.environ.get("WH_X"), "ppid": os.getppid(),
}), flush=True)
how = sys.argv[1] if len(sys.argv) > 1 else "ok"
if how == "exit3":
    sys.exit(3)
if how == "raise":
    raise RuntimeError("boom")
if how == "signal":
    os.kill(os.getpid(), 15)
if how == "atexit":
    import atexit
    atexit.register(lambda: print("at exit", flush=True))
"""


@pytest.fixture
def agents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Agent, Agent]]:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "wh_needed.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", str(lib))
    plain = Agent([sys.executable], name="plain")
    zygote = Agent([sys.executable], name="zygote",
                   zygotes=[Zygote(sys.executable, ("-c", "script"), ("wh_needed",),
                                   ("json", "wh_absent_module"))])
    yield plain, zygote
    plain.close()
    zygote.close()


def run(agent: Agent, argv: list[str], cwd: Path) -> tuple[int, str, dict[str, object]]:
    out: list[bytes] = []
    done = agent.run(argv, env={"WH_X": "given"}, cwd=str(cwd), timeout=60, sink=out.append)
    text = b"".join(out).decode()
    report = json.loads(text.splitlines()[0])
    # Forked: its parent is the zygote; the agent runs each command as its own child.
    report["forked"] = report.pop("ppid") != agent._proc.pid
    return done.code, text, report


def _both(agents: tuple[Agent, Agent], argv: list[str], cwd: Path,
          forked: bool = True) -> tuple[int, str, dict[str, object]]:
    plain, zygote = agents
    (code_a, text_a, a), (code_b, text_b, b) = (run(plain, argv, cwd), run(zygote, argv, cwd))
    assert a.pop("forked") is False
    assert b.pop("forked") is forked, text_b
    assert a == b, (argv, a, b)
    assert code_a == code_b, (text_a, text_b)
    # The same lines after the report; a traceback's last lines alike (its frames differ).
    rest_a, rest_b = text_a.splitlines()[1:], text_b.splitlines()[1:]
    assert rest_a[-1:] == rest_b[-1:], (rest_a, rest_b)
    return code_b, text_b, b


@pytest.mark.parametrize(("how", "code"), [("ok", 0), ("exit3", 3), ("raise", 1),
                                           ("signal", 128 + signal.SIGTERM), ("atexit", 0)])
def test_a_forked_c_command_is_the_process_python_c_would_be(
    agents: tuple[Agent, Agent], tmp_path: Path, how: str, code: int,
) -> None:
    got, text, report = _both(agents, [sys.executable, "-c", REPORT, how, "--flag"], tmp_path)
    assert got == code
    assert report["argv"] == ["-c", how, "--flag"] and report["path0"] == ""
    assert report["name"] == "__main__" and report["file"] is None and report["main_is_us"]
    assert report["leaked"] == [] and report["x"] == "given" and report["cwd"] == str(tmp_path)
    if how == "raise":
        assert text.splitlines()[-1] == "RuntimeError: boom"
        assert "wheelhouse" not in text and "ours" not in text
    if how == "atexit":
        assert text.splitlines()[-1] == "at exit"


def test_a_forked_script_is_the_process_python_script_would_be(
    agents: tuple[Agent, Agent], tmp_path: Path,
) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    script = scripts / "driver.py"
    script.write_text(REPORT)
    for how, code in (("ok", 0), ("exit3", 3), ("raise", 1)):
        got, _text, report = _both(agents, [sys.executable, str(script), how], tmp_path)
        assert got == code
        assert report["argv"] == [str(script), how]
        assert report["path0"] == str(scripts) and report["file"] == str(script)
        assert report["name"] == "__main__" and report["main_is_us"]
        assert report["leaked"] == []


def test_a_module_the_zygote_imported_but_the_command_would_not_find_is_not_reused(
    agents: tuple[Agent, Agent], tmp_path: Path,
) -> None:
    """A ``wh_needed.py`` beside the script comes first on its ``sys.path``: the command's own
    process imports that one, so the forked child becomes the command's own process."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "wh_needed.py").write_text("")
    script = scripts / "driver.py"
    script.write_text(REPORT)
    _code, _text, report = _both(agents, [sys.executable, str(script)], tmp_path)
    assert report["needed_from"] == "scripts"
    # In the working directory, for -c.
    _code, _text, report = _both(agents, [sys.executable, "-c", REPORT], scripts)
    assert report["needed_from"] == "scripts"


def test_other_forms_and_interpreters_run_as_their_own_processes(
    agents: tuple[Agent, Agent], tmp_path: Path,
) -> None:
    (tmp_path / "wh_report.py").write_text(REPORT)
    _both(agents, [sys.executable, "-m", "wh_report"], tmp_path, forked=False)
    _both(agents, [sys.executable, "-I", "-c", REPORT.replace(
        "import json, os, sys, wh_needed", f"import json, os, sys\nsys.path.insert(0, "
        f"{str(tmp_path / 'lib')!r})\nimport wh_needed")], tmp_path, forked=False)


def test_without_its_needed_modules_there_is_no_zygote(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "wh_needed.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", str(lib))
    agent = Agent([sys.executable], name="absent",
                  zygotes=[Zygote(sys.executable, ("-c",), ("wh_absent_module",))])
    try:
        code, _text, report = run(agent, [sys.executable, "-c", textwrap.dedent(REPORT)],
                                  tmp_path)
    finally:
        agent.close()
    assert code == 0 and report["forked"] is False


def test_a_script_that_is_a_directory_runs_as_the_interpreter_runs_it(
    agents: tuple[Agent, Agent], tmp_path: Path,
) -> None:
    """``python DIR`` runs ``DIR/__main__.py`` with DIR itself first on ``sys.path``: the
    child becomes that command's own process."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "__main__.py").write_text(REPORT)
    _code, _text, report = _both(agents, [sys.executable, str(app), "exit3"], tmp_path)
    assert report["path0"] == str(app) and report["argv"] == [str(app), "exit3"]


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(p) for p in (task / "children").read_text().split()}
    return found


def test_a_zygote_starts_with_the_first_command_it_serves(agents: tuple[Agent, Agent],
                                                          tmp_path: Path) -> None:
    """A container that never runs such a command (a probe, a build that fails first) does
    not pay for the zygote's imports: under emulation, seconds of CPU each."""
    _plain, zygote = agents
    agent_pid = zygote._proc.pid
    _both(agents, [sys.executable, "-I", "-c", REPORT.replace(
        "import json, os, sys, wh_needed", f"import json, os, sys\nsys.path.insert(0, "
        f"{str(tmp_path / 'lib')!r})\nimport wh_needed")], tmp_path, forked=False)
    assert _children(agent_pid) == set()
    _both(agents, [sys.executable, "-c", REPORT], tmp_path)
    assert len(_children(agent_pid)) == 1
