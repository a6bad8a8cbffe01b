"""Issue 2 acceptance d: bad input ends in one clear message and the right exit status, and
nothing already published is lost or altered."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.conftest import wheelhouse

pytestmark = [pytest.mark.network, pytest.mark.slow]


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory, sdists: Path) -> Path:
    """A store that already holds published files, to check errors leave them alone."""
    work = tmp_path_factory.mktemp("errors")
    reqs = work / "requirements.txt"
    reqs.write_text(f"--find-links {sdists}\nwhdemo-ext==1.0.0\nsix==1.16.0\n")
    done = wheelhouse("build", str(reqs), "--store", str(work / "store"))
    assert done.returncode == 0, done.stdout + done.stderr
    return work / "store"


def snapshot(store: Path) -> dict[str, str]:
    out = wheelhouse("list", "--json", "--store", str(store))
    assert out.returncode == 0, out.stderr
    files = {f["filename"]: f["sha256"] for f in json.loads(out.stdout)}
    on_disk = {p.name for p in (store / "files").rglob("*") if p.is_file()}
    assert set(files) <= on_disk
    return files


def one_message(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert stderr.count("error:") == 1, stderr


def test_malformed_line_names_file_and_line(populated: Path, tmp_path: Path) -> None:
    before = snapshot(populated)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("six==1.16.0\nrequests=>2\n")
    res = wheelhouse("build", str(reqs), "--store", str(populated))
    assert res.returncode == 2
    one_message(res.stderr)
    assert f"{reqs}:2" in res.stderr and "hint:" in res.stderr
    assert snapshot(populated) == before


@pytest.mark.parametrize("line", ["-e .", "git+https://example.invalid/x.git", "./pkg.tar.gz",
                                  "pkg @ https://example.invalid/pkg-1.0.tar.gz"])
def test_unsupported_lines_are_refused_not_skipped(line: str, tmp_path: Path) -> None:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"six==1.16.0\n{line}\n")
    res = wheelhouse("build", str(reqs), "--store", str(tmp_path / "store"), "--dry-run")
    assert res.returncode == 2, res.stdout + res.stderr
    one_message(res.stderr)
    assert f"{reqs}:2" in res.stderr


def test_pin_that_does_not_exist(populated: Path, tmp_path: Path) -> None:
    before = snapshot(populated)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("six==1.16.0\nsix-but-not==0.0.1\nidna==99.99.99\n")
    res = wheelhouse("build", str(reqs), "--store", str(populated))
    assert res.returncode == 3, res.stdout + res.stderr
    one_message(res.stderr)
    assert "idna==99.99.99" in res.stdout and f"{reqs}:3" in res.stdout
    assert snapshot(populated) == before


def test_sdist_that_fails_to_compile(populated: Path, sdists: Path, tmp_path: Path) -> None:
    before = snapshot(populated)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"--find-links {sdists}\nwhbroken==1.0.0\nidna==3.10\n")
    res = wheelhouse("build", str(reqs), "--store", str(populated))
    assert res.returncode == 6, res.stdout + res.stderr
    one_message(res.stderr)
    assert "--retry-failed" in res.stderr
    log = next(line.split("Log: ")[1] for line in res.stdout.splitlines() if "Log: " in line)
    assert "this is not C" in Path(log).read_text() or "error" in Path(log).read_text()
    after = snapshot(populated)
    assert {k: v for k, v in after.items() if k in before} == before
    assert any(name.startswith("idna-3.10") for name in after), "other pins still publish"
    # Not retried with unchanged inputs; retried on request.
    again = wheelhouse("build", str(reqs), "--store", str(populated))
    assert again.returncode == 6 and "not retried" in again.stdout
    listed = wheelhouse("list", "--failures", "--store", str(populated))
    assert "whbroken==1.0.0" in listed.stdout


def test_unwritable_store(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("six==1.16.0\n")
    res = wheelhouse("build", str(reqs), "--store", str(blocker / "store"))
    assert res.returncode == 5
    one_message(res.stderr)
    assert str(blocker / "store") in res.stderr and "--store" in res.stderr


def test_port_in_use(populated: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = wheelhouse("serve", "--store", str(populated), "--port", str(port), timeout=30)
    assert res.returncode == 7, res.stdout + res.stderr
    one_message(res.stderr)
    assert str(port) in res.stderr and "--port" in res.stderr


def test_missing_requirements_file(tmp_path: Path) -> None:
    res = wheelhouse("build", str(tmp_path / "nope.txt"), "--store", str(tmp_path / "s"))
    assert res.returncode == 2
    one_message(res.stderr)
    assert "nope.txt" in res.stderr


def test_unknown_config_key_suggests(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.wheelhouse]\nindex-ulr = 'x'\n")
    reqs = tmp_path / "r.txt"
    reqs.write_text("six==1.16.0\n")
    res = wheelhouse("build", str(reqs), "--dry-run", cwd=tmp_path)
    assert res.returncode == 2
    one_message(res.stderr)
    assert "index-url" in res.stderr
