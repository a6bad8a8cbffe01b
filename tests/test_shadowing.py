"""A wheel that would change what installers pick among a release's published wheels is refused
(``wheelhouse.store.shadowing``): through the store, and through twine against a real server,
with pip on this interpreter showing what ``==1.0`` installs afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.distributions import wheel_bytes, wheel_filename
from tests.test_upload import Live, client_env, live, root, twine  # noqa: F401  (fixtures)
from wheelhouse.errors import PublishConflict
from wheelhouse.store.model import Origin, PublishStatus
from wheelhouse.store.store import Store

HERE = f"cp{sys.version_info[0]}{sys.version_info[1]}"


def _wheel(d: Path, tag: str, source: str, name: str = "demo", version: str = "1.0") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    path = d / wheel_filename(name, version, tag)
    path.write_bytes(wheel_bytes(name, version, tag=tag, module_source=source))
    return path


def _publish(store: Store, path: Path, origin: Origin = Origin.UPLOADED) -> PublishStatus:
    return store.publish(path, origin=origin).status


@pytest.mark.parametrize(("published", "offered"), [
    ("py3-none-any", f"{HERE}-none-any"),
    ("py3-none-any", "py311-none-any"),
    ("py3-none-any", "py2.py3-none-any"),
    ("py3-none-any", "cp311-cp311-manylinux_2_28_x86_64"),
    ("cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux_2_28_x86_64"),
    ("cp311-cp311-manylinux_2_28_x86_64",
     "cp311-cp311-manylinux_2_17_x86_64.manylinux_2_28_x86_64"),
    ("cp311-abi3-manylinux_2_28_x86_64", "cp312-abi3-manylinux_2_28_x86_64"),
    ("cp311-abi3-manylinux_2_28_x86_64", "cp312-cp312-manylinux_2_28_x86_64"),
    ("cp311-cp311-macosx_11_0_arm64", "cp311-cp311-macosx_12_0_arm64"),
])
def test_a_wheel_that_shadows_a_published_one_is_refused(
        tmp_path: Path, published: str, offered: str) -> None:
    store = Store(tmp_path / "store")
    first = _wheel(tmp_path / "a", published, "OLD = 1\n")
    assert _publish(store, first) is PublishStatus.PUBLISHED
    with pytest.raises(PublishConflict) as e:
        _publish(store, _wheel(tmp_path / "b", offered, "NEW = 1\n"))
    assert first.name in e.value.message and "shadow" in e.value.message
    assert e.value.existing is not None and e.value.existing.filename == first.name
    assert [f.filename for f in store.files()] == [first.name]
    assert list((tmp_path / "store" / "files" / "demo").glob("*.whl")) == [
        tmp_path / "store" / "files" / "demo" / first.name]


@pytest.mark.parametrize(("published", "offered"), [
    ("cp311-cp311-manylinux_2_28_x86_64", "cp312-cp312-manylinux_2_28_x86_64"),
    ("cp311-cp311-manylinux_2_28_x86_64", "cp311-cp311-musllinux_1_2_x86_64"),
    ("cp311-cp311-manylinux_2_28_x86_64", "cp311-cp311-manylinux_2_28_aarch64"),
    ("cp311-cp311-manylinux_2_28_x86_64", "cp313-cp313t-manylinux_2_28_x86_64"),
    ("cp311-cp311-manylinux_2_28_x86_64", "py3-none-any"),
    ("cp312-abi3-manylinux_2_28_x86_64", "cp311-abi3-manylinux_2_28_x86_64"),
    ("cp311-cp311-manylinux_2_28_x86_64", "cp311-cp311-win_amd64"),
    ("cp311-cp311-win_amd64", "cp311-cp311-macosx_11_0_arm64"),
])
def test_a_wheel_for_what_the_release_does_not_cover_yet_is_accepted(
        tmp_path: Path, published: str, offered: str) -> None:
    store = Store(tmp_path / "store")
    assert _publish(store, _wheel(tmp_path / "a", published, "OLD = 1\n")) is (
        PublishStatus.PUBLISHED)
    assert _publish(store, _wheel(tmp_path / "b", offered, "NEW = 1\n")) is (
        PublishStatus.PUBLISHED)


def test_other_releases_and_the_same_bytes_are_not_shadows(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    first = _wheel(tmp_path / "a", "py3-none-any", "OLD = 1\n")
    _publish(store, first)
    assert _publish(store, first) is PublishStatus.IDENTICAL
    newer = _wheel(tmp_path / "b", f"{HERE}-none-any", "NEW = 1\n", version="1.1")
    assert _publish(store, newer) is PublishStatus.PUBLISHED


def test_builds_may_add_a_newer_abi3_wheel(tmp_path: Path) -> None:
    """The decision for the build pipeline: what it builds or fetches is published even where
    it would rank above a published wheel (a cp312-abi3 build beside a cp311-abi3 one), so a
    build never fails on this rule; only uploads are held to it."""
    store = Store(tmp_path / "store")
    _publish(store, _wheel(tmp_path / "a", "cp311-abi3-manylinux_2_28_x86_64", "A = 1\n"),
             Origin.BUILT)
    newer = _wheel(tmp_path / "b", "cp312-abi3-manylinux_2_28_x86_64", "B = 1\n")
    assert _publish(store, newer, Origin.BUILT) is PublishStatus.PUBLISHED
    upstream = _wheel(tmp_path / "c", "py3-none-any", "C = 1\n", version="2.0")
    _publish(store, upstream, Origin.UPSTREAM)
    binary = _wheel(tmp_path / "d", "cp311-cp311-manylinux_2_28_x86_64", "D = 1\n",
                    version="2.0")
    assert _publish(store, binary, Origin.UPSTREAM) is PublishStatus.PUBLISHED


def _pip_report(tmp: Path, index: str, spec: str) -> dict[str, Any]:
    report = tmp / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-cache-dir",
         "--ignore-installed", "--index-url", index, "--report", str(report), "--quiet", spec],
        capture_output=True, text=True, env=client_env(tmp), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result: dict[str, Any] = json.loads(report.read_text())
    return result


@pytest.mark.slow
def test_twine_cannot_shadow_a_published_wheel_for_pip(live: Live,  # noqa: F811
        tmp_path: Path) -> None:
    first = _wheel(tmp_path / "a", "py3-none-any", "OLD = 1\n", name="wh-shadow")
    result = twine(tmp_path, live.upload_url, str(first))
    assert result.returncode == 0, result.stdout + result.stderr
    for n, tag in enumerate((f"{HERE}-none-any", "py311-none-any", "py2.py3-none-any")):
        evil = _wheel(tmp_path / f"e{n}", tag, "EVIL = 1\n", name="wh-shadow")
        result = twine(tmp_path, live.upload_url, str(evil))
        out = result.stdout + result.stderr
        assert result.returncode != 0, out
        assert "409" in out, out
    installs: list[dict[str, Any]] = _pip_report(
        tmp_path, f"{live.base}/simple/", "wh-shadow==1.0")["install"]
    (installed,) = installs
    assert installed["download_info"]["url"].endswith("/" + first.name)
