"""Checking a distribution file before it enters the store: its filename, its archive and the
metadata inside. Every path into the store (build, fetch, upload) goes through ``inspect``.
"""

from __future__ import annotations

import gzip
import io
import lzma
import posixpath
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.tags import Tag
from packaging.utils import (
    BuildTag,
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelhouse import platforms as pf
from wheelhouse.errors import InvalidDistribution
from wheelhouse.store.model import Kind

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

#: METADATA is read into memory to validate and serve it (PEP 658); real ones are kilobytes.
MAX_METADATA_BYTES = 16 << 20
#: An upload is unpacked once to check it; this bounds the work a zip or gzip bomb can cause.
MAX_UNPACKED = 4 << 30
MAX_SDIST_UNPACKED = MAX_UNPACKED
#: Uploads are also bounded by their own size: all members to MAX_TOTAL_RATIO times the file
#: (at least SMALL_UNPACKED), each member above RATIO_FLOOR to MAX_MEMBER_RATIO times its
#: compressed size. Real ones unpack to 2-10x (torch 3x); deflate nears 1000x only on runs of
#: one byte. So 1 GiB of zeros in a 1 MB wheel is refused from its directory, not inflated.
MAX_MEMBER_RATIO, RATIO_FLOOR = 100, 1 << 20
MAX_TOTAL_RATIO, SMALL_UNPACKED = 50, 64 << 20
#: Only PKG-INFO's headers are read, and they come first.
_PKG_INFO_READ = 1 << 20
_BLOCK = 1 << 20
_ENCRYPTED = 0x1
_WHEEL_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_READABLE_METHODS = _WHEEL_METHODS | {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}

# What a damaged archive makes zipfile and tarfile raise: bad CRCs and truncation
# (BadZipFile, EOFError, ReadError), broken compressed streams (zlib.error, LZMAError,
# OSError from bz2 and gzip), names that are not UTF-8, methods zipfile cannot read
# (NotImplementedError) and encryption (RuntimeError).
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error,
               lzma.LZMAError, NotImplementedError, RuntimeError, UnicodeDecodeError)
_TAR_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, UnicodeDecodeError)


@dataclass(frozen=True, kw_only=True)
class DistName:
    """What a distribution's filename says about it."""

    kind: Kind
    project: NormalizedName
    version: Version
    tags: frozenset[Tag]
    #: a wheel's build tag, ``()`` for none (and for sdists).
    build: BuildTag = ()


@dataclass(frozen=True, kw_only=True)
class DistInfo:
    """What a distribution file says about itself, read once before publishing."""

    project: NormalizedName
    version: str
    kind: Kind
    tags: frozenset[Tag]
    metadata: bytes | None
    requires_python: str | None


def inspect(path: Path, filename: str | None = None, *, strict: bool) -> DistInfo:
    """Check the wheel or sdist at ``path``, published as ``filename`` (default: its name).

    Both modes: the name parses, the archive reads, and the METADATA or PKG-INFO inside
    names the project and version the filename does (a wheel must have METADATA). ``strict``
    is for uploads, which must meet today's rules: PEP 625 sdist names with
    ``<name>-<version>/PKG-INFO``, plausible platform tags, no ``linux_*``. Lenient is for
    files fetched from an index or built here, which must pass what real indexes hold:
    ``PyYAML-5.4.1.tar.gz``, ``.zip`` sdists, PKG-INFO at the root or in any one folder.
    Raises InvalidDistribution naming the file and what is wrong with it.
    """

    name = filename or path.name
    dist = parse_filename(name, strict=strict)
    metadata: bytes | None = None
    requires_python: str | None = None
    if dist.kind is Kind.WHEEL:
        folder, metadata = _wheel_metadata(path, name, strict=strict)
        headers = _agree(metadata, "METADATA", name, dist)
        if strict:
            _check_dist_info_dir(folder, name, dist)
        requires_python = _header(headers, "Requires-Python")
    else:
        # An sdist's PKG-INFO is checked, not kept: the index serves METADATA only for wheels.
        _check_sdist(path, name, dist, strict=strict)
    return DistInfo(project=dist.project, version=str(dist.version), kind=dist.kind,
                    tags=dist.tags, metadata=metadata, requires_python=requires_python)


def read_wheel_metadata(path: Path, filename: str | None = None) -> bytes:
    """The bytes of ``<name>-<version>.dist-info/METADATA`` inside a wheel."""
    return _wheel_metadata(path, filename or path.name, strict=False)[1]


def plain_filename(name: str) -> str:
    """``name`` if it can be a file in the store: no path, no control characters."""
    if (
        not name
        or len(name) > 255
        or "/" in name
        or "\\" in name
        or ".." in name
        or name.startswith(".")
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
    ):
        raise InvalidDistribution(f"{name!r} is not a plain distribution filename")
    return name


def parse_filename(filename: str, *, strict: bool) -> DistName:
    """What the filename says (kind, project, version, tags), checked as ``inspect`` does."""

    name = plain_filename(filename)
    if name.endswith(".whl"):
        try:
            project, version, build, tags = parse_wheel_filename(name)
        except InvalidWheelFilename as e:
            raise InvalidDistribution(f"{name}: {e}") from None
        for tag in sorted(tags, key=str) if strict else ():
            problem = platform_problem(tag)
            if problem is not None:
                raise InvalidDistribution(f"{name}: {problem}")
        return DistName(kind=Kind.WHEEL, project=project, version=version, tags=tags,
                        build=build)
    if strict and name.endswith((".zip", ".tar.bz2", ".tgz")):
        raise InvalidDistribution(f"{name}: an sdist must be a .tar.gz (PEP 625)")
    suffixes = (".tar.gz",) if strict else (".tar.gz", ".zip")
    if not name.endswith(suffixes):
        raise InvalidDistribution(f"{name} is neither a wheel (.whl) nor an sdist "
                                  f"({' or '.join(suffixes)})")
    try:
        project, version = parse_sdist_filename(name)
    except InvalidSdistFilename as e:
        raise InvalidDistribution(f"{name}: {e}") from None
    expected = f"{project.replace('-', '_')}-{version}.tar.gz"
    if strict and name != expected:
        raise InvalidDistribution(f"{name}: the sdist name is not normalized as PEP 625 "
                                  f"requires; expected {expected}")
    return DistName(kind=Kind.SDIST, project=project, version=version, tags=frozenset())


def platform_problem(tag: Tag) -> str | None:
    """Why an index should refuse a wheel with this tag, or None. Data, not installers' rules:
    PEP 600/656 and the index recommendations in the platform-tags spec."""
    plat = tag.platform
    data = pf.platforms()
    if plat.startswith("linux_"):
        return (f"the platform tag {plat} promises nothing about the system libraries; repair "
                f"the wheel with auditwheel to get a {' or '.join(data.families)} tag")
    parsed = data.parse_platform_tag(plat)
    if parsed is None:
        if plat == "any" or data.other_platform(plat):
            return None
        return (f"the platform tag {plat} is unknown here: this index takes `any`, known "
                f"{'/'.join(data.families)} tags and Windows, macOS, iOS and Android tags")
    family = data.family(parsed.family)
    if not family.plausible(parsed.policy):
        major, minor = parsed.policy
        return f"the platform tag {plat} names {family.libc} {major}.{minor}, which does not exist"
    if parsed.arch not in data.archs:
        return f"the platform tag {plat} names an unknown architecture {parsed.arch!r}"
    return None


# -- wheels -----------------------------------------------------------------------------------


def _wheel_metadata(path: Path, name: str, *, strict: bool) -> tuple[str, bytes]:
    """The ``*.dist-info`` folder holding METADATA, and its bytes."""
    try:
        with zipfile.ZipFile(path) as zf:
            found = [i for i in zf.infolist()
                     if i.filename.count("/") == 1 and i.filename.endswith(".dist-info/METADATA")]
            if len(found) != 1:
                raise InvalidDistribution(
                    f"{name}: expected one top-level *.dist-info/METADATA, found {len(found)}")
            info = found[0]
            methods = _WHEEL_METHODS if strict else _READABLE_METHODS
            if info.file_size > MAX_METADATA_BYTES:
                raise InvalidDistribution(f"{name}: METADATA is {info.file_size} bytes; the "
                                          f"limit is {MAX_METADATA_BYTES}")
            if info.compress_type not in methods:
                raise InvalidDistribution(
                    f"{name}: METADATA uses zip compression method {info.compress_type}; "
                    f"wheels use {' or '.join(methods.values())}")
            if info.flag_bits & _ENCRYPTED:
                raise InvalidDistribution(f"{name}: METADATA is encrypted")
            for member in zf.namelist():
                _check_path(member, name)
            metadata = zf.read(info)
            if strict:
                _check_members(zf, name, _bound(path))
            return info.filename.partition("/")[0], metadata
    except _ZIP_ERRORS as e:
        raise InvalidDistribution(f"{name} is not a readable zip archive: {e}") from None


def _bound(path: Path) -> int:
    return min(MAX_UNPACKED, max(SMALL_UNPACKED, MAX_TOTAL_RATIO * path.stat().st_size))


def _check_path(member: str, name: str, link: tarfile.TarInfo | None = None) -> None:
    """A member, and a link's target (a symlink's from its folder, a hard link's from the
    root), land inside the directory it is unpacked into (site-packages, a build)."""
    paths = [member.replace("\\", "/")]
    if link is not None:
        base = posixpath.dirname(paths[0]) if link.issym() else ""
        paths.append(posixpath.normpath(posixpath.join(base, link.linkname)))
    if any(p.startswith("/") or p[1:2] == ":" or ".." in p.split("/") for p in paths):
        raise InvalidDistribution(f"{name}: {member!r} points outside the directory it is "
                                  "unpacked into (an absolute path or '..')")


def _check_members(zf: zipfile.ZipFile, name: str, bound: int) -> None:
    """Every member reads back with its CRC (an upload is checked whole: a wheel the index
    accepts must install), none encrypted, none compressed in a way installers cannot read,
    none a bomb, all within ``bound`` bytes unpacked."""
    # zipfile stops every member at its declared size, so the declared sizes bound the work.
    for info in zf.infolist():
        if RATIO_FLOOR < info.file_size > MAX_MEMBER_RATIO * max(info.compress_size, 1):
            raise InvalidDistribution(
                f"{name}: {info.filename} would unpack to {info.file_size} bytes from "
                f"{info.compress_size}, more than {MAX_MEMBER_RATIO} times (a zip bomb?)")
    unpacked = sum(i.file_size for i in zf.infolist())
    if unpacked > bound:
        raise InvalidDistribution(f"{name} unpacks to {unpacked} bytes, more than this "
                                  f"index takes from a file of its size ({bound})")
    for info in zf.infolist():
        if info.flag_bits & _ENCRYPTED:
            raise InvalidDistribution(f"{name}: {info.filename} is encrypted")
        if info.compress_type not in _WHEEL_METHODS:
            raise InvalidDistribution(f"{name}: {info.filename} uses zip compression method "
                                      f"{info.compress_type}; wheels use stored or deflated")
    bad = zf.testzip()
    if bad is not None:
        raise InvalidDistribution(f"{name}: {bad} is damaged (its CRC does not match)")


def _check_dist_info_dir(folder: str, name: str, dist: DistName) -> None:
    """The ``<name>-<version>.dist-info`` folder names the wheel's project and version, as pip
    requires before installing it; a look-alike wheel must not carry another's metadata."""
    dir_name, _, dir_version = folder.removesuffix(".dist-info").rpartition("-")
    try:
        same = (canonicalize_name(dir_name) == dist.project
                and Version(dir_version) == dist.version)
    except InvalidVersion:
        same = False
    if not same:
        raise InvalidDistribution(f"{name}: its METADATA is in {folder}, which names another "
                                  "project or version than the filename")


# -- sdists -----------------------------------------------------------------------------------


def _check_sdist(path: Path, name: str, dist: DistName, *, strict: bool) -> None:
    stem = name.removesuffix(".tar.gz").removesuffix(".zip")
    if name.endswith(".zip"):
        pkg_info = _zip_pkg_info(path, name, stem)
    else:
        pkg_info = _tar_pkg_info(path, name, stem, strict=strict)
    if pkg_info is not None:
        _agree(pkg_info, "PKG-INFO", name, dist)
    elif strict:
        raise InvalidDistribution(f"{name}: the sdist has no {stem}/PKG-INFO")


def _pkg_info_rank(member: str, stem: str, *, strict: bool) -> int | None:
    """How good a PKG-INFO this member is: 0 in the folder the filename names, 1 at the root,
    2 in another top-level folder (old sdists); None if it is none, or strict forbids it."""
    member = member.removeprefix("./")
    if member == f"{stem}/PKG-INFO":
        return 0
    if strict:
        return None
    if member == "PKG-INFO":
        return 1
    return 2 if member.count("/") == 1 and member.endswith("/PKG-INFO") else None


def _tar_pkg_info(path: Path, name: str, stem: str, *, strict: bool) -> bytes | None:
    best: tuple[int, bytes] | None = None
    try:
        bound = _bound(path) if strict else MAX_SDIST_UNPACKED
        with gzip.open(path, "rb") as gz, _Bounded(gz, name, bound) as stream, \
                tarfile.open(fileobj=stream, mode="r|") as tf:
            for member in tf:
                _check_path(member.name, name, member if member.issym() or member.islnk()
                            else None)
                rank = _pkg_info_rank(member.name, stem, strict=strict)
                if rank is None or not member.isfile() or (best and best[0] <= rank):
                    continue
                handle = tf.extractfile(member)
                if handle is not None:
                    best = (rank, handle.read(_PKG_INFO_READ))
            # tarfile stops at the end-of-archive blocks; reading to the end of the gzip
            # stream checks its CRC and length, so a damaged or cut-off file is caught.
            while stream.read(_BLOCK):
                pass
    except _TAR_ERRORS as e:
        raise InvalidDistribution(f"{name} is not a readable .tar.gz: {e}") from None
    return best[1] if best else None


def _zip_pkg_info(path: Path, name: str, stem: str) -> bytes | None:
    try:
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                _check_path(member, name)
            ranked = [(rank, i) for i in zf.infolist() if not i.is_dir()
                      and (rank := _pkg_info_rank(i.filename, stem, strict=False)) is not None]
            if not ranked:
                return None
            info = min(ranked, key=lambda r: r[0])[1]
            if info.flag_bits & _ENCRYPTED:
                raise InvalidDistribution(f"{name}: PKG-INFO is encrypted")
            with zf.open(info) as f:
                return f.read(_PKG_INFO_READ)
    except _ZIP_ERRORS as e:
        raise InvalidDistribution(f"{name} is not a readable zip archive: {e}") from None


class _Bounded(io.RawIOBase):
    """A decompressed stream that refuses to yield more than ``bound`` bytes."""

    def __init__(self, raw: gzip.GzipFile, name: str, bound: int) -> None:
        super().__init__()
        self._raw = raw
        self._name = name
        self._bound = bound
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        with memoryview(buffer) as view:
            data = self._raw.read(len(view))
            self._count += len(data)
            if self._count > self._bound:
                raise InvalidDistribution(
                    f"{self._name} unpacks to more than {self._bound} bytes, more than this "
                    "index takes from a file of its size")
            view[: len(data)] = data
        return len(data)


# -- metadata ---------------------------------------------------------------------------------


def _agree(data: bytes, what: str, name: str, dist: DistName) -> Message:
    """The metadata's headers, once they name the project and version the filename does."""
    headers = BytesParser().parsebytes(data, headersonly=True)
    meta_name, meta_version = _header(headers, "Name"), _header(headers, "Version")
    if not meta_name or canonicalize_name(meta_name) != dist.project:
        raise InvalidDistribution(
            f"{name}: {what} names project {meta_name!r}, the filename {dist.project!r}")
    try:
        same = meta_version is not None and Version(meta_version) == dist.version
    except InvalidVersion:
        same = False
    if not same:
        raise InvalidDistribution(
            f"{name}: {what} has version {meta_version!r}, the filename {dist.version}")
    return headers


def _header(headers: Message, key: str) -> str | None:
    # Non-ASCII bytes make the email parser return a Header object, not a str.
    value = headers.get(key)
    return None if value is None else str(value)
