"""Small valid distributions for tests and benchmarks: pure wheels with a correct RECORD, and
PEP 625 sdists, written directly (no build backend), so thousands take seconds."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

#: fixed member timestamps, so the same inputs give the same bytes.
ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def dist_name(name: str) -> str:
    """The escaped distribution name used in filenames (BDF spec, "Escaping")."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def wheel_filename(name: str, version: str, tag: str = "py3-none-any") -> str:
    return f"{dist_name(name)}-{version}-{tag}.whl"


def wheel_bytes(
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    requires_dist: Sequence[str] = (),
    module_source: str = "",
    compression: int = zipfile.ZIP_DEFLATED,
    generator: str = "wheelhouse-tests",
    tag: str = "py3-none-any",
) -> bytes:
    """A minimal valid wheel: one module plus METADATA, WHEEL and a correct RECORD. With a
    platform ``tag`` (e.g. cp311-cp311-manylinux_2_17_x86_64) it says so, but holds no
    compiled code: enough for planning and serving, not for importing an extension."""
    dist = dist_name(name)
    dist_info = f"{dist}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if requires_python:
        metadata += f"Requires-Python: {requires_python}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires_dist)
    files = {
        f"{dist}/__init__.py": (module_source or f"VERSION = {version!r}\n").encode(),
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: {generator}\n"
            f"Root-Is-Purelib: {'true' if tag.endswith('-any') else 'false'}\nTag: {tag}\n"
        ).encode(),
    }
    record = "".join(f"{p},{_record_hash(b)},{len(b)}\n" for p, b in files.items())
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for member, data in files.items():
            zf.writestr(zipfile.ZipInfo(member, ZIP_DATE), data)
    return buf.getvalue()


def write_wheel(directory: Path, name: str, version: str, **options: object) -> Path:
    """``wheel_bytes`` written to ``directory``; returns the wheel's path."""
    tag = str(options.get("tag", "py3-none-any"))
    path = directory / wheel_filename(name, version, tag)
    path.write_bytes(wheel_bytes(name, version, **options))  # type: ignore[arg-type]
    return path


def write_sdist(directory: Path, name: str, version: str) -> Path:
    """A PEP 625 sdist holding only PKG-INFO (enough for an index; nothing to build)."""
    dist = dist_name(name)
    path = directory / f"{dist}-{version}.tar.gz"
    pkg_info = f"Metadata-Version: 2.2\nName: {name}\nVersion: {version}\n".encode()
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo(f"{dist}-{version}/PKG-INFO")
        info.size = len(pkg_info)
        tf.addfile(info, io.BytesIO(pkg_info))
    return path
