"""Issue 15, without an engine: every CPython the pypa images carry is a target (cp39..cp315,
free-threaded cp314t and cp315t), selectors expand over them, an image's interpreter is used
only when it is the target's own build, and a target's full version is real (a uv-written
lock's requires-python = ">=3.11.7" is accepted for cp311)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from packaging.tags import Tag

from tests.conftest import clean_env
from wheelhouse.builder.interpreters import _parse, choose, parse_probe, probe_script
from wheelhouse.builder.repair import check_fits
from wheelhouse.errors import BuildFailed, EngineError, TargetError
from wheelhouse.inputs import read_inputs
from wheelhouse.selectors import select_targets
from wheelhouse.targets import known_targets, parse_target


def test_every_python_of_the_pypa_images_is_a_target() -> None:
    known = {t.identifier for t in known_targets()}
    for python in ("cp39", "cp310", "cp311", "cp312", "cp313", "cp313t", "cp314", "cp314t",
                   "cp315", "cp315t"):
        for platform in ("manylinux_x86_64", "musllinux_x86_64", "manylinux_aarch64",
                         "musllinux_aarch64"):
            assert f"{python}-{platform}" in known
    t = parse_target("cp314t-manylinux_aarch64")
    assert (t.python, t.free_threaded, t.abi_tag, t.python_dir) == (
        (3, 14), True, "cp314t", "cp314-cp314t")
    assert t.python_candidates[0] == "/opt/python/cp314-cp314t/bin/python"
    assert "python3.14t" in t.python_candidates


def test_a_python_nobody_ships_is_refused_with_the_list() -> None:
    with pytest.raises(TargetError) as e:
        parse_target("cp312t-manylinux_x86_64")
    assert e.value.hint is not None and "cp313t, cp314t, cp315t" in e.value.hint
    with pytest.raises(TargetError) as e:
        parse_target("cp316-manylinux_x86_64")
    assert e.value.hint is not None and "cp315t" in e.value.hint


def test_abi3_serves_later_gil_builds_never_free_threaded_ones() -> None:
    abi3 = frozenset({Tag("cp311", "abi3", "manylinux_2_17_x86_64")})
    for python in ("cp311", "cp312", "cp313", "cp314", "cp315"):
        assert parse_target(f"{python}-manylinux_x86_64").tag_rank(abi3) is not None, python
    for python in ("cp39", "cp314t", "cp315t"):
        assert parse_target(f"{python}-manylinux_x86_64").tag_rank(abi3) is None, python
    abi3t = frozenset({Tag("cp315", "abi3t", "manylinux_2_17_x86_64")})
    assert parse_target("cp315t-manylinux_x86_64").tag_rank(abi3t) is not None
    own = frozenset({Tag("cp314", "cp314t", "manylinux_2_17_x86_64")})
    assert parse_target("cp314t-manylinux_x86_64").tag_rank(own) is not None
    assert parse_target("cp314-manylinux_x86_64").tag_rank(own) is None


def test_selectors_expand_like_cibuildwheels() -> None:
    chosen = select_targets(["cp31*-musllinux_*"], skip=["*t-*", "cp310-*", "cp312-*"])
    assert chosen == [f"cp3{m}-musllinux_{a}" for m in (11, 13, 14, 15)
                      for a in ("x86_64", "aarch64")]
    assert select_targets(["cp311-manylinux_2_36_x86_64"]) == ["cp311-manylinux_2_36_x86_64"]
    with pytest.raises(TargetError, match="matches no known target") as e:
        select_targets(["cp2*-manylinux_*"])
    assert e.value.hint is not None and "closest" in e.value.hint


def _probe(*pythons: tuple[str, str, bool], auditwheel: str = "/usr/local/bin/auditwheel"
           ) -> str:
    lines = [f"{path}\t" + json.dumps({"version": v, "free_threaded": ft, "ext_suffix": ""})
             for path, v, ft in pythons]
    return "\n".join([*lines, f"auditwheel\t{auditwheel}"])


def test_only_the_targets_own_interpreter_is_used() -> None:
    target = parse_target("cp314t-musllinux_x86_64")
    out = _probe(("/opt/python/cp314-cp314t/bin/python", "3.14.10", True))
    found = choose(target, "img", out)
    assert found.interpreter.version == "3.14.10"
    assert found.auditwheel == ("/usr/local/bin/auditwheel",)
    # An image whose only 3.14 has the GIL, and a 3.11 elsewhere: no fallback, exit 8.
    out = _probe(("/usr/local/bin/python3.14", "3.14.10", False),
                 ("/usr/local/bin/python3.11", "3.11.2", False), auditwheel="")
    with pytest.raises(EngineError) as e:
        choose(target, "the-image:tag", out)
    assert e.value.exit_code == 8
    for said in ("the-image:tag", "CPython 3.14 (free-threaded)",
                 "/opt/python/cp314-cp314t/bin/python", "python3.14t", "3.11.2"):
        assert said in e.value.message
    # Without auditwheel on PATH, the target's interpreter runs it.
    found = choose(parse_target("cp311-musllinux_x86_64"), "img",
                   _probe(("/usr/local/bin/python3.11", "3.11.2", False), auditwheel=""))
    assert found.auditwheel == ("/usr/local/bin/python3.11", "-m", "auditwheel")
    assert parse_probe("garbage\n/x\t{not json\nauditwheel\t\n") == ([], None)


def test_the_probe_names_the_interpreter_auditwheel_runs_with(tmp_path: Path) -> None:
    """auditwheel's script names its interpreter on its ``#!`` line (the pypa images: the
    tools environment's Python): show and repair then share one process of it. A wrapper
    that is not a Python named by its path (``#!/bin/sh``, ``env``) runs as before."""
    target = parse_target("cp311-manylinux_x86_64")
    py = ("/opt/python/cp311-cp311/bin/python", "3.11.2", False)
    tools = "/opt/_internal/tools/bin/"
    for first, expected in ((f"#!{tools}python", f"{tools}python"),
                            (f"#!{tools}python3.12", f"{tools}python3.12"),
                            ("#!/bin/sh", None), ("#!/usr/bin/env python3", None),
                            ("#!/usr/bin/python3 -E", None), ("\x7fELF\x02", None), ("", None)):
        found = choose(target, "img",
                       _probe(py, auditwheel=f"/usr/local/bin/auditwheel\t{first}"))
        assert found.auditwheel == ("/usr/local/bin/auditwheel",)
        assert found.auditwheel_python == expected, first
    # With no auditwheel on PATH, the target's interpreter runs it (-m) and both commands.
    found = choose(target, "img", _probe(py, auditwheel=""))
    assert found.auditwheel_python == "/opt/python/cp311-cp311/bin/python"
    # The probe itself, run by sh with a script of pip's kind first on PATH.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "auditwheel"
    script.write_text("#!/some/venv/bin/python3\r\nimport sys\n")
    script.chmod(0o755)
    out = subprocess.run(["/bin/sh", "-c", probe_script(["no-such-python"])], capture_output=True,
                         text=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, check=True).stdout
    assert out == f"auditwheel\t{script}\t#!/some/venv/bin/python3\n"
    assert _parse_auditwheel_python(out) == "/some/venv/bin/python3"
    out = subprocess.run(["/bin/sh", "-c", probe_script(["no-such-python"])], capture_output=True,
                         text=True, env={"PATH": "/nonexistent"}, check=False).stdout
    assert out == "auditwheel\t\n"


def _parse_auditwheel_python(output: str) -> str | None:
    return _parse(output)[2]


def test_a_wheel_of_another_interpreter_is_not_blamed_on_libc(tmp_path: Path) -> None:
    wheel = tmp_path / "crcmod-1.7-cp311-cp311-manylinux1_x86_64.whl"
    with pytest.raises(BuildFailed, match="built by another interpreter"):
        check_fits(wheel, parse_target("cp313-manylinux_x86_64"))
    newer = tmp_path / "crcmod-1.7-cp313-cp313-manylinux_2_36_x86_64.whl"
    with pytest.raises(BuildFailed, match="newer libc"):
        check_fits(newer, parse_target("cp313-manylinux_x86_64"))


def test_full_version_is_used_where_known() -> None:
    from dataclasses import replace

    t = parse_target("cp311-manylinux_x86_64")
    assert t.admits(">=3.11.7")  # some 3.11 satisfies it, none was asked
    assert not t.admits(">=3.12")
    known = replace(t, full_version="3.11.2")
    assert known == t  # the full version is not part of the target's identity
    assert not known.admits(">=3.11.7")
    assert known.marker_environment()["python_full_version"] == "3.11.2"


@pytest.mark.network
def test_a_uv_written_pylock_with_the_interpreters_full_version_is_accepted(
        tmp_path: Path) -> None:
    import shutil

    uv = shutil.which("uv") or str(Path(__import__("sys").executable).parent / "uv")
    (tmp_path / "req.in").write_text("six==1.17.0\n")
    lock = tmp_path / "pylock.toml"
    done = subprocess.run(
        [uv, "pip", "compile", "--python-version", "3.11.7", "--format", "pylock.toml",
         str(tmp_path / "req.in"), "-o", str(lock), "-q", "--no-cache"],
        capture_output=True, text=True, env=clean_env(), timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert 'requires-python = ">=3.11.7"' in lock.read_text()
    inputs = read_inputs([lock])
    target = parse_target("cp311-manylinux_x86_64")
    pins = inputs.for_target(target)
    assert [str(r.requirement) for r in pins.requirements][-1].startswith("six==1.17.0")
    notes = inputs.assumptions([target])
    assert len(notes) == 1 and "taken as met by 3.11.7" in notes[0]
    # A target whose image said 3.11.2 is not installable from that lock.
    from dataclasses import replace

    from wheelhouse.errors import RequirementsError

    with pytest.raises(RequirementsError, match="cannot be installed"):
        inputs.for_target(replace(target, full_version="3.11.2"))


def test_an_abi3_wheel_is_stored_once_and_kept_for_later_pythons_never_free_threaded(
        tmp_path: Path) -> None:
    from tests.conftest import wheelhouse
    from tests.distributions import write_wheel

    links = tmp_path / "links"
    links.mkdir()
    write_wheel(links, "whabi", "1.0", tag="cp311-abi3-manylinux_2_17_x86_64")
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"--no-index\n--find-links {links}\nwhabi==1.0\n")
    store = tmp_path / "store"
    targets = ["cp312-manylinux_x86_64", "cp313-manylinux_x86_64", "cp314-manylinux_x86_64",
               "cp314t-manylinux_x86_64"]
    args = [a for t in targets for a in ("--target", t)]
    done = wheelhouse("build", str(reqs), "--store", str(store), *args, "--jobs", "4",
                      "--report", str(tmp_path / "r.json"), env=clean_env(CI="true"))
    doc = json.loads((tmp_path / "r.json").read_text())
    by_target = {r["target"]: r for r in doc["results"]}
    shared = [by_target[t] for t in targets[:3]]
    assert {r["file"] for r in shared} == {"whabi-1.0-cp311-abi3-manylinux_2_17_x86_64.whl"}
    # One target fetched it; the others found it stored.
    assert sorted(r["status"] for r in shared) == ["cached", "cached", "fetched"], shared
    assert len(list((store / "files" / "whabi").glob("*.whl"))) == 1
    # A free-threaded build never takes abi3: nothing fits it, and the run says so.
    assert by_target["cp314t-manylinux_x86_64"]["status"] in ("missing", "failed")
    assert done.returncode != 0


def test_an_extension_that_links_no_libc_is_repaired_with_the_images_policy(
        tmp_path: Path) -> None:
    """CPython 3.9's extensions on glibc may link no libc at all; ``--plat auto`` then cannot
    tell the family, so the repair is run again with the image's ``$AUDITWHEEL_PLAT``."""
    from wheelhouse.builder.repair import NO_LIBC, repair_command

    assert repair_command(["auditwheel"], "/w/a.whl", "/out", ())[:4] == [
        "auditwheel", "repair", "--plat", "auto"]
    cmd = repair_command(["auditwheel"], "/w/it's.whl", "/out", ["libx.so"], image_plat=True)
    assert cmd[:2] == ["sh", "-c"]
    fake = tmp_path / "auditwheel"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do echo "[$a]"; done\n')
    fake.chmod(0o755)
    script = cmd[2].replace("exec auditwheel", f"exec {fake}")
    env = {"PATH": "/usr/bin:/bin", "AUDITWHEEL_PLAT": "manylinux_2_31_x86_64"}
    done = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["[repair]", "[--plat]", "[manylinux_2_31_x86_64]", "[-w]",
                                   "[/out]", "[--exclude]", "[libx.so]", "[/w/it's.whl]"]
    missing = subprocess.run(["sh", "-c", script], env={"PATH": "/usr/bin:/bin"},
                             capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "sets no AUDITWHEEL_PLAT" in missing.stderr
    assert "libc" in NO_LIBC


def test_a_failure_after_a_known_fix_is_explained_by_the_last_attempt() -> None:
    from wheelhouse.builder.causes import explain
    from wheelhouse.execute.building import last_attempt

    log = ("$ python -m build\nError: pg_config executable not found.\n"
           "# wheelhouse: the build failed: exit 1\n\n"
           "# wheelhouse: retrying with the known fix for pg-config: system packages libpq-dev\n"
           "$ python -m build\nok\n$ check psycopg2-2.8.6-cp39-cp39-x.whl\n"
           "loading the extension psycopg2._psycopg failed: SystemError: initialization of "
           "_psycopg raised unreported exception\n")
    assert explain(log, project="psycopg2", target="t").lines == (
        "Error: pg_config executable not found.",)
    assert "pg_config" not in " ".join(
        explain(last_attempt(log), project="psycopg2", target="t").lines)
    assert last_attempt("no retry here\n") == "no retry here\n"
