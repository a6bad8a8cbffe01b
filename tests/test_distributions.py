"""One check for every distribution entering the store: corrupt archives always come out as
InvalidDistribution, lenient takes what real indexes hold, strict is the upload rules."""

from __future__ import annotations

import gzip
import io
import random
import struct
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.distributions import ZIP_DATE, wheel_bytes, write_sdist
from wheelhouse.distributions import (
    MAX_METADATA_BYTES,
    DistInfo,
    inspect,
    read_wheel_metadata,
)
from wheelhouse.errors import InvalidDistribution
from wheelhouse.store.model import Kind, Origin
from wheelhouse.store.store import Store

METADATA = "demo-1.0.dist-info/METADATA"
HEAD = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"
MODES = pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])


def zip_file(path: Path, members: Mapping[str, bytes],
             compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, ZIP_DATE), data, compress_type=compression)
    return path


def demo_wheel(tmp_path: Path, metadata: bytes = HEAD,
               compression: int = zipfile.ZIP_DEFLATED,
               filename: str = "demo-1.0-py3-none-any.whl") -> Path:
    return zip_file(tmp_path / filename, {"demo/__init__.py": b"x = 1\n" * 50,
                                          METADATA: metadata}, compression)


def tar_gz(path: Path, members: Mapping[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def pkg_info(name: str = "demo", version: str = "1.0") -> bytes:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()


def demo_sdist(tmp_path: Path, *, filename: str = "demo-1.0.tar.gz",
               members: Mapping[str, bytes] | None = None) -> Path:
    rng = random.Random(7)
    noise = bytes(rng.getrandbits(8) for _ in range(64 << 10))  # so the file is not tiny
    return tar_gz(tmp_path / filename, members or {"demo-1.0/PKG-INFO": pkg_info(),
                                                   "demo-1.0/blob.bin": noise})


def local_header(data: bytes, zf_path: Path, member: str) -> tuple[int, int]:
    """(offset of the member's local header, offset of its compressed data)."""
    with zipfile.ZipFile(zf_path) as zf:
        info = zf.getinfo(member)
    start = info.header_offset
    name_len, extra_len = struct.unpack("<HH", data[start + 26:start + 30])
    return start, start + 30 + name_len + extra_len


def patch_member(path: Path, member: str, *, flags: int | None = None,
                 method: int | None = None) -> None:
    """Set a member's general-purpose flags or compression method in both its headers."""
    data = bytearray(path.read_bytes())
    local, _ = local_header(bytes(data), path, member)
    central = data.index(b"PK\x01\x02")
    encoded = member.encode()
    while data[central + 46:central + 46 + len(encoded)] != encoded:
        central = data.index(b"PK\x01\x02", central + 4)
    for offset, field in ((local + 6, flags), (local + 8, method),
                          (central + 8, flags), (central + 10, method)):
        if field is not None:
            data[offset:offset + 2] = struct.pack("<H", field)
    path.write_bytes(bytes(data))


def refused(path: Path, *words: str, strict: bool, filename: str | None = None) -> str:
    with pytest.raises(InvalidDistribution) as e:
        inspect(path, filename, strict=strict)
    message = e.value.message
    assert (filename or path.name) in message
    for word in words:
        assert word in message
    return message


# -- corrupt archives -------------------------------------------------------------------------


@MODES
def test_encrypted_metadata(tmp_path: Path, strict: bool) -> None:
    wheel = demo_wheel(tmp_path)
    patch_member(wheel, METADATA, flags=0x1)
    with zipfile.ZipFile(wheel) as zf, pytest.raises(RuntimeError):
        zf.read(METADATA)  # what zipfile itself does with it
    refused(wheel, "encrypted", strict=strict)
    with pytest.raises(InvalidDistribution):
        read_wheel_metadata(wheel)


@MODES
def test_broken_deflate_stream(tmp_path: Path, strict: bool) -> None:
    wheel = demo_wheel(tmp_path)
    data = bytearray(wheel.read_bytes())
    _, start = local_header(bytes(data), wheel, METADATA)
    data[start] = 0xFF  # BTYPE 11: a block type deflate does not have
    wheel.write_bytes(bytes(data))
    refused(wheel, "zip", strict=strict)


@MODES
def test_bad_crc(tmp_path: Path, strict: bool) -> None:
    # "demO" still names the project, so only the CRC tells the bytes changed.
    wheel = demo_wheel(tmp_path, compression=zipfile.ZIP_STORED)
    data = wheel.read_bytes()
    wheel.write_bytes(data.replace(b"Name: demo", b"Name: demO"))
    refused(wheel, "CRC", strict=strict)


@MODES
@pytest.mark.parametrize("keep", [0.5, 0.9, -4, -1])
def test_truncated_tar_gz(tmp_path: Path, strict: bool, keep: float) -> None:
    sdist = demo_sdist(tmp_path)
    data = sdist.read_bytes()
    cut = int(len(data) * keep) if keep > 0 else len(data) + int(keep)
    sdist.write_bytes(data[:cut])
    refused(sdist, "tar.gz", strict=strict)


@MODES
@pytest.mark.parametrize("content", [
    gzip.compress(random.Random(1).randbytes(4096)),  # gzip of garbage
    b"\x1f\x8b but not really gzip",
    b"",
    gzip.compress(b"") + b"trailing garbage",
])
def test_unreadable_tar_gz(tmp_path: Path, strict: bool, content: bytes) -> None:
    sdist = tmp_path / "demo-1.0.tar.gz"
    sdist.write_bytes(content)
    refused(sdist, "tar.gz", strict=strict)


@MODES
def test_compression_zipfile_cannot_read(tmp_path: Path, strict: bool) -> None:
    wheel = demo_wheel(tmp_path, compression=zipfile.ZIP_STORED)
    patch_member(wheel, METADATA, method=6)  # implode: zipfile raises NotImplementedError
    refused(wheel, "compression method 6", strict=strict)


def test_compression_zipfile_cannot_read_in_a_zip_sdist(tmp_path: Path) -> None:
    sdist = zip_file(tmp_path / "demo-1.0.zip", {"demo-1.0/PKG-INFO": pkg_info()},
                     zipfile.ZIP_STORED)
    patch_member(sdist, "demo-1.0/PKG-INFO", method=6)
    refused(sdist, "zip", strict=False)


@MODES
def test_oversized_metadata(tmp_path: Path, strict: bool) -> None:
    wheel = demo_wheel(tmp_path, HEAD + b"\n" + b"a" * (MAX_METADATA_BYTES + 1))
    assert wheel.stat().st_size < 200_000
    refused(wheel, "METADATA", "limit", strict=strict)


@MODES
def test_not_a_zip(tmp_path: Path, strict: bool) -> None:
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04 not really")
    refused(wheel, "zip", strict=strict)


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
@pytest.mark.parametrize("kind", ["wheel", "tar.gz", "zip"])
def test_any_damage_is_invalid_distribution(tmp_path: Path, strict: bool, kind: str) -> None:
    """Cut and flipped bytes anywhere: the answer is a DistInfo or InvalidDistribution."""
    if kind == "wheel":
        good = wheel_bytes("demo", "1.0")
        name = "demo-1.0-py3-none-any.whl"
    elif kind == "tar.gz":
        good = demo_sdist(tmp_path).read_bytes()
        name = "demo-1.0.tar.gz"
    else:
        good = zip_file(tmp_path / "demo-1.0.zip", {"demo-1.0/PKG-INFO": pkg_info(),
                                                    "demo-1.0/setup.py": b"x" * 900}
                        ).read_bytes()
        name = "demo-1.0.zip"
    rng = random.Random(f"{kind}-{strict}")
    path = tmp_path / "damaged" / name
    path.parent.mkdir()
    for _ in range(150):
        data = bytearray(good)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        for _ in range(rng.randrange(1, 8)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        path.write_bytes(bytes(data))
        try:
            info = inspect(path, strict=strict and kind != "zip")
        except InvalidDistribution as e:
            assert name in e.message
        else:
            assert isinstance(info, DistInfo) and info.project == "demo"


# -- lenient takes what real indexes hold; strict does not ------------------------------------


def test_legacy_sdist_name(tmp_path: Path) -> None:
    sdist = tar_gz(tmp_path / "PyYAML-5.4.1.tar.gz",
                   {"PyYAML-5.4.1/PKG-INFO": pkg_info("PyYAML", "5.4.1"),
                    "PyYAML-5.4.1/setup.py": b""})
    info = inspect(sdist, strict=False)
    assert (info.project, info.version, info.kind) == ("pyyaml", "5.4.1", Kind.SDIST)
    refused(sdist, "PEP 625", "pyyaml-5.4.1.tar.gz", strict=True)


@pytest.mark.parametrize("members", [
    {"PKG-INFO": pkg_info(), "setup.py": b""},                              # no top folder
    {"./PKG-INFO": pkg_info(), "./setup.py": b""},
    {"demo/PKG-INFO": pkg_info(), "demo/setup.py": b""},                    # another folder
    {"demo-1.0.0/PKG-INFO": pkg_info(version="1.0.0")},
    {"demo-1.0/setup.py": b""},                                             # no PKG-INFO
    {"demo-1.0/src/PKG-INFO": pkg_info("other"), "PKG-INFO": pkg_info()},   # deeper ignored
], ids=["root", "dot-root", "other-folder", "other-version-spelling", "no-pkg-info",
        "nested"])
def test_sdist_layouts_lenient_takes_and_strict_refuses(
    tmp_path: Path, members: dict[str, bytes]
) -> None:
    sdist = tar_gz(tmp_path / "demo-1.0.tar.gz", members)
    assert inspect(sdist, strict=False).project == "demo"
    refused(sdist, "demo-1.0/PKG-INFO", strict=True)


def test_strict_takes_the_pep_625_layout(tmp_path: Path) -> None:
    sdist = write_sdist(tmp_path, "Demo.Pkg", "1.0")
    assert inspect(sdist, strict=True).project == "demo-pkg"
    (tmp_path / "dotted").mkdir()
    dotted = tar_gz(tmp_path / "dotted" / "demo-1.0.tar.gz", {"./demo-1.0/PKG-INFO": pkg_info()})
    assert inspect(dotted, strict=True).project == "demo"


def test_zip_sdist(tmp_path: Path) -> None:
    sdist = zip_file(tmp_path / "Demo-1.0.zip", {"Demo-1.0/PKG-INFO": pkg_info("Demo")})
    assert inspect(sdist, strict=False).kind is Kind.SDIST
    refused(sdist, "PEP 625", strict=True)
    liar = zip_file(tmp_path / "demo-2.0.zip", {"demo-2.0/PKG-INFO": pkg_info()})
    refused(liar, "PKG-INFO has version", strict=False)


def test_platform_tags_are_the_uploads_business(tmp_path: Path) -> None:
    for tag in ("linux_x86_64", "manylinux_2_999_x86_64"):
        wheel = demo_wheel(tmp_path, filename=f"demo-1.0-cp311-cp311-{tag}.whl")
        assert inspect(wheel, strict=False).tags
        refused(wheel, tag, strict=True)


# -- metadata must agree with the filename, in both modes -------------------------------------


@MODES
@pytest.mark.parametrize(("metadata", "words"), [
    (pkg_info("someone-else"), ["METADATA names project", "someone-else"]),
    (pkg_info(version="2.0"), ["METADATA has version", "2.0"]),
    (b"Metadata-Version: 2.1\nVersion: 1.0\n", ["METADATA names project None"]),
    (pkg_info(version="not a version"), ["METADATA has version"]),
])
def test_wheel_metadata_must_agree(tmp_path: Path, strict: bool, metadata: bytes,
                                   words: list[str]) -> None:
    refused(demo_wheel(tmp_path, metadata), *words, strict=strict)


@MODES
def test_wheel_needs_metadata(tmp_path: Path, strict: bool) -> None:
    wheel = zip_file(tmp_path / "demo-1.0-py3-none-any.whl", {"demo/__init__.py": b""})
    refused(wheel, "METADATA", strict=strict)


@MODES
@pytest.mark.parametrize(("info", "words"), [
    (pkg_info("someone-else"), ["PKG-INFO names project"]),
    (pkg_info(version="2.0"), ["PKG-INFO has version"]),
])
def test_sdist_pkg_info_must_agree(tmp_path: Path, strict: bool, info: bytes,
                                   words: list[str]) -> None:
    sdist = demo_sdist(tmp_path, members={"demo-1.0/PKG-INFO": info})
    refused(sdist, *words, strict=strict)


@MODES
def test_filenames(tmp_path: Path, strict: bool) -> None:
    wheel = demo_wheel(tmp_path)
    for bad in ("../demo-1.0-py3-none-any.whl", ".demo-1.0-py3-none-any.whl",
                "demo-1.0-py3-none-any.whl\n", "demo-1.0.exe", "demo-1.0.tar.bz2"):
        with pytest.raises(InvalidDistribution):
            inspect(wheel, bad, strict=strict)
    info = inspect(wheel, strict=strict)
    assert info.metadata == HEAD and info.kind is Kind.WHEEL


# -- the store applies the strict rules to uploads only ---------------------------------------


def test_store_is_strict_for_uploads_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    src = tmp_path / "src"
    src.mkdir()
    legacy = tar_gz(src / "PyYAML-5.4.1.tar.gz", {"PyYAML-5.4.1/PKG-INFO":
                                                   pkg_info("PyYAML", "5.4.1")})
    with pytest.raises(InvalidDistribution, match="PEP 625"):
        store.publish(legacy, origin=Origin.UPLOADED)
    assert store.publish(legacy, origin=Origin.UPSTREAM).file.project == "pyyaml"
    liar = tar_gz(src / "other-1.0.tar.gz", {"other-1.0/PKG-INFO": pkg_info("demo")})
    with pytest.raises(InvalidDistribution, match="PKG-INFO names project"):
        store.publish(liar, origin=Origin.BUILT)
    assert [f.filename for f in store.files()] == ["PyYAML-5.4.1.tar.gz"]
