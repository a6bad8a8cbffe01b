"""Reading the legacy upload API's request: a multipart body streamed part by part, the
metadata fields kept in memory within bounds and the file written to the store's staging area
while it is hashed. Whatever is wrong becomes ``Rejected`` carrying the 4xx reply to send."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import (
    Data,
    Epilogue,
    Field,
    File,
    MultipartDecoder,
    NeedData,
)
from werkzeug.wsgi import get_input_stream

from wheelhouse.errors import Stalled, StoreError
from wheelhouse.server.bodies import PacedReader
from wheelhouse.server.reply import Reply, text_reply
from wheelhouse.store.protocols import StoreWriter
from wheelhouse.util import disk_full

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: The form fields (metadata, often with the README as ``description``) are kept in memory;
#: this bounds them separately from the file, which goes to disk.
_MAX_FIELD_BYTES = 16 << 20
#: Each classifier and requirement is its own part; a few thousand is far beyond real ones.
_MAX_PARTS = 5000
_BLOCK = 1 << 20



class Rejected(Exception):
    """An upload refused with this reply; raised anywhere below ``handle_upload``."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _reason(message: str) -> str:
    # The reason phrase is what twine prints on failure, so it carries the message, made safe
    # for a status line: printable ASCII, one line, short.
    text = "".join(c if " " <= c <= "~" else "?" for c in message.splitlines()[0])
    return text if len(text) <= 180 else text[:177] + "..."


def refuse(code: int, message: str, *, reason: str | None = None) -> Rejected:
    return Rejected(text_reply(f"{code} {reason or _reason(message)}", message,
                                ("Cache-Control", "no-store")))


def bad(message: str) -> Rejected:
    return refuse(400, message)


def too_large(message: str) -> Rejected:
    return refuse(413, message, reason="Request Entity Too Large")


# -- reading the request -----------------------------------------------------------------------


@dataclass(kw_only=True)
class Staged:
    """The file part as it arrives; ``path`` is set once the part starts."""

    path: Path | None = None


@dataclass(frozen=True, kw_only=True)
class UploadForm:
    fields: Mapping[str, list[str]]
    filename: str
    path: Path
    size: int
    sha256: str
    blake2_256: str


def _boundary(environ: WSGIEnvironment) -> bytes:
    mimetype, params = parse_options_header(environ.get("CONTENT_TYPE", ""))
    boundary = params.get("boundary", "")
    if mimetype != "multipart/form-data" or not boundary:
        raise bad("an upload must be multipart/form-data with a boundary")
    try:
        return boundary.encode("ascii")
    except UnicodeEncodeError:
        raise bad("the multipart boundary is not ASCII") from None


def _body(environ: WSGIEnvironment, limit: int) -> IO[bytes]:
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            declared = int(length)
        except ValueError:
            raise bad("Content-Length is not a number") from None
        if declared > limit:
            # Refused before reading a byte; the server discards what the client still sends.
            raise too_large(
                f"the upload is {declared} bytes, more than this index accepts ({limit} bytes "
                "including the form fields)"
            )
    elif not environ.get("wsgi.input_terminated"):
        raise refuse(411, "an upload needs a Content-Length (or chunked transfer encoding)",
                      reason="Length Required")
    return get_input_stream(environ, safe_fallback=False, max_content_length=limit)


class _FormReader:
    """Takes the decoder's events: text fields into memory (bounded), the ``content`` part
    into a staging file, hashed on the way."""

    def __init__(self, store: StoreWriter, limit: int, staged: Staged) -> None:
        self.store = store
        self.limit = limit
        self.staged = staged
        self.fields: dict[str, list[str]] = {}
        self.filename: str | None = None
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.blake2 = hashlib.blake2b(digest_size=32)
        self._field_bytes = 0
        self._part: Field | File | None = None
        self._chunks: list[bytes] = []
        self._out: IO[bytes] | None = None
        #: the Content-Length, for what a full disk would have needed.
        self.declared: int | None = None

    def take(self, event: Field | File | Data) -> None:
        if isinstance(event, File) and event.name == "content":
            if self.staged.path is not None:
                raise bad("the upload has more than one 'content' part")
            self.filename = event.filename
            self._part = event
            self.staged.path = self.store.staging_file(suffix=".upload")
            self._out = self.staged.path.open("wb")
        elif isinstance(event, Field | File):
            self._part, self._chunks = event, []
        elif self._part is None:
            return
        elif self._out is not None:
            self._file_data(event, self._out)
        else:
            self._field_data(event, self._part)

    def _file_data(self, event: Data, out: IO[bytes]) -> None:
        self.size += len(event.data)
        if self.size > self.limit:
            raise too_large(f"the file is larger than this index accepts ({self.limit} bytes)")
        self.sha256.update(event.data)
        self.blake2.update(event.data)
        try:
            out.write(event.data)
            if not event.more_data:
                out.close()
        except OSError as e:
            assert self.staged.path is not None
            raise disk_full(e, self.staged.path, needed=self.declared) or StoreError(
                f"cannot write the upload to {self.staged.path}: {e}") from None
        if not event.more_data:
            self._out = self._part = None

    def _field_data(self, event: Data, part: Field | File) -> None:
        self._field_bytes += len(event.data)
        if self._field_bytes > _MAX_FIELD_BYTES:
            raise too_large(f"the form fields are larger than {_MAX_FIELD_BYTES} bytes")
        self._chunks.append(event.data)
        if not event.more_data:
            # Other file parts (a GPG signature) are read and dropped.
            if isinstance(part, Field):
                self.fields.setdefault(part.name, []).append(_text(part.name, self._chunks))
            self._part, self._chunks = None, []

    def close(self) -> None:
        if self._out is not None:
            with contextlib.suppress(OSError):  # a full disk; the file is removed anyway
                self._out.close()

    def form(self) -> UploadForm:
        if self.staged.path is None or self.filename is None:
            raise bad("the upload has no file: send it as the multipart part named 'content'")
        if self._part is not None:
            raise bad("the multipart body is cut off inside a part")
        return UploadForm(fields=self.fields, filename=self.filename, path=self.staged.path,
                     size=self.size, sha256=self.sha256.hexdigest(),
                     blake2_256=self.blake2.hexdigest())


def read_form(
    environ: WSGIEnvironment, store: StoreWriter, *, limit: int, stall_timeout: float,
    staged: Staged, on_progress: Callable[[], None] | None = None,
) -> UploadForm:
    """Parse the multipart body as it arrives, streaming the file (at most ``limit`` bytes)
    into staging; each block of the body must arrive within ``stall_timeout``, and
    ``on_progress`` is called as each one does."""
    boundary = _boundary(environ)
    stream = PacedReader(_body(environ, limit + _MAX_FIELD_BYTES), stall_timeout=stall_timeout,
                         on_progress=on_progress)
    decoder = MultipartDecoder(boundary, max_parts=_MAX_PARTS)
    reader = _FormReader(store, limit, staged)
    reader.declared = int(environ.get("CONTENT_LENGTH") or 0) or None
    try:
        while True:
            try:
                block = stream.read(_BLOCK)
            except Stalled:
                raise refuse(408, f"the upload stalled: the next MiB of it did not arrive "
                              f"within {stall_timeout:g} s; nothing was stored",
                              reason="Request Timeout") from None
            except ClientDisconnected:
                raise bad("the upload ended before its Content-Length: it was cut off") from None
            except RequestEntityTooLarge:
                raise too_large(
                    f"the upload is larger than this index accepts "
                    f"({limit} bytes for the file)"
                ) from None
            except OSError as e:  # a socket timeout, or bad chunked framing
                raise bad(f"the upload could not be read: {e}") from None
            # An empty block is the end of the body; the decoder then raises unless the
            # closing boundary came, so a cut body never passes for a complete one.
            decoder.receive_data(block or None)
            while True:
                try:
                    event = decoder.next_event()
                except (ValueError, RequestEntityTooLarge) as e:
                    what = "cut off" if not block else "malformed"
                    raise bad(f"the multipart body is {what}: {e}") from None
                if isinstance(event, Epilogue):
                    return reader.form()
                if isinstance(event, NeedData):
                    break
                if isinstance(event, Field | File | Data):
                    try:
                        reader.take(event)
                    except StoreError:
                        # Read the rest of the body (paced, bounded by the limit) so the
                        # client, still sending, reads the 507 instead of a reset.
                        _drain(stream)
                        raise
            if not block:  # pragma: no cover - the decoder raised above
                raise bad("the multipart body is cut off")
    finally:
        reader.close()


def _drain(stream: PacedReader) -> None:
    """Discard what is left of a body; a stall or a cut ends it quietly."""
    try:
        while stream.read(_BLOCK):
            pass
    except (Stalled, ClientDisconnected, RequestEntityTooLarge, OSError):
        pass


def _text(name: str, chunks: list[bytes]) -> str:
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise bad(f"the form field {name!r} is not UTF-8 text") from None
