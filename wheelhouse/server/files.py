"""Downloads of published files and their ``.metadata``: validators, conditional requests and
single byte ranges, answered as nginx answers them for ``wheelhouse export`` of the same store,
and the bytes of small files kept in memory.

Both servers make the same answer from the same facts: the file's size and modification time
(the export hard-links store files or copies them with their mtime). The ETag is nginx's
``"<mtime hex>-<size hex>"``, a strong validator here because published files are never
rewritten in place, and Last-Modified is the mtime. Conditional requests follow RFC 9110
§13.2.2: If-None-Match (weak comparison), else If-Modified-Since, before Range, so a current
copy gets 304, not 206. One satisfiable range gets 206 with Content-Range; none gets 416; a
Range of several (which nginx.conf also ignores, ``max_ranges 1``) or of another unit gets the
whole file. If-Range needs the exact ETag or Last-Modified. Accept-Ranges is on 200s only.

``FileCache`` keeps what each file's answer needs (one ``fstat`` per file per process, not per
request) and the bytes of files up to ``max_file`` bytes, within ``budget`` bytes per process;
larger files, and files beyond the budget, are read from disk in blocks for each request.

A store in a bucket is answered with the same headers from the catalogue's facts (its size,
and its upload time as the mtime, the same on every replica), small files kept in memory
like local ones and larger ones streamed from the bucket per request; with ``presign`` on,
a download is a redirect to a presigned URL of the object instead.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import formatdate, parsedate_to_datetime
from typing import TYPE_CHECKING, BinaryIO

from wheelhouse.errors import StoreError
from wheelhouse.server.reply import Headers, text_reply
from wheelhouse.server.state import Snapshot
from wheelhouse.store.model import Kind, StoredFile
from wheelhouse.store.protocols import StoreReader

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from wheelhouse.store.s3 import S3Blobs

log = logging.getLogger(__name__)

#: Files and their metadata never change once published (see the store), so clients and
#: proxies may keep them for as long as they like; this is the value uv documents.
IMMUTABLE = "max-age=365000000, immutable"

#: Read and written in 1 MiB blocks: the WSGI server (granian) has no sendfile-backed
#: ``wsgi.file_wrapper``, and small blocks cost a Python round trip each.
BLOCK = 1 << 20

#: Defaults of ``FileCache``: wheels up to 1 MiB kept, 64 MiB per worker process.
MAX_CACHED_FILE = 1 << 20
DEFAULT_BUDGET = 64 << 20

_OCTET = ("Content-Type", "application/octet-stream")


def etag_listed(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 §13.1.2): ``W/`` is ignored."""
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == wanted for candidate in header.split(","))


def _not_later(last_modified: float, header: str) -> bool:
    try:
        return last_modified <= parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError, OverflowError):
        return False


@dataclass(frozen=True, slots=True)
class Entry:
    """One file as every answer about it needs it. ``body`` is None when it is not kept."""

    path: str
    size: int
    mtime: int
    etag: str
    last_modified: str
    validators: Headers
    body: bytes | None


class FileCache:
    """What each published file's answers need, by its path and content hash (thread-safe:
    two threads filling the same entry store equal values)."""

    def __init__(self, budget: int = DEFAULT_BUDGET, max_file: int = MAX_CACHED_FILE, *,
                 presign: bool = False, presign_endpoint: str | None = None) -> None:
        self.presign = presign
        self.presign_endpoint = presign_endpoint
        self.budget = max(budget, 0)
        self.max_file = max_file
        self.used = 0
        self._entries: dict[tuple[str, str | None], Entry] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str | None]) -> Entry | None:
        return self._entries.get(key)

    def entry(self, key: tuple[str, str | None], path: str, expected_size: int | None) -> Entry:
        """The entry ``key`` (name, content hash) of the file at ``path``, made if missing.
        Raises OSError when it cannot be read, ValueError when its size is not
        ``expected_size`` (the catalogue's)."""
        found = self._entries.get(key)
        if found is not None:
            return found
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if expected_size is not None and st.st_size != expected_size:
                raise ValueError(f"{st.st_size} bytes on disk, {expected_size} in the catalogue")
            keep = st.st_size <= self.max_file and self.used + st.st_size <= self.budget
            body = fh.read() if keep else None
        if body is not None and len(body) != st.st_size:
            raise ValueError(f"read {len(body)} of {st.st_size} bytes")
        return self._keep(key, _entry(path, st.st_size, int(st.st_mtime), body))

    def remote_entry(self, key: tuple[str, str | None], rel: str, size: int | None,
                     mtime: int, read: Callable[[], bytes]) -> Entry:
        """The entry of the object ``rel`` in a bucket: ``read`` fetches its bytes, for
        small objects (and those of unknown ``size``, the .metadata files) only."""
        found = self._entries.get(key)
        if found is not None:
            return found
        keep = size is None or (size <= self.max_file and self.used + size <= self.budget)
        body = read() if keep else None
        if body is not None and size is not None and len(body) != size:
            raise ValueError(f"{len(body)} bytes in the bucket, {size} in the catalogue")
        real = len(body) if body is not None else size
        assert real is not None
        return self._keep(key, _entry(rel, real, mtime, body))

    def _keep(self, key: tuple[str, str | None], made: Entry) -> Entry:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                return found
            if made.body is not None and self.used + len(made.body) > self.budget:
                # Another thread filled the budget meanwhile: keep what answers need only.
                made = replace(made, body=None)
            self._entries[key] = made
            if made.body is not None:
                self.used += len(made.body)
        return made


def _entry(path: str, size: int, mtime: int, body: bytes | None) -> Entry:
    etag = f'"{mtime:x}-{size:x}"'
    last_modified = formatdate(mtime, usegmt=True)
    return Entry(path=path, size=size, mtime=mtime, etag=etag, last_modified=last_modified,
                 body=body, validators=(("ETag", etag), ("Last-Modified", last_modified),
                                        ("Cache-Control", IMMUTABLE)))


@dataclass(frozen=True, kw_only=True, slots=True)
class Download:
    """A file's answer: ``body`` (bytes in memory) or ``span`` (offset and length to read
    from ``entry.path``); a HEAD answer sends neither."""

    status: str
    headers: Headers
    body: bytes = b""
    span: tuple[int, int] | None = None
    path: str = ""
    #: for an object in a bucket: (offset, length) → its bytes, read as they are sent.
    stream: Callable[[int, int], Iterable[bytes]] | None = None


def body_of(download: Download) -> Iterable[bytes]:
    """The bytes of a ``span`` answer, read as the server sends them."""
    assert download.span is not None
    if download.stream is not None:
        return download.stream(*download.span)
    return Blocks(download.path, download.span)


def _range(header: str, size: int) -> tuple[int, int] | bool | None:
    """(start, stop) of one satisfiable range; False: unsatisfiable or malformed (416); None:
    ignore the header and send the whole file (another unit, several ranges)."""
    unit, eq, spec = header.partition("=")
    if not eq or unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or not (_digits(first) or (not first and _digits(last))) or (
            last and not _digits(last)):
        return False
    if not first:  # the last N bytes
        n = int(last)
        start, stop = max(size - n, 0), size
        return (start, stop) if n > 0 and start < stop else False
    start = int(first)
    stop = min(int(last) + 1, size) if last else size
    return (start, stop) if start < stop else False


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _if_range_holds(header: str, entry: Entry) -> bool:
    header = header.strip()
    if header.startswith(('"', "W/")):
        return header == entry.etag
    try:
        return parsedate_to_datetime(header).timestamp() == entry.mtime
    except (TypeError, ValueError, OverflowError):
        return False


def answer_file(entry: Entry, environ: WSGIEnvironment) -> Download:
    """The answer to a GET or HEAD of the file ``entry`` describes."""
    inm = environ.get("HTTP_IF_NONE_MATCH")
    if inm is not None:
        current = etag_listed(inm, entry.etag)
    else:
        ims = environ.get("HTTP_IF_MODIFIED_SINCE")
        current = ims is not None and _not_later(entry.mtime, ims)
    if current:
        return Download(status="304 Not Modified", headers=entry.validators)
    size = entry.size
    rng = environ.get("HTTP_RANGE")
    chosen = _range(rng, size) if rng and size else None
    if chosen is not None:
        if_range = environ.get("HTTP_IF_RANGE")
        if if_range is not None and not _if_range_holds(if_range, entry):
            chosen = None
    if chosen is False:
        return _unsatisfiable(size)
    if isinstance(chosen, tuple):
        start, stop = chosen
        headers = (_OCTET, ("Content-Length", str(stop - start)), *entry.validators,
                   ("Content-Range", f"bytes {start}-{stop - 1}/{size}"))
        if entry.body is not None:
            return Download(status="206 Partial Content", headers=headers,
                            body=entry.body[start:stop])
        return Download(status="206 Partial Content", headers=headers,
                        span=(start, stop - start), path=entry.path)
    headers = (_OCTET, ("Content-Length", str(size)), *entry.validators,
               ("Accept-Ranges", "bytes"))
    if entry.body is not None:
        return Download(status="200 OK", headers=headers, body=entry.body)
    return Download(status="200 OK", headers=headers, span=(0, size), path=entry.path)


def _unsatisfiable(size: int) -> Download:
    reply = text_reply("416 Range Not Satisfiable", f"no byte range of the {size} there is",
                       ("Content-Range", f"bytes */{size}"))
    return Download(status=reply.status, headers=reply.headers, body=reply.body)


def unreadable(what: str) -> Download:
    # The catalogue lists it, so a missing or wrong file is the server's fault, not a 404.
    reply = text_reply("500 Internal Server Error", f"cannot read {what}")
    return Download(status=reply.status, headers=reply.headers, body=reply.body)


class Blocks:
    """The bytes ``span`` of the file at ``path``, read in blocks as the server sends them;
    the file is open only while it is being sent (``close``, as WSGI asks, ends it)."""

    def __init__(self, path: str, span: tuple[int, int]) -> None:
        self._fh: BinaryIO | None = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._offset, self._left = span

    def __iter__(self) -> Iterator[bytes]:
        fh = self._fh
        if fh is None:
            return
        fh.seek(self._offset)
        while self._left > 0:
            block = fh.read(min(BLOCK, self._left))
            if not block:
                # Shorter than fstat said: stop; the client sees a short body, not a hang.
                log.error("%s ended %d bytes early", fh.name, self._left)
                return
            self._left -= len(block)
            yield block

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def split_files_path(path: str) -> tuple[str, str] | None:
    """``/files/<project>/<file>`` → (project, file); None for anything else."""
    if not path.startswith("/files/"):
        return None
    project, _, name = path[len("/files/"):].partition("/")
    if not project or not name or "/" in name:
        return None
    return project, name


def answer_download(
    snapshot: Snapshot, store: StoreReader, cache: FileCache, project: str, filename: str,
    environ: WSGIEnvironment,
) -> Download:
    """The answer for ``/files/<project>/<filename>``: a published file, or the METADATA of
    a published wheel (``<file>.metadata``, exactly as its hash on the index says)."""
    metadata = filename.endswith(".metadata")
    name = filename[: -len(".metadata")] if metadata else filename
    f = snapshot.files.get(name)
    if (
        f is None
        or f.project != project
        or (metadata and (f.kind is not Kind.WHEEL or f.metadata_sha256 is None))
    ):
        what = "metadata" if metadata else "file"
        reply = text_reply("404 Not Found", f"no {what} {project}/{name} in this index",
                           ("Cache-Control", "max-age=0, must-revalidate"))
        return Download(status=reply.status, headers=reply.headers, body=reply.body)
    # Keyed by the name and the content's hash: a file removed and published again with
    # other bytes is another entry. The path is made only on a miss (pathlib is slow).
    key = (filename, f.metadata_sha256 if metadata else f.sha256)
    entry = cache.get(key)
    blobs = store.blobs
    if entry is not None:
        if blobs is None:
            return answer_file(entry, environ)
        got = answer_file(entry, environ)
        return got if got.span is None else _streamed(blobs, got)
    if blobs is not None:
        return _answer_remote(store, cache, f, key, metadata, environ)
    path = store.metadata_path(f) if metadata else store.file_path(f)
    try:
        entry = cache.entry(key, str(path), None if metadata else f.size)
    except (OSError, ValueError) as e:
        # Never send bytes that contradict the index: pip and uv would fail on the hash
        # anyway, and a wrong Content-Length hangs them instead.
        log.error("%s is published but unreadable: %s", path, e)
        return unreadable(filename)
    return answer_file(entry, environ)


def _answer_remote(store: StoreReader, cache: FileCache, f: StoredFile,
                   key: tuple[str, str | None], metadata: bool, environ: WSGIEnvironment
                   ) -> Download:
    blobs = store.blobs
    assert blobs is not None
    rel = f"files/{f.relpath}" + (".metadata" if metadata else "")
    if cache.presign:
        # The URL is signed for a while; the answer must not outlive it in any cache.
        return Download(status="302 Found", headers=(
            ("Location", blobs.presign(rel, endpoint=cache.presign_endpoint)),
            ("Cache-Control", "no-store"),
            ("Content-Length", "0")))
    try:
        mtime = int(datetime.fromisoformat(f.upload_time).timestamp())
    except (TypeError, ValueError):
        mtime = 0
    try:
        entry = cache.remote_entry(key, rel, None if metadata else f.size, mtime,
                                   lambda: blobs.read(rel))
    except (StoreError, ValueError) as e:
        log.error("%s is published but unreadable: %s", blobs.url_of(rel), e)
        return unreadable(f.filename)
    got = answer_file(entry, environ)
    return got if got.span is None else _streamed(blobs, got)


def _streamed(blobs: S3Blobs, got: Download) -> Download:
    """``got`` with its bytes read from the object ``got.path`` names in the bucket."""
    rel = got.path
    return replace(got, stream=lambda offset, length: blobs.stream(rel, offset, length))
