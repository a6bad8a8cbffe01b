"""The legacy upload API that ``twine upload`` and ``uv publish`` speak: a multipart POST with
``:action=file_upload``, the metadata fields and the file as ``content``.

The file is streamed into the store's staging area while it is hashed, never held in memory,
and handed to ``Store.publish``, which validates it and makes it visible atomically. Every bad
input gets a 4xx with a message (in the reason phrase too, which is what twine shows) and
leaves nothing behind; a file already published with other bytes gets 409 "File already
exists", which ``twine upload --skip-existing`` understands, whether it comes under the same
filename or another spelling of the same release (see ``Store.publish``); the same bytes again
get 200, so retries (twine retries a 5xx five times) are harmless.

Local versions (``1.0+abc``) and build tags are refused unless the server allows them: pip and
uv let ``==1.0`` match ``1.0+abc`` and prefer the higher build tag, so either would let an
uploader change what an existing pin installs without touching its file.

Slow clients cannot take the server's threads: uploads read at once are capped
(``UploadSlots``, the rest get 503 with Retry-After) and each MiB of body must keep a pace
(``PacedReader``, else 408); see ``wheelhouse.server.bodies`` for why both.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
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

from wheelhouse.config import DEFAULT_MAX_UPLOAD_BYTES
from wheelhouse.distributions import parse_filename
from wheelhouse.errors import InvalidDistribution, PublishConflict, Stalled, StoreError
from wheelhouse.server.auth import Access
from wheelhouse.server.bodies import PacedReader, UploadSlots
from wheelhouse.server.reply import Reply, text_reply
from wheelhouse.store.model import Kind, Origin, PublishStatus
from wheelhouse.store.protocols import StoreWriter

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

log = logging.getLogger(__name__)

#: The form fields (metadata, often with the README as ``description``) are kept in memory;
#: this bounds them separately from the file, which goes to disk.
_MAX_FIELD_BYTES = 16 << 20
#: Each classifier and requirement is its own part; a few thousand is far beyond real ones.
_MAX_PARTS = 5000
_BLOCK = 1 << 20


#: Seconds a client turned away for want of a slot is told to wait (twine and uv retry 503).
_RETRY_AFTER = 5


@dataclass(frozen=True, kw_only=True)
class UploadOptions:
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    allow_local_versions: bool = False
    allow_build_tags: bool = False
    #: seconds each MiB of the body may take to arrive.
    stall_timeout: float = 30.0
    #: shared by every request of the app; None: no cap.
    slots: UploadSlots | None = None


class _Rejected(Exception):
    """An upload refused with this reply; raised anywhere below ``handle_upload``."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _reason(message: str) -> str:
    # The reason phrase is what twine prints on failure, so it carries the message, made safe
    # for a status line: printable ASCII, one line, short.
    text = "".join(c if " " <= c <= "~" else "?" for c in message.splitlines()[0])
    return text if len(text) <= 180 else text[:177] + "..."


def _refuse(code: int, message: str, *, reason: str | None = None) -> _Rejected:
    return _Rejected(text_reply(f"{code} {reason or _reason(message)}", message,
                                ("Cache-Control", "no-store")))


def _bad(message: str) -> _Rejected:
    return _refuse(400, message)


def _too_large(message: str) -> _Rejected:
    return _refuse(413, message, reason="Request Entity Too Large")


# -- reading the request -----------------------------------------------------------------------


@dataclass(kw_only=True)
class _Staged:
    """The file part as it arrives; ``path`` is set once the part starts."""

    path: Path | None = None


@dataclass(frozen=True, kw_only=True)
class _Form:
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
        raise _bad("an upload must be multipart/form-data with a boundary")
    try:
        return boundary.encode("ascii")
    except UnicodeEncodeError:
        raise _bad("the multipart boundary is not ASCII") from None


def _body(environ: WSGIEnvironment, limit: int) -> IO[bytes]:
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            declared = int(length)
        except ValueError:
            raise _bad("Content-Length is not a number") from None
        if declared > limit:
            # Refused before reading a byte; the server discards what the client still sends.
            raise _too_large(
                f"the upload is {declared} bytes, more than this index accepts ({limit} bytes "
                "including the form fields)"
            )
    elif not environ.get("wsgi.input_terminated"):
        raise _refuse(411, "an upload needs a Content-Length (or chunked transfer encoding)",
                      reason="Length Required")
    return get_input_stream(environ, safe_fallback=False, max_content_length=limit)


class _FormReader:
    """Takes the decoder's events: text fields into memory (bounded), the ``content`` part
    into a staging file, hashed on the way."""

    def __init__(self, store: StoreWriter, options: UploadOptions, staged: _Staged) -> None:
        self.store = store
        self.limit = options.max_upload_bytes
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

    def take(self, event: Field | File | Data) -> None:
        if isinstance(event, File) and event.name == "content":
            if self.staged.path is not None:
                raise _bad("the upload has more than one 'content' part")
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
            raise _too_large(f"the file is larger than this index accepts ({self.limit} bytes)")
        self.sha256.update(event.data)
        self.blake2.update(event.data)
        out.write(event.data)
        if not event.more_data:
            out.close()
            self._out = self._part = None

    def _field_data(self, event: Data, part: Field | File) -> None:
        self._field_bytes += len(event.data)
        if self._field_bytes > _MAX_FIELD_BYTES:
            raise _too_large(f"the form fields are larger than {_MAX_FIELD_BYTES} bytes")
        self._chunks.append(event.data)
        if not event.more_data:
            # Other file parts (a GPG signature) are read and dropped.
            if isinstance(part, Field):
                self.fields.setdefault(part.name, []).append(_text(part.name, self._chunks))
            self._part, self._chunks = None, []

    def close(self) -> None:
        if self._out is not None:
            self._out.close()

    def form(self) -> _Form:
        if self.staged.path is None or self.filename is None:
            raise _bad("the upload has no file: send it as the multipart part named 'content'")
        if self._part is not None:
            raise _bad("the multipart body is cut off inside a part")
        return _Form(fields=self.fields, filename=self.filename, path=self.staged.path,
                     size=self.size, sha256=self.sha256.hexdigest(),
                     blake2_256=self.blake2.hexdigest())


def _read_form(
    environ: WSGIEnvironment, store: StoreWriter, options: UploadOptions, staged: _Staged
) -> _Form:
    """Parse the multipart body as it arrives, streaming the file into staging."""
    boundary = _boundary(environ)
    stream = PacedReader(_body(environ, options.max_upload_bytes + _MAX_FIELD_BYTES),
                         stall_timeout=options.stall_timeout)
    decoder = MultipartDecoder(boundary, max_parts=_MAX_PARTS)
    reader = _FormReader(store, options, staged)
    try:
        while True:
            try:
                block = stream.read(_BLOCK)
            except Stalled:
                raise _refuse(408, f"the upload stalled: the next MiB of it did not arrive "
                              f"within {options.stall_timeout:g} s; nothing was stored",
                              reason="Request Timeout") from None
            except ClientDisconnected:
                raise _bad("the upload ended before its Content-Length: it was cut off") from None
            except RequestEntityTooLarge:
                raise _too_large(
                    f"the upload is larger than this index accepts "
                    f"({options.max_upload_bytes} bytes for the file)"
                ) from None
            except OSError as e:  # a socket timeout, or bad chunked framing
                raise _bad(f"the upload could not be read: {e}") from None
            # An empty block is the end of the body; the decoder then raises unless the
            # closing boundary came, so a cut body never passes for a complete one.
            decoder.receive_data(block or None)
            while True:
                try:
                    event = decoder.next_event()
                except (ValueError, RequestEntityTooLarge) as e:
                    what = "cut off" if not block else "malformed"
                    raise _bad(f"the multipart body is {what}: {e}") from None
                if isinstance(event, Epilogue):
                    return reader.form()
                if isinstance(event, NeedData):
                    break
                if isinstance(event, Field | File | Data):
                    reader.take(event)
            if not block:  # pragma: no cover - the decoder raised above
                raise _bad("the multipart body is cut off")
    finally:
        reader.close()


def _text(name: str, chunks: list[bytes]) -> str:
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(f"the form field {name!r} is not UTF-8 text") from None


# -- validation -------------------------------------------------------------------------------


def _one(fields: Mapping[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    if not values:
        return None
    if len(values) > 1 and len(set(values)) > 1:
        raise _bad(f"the form field {name!r} is given more than once with different values")
    return values[0]


def _check_form(form: _Form, options: UploadOptions) -> tuple[str, str | None]:
    """Validate the form and the filename (the store checks the file when it publishes it);
    returns (filename, requires_python from the form for sdists, whose PKG-INFO the store
    does not keep)."""
    fields = form.fields
    action = _one(fields, ":action")
    if action != "file_upload":
        raise _bad(f"unsupported :action {action!r}: this index accepts only file_upload")
    protocol = _one(fields, "protocol_version")
    if protocol is not None and protocol != "1":
        raise _bad(f"unsupported protocol_version {protocol!r}: this index speaks version 1")
    try:
        # The archive itself is checked by Store.publish, which every upload goes through.
        dist = parse_filename(form.filename, strict=True)
    except InvalidDistribution as e:
        raise _bad(e.message) from None
    filename, project, version = form.filename, dist.project, dist.version
    if version.local is not None and not options.allow_local_versions:
        raise _bad(f"{filename}: local versions ({version}) are not accepted here: "
                   f"installers let =={version.public} match them, so they could shadow the "
                   "release; publish a new version (or start the server with "
                   "--allow-local-versions)")
    if dist.build and not options.allow_build_tags:
        raise _bad(f"{filename}: build tags are not accepted here: installers prefer the "
                   "highest build tag, so one could shadow a published wheel; publish a new "
                   "version (or start the server with --allow-build-tags)")
    kind = "bdist_wheel" if dist.kind is Kind.WHEEL else "sdist"
    filetype = _one(fields, "filetype")
    if filetype is not None and filetype != kind:
        raise _bad(f"{filename}: filetype {filetype!r} does not fit the filename ({kind})")
    name = _one(fields, "name")
    if name is not None and canonicalize_name(name) != project:
        raise _bad(f"{filename}: the form names project {name!r}, the filename {project!r}")
    form_version = _one(fields, "version")
    if form_version is not None:
        try:
            same_version = Version(form_version) == version
        except InvalidVersion:
            same_version = False
        if not same_version:
            raise _bad(f"{filename}: the form says version {form_version!r}, the filename "
                       f"{version}")
    sha256 = _one(fields, "sha256_digest")
    blake2 = _one(fields, "blake2_256_digest")
    if sha256 is None and blake2 is None:
        raise _bad("the upload has no sha256_digest (or blake2_256_digest) to check it by")
    if sha256 is not None and sha256.strip().lower() != form.sha256:
        raise _bad(f"{filename}: sha256_digest does not match the uploaded bytes "
                   f"(they hash to {form.sha256}); the upload was corrupted")
    if blake2 is not None and blake2.strip().lower() != form.blake2_256:
        raise _bad(f"{filename}: blake2_256_digest does not match the uploaded bytes; "
                   "the upload was corrupted")
    requires_python = _one(fields, "requires_python") or None
    if requires_python is not None:
        try:
            SpecifierSet(requires_python)
        except InvalidSpecifier:
            raise _bad(f"requires_python {requires_python!r} is not a valid specifier") from None
    return filename, requires_python if dist.kind is Kind.SDIST else None


# -- the endpoint -----------------------------------------------------------------------------


def handle_upload(
    environ: WSGIEnvironment,
    *,
    store: StoreWriter,
    access: Access,
    options: UploadOptions,
    on_published: Callable[[], object],
) -> Reply:
    """Answer one POST to the upload URL. Never raises for bad input; ``on_published`` is
    called after a new file is committed (the server refreshes its pages with it)."""
    denied = access.upload_denied(environ)
    if denied is not None:
        return denied
    if options.slots is not None and not options.slots.take():
        return text_reply(
            "503 Service Unavailable",
            f"this index is already reading {options.slots.n} uploads; try again in a few "
            "seconds",
            ("Retry-After", str(_RETRY_AFTER)), ("Cache-Control", "no-store"),
        )
    try:
        return _handle(environ, store=store, options=options, on_published=on_published)
    finally:
        if options.slots is not None:
            options.slots.give()


def _handle(
    environ: WSGIEnvironment,
    *,
    store: StoreWriter,
    options: UploadOptions,
    on_published: Callable[[], object],
) -> Reply:
    staged = _Staged()
    try:
        form = _read_form(environ, store, options, staged)
        filename, requires_python = _check_form(form, options)
        provenance = {
            "upload": {
                "user_agent": environ.get("HTTP_USER_AGENT", ""),
                "remote_addr": environ.get("REMOTE_ADDR", ""),
            }
        }
        try:
            result = store.publish(
                form.path, filename=filename, origin=Origin.UPLOADED, provenance=provenance,
                expected_sha256=form.sha256, consume=True, requires_python=requires_python,
            )
        except PublishConflict as e:
            # twine --skip-existing recognises 409; the phrase is PyPI's.
            raise _refuse(409, f"File already exists: {e.message}. {e.hint or ''}".strip(),
                          reason="File already exists") from None
        except InvalidDistribution as e:
            raise _bad(e.message) from None
        except (StoreError, OSError):
            # Not the client's fault: 503 tells twine and uv to retry, which is safe because a
            # repeated upload of the same bytes is a no-op.
            log.exception("could not publish the upload of %s", filename)
            raise _refuse(503, "the store could not take the file just now; try again",
                          reason="Service Unavailable") from None
    except _Rejected as r:
        return r.reply
    finally:
        if staged.path is not None:
            # publish(consume=True) moved or removed it; this covers every earlier exit.
            staged.path.unlink(missing_ok=True)
    if result.status is PublishStatus.IDENTICAL:
        log.info("upload of %s: already published with the same bytes", filename)
        return text_reply("200 OK", f"{filename} was already published with these bytes")
    on_published()
    log.info("published upload %s (%d bytes)", filename, form.size)
    return text_reply("200 OK", f"published {filename}")
