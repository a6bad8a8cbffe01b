"""Issue 2, end to end on the host's own platform: real PyPI, real sdists, real auditwheel,
the real server on 127.0.0.1, and real pip and uv installing into fresh environments."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename

from tests.conftest import clean_env, make_venv, start_server, stop_server, wheelhouse

pytestmark = [pytest.mark.network, pytest.mark.slow]

# A pure package with dependencies; a package with manylinux wheels upstream; a real
# sdist-only C extension from PyPI (no cp311 wheel); our own extension that needs grafting.
PINS = ["requests==2.32.3", "markupsafe==2.1.5", "netifaces==0.11.0", "whdemo-ext==1.0.0"]
EXPECTED = {"requests", "urllib3", "idna", "certifi", "charset-normalizer", "markupsafe",
            "netifaces", "whdemo-ext"}
COMPILED = {"netifaces", "whdemo-ext"}


def write_requirements(path: Path, sdists: Path, pins: list[str] = PINS) -> Path:
    path.write_text(f"--find-links {sdists}\n" + "\n".join(pins) + "\n")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, sdists: Path) -> dict[str, object]:
    work = tmp_path_factory.mktemp("e2e")
    store = work / "store"
    reqs = write_requirements(work / "requirements.txt", sdists)
    first = wheelhouse("build", str(reqs), "--store", str(store))
    return {"store": store, "reqs": reqs, "first": first, "work": work}


def stored_files(store: Path) -> dict[str, dict[str, object]]:
    out = wheelhouse("list", "--json", "--store", str(store))
    assert out.returncode == 0, out.stderr
    return {f["filename"]: f for f in json.loads(out.stdout)}


def test_a_build_leaves_every_pin_and_dependency_in_the_store(built: dict[str, object]) -> None:
    first = built["first"]
    assert isinstance(first, subprocess.CompletedProcess)
    assert first.returncode == 0, first.stdout + first.stderr
    files = stored_files(built["store"])  # type: ignore[arg-type]
    projects = {canonicalize_name(f["project"]) for f in files.values()}  # type: ignore[arg-type]
    assert projects == EXPECTED
    for name, f in files.items():
        if f["project"] in COMPILED:
            assert f["origin"] == "built"
            _n, _v, _b, tags = parse_wheel_filename(name)
            assert any(t.platform.startswith("manylinux_2_") and t.platform.endswith("_x86_64")
                       for t in tags), name
            prov = f["provenance"]
            assert isinstance(prov, dict)
            assert len(prov["sdist_sha256"]) == 64 and prov["builder"].startswith("local:")
        elif f["project"] in ("markupsafe", "charset-normalizer"):
            assert f["origin"] == "upstream" and "manylinux" in name


def test_a_library_is_grafted_and_auditwheel_agrees(built: dict[str, object]) -> None:
    store = built["store"]
    assert isinstance(store, Path)
    (wheel,) = (store / "files" / "whdemo-ext").glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        grafted = [n for n in zf.namelist() if n.startswith("whdemo_ext.libs/libwhdemocore")]
    assert grafted, "libwhdemocore was not grafted"
    show = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)],
                          capture_output=True, text=True, check=True)
    assert "manylinux_2_" in show.stdout
    assert "requires no external shared libraries" in show.stdout
    # Before repair, auditwheel saw the library as external: kept in the provenance.
    prov = stored_files(store)[wheel.name]["provenance"]
    assert "libwhdemocore.so.1" in json.dumps(prov["auditwheel"])  # type: ignore[index]


def _install_env() -> dict[str, str]:
    return clean_env()


def test_b_pip_and_uv_install_only_from_our_server(
    built: dict[str, object], tmp_path: Path
) -> None:
    store, work = built["store"], built["work"]
    assert isinstance(store, Path) and isinstance(work, Path)
    install_reqs = tmp_path / "install.txt"
    install_reqs.write_text("\n".join(PINS) + "\n")  # no --find-links: the index alone
    server = start_server(store, tmp_path / "server.log")
    try:
        index = f"{server.url}/simple/"
        py = make_venv(tmp_path / "pip-venv")
        report = tmp_path / "report.json"
        pip = subprocess.run(
            [str(py), "-m", "pip", "install", "--no-cache-dir", "--only-binary", ":all:",
             "--index-url", index, "--report", str(report), "-r", str(install_reqs)],
            capture_output=True, text=True, env=_install_env(), check=False,
        )
        assert pip.returncode == 0, pip.stdout + pip.stderr
        installed = json.loads(report.read_text())["install"]
        assert {canonicalize_name(i["metadata"]["name"]) for i in installed} == EXPECTED
        for item in installed:
            assert item["download_info"]["url"].startswith(server.url + "/"), item
        check = ("import whdemo_ext, netifaces, markupsafe, requests;"
                 "assert whdemo_ext.fnv1a(b'wheelhouse') == whdemo_ext.fnv1a_py(b'wheelhouse');"
                 "assert netifaces.interfaces();"
                 "assert str(markupsafe.escape('<')) == '&lt;'")
        subprocess.run([str(py), "-c", check], check=True, env=_install_env())

        uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
        assert uv, "uv is a test dependency"
        uv_venv = tmp_path / "uv-venv"
        env = _install_env() | {"UV_CACHE_DIR": str(tmp_path / "uv-cache")}
        subprocess.run([uv, "venv", "--python", sys.executable, str(uv_venv)], check=True,
                       env=env, capture_output=True)
        before = len(server.access_log().splitlines())
        res = subprocess.run(
            [uv, "pip", "install", "--python", str(uv_venv / "bin" / "python"),
             "--only-binary", ":all:", "--index-url", index, "-r", str(install_reqs)],
            capture_output=True, text=True, env=env, check=False,
        )
        assert res.returncode == 0, res.stdout + res.stderr
        subprocess.run([str(uv_venv / "bin" / "python"), "-c", check], check=True, env=env)
        uv_requests = "\n".join(server.access_log().splitlines()[before:])
        for project in EXPECTED:
            assert f"/files/{project}/" in uv_requests, f"uv did not fetch {project} from us"
    finally:
        stop_server(server)


def test_c_second_build_does_nothing_and_says_so(built: dict[str, object]) -> None:
    store, reqs = built["store"], built["reqs"]
    before = stored_files(store)  # type: ignore[arg-type]
    again = wheelhouse("build", str(reqs), "--store", str(store))
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    assert "no downloads, no builds" in again.stdout
    assert "fetched" not in again.stdout.replace("0 fetched", "")
    assert "building" not in again.stdout
    assert stored_files(store) == before  # type: ignore[arg-type]


def test_e_concurrent_builds_share_one_store(sdists: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    a = write_requirements(tmp_path / "a.txt", sdists,
                           ["requests==2.32.3", "whdemo-ext==1.0.0", "idna==3.10"])
    b = write_requirements(tmp_path / "b.txt", sdists,
                           ["whdemo-ext==1.0.0", "markupsafe==2.1.5", "idna==3.10"])
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda r: wheelhouse("build", str(r), "--store", str(store)),
                             [a, b]))
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
    builds = sum(r.stdout.count("  built    whdemo_ext") for r in runs)
    assert builds == 1, "the second builder should have waited and reused the first's wheel"
    server = start_server(store, tmp_path / "server.log")
    try:
        files = stored_files(store)
        assert {"whdemo-ext", "requests", "markupsafe", "idna"} <= {
            f["project"] for f in files.values()}
        for f in files.values():
            page_url = f"{server.url}/simple/{f['project']}/"
            req = urllib.request.Request(
                page_url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
            with urllib.request.urlopen(req) as resp:
                page = json.load(resp)
            entry = next(x for x in page["files"] if x["filename"] == f["filename"])
            with urllib.request.urlopen(urllib.parse.urljoin(page_url, entry["url"])) as resp:
                body = resp.read()
            assert hashlib.sha256(body).hexdigest() == entry["hashes"]["sha256"] == f["sha256"]
    finally:
        stop_server(server)


def test_dry_run_prints_the_plan_and_changes_nothing(sdists: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    reqs = write_requirements(tmp_path / "requirements.txt", sdists)
    res = wheelhouse("build", str(reqs), "--store", str(store), "--dry-run")
    assert res.returncode == 0, res.stdout + res.stderr
    assert not store.exists(), "a dry run must not even create the store"
    out = res.stdout
    assert "fetch    requests==2.32.3" in out and "requests-2.32.3-py3-none-any.whl" in out
    assert "build    netifaces==0.11.0" in out and "build    whdemo-ext==1.0.0" in out
    assert "fetch    urllib3==" in out, "the plan covers the transitive closure"
    assert "Dry run: nothing was changed." in out


def test_targets_lists_the_host_and_foreign_platforms() -> None:
    res = wheelhouse("targets")
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert lines[0].startswith("* cp311-manylinux_2_") and lines[0].endswith("native")
    assert any("cp311-musllinux_aarch64" in ln and "emulation" in ln for ln in lines)


def test_builds_are_reproducible_across_stores(sdists: Path, tmp_path: Path) -> None:
    """Two runners building the same pin get the same bytes, so they can share one index."""
    reqs = write_requirements(tmp_path / "r.txt", sdists, ["whdemo-ext==1.0.0"])
    digests = []
    for name in ("runner-a", "runner-b"):
        res = wheelhouse("build", str(reqs), "--store", str(tmp_path / name))
        assert res.returncode == 0 and "built    whdemo_ext" in res.stdout, res.stdout + res.stderr
        digests.append({f: v["sha256"] for f, v in stored_files(tmp_path / name).items()})
    assert digests[0] == digests[1]
