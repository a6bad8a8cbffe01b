"""The request of the legacy upload API, as twine sends it: form fields taken from a file's
own core metadata, and a ``multipart/form-data`` body streamed from disk.
"""

from __future__ import annotations

import secrets
import tarfile
import zlib
from collections.abc import Iterator
from email.message import Message
from email.parser import Parser
from pathlib import Path
from typing import IO

from wheelhouse.distributions import read_wheel_metadata
from wheelhouse.errors import WheelhouseError
from wheelhouse.store.model import Kind, StoredFile
from wheelhouse.store.protocols import StoreReader

_BLOCK = 1 << 20

#: Core-metadata fields and the form fields the legacy upload API names them by (twine's
#: names: some are plural, "Home-page" becomes "home_page"); True for multiple-use fields,
#: which are sent as repeated parts.
_METADATA_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("Metadata-Version", "metadata_version", False),
    ("Name", "name", False),
    ("Version", "version", False),
    ("Summary", "summary", False),
    ("Description", "description", False),
    ("Description-Content-Type", "description_content_type", False),
    ("Keywords", "keywords", False),
    ("Home-page", "home_page", False),
    ("Download-URL", "download_url", False),
    ("Author", "author", False),
    ("Author-email", "author_email", False),
    ("Maintainer", "maintainer", False),
    ("Maintainer-email", "maintainer_email", False),
    ("License", "license", False),
    ("License-Expression", "license_expression", False),
    ("License-File", "license_file", True),
    ("Classifier", "classifiers", True),
    ("Platform", "platform", True),
    ("Supported-Platform", "supported_platform", True),
    ("Requires-Python", "requires_python", False),
    ("Requires-Dist", "requires_dist", True),
    ("Provides-Dist", "provides_dist", True),
    ("Obsoletes-Dist", "obsoletes_dist", True),
    ("Requires-External", "requires_external", True),
    ("Project-URL", "project_urls", True),
    ("Provides-Extra", "provides_extra", True),
    ("Dynamic", "dynamic", True),
    ("Requires", "requires", True),
    ("Provides", "provides", True),
    ("Obsoletes", "obsoletes", True),
)



def _core_metadata(store: StoreReader, f: StoredFile) -> Message | None:
    """The file's METADATA (wheels) or PKG-INFO (sdists), or None if it cannot be read."""
    data: bytes | None = None
    try:
        if f.kind is Kind.WHEEL:
            meta = store.metadata_path(f)
            data = meta.read_bytes() if meta.is_file() else read_wheel_metadata(
                store.local_file(f), f.filename)
        else:
            base = f.filename.removesuffix(".tar.gz")
            with tarfile.open(store.local_file(f), "r:gz") as tf:
                handle = tf.extractfile(f"{base}/PKG-INFO")
                data = handle.read() if handle is not None else None
    except (WheelhouseError, KeyError, OSError, EOFError, tarfile.TarError, zlib.error):
        return None
    if data is None:
        return None
    return Parser().parsestr(data.decode("utf-8", "replace"))


def form_fields(store: StoreReader, f: StoredFile) -> list[tuple[str, str]]:
    """The metadata fields of the upload form, from the file's own metadata."""
    meta = _core_metadata(store, f)
    fields: list[tuple[str, str]] = []
    if meta is not None:
        for header, name, multiple in _METADATA_FIELDS:
            values = [str(v) for v in meta.get_all(header, [])]
            fields.extend((name, v) for v in (values if multiple else values[:1]))
        body = meta.get_payload()
        if "Description" not in meta and isinstance(body, str) and body.strip():
            fields.append(("description", body))
    present = {name for name, _ in fields}
    # The index matches these against the filename; never leave them out.
    if "name" not in present:
        fields.append(("name", f.project))
    if "version" not in present:
        fields.append(("version", f.version))
    if f.kind is Kind.WHEEL:
        # {name}-{ver}(-{build})?-{py}-{abi}-{plat}.whl: the python tag is third from the end.
        fields += [("filetype", "bdist_wheel"), ("pyversion", f.filename.split("-")[-3])]
    else:
        fields += [("filetype", "sdist"), ("pyversion", "source")]
    return fields


def _quote(value: str) -> str:
    # Content-Disposition parameters as browsers and requests write them: quoted, with the
    # characters that would end the quote or the line percent-encoded.
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace(
        "\n", "%0A")


class MultipartBody:
    """A ``multipart/form-data`` body read in blocks, with its length known up front.

    requests sends it with a Content-Length and reads it block by block, so a large wheel is
    never held in memory (requests' own ``files=`` builds the whole body in memory).
    """

    def __init__(self, fields: list[tuple[str, str]], file: tuple[str, str, Path]) -> None:
        self.boundary = secrets.token_hex(16)
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        dash = f"--{self.boundary}\r\n".encode()
        head = bytearray()
        for name, value in fields:
            head += dash
            head += f'Content-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'.encode()
            head += value.encode("utf-8") + b"\r\n"
        field, filename, path = file
        head += dash
        head += (
            f'Content-Disposition: form-data; name="{_quote(field)}"; '
            f'filename="{_quote(filename)}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self._segments: list[bytes | Path] = [
            bytes(head), path, f"\r\n--{self.boundary}--\r\n".encode()
        ]
        self._length = sum(
            s.stat().st_size if isinstance(s, Path) else len(s) for s in self._segments
        )
        self._index = 0
        self._offset = 0
        self._open: IO[bytes] | None = None

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(_BLOCK):
            yield chunk

    def read(self, size: int = -1) -> bytes:
        limit = self._length if size is None or size < 0 else size
        out = bytearray()
        while len(out) < limit and self._index < len(self._segments):
            segment = self._segments[self._index]
            if isinstance(segment, bytes):
                piece = segment[self._offset:self._offset + limit - len(out)]
                self._offset += len(piece)
                done = self._offset >= len(segment)
            else:
                if self._open is None:
                    self._open = segment.open("rb")
                piece = self._open.read(limit - len(out))
                done = not piece
                if done:
                    self._open.close()
                    self._open = None
            out += piece
            if done:
                self._index += 1
                self._offset = 0
        return bytes(out)

    def close(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None
