"""Reading an sdist before it is built: where its project root is, its build requirements,
its static metadata, and unpacking it safely."""

from __future__ import annotations

import tarfile
import tomllib
import zipfile
import zlib
from email.parser import BytesParser
from pathlib import Path, PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelhouse.errors import BuildFailed

#: what PEP 517 front ends assume when an sdist declares no build system.
DEFAULT_BUILD_REQUIRES = ("setuptools>=40.8.0", "wheel")

_ARCHIVE_ERRORS = (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error,
                   RuntimeError, NotImplementedError)


def _names(sdist: Path) -> list[str]:
    if sdist.name.endswith(".zip"):
        with zipfile.ZipFile(sdist) as zf:
            return zf.namelist()
    with tarfile.open(sdist) as tf:
        return tf.getnames()


def source_root(sdist: Path) -> str:
    """The project directory inside the archive, relative to where it is unpacked: the one
    top-level folder sdists normally have, or "" when files sit at the top (some old sdists,
    e.g. uWSGI 2.0.19.1, have no top-level folder and several directories at the top)."""
    try:
        names = [n for n in _names(sdist) if n.strip("/") not in ("", ".")]
    except _ARCHIVE_ERRORS as e:
        raise BuildFailed(f"{sdist.name} cannot be read: {e}") from None
    parts = [p for p in (PurePosixPath(n.removeprefix("./")).parts for n in names) if p]
    tops = {p[0] for p in parts}
    if len(tops) == 1 and any(len(p) > 1 for p in parts):
        return tops.pop()
    return ""


def read_member(sdist: Path, name: str) -> bytes | None:
    """A file at the project root of the sdist (see ``source_root``), or None."""
    try:
        root = source_root(sdist)
    except BuildFailed:
        return None
    wanted = f"{root}/{name}" if root else name
    try:
        if sdist.name.endswith(".zip"):
            with zipfile.ZipFile(sdist) as zf:
                for member in zf.namelist():
                    if member.removeprefix("./") == wanted:
                        return zf.read(member)
            return None
        with tarfile.open(sdist) as tf:
            for info in tf:
                if info.name.removeprefix("./") == wanted and info.isfile():
                    f = tf.extractfile(info)
                    return f.read() if f else None
    except _ARCHIVE_ERRORS:
        return None
    return None


def static_metadata(sdist: Path) -> bytes | None:
    """PKG-INFO of an sdist when it is reliable for dependencies (PEP 643), else None."""
    data = read_member(sdist, "PKG-INFO")
    if data is None:
        return None
    headers = BytesParser().parsebytes(data, headersonly=True)
    try:
        meta_version = Version(headers.get("Metadata-Version", "1.0"))
    except InvalidVersion:
        return None
    dynamic = {d.lower() for d in headers.get_all("Dynamic") or []}
    if meta_version < Version("2.2") or "requires-dist" in dynamic:
        return None
    return data


def build_requirements(sdist: Path) -> list[str]:
    """``[build-system] requires`` of an sdist, plus ``wheel`` for setuptools backends
    (older setuptools asks for it at build time, when no index can be reached)."""
    data = read_member(sdist, "pyproject.toml")
    try:
        table = tomllib.loads(data.decode()) if data else {}
    except (ValueError, UnicodeDecodeError):
        table = {}
    system = table.get("build-system", {})
    requires = [r for r in system.get("requires", DEFAULT_BUILD_REQUIRES) if isinstance(r, str)]
    backend = system.get("build-backend", "setuptools.build_meta:__legacy__")
    names = set()
    valid = []
    for r in requires:
        try:
            names.add(canonicalize_name(Requirement(r).name))
            valid.append(r)
        except InvalidRequirement:
            raise BuildFailed(f"{sdist.name} declares an invalid build requirement {r!r} in "
                              "pyproject.toml") from None
    if isinstance(backend, str) and backend.startswith("setuptools") and "wheel" not in names:
        valid.append("wheel")
    return valid


def extract(sdist: Path, dest: Path) -> Path:
    """Unpack an sdist into ``dest`` and return its project directory.

    Built from a directory we own (not by handing ``build`` the tarball), the build's
    intermediate files stay until auditwheel has run: a project that builds its own shared
    library links it by RUNPATH into that tree, and auditwheel must find it there to graft it.
    """
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if sdist.name.endswith(".zip"):
            with zipfile.ZipFile(sdist) as zf:
                for member in zf.namelist():
                    if not (dest / member).resolve().is_relative_to(dest.resolve()):
                        raise BuildFailed(f"{sdist.name} contains an unsafe path: {member}")
                zf.extractall(dest)
        else:
            with tarfile.open(sdist) as tf:
                tf.extractall(dest, filter="data")
    except _ARCHIVE_ERRORS as e:
        raise BuildFailed(f"{sdist.name} cannot be unpacked: {e}") from None
    root = source_root(sdist)
    return dest / root if root else dest
