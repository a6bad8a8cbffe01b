"""Issue 3, end to end: one `wheelhouse build` compiles for four platforms in builder
containers (aarch64 under QEMU), and each result installs with pip from our index into a
consumer container of that platform that has no compiler, imports, and works."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename

from tests.conftest import (
    clean_env,
    consumer_images,
    emulation_ready,
    engine_ready,
    start_server,
    stop_server,
    wheelhouse,
)

pytestmark = [pytest.mark.container, pytest.mark.network, pytest.mark.slow]

TARGETS = {
    "cp311-manylinux_x86_64": "manylinux_2_",
    "cp311-musllinux_x86_64": "musllinux_1_2_",
    "cp311-manylinux_aarch64": "manylinux_2_",
    "cp311-musllinux_aarch64": "musllinux_1_2_",
}
EMULATED = {"cp311-manylinux_aarch64", "cp311-musllinux_aarch64"}
CHECK = ("import whdemo_ext, netifaces;"
         "assert whdemo_ext.fnv1a(b'wheelhouse') == whdemo_ext.fnv1a_py(b'wheelhouse');"
         "assert netifaces.interfaces(); print('ok', whdemo_ext.fnv1a(b'wheelhouse'))")


@pytest.fixture(scope="module")
def built_four(images_config: Path, sdists: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> dict[str, object]:
    if emulation_ready():
        pytest.skip(emulation_ready() or "")
    work = tmp_path_factory.mktemp("containers")
    reqs = work / "requirements.txt"
    reqs.write_text(f"--find-links {sdists}\nwhdemo-ext==1.0.0\nnetifaces==0.11.0\n")
    store = work / "store"
    args = ["build", str(reqs), "--store", str(store), "--config", str(images_config),
            "--jobs", "4"]
    for target in TARGETS:
        args += ["--target", target]
    first = wheelhouse(*args, timeout=3000)
    return {"store": store, "args": args, "first": first, "config": images_config}


def listing(store: Path) -> list[dict[str, object]]:
    out = wheelhouse("list", "--json", "--store", str(store))
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


@pytest.mark.emulation
def test_a_b_each_target_builds_repairs_and_installs_without_a_compiler(
    built_four: dict[str, object], tmp_path: Path
) -> None:
    first = built_four["first"]
    assert isinstance(first, subprocess.CompletedProcess)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert "under QEMU emulation" in first.stdout  # emulated builds say so
    store = built_four["store"]
    assert isinstance(store, Path)
    files = listing(store)
    server = start_server(store, tmp_path / "server.log")
    try:
        consumers = consumer_images(built_four["config"])  # type: ignore[arg-type]
        for target, tag_prefix in TARGETS.items():
            arch = target.rsplit("_", 1)[1]
            platform = target.split("-", 1)[1]
            for project in ("whdemo-ext", "netifaces"):
                wheels = [f for f in files if f["project"] == project
                          and any(t.platform.startswith(tag_prefix)
                                  and t.platform.endswith("_" + arch)
                                  for t in parse_wheel_filename(str(f["filename"]))[3])]
                assert wheels, f"no {tag_prefix}*_{arch} wheel of {project}"
                assert wheels[0]["origin"] == "built"
                prov = wheels[0]["provenance"]
                assert isinstance(prov, dict) and "@sha256:" in prov["builder"]
                if project == "whdemo-ext":
                    assert any("libwhdemocore" in g for g in prov["grafted"]), prov
                # musl's libc is the system's, never a copy in the wheel (on Alpine a second
                # libc would be loaded): auditwheel must see the Alpine soname.
                assert not any("/libc" in g.split(".libs", 1)[-1] for g in prov["grafted"]), prov
            image = consumers[platform]
            script = (
                "! command -v gcc && ! command -v cc && "
                "python3 -m pip install --no-cache-dir --only-binary :all: "
                f"--index-url {server.url}/simple/ whdemo-ext==1.0.0 netifaces==0.11.0 && "
                f"python3 -c \"{CHECK}\""
            )
            run = subprocess.run(
                ["docker", "run", "--rm", "--pull=never", "--network", "host", image,
                 "sh", "-c", script],
                capture_output=True, text=True, timeout=900, check=False,
                env=clean_env(),
            )
            assert run.returncode == 0, f"{target}: {run.stdout[-3000:]}{run.stderr[-3000:]}"
            assert "ok " in run.stdout
    finally:
        stop_server(server)


def test_c_second_run_starts_no_container(built_four: dict[str, object]) -> None:
    args = built_four["args"]
    assert isinstance(args, list)
    before = subprocess.run(["docker", "ps", "-aq", "--filter", "label=org.wheelhouse.builder"],
                            capture_output=True, text=True, check=True).stdout
    # With the engine made unreachable, any container start would fail the run.
    cfg = Path(str(built_four["config"]))
    no_engine = cfg.parent / "no-engine.toml"
    no_engine.write_text(cfg.read_text().replace(
        "[tool.wheelhouse.images]", '[tool.wheelhouse]\nengine = "/nonexistent/docker"\n'
        "[tool.wheelhouse.images]", 1))
    args = [a if a != str(cfg) else str(no_engine) for a in args]
    again = wheelhouse(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("nothing to do") == len(TARGETS)
    after = subprocess.run(["docker", "ps", "-aq", "--filter", "label=org.wheelhouse.builder"],
                           capture_output=True, text=True, check=True).stdout
    assert before == after == ""


def test_d_unknown_target_lists_valid_ones(tmp_path: Path) -> None:
    reqs = tmp_path / "r.txt"
    reqs.write_text("six==1.16.0\n")
    res = wheelhouse("build", str(reqs), "--target", "cp311-manylinux_sparc", "--store",
                     str(tmp_path / "s"))
    assert res.returncode == 2
    assert "x86_64" in res.stderr and "aarch64" in res.stderr and "Traceback" not in res.stderr


def test_d_no_engine_names_the_fix(sdists: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "wh.toml"
    cfg.write_text('engine = "/nonexistent/docker"\n[images]\n'
                   'musllinux_x86_64 = "wheelhouse/builder-musllinux_x86_64:local"\n')
    reqs = tmp_path / "r.txt"
    reqs.write_text(f"--find-links {sdists}\nwhdemo-ext==1.0.0\n")
    res = wheelhouse("build", str(reqs), "--target", "cp311-musllinux_x86_64", "--config",
                     str(cfg), "--store", str(tmp_path / "s"))
    assert res.returncode != 0
    assert "no container engine" in res.stdout + res.stderr
    assert "docker.io" in res.stdout + res.stderr
    assert "Traceback" not in res.stderr


def test_d_emulation_not_registered_names_the_fix(sdists: Path, tmp_path: Path) -> None:
    if not Path("/proc/sys/fs/binfmt_misc").exists() or Path(
            "/proc/sys/fs/binfmt_misc/qemu-s390x").exists():
        pytest.skip("needs a machine where s390x emulation is not registered")
    if engine_ready():
        pytest.skip(engine_ready() or "")
    cfg = tmp_path / "wh.toml"
    cfg.write_text('[images]\nmanylinux_s390x = "wheelhouse/builder-manylinux_x86_64:local"\n')
    reqs = tmp_path / "r.txt"
    reqs.write_text(f"--find-links {sdists}\nwhdemo-ext==1.0.0\n")
    res = wheelhouse("build", str(reqs), "--target", "cp311-manylinux_s390x", "--config",
                     str(cfg), "--store", str(tmp_path / "s"))
    assert res.returncode != 0
    assert "binfmt_misc" in res.stdout + res.stderr
    assert "qemu-user-static" in res.stdout + res.stderr


def test_d_hung_build_is_stopped_and_other_targets_publish(
    images_config: Path, tmp_path: Path
) -> None:
    from tests.conftest import build_sdist

    links = tmp_path / "links"
    links.mkdir()
    build_sdist("whhang", links)
    reqs = tmp_path / "r.txt"
    reqs.write_text(f"--find-links {links}\nwhhang==1.0.0\n")
    cfg = tmp_path / "wh.toml"
    cfg.write_text(images_config.read_text().replace("[tool.wheelhouse.images]",
                                                     "[tool.wheelhouse]\nbuild-timeout = 45\n"
                                                     "[tool.wheelhouse.images]", 1))
    store = tmp_path / "store"
    res = wheelhouse("build", str(reqs), "--store", str(store), "--config", str(cfg),
                     "--target", "cp311-manylinux_x86_64", "--target", "cp311-musllinux_x86_64",
                     timeout=900)
    assert res.returncode == 6, res.stdout + res.stderr
    assert "did not finish within 45 s" in res.stdout
    names = [f["filename"] for f in listing(store)]
    assert any(str(n).startswith("whhang-1.0.0") and "manylinux" in str(n) for n in names)
    assert not any("musllinux" in str(n) for n in names if str(n).startswith("whhang"))
    failures = wheelhouse("list", "--failures", "--store", str(store))
    assert "cp311-musllinux_x86_64" in failures.stdout
    log = next(line.split("Log: ")[1] for line in res.stdout.splitlines() if "Log: " in line)
    assert "did not finish within 45 s" in Path(log).read_text()
    left = subprocess.run(["docker", "ps", "-aq", "--filter", "label=org.wheelhouse.builder"],
                          capture_output=True, text=True, check=True).stdout
    assert left == "", "build containers must always be removed"


@pytest.mark.emulation
def test_system_packages_go_into_a_derived_image_and_builds_stay_offline(
    images_config: Path, tmp_path: Path
) -> None:
    """Issue 8: a C extension that links libffi, named as a system package, builds on all four
    platforms. libffi-dev is installed once into an image derived from each builder (with the
    network); the build itself runs with --network none; libffi is grafted and the wheel
    keeps the target's tag (the default policy); it is checked in the platform's consumer
    container, then installs there from our index with no compiler and calls into libffi."""
    from tests.conftest import build_sdist

    if emulation_ready():
        pytest.skip(emulation_ready() or "")
    links = tmp_path / "links"
    links.mkdir()
    build_sdist("whffi", links)
    cfg = tmp_path / "wh.toml"
    # Per package manager, as a user of the pypa images writes it (dnf on manylinux_2_28,
    # apk on musllinux); the stand-ins use apt-get and an apk shim.
    cfg.write_text(images_config.read_text() + '\n[tool.wheelhouse.packages.whffi]\n'
                   'system-packages = { apk = ["libffi-dev"], apt-get = ["libffi-dev"], '
                   'dnf = ["libffi-devel"], yum = ["libffi-devel"] }\n')
    reqs = tmp_path / "r.txt"
    reqs.write_text(f"--find-links {links}\nwhffi==1.0.0\n")
    store = tmp_path / "store"
    args = ["build", str(reqs), "--store", str(store), "--config", str(cfg), "--jobs", "4"]
    for target in TARGETS:
        args += ["--target", target]
    res = wheelhouse(*args, timeout=3000)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    wheels = [f for f in listing(store) if f["project"] == "whffi"]
    assert len(wheels) == len(TARGETS), [f["filename"] for f in wheels]
    for f in wheels:
        prov = f["provenance"]
        assert isinstance(prov, dict) and prov["checked"] is True
        assert any("libffi" in g for g in prov["grafted"]), prov["grafted"]
        assert not any("/libc" in g.split(".libs", 1)[-1] for g in prov["grafted"]), prov
        text = (Path(str(store)) / str(prov["log"])).read_text()
        assert "deriving wheelhouse/derived-" in text or "using the derived image" in text
    server = start_server(store, tmp_path / "server.log")
    try:
        consumers = consumer_images(images_config)
        for target in TARGETS:
            script = ("! command -v gcc && python3 -m pip install --no-cache-dir --only-binary "
                      f":all: --index-url {server.url}/simple/ whffi==1.0.0 && "
                      "python3 -c 'import whffi; assert whffi.add(40, 2) == 42; print(\"ok\")'")
            run = subprocess.run(
                ["docker", "run", "--rm", "--pull=never", "--network", "host",
                 consumers[target.split("-", 1)[1]], "sh", "-c", script],
                capture_output=True, text=True, timeout=900, check=False, env=clean_env())
            assert run.returncode == 0 and "ok" in run.stdout, f"{target}: {run.stdout[-2000:]}"
    finally:
        stop_server(server)
    again = wheelhouse(*args)
    assert again.returncode == 0 and again.stdout.count("nothing to do") == len(TARGETS)


def _builder_containers() -> list[str]:
    return subprocess.run(["docker", "ps", "-aq", "--filter", "label=org.wheelhouse.builder"],
                          capture_output=True, text=True, check=True).stdout.split()


def test_killed_builds_leave_no_container(images_config: Path, tmp_path: Path) -> None:
    """SIGTERM (a cancelled CI job) unwinds and removes the container; after SIGKILL, which
    nothing can catch, the next run removes the container the dead process left running."""
    import signal
    import sys
    import time

    from tests.conftest import build_sdist

    links = tmp_path / "links"
    links.mkdir()
    build_sdist("whhang", links)
    reqs = tmp_path / "r.txt"
    reqs.write_text(f"--find-links {links}\nwhhang==1.0.0\n")
    before = set(_builder_containers())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        proc = subprocess.Popen(
            [sys.executable, "-m", "wheelhouse", "build", str(reqs), "--store",
             str(tmp_path / f"store-{sig.name}"), "--config", str(images_config),
             "--target", "cp311-musllinux_x86_64"],
            env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while not set(_builder_containers()) - before and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(3)  # inside the build, which hangs on musl
        started = set(_builder_containers()) - before
        assert started, "the build started no container"
        proc.send_signal(sig)
        proc.wait(timeout=60)
        if sig == signal.SIGTERM:
            assert proc.returncode == 130
            assert not set(_builder_containers()) & started, "SIGTERM left the container"
        else:
            assert set(_builder_containers()) & started, "SIGKILL cannot clean up"
            # Any later run that starts a container reaps the dead process's.
            from wheelhouse.builder.engine import Engine, prune_stopped

            prune_stopped(Engine())
            assert not set(_builder_containers()) & started, "the orphan was not reaped"


def test_the_configured_images_say_which_policy_they_make(images_config: Path) -> None:
    """What ``--target cp311-manylinux_x86_64`` defaults to comes from the image's label, asked
    of the engine for every configured image at once; an absent image is left out."""
    import tomllib

    from wheelhouse.builder.engine import Engine, image_policies

    images = tomllib.loads(images_config.read_text())["tool"]["wheelhouse"]["images"]
    got = image_policies(Engine(program="docker"),
                         {**images, "manylinux_i686": "wheelhouse/no-such-image:none"})
    assert set(got) == set(images)
    for platform, (major, _minor) in got.items():
        assert major == (2 if platform.startswith("manylinux") else 1), (platform, got)
