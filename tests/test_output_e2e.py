"""Issue 10, output a person reads (acceptance a, the reports; g, a terminal and a pipe): real
builds on this machine's own platform, run as a user runs them."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import clean_env, wheelhouse
from wheelhouse.targets import Target, host_target, known_targets

pytestmark = [pytest.mark.network, pytest.mark.slow]

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def other_python(host: Target) -> Target:
    """A second target this machine needs no container for: it only fetches pure wheels."""
    return next(t for t in known_targets()
                if t.family == host.family and t.arch == host.arch and t.python != host.python)


def no_control_codes(text: str) -> None:
    assert not CONTROL.search(text), repr(CONTROL.search(text))


def test_a_reports_list_every_pin_on_every_target_and_a_rerun_is_cached(
        sdists: Path, tmp_path: Path) -> None:
    host = host_target()
    other = other_python(host)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"--find-links {sdists}\nidna==3.10\n"
                    f'whdemo-ext==1.0.0; python_version == "{host.version_string}"\n')
    summary = tmp_path / "step-summary.md"
    summary.write_text("# earlier steps\n")
    env = clean_env(GITHUB_STEP_SUMMARY=str(summary), CI="true")
    store = tmp_path / "store"

    def build(tag: str) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
        out = tmp_path / tag
        res = wheelhouse("build", str(reqs), "--store", str(store), "--target", str(host),
                         "--target", str(other), "--report", str(out / "report.json"),
                         "--report", str(out / "junit.xml"), "--report", str(out / "report.md"),
                         env=env)
        assert res.returncode == 0, res.stdout + res.stderr
        # Acceptance g, the other half: CI output is plain lines, no control codes.
        no_control_codes(res.stdout.replace("\n", "") + res.stderr.replace("\n", ""))
        return res, json.loads((out / "report.json").read_text())

    _, doc = build("first")
    results = doc["results"]
    assert isinstance(results, list)
    by_pair = {(r["pin"], r["target"]): r for r in results}
    assert set(by_pair) == {("idna==3.10", str(host)), ("whdemo-ext==1.0.0", str(host)),
                            ("idna==3.10", str(other))}
    built = by_pair[("whdemo-ext==1.0.0", str(host))]
    assert built["status"] == "built" and built["origin"] == "built" and built["seconds"] > 0
    assert {by_pair[("idna==3.10", t)]["status"] for t in (str(host), str(other))} <= {
        "fetched", "cached"}
    for r in results:
        assert re.fullmatch(r"[0-9a-f]{64}", r["sha256"]) and r["file"], r
        assert (store / "files" / r["project"] / r["file"]).is_file()
    junit = ET.parse(tmp_path / "first" / "junit.xml").getroot()
    assert junit.tag == "testsuites" and junit.get("failures") == "0"
    assert [s.get("name") for s in junit.iter("testsuite")] == [str(host), str(other)]
    assert len(list(junit.iter("testcase"))) == 3
    step_summary = summary.read_text()
    assert step_summary.startswith("# earlier steps\n")
    assert f"| `{host}` | " in step_summary and f"| `{other}` | " in step_summary
    assert (tmp_path / "first" / "report.md").read_text() in step_summary

    again, doc = build("second")
    statuses = {(r["pin"], r["target"]): r["status"] for r in doc["results"]}  # type: ignore[attr-defined]
    assert statuses == {pair: "cached" for pair in by_pair}
    assert again.stdout.count("nothing to do") == 2
    assert summary.read_text().count("### wheelhouse build") == 2


def run_in_terminal(args: list[str], *, columns: int, env: dict[str, str],
                    timeout: float = 600) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its stdin, stdout and stderr, as a person's
    shell would; returns its exit status and everything it wrote to the terminal."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, env=env,
                            close_fds=True)
    os.close(follower)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    return proc.returncode, out.decode("utf-8", errors="replace")


def test_g_a_terminal_shows_progress_and_a_table_a_pipe_plain_lines(
        sdists: Path, tmp_path: Path) -> None:
    host = host_target()
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"--find-links {sdists}\nidna==3.10\nwhdemo-ext==1.0.0\nwhbroken==1.0.0\n")
    env = {k: v for k, v in clean_env(TERM="xterm-256color").items()
           if k not in ("CI", "NO_COLOR", "COLUMNS", "LINES")}
    status, screen = run_in_terminal(
        [sys.executable, "-m", "wheelhouse", "build", str(reqs), "--store",
         str(tmp_path / "tty-store")], columns=100, env=env)
    assert status == 6, screen
    assert "\x1b[" in screen, "a terminal gets a footer redrawn in place"
    text = ANSI.sub("", screen).replace("\r", "")
    # Progress: what builds, for which target, for how long, and how many are left.
    assert re.search(rf"building whdemo-ext==1\.0\.0 for {re.escape(str(host))} · \d+ s · ",
                     text), text
    assert re.search(r"\d+ of 3 steps done, \d+ left · \d+ s", text), text
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if re.match(r"target\s+cached\s+fetched", line))
    assert lines[head].split() == ["target", "cached", "fetched", "built", "failed"]
    assert lines[head + 1].split() == [str(host), "0", "1", "1", "1"]
    table = lines[head:next(i for i, line in enumerate(lines) if line.startswith("error: "))]
    assert "1 pin failed:" in table
    log = next(line.split("log: ", 1)[1] for line in table if line.startswith("      log: "))
    assert Path(log).is_file() and "whbroken" in log
    assert all(len(line) <= 100 for line in table if "log: " not in line), table
    assert any(line.startswith("Finished with failures in ") for line in table)

    piped = wheelhouse("build", str(reqs), "--store", str(tmp_path / "pipe-store"),
                       env={**env, "TERM": "xterm-256color"})
    assert piped.returncode == 6, piped.stdout + piped.stderr
    no_control_codes(piped.stdout.replace("\n", "") + piped.stderr.replace("\n", ""))
    assert "  built    whdemo_ext-1.0.0" in piped.stdout and "  fetched  idna-3.10" in piped.stdout
    assert "Log: " in piped.stdout and "1 pin failed:" in piped.stdout
