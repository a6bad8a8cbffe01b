"""Distributions built to hurt: members that climb out of the install directory, platform tags
no installer knows, and archives that unpack to far more than they weigh. All are refused by
``wheelhouse.distributions`` (the one check of every file entering the store), quickly, and an
upload of one through twine gets a 400 with the reason."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.distributions import ZIP_DATE, wheel_bytes
from tests.test_distributions import HEAD, METADATA, pkg_info, refused, tar_gz, zip_file
from tests.test_upload import Live, live, root, twine  # noqa: F401  (fixtures)
from wheelhouse.distributions import inspect
from wheelhouse.store.store import Store

TRAVERSALS = ["../x", "/etc/evil", "a/../../evil.py", "demo/../../../evil.py", "..\\evil.py",
              "C:/evil.py"]


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
@pytest.mark.parametrize("member", TRAVERSALS)
def test_wheel_members_must_stay_inside(tmp_path: Path, member: str, strict: bool) -> None:
    wheel = zip_file(tmp_path / "demo-1.0-py3-none-any.whl",
                     {"demo/__init__.py": b"", METADATA: HEAD, member: b"evil"})
    refused(wheel, repr(member), "outside", strict=strict)


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
@pytest.mark.parametrize("member", TRAVERSALS)
def test_sdist_members_must_stay_inside(tmp_path: Path, member: str, strict: bool) -> None:
    sdist = tar_gz(tmp_path / "demo-1.0.tar.gz",
                   {"demo-1.0/PKG-INFO": pkg_info(), member: b"evil"})
    refused(sdist, repr(member), "outside", strict=strict)


def test_sdist_links_must_stay_inside(tmp_path: Path) -> None:
    path = tmp_path / "demo-1.0.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("demo-1.0/PKG-INFO")
        data = pkg_info()
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("demo-1.0/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        tf.addfile(link)
        ok = tarfile.TarInfo("demo-1.0/docs/README")
        ok.type, ok.linkname = tarfile.SYMTYPE, "../PKG-INFO"
        tf.addfile(ok)
    refused(path, "demo-1.0/passwd", "outside", strict=True)


def test_ordinary_nested_members_pass(tmp_path: Path) -> None:
    wheel = zip_file(tmp_path / "demo-1.0-py3-none-any.whl",
                     {"demo/sub/..hidden/x.py": b"", "demo/a..b.py": b"", METADATA: HEAD})
    assert inspect(wheel, strict=True).project == "demo"


@pytest.mark.parametrize("tag", ["py3-none-notaplatform", "cp311-cp311-win_amd65",
                                 "cp311-cp311-macosx_11_0_sparc", "py3-none-linux_x86_64",
                                 "cp311-cp311-manylinux_2_28_mips"])
def test_unknown_platform_tags_are_refused_for_uploads(tmp_path: Path, tag: str) -> None:
    name = f"demo-1.0-{tag}.whl"
    wheel = zip_file(tmp_path / name, {"demo/__init__.py": b"", METADATA: HEAD})
    refused(wheel, tag.rpartition("-")[2], strict=True)
    assert inspect(wheel, strict=False).project == "demo"  # what an index holds, a build made


@pytest.mark.parametrize("tag", ["py3-none-any", "cp311-cp311-win_amd64", "cp311-cp311-win32",
                                 "cp311-cp311-win_arm64", "cp311-cp311-macosx_11_0_arm64",
                                 "cp39-cp39-macosx_10_9_x86_64",
                                 "cp312-cp312-macosx_10_13_universal2",
                                 "cp313-cp313-macosx_14_0_arm64",
                                 "cp313-cp313-ios_13_0_arm64_iphoneos",
                                 "cp313-cp313-android_21_arm64_v8a",
                                 "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
                                 "cp311-cp311-musllinux_1_2_aarch64"])
def test_known_platform_tags_are_accepted(tmp_path: Path, tag: str) -> None:
    name = f"demo-1.0-{tag}.whl"
    wheel = zip_file(tmp_path / name, {"demo/__init__.py": b"", METADATA: HEAD})
    assert inspect(wheel, strict=True).project == "demo"


def _zeros_wheel(path: Path, size: int, level: int = 1, name: str = "demo") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        zf.writestr(zipfile.ZipInfo(f"{name.replace('-', '_')}-1.0.dist-info/METADATA",
                                    ZIP_DATE),
                    f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        info = zipfile.ZipInfo("demo/zeros.bin", ZIP_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        block = bytes(1 << 20)
        with zf.open(info, "w", force_zip64=True) as out:
            for _ in range(size >> 20):
                out.write(block)
    return path


def test_a_wheel_of_a_gib_of_zeros_is_refused(tmp_path: Path) -> None:
    wheel = _zeros_wheel(tmp_path / "demo-1.0-py3-none-any.whl", 1 << 30)
    assert wheel.stat().st_size < 8 << 20
    refused(wheel, "demo/zeros.bin", "unpack", strict=True)


def test_many_small_compressible_members_add_up(tmp_path: Path) -> None:
    members = {f"demo/m{i}.txt": bytes(512 << 10) for i in range(400)}
    wheel = zip_file(tmp_path / "demo-1.0-py3-none-any.whl", {**members, METADATA: HEAD})
    refused(wheel, "unpacks to", strict=True)


def test_a_tar_gz_of_zeros_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "demo-1.0.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT, compresslevel=1) as tf:
        info = tarfile.TarInfo("demo-1.0/PKG-INFO")
        info.size = len(pkg_info())
        tf.addfile(info, io.BytesIO(pkg_info()))
        zeros = tarfile.TarInfo("demo-1.0/zeros.bin")
        zeros.size = 512 << 20

        class Zeros(io.RawIOBase):
            def readable(self) -> bool:
                return True

            def readinto(self, b: memoryview) -> int:  # type: ignore[override]
                n = len(b)
                b[:n] = bytes(n)
                return n
        tf.addfile(zeros, io.BufferedReader(Zeros()))
    refused(path, "unpacks to more than", strict=True)


def test_real_compression_ratios_pass(tmp_path: Path) -> None:
    text = b"".join(b"def f%d(x):\n    return x + %d\n" % (i, i) for i in range(200_000))
    wheel = zip_file(tmp_path / "demo-1.0-py3-none-any.whl",
                     {"demo/big.py": text, METADATA: HEAD})
    assert inspect(wheel, strict=True).project == "demo"


@pytest.mark.slow
def test_twine_upload_of_a_traversal_or_bomb_is_400(live: Live,  # noqa: F811
                                                    tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    evil = zipfile.ZipFile(io.BytesIO(wheel_bytes("wh-evil", "1.0")))
    path = src / "wh_evil-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in evil.infolist():
            zf.writestr(info, evil.read(info))
        zf.writestr(zipfile.ZipInfo("../../evil.pth", ZIP_DATE), b"import os\n")
    # within the live server's 200 kB upload limit
    bomb = _zeros_wheel(src / "wh_bomb-1.0-py3-none-any.whl", 128 << 20, level=9,
                        name="wh-bomb")
    for f, word in ((path, "outside"), (bomb, "unpack")):
        result = twine(tmp_path, live.upload_url, str(f))
        out = result.stdout + result.stderr
        assert result.returncode != 0 and "400" in out and word in out, out
    assert Store(live.root).files() == []
