"""Engines per target (issue 18, point 4) without an engine: the ``engines`` setting and
``--engine`` parsed and checked, which engine serves which target, images loaded into an
engine that lacks them (through a fake docker client that records its calls), and an engine
that does not answer stopping the run early with exit 8."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.conftest import wheelhouse
from wheelhouse.builder.builders import Builders
from wheelhouse.builder.engine import CONTAINER_CA, ContainerOptions, Engine
from wheelhouse.builder.engines import Engines
from wheelhouse.builder.running import Container
from wheelhouse.config import load_settings
from wheelhouse.errors import ConfigError, EngineError
from wheelhouse.settings import Settings
from wheelhouse.targets import host_target, parse_target

# A docker client for two engines ("default", and whatever --host/--context names): each
# engine's images are files in $FAKE_STATE/<engine>/, every call is appended to $FAKE_LOG.
FAKE_DOCKER = r"""#!/bin/sh
echo "$*" >> "$FAKE_LOG"
engine=default
case "$1" in --host|--context) engine=$(echo "$2" | tr '/:' '__'); shift 2;; esac
mkdir -p "$FAKE_STATE/$engine"
last=$(eval echo \${$#})
file="$FAKE_STATE/$engine/$(echo "$last" | tr '/:' '__')"
case "$1" in
  info) [ "$engine" = default ] && echo x86_64 || echo aarch64;;
  image) [ -e "$file" ] && cat "$file" || { echo "No such image: $last" >&2; exit 1; };;
  save) [ -e "$file" ] && echo "$last" || exit 1;;
  load) read -r image; echo sha256:loaded > "$FAKE_STATE/$engine/$(echo "$image" | tr '/:' '__')";;
  create|start|exec|cp|rm) ;;
  *) exit 3;;
esac
"""


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path, Path]:
    program = tmp_path / "docker"
    program.write_text(FAKE_DOCKER)
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    state, log = tmp_path / "state", tmp_path / "calls.log"
    (state / "default").mkdir(parents=True)
    monkeypatch.setenv("FAKE_STATE", str(state))
    monkeypatch.setenv("FAKE_LOG", str(log))
    return str(program), state, log


def test_an_engine_is_an_address_or_a_context() -> None:
    assert Engine().command("info") == ["docker", "info"]
    assert Engine(spec="unix:///run/arm.sock").command("ps") == \
        ["docker", "--host", "unix:///run/arm.sock", "ps"]
    assert Engine(spec="ssh://arm-builder").command("ps")[1:3] == ["--host", "ssh://arm-builder"]
    assert Engine(spec="tcp://127.0.0.1:2375").command("ps")[1] == "--host"
    assert Engine(spec="arm").command("ps") == ["docker", "--context", "arm", "ps"]
    assert Engine().name == "default" and Engine(spec="arm").name == "arm"
    assert Engine(spec="unix:///x.sock").on_this_machine
    assert not Engine(spec="ssh://arm").on_this_machine


def test_engines_keys_are_checked_in_the_config(tmp_path: Path) -> None:
    cfg = tmp_path / "wheelhouse.toml"
    cfg.write_text('[engines]\naarch64 = "ssh://arm"\nmusllinux_x86_64 = "second"\n'
                   '"cp31*-manylinux_x86_64" = "unix:///x.sock"\n')
    s = load_settings(config_file=cfg, cwd=tmp_path, environ={})
    assert s.engines == {"aarch64": "ssh://arm", "musllinux_x86_64": "second",
                         "cp31*-manylinux_x86_64": "unix:///x.sock"}
    cfg.write_text('[engines]\nsparc = "ssh://arm"\n')
    with pytest.raises(ConfigError) as e:
        load_settings(config_file=cfg, cwd=tmp_path, environ={})
    assert "engines.sparc" in e.value.message and "wheelhouse targets" in (e.value.hint or "")
    with pytest.raises(ConfigError):  # a table, so a file-only setting
        load_settings(cwd=tmp_path, environ={"WHEELHOUSE_ENGINES": "aarch64=x"})


def test_the_most_specific_key_names_the_engine() -> None:
    engines = Engines("docker", {"aarch64": "ssh://arm", "musllinux_aarch64": "musl-arm",
                                 "cp312-musllinux_aarch64": "unix:///one.sock"})
    assert engines.for_target(parse_target("cp311-manylinux_aarch64")).spec == "ssh://arm"
    assert engines.for_target(parse_target("cp311-musllinux_aarch64")).spec == "musl-arm"
    assert engines.for_target(parse_target("cp312-musllinux_aarch64")).spec == \
        "unix:///one.sock"
    x86 = parse_target("cp311-manylinux_x86_64")
    assert engines.for_target(x86).is_default and not engines.named(x86)
    assert engines.setting(Engine(spec="musl-arm")) == "engines.musllinux_aarch64"
    # "default" sends a narrower key back to the default engine.
    engines = Engines("docker", {"aarch64": "ssh://arm", "cp314t-*": "default"})
    assert engines.for_target(parse_target("cp314t-manylinux_aarch64")).is_default
    assert engines.for_target(parse_target("cp314-manylinux_aarch64")).spec == "ssh://arm"


def test_a_target_named_for_an_engine_builds_there_not_on_this_machine() -> None:
    me = host_target()
    builders = Builders(Settings(engines={me.arch: "unix:///elsewhere.sock"}),
                        build_env={}, index_url=None)
    assert builders(me) is not builders.local
    assert builders(me) is builders(me)  # one ContainerBuilder per engine
    assert Builders(Settings(), build_env={}, index_url=None)(me).name == "local"


def test_an_image_only_the_default_engine_has_is_loaded_once(
    fake_docker: tuple[str, Path, Path]
) -> None:
    program, state, log = fake_docker
    (state / "default" / "img_local").write_text("sha256:abc\n")
    engines = Engines(program, {"aarch64": "unix:///arm.sock"})
    arm = engines.for_target(parse_target("cp311-manylinux_aarch64"))
    assert engines.arch(arm) == "aarch64" and engines.arch(engines.default) == "x86_64"
    assert engines.describe(parse_target("cp311-manylinux_aarch64")) == \
        "unix:///arm.sock, native"
    assert engines.describe(parse_target("cp311-manylinux_x86_64")) == "default, native"
    assert engines.ensure_image(arm, "img:local") == "sha256:loaded"
    assert engines.ensure_image(arm, "img:local") == "sha256:loaded"
    calls = log.read_text().splitlines()
    assert calls.count("save img:local") == 1
    assert calls.count("--host unix:///arm.sock load --quiet") == 1
    assert len(engines.notes) == 1
    assert engines.notes[0].startswith("loaded img:local into the engine unix:///arm.sock")


def test_an_image_no_engine_has_names_the_engine(fake_docker: tuple[str, Path, Path]) -> None:
    program, _, log = fake_docker
    engines = Engines(program, {"aarch64": "arm"})
    arm = engines.for_target(parse_target("cp311-manylinux_aarch64"))
    with pytest.raises(EngineError) as e:
        engines.ensure_image(arm, "missing:local")
    assert "'arm'" in e.value.message and "missing:local" in e.value.message
    assert "builders/bootstrap" in (e.value.hint or "")
    assert not any(" load" in c for c in log.read_text().splitlines())


def test_an_engine_that_does_not_answer_stops_the_run_early(tmp_path: Path) -> None:
    reqs = tmp_path / "r.txt"
    reqs.write_text("six==1.16.0\n")
    sock = f"unix://{tmp_path}/nothing.sock"
    res = wheelhouse("build", str(reqs), "--store", str(tmp_path / "s"), "--target",
                     "cp311-manylinux_aarch64", "--engine", f"aarch64={sock}")
    assert res.returncode == 8, res.stdout + res.stderr
    assert sock in res.stderr and "engines.aarch64" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "s").exists(), "nothing may start before the engine answers"
    res = wheelhouse("build", str(reqs), "--store", str(tmp_path / "s"), "--engine", "aarch64")
    assert res.returncode == 2 and "KEY=ENGINE" in res.stderr


def test_targets_shows_the_engine_of_each_target(tmp_path: Path) -> None:
    cfg = tmp_path / "wheelhouse.toml"
    cfg.write_text(f'[engines]\nmusllinux_aarch64 = "unix://{tmp_path}/none.sock"\n')
    res = wheelhouse("targets", "--json", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    rows = {r["target"]: r["engine"] for r in json.loads(res.stdout)}
    assert rows["cp311-musllinux_aarch64"] == f"unix://{tmp_path}/none.sock, not answering"
    assert rows["cp311-manylinux_aarch64"].startswith("default, ")


@pytest.mark.parametrize(("spec", "mounted"), [(None, True), ("unix:///x.sock", True),
                                               ("ssh://arm", False), ("arm", False)])
def test_the_ca_bundle_is_copied_where_a_mount_would_name_another_machine(
    fake_docker: tuple[str, Path, Path], tmp_path: Path, spec: str | None, mounted: bool
) -> None:
    program, _, log = fake_docker
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    options = ContainerOptions(engine=Engine(program=program, spec=spec), ca_bundle=ca)
    Container(image="img:local", options=options, label="build-x").close()
    calls = log.read_text()
    assert (f"{ca}:{CONTAINER_CA}:ro" in calls) is mounted
    assert (f"cp {ca} " in calls) is not mounted
